"""``nvenc`` and ``python -m nvenc_cli``: signal handling first, then the command.

The handlers go in before Typer and the rest are imported, so a signal that arrives
during start-up ends the run with its own exit code and one line, not a traceback.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from nvenc_cli import signals
    from nvenc_cli.errors import Interrupted

    try:
        signals.install()  # a signal may land while the later ones go in: covered below
        if sys.argv[1:] == ["--version"] and sys.stdout is not None:
            # The one answer that needs no parser: Typer and the command table are most
            # of this process's start-up, and scripts ask for the version often.
            from nvenc_cli import __version__

            try:
                sys.stdout.write(f"nvenc {__version__}\n")
                sys.stdout.flush()
            except OSError as exc:  # a full disk, a closed pipe: one line, as for outputs
                sys.stderr.write(f"nvenc: error: cannot write to standard output: {exc.strerror or exc}\n")
                _exit(74)
            _exit(0)
        from nvenc_cli.batch.warmup import start_workers_early, wants_workers

        if wants_workers(sys.argv[1:]):
            start_workers_early()  # its ~0.3 s of imports overlap Typer's and the parsing
        from nvenc_cli.cli import run

        run()
    except Interrupted as exc:
        signals.settle()
        sys.stderr.write(f"nvenc: error: {exc}\n")
        _exit(exc.exit_code)
    except SystemExit as exc:
        _exit(exc.code)


def _exit(code: object) -> None:
    """Leave with ``code`` without interpreter shutdown once the outcome is decided.

    Shutdown puts the default signal actions back, so a signal landing then (the tail of
    a burst that is still arriving) would kill the process after its one line was
    printed and turn the exit code into "killed by a signal". Everything is closed by
    now; only the standard streams are flushed.
    """
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = code or 74  # the report could not be written out
    os._exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
