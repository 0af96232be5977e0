"""``nvenc`` and ``python -m nvenc_cli``: signal handling first, then the command.

The handlers go in before Typer and the rest are imported, so a signal that arrives
during start-up ends the run with its own exit code and one line, not a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    from nvenc_cli import signals
    from nvenc_cli.errors import Interrupted

    signals.install()
    try:
        from nvenc_cli.cli import run
    except Interrupted as exc:
        signals.settle()
        sys.stderr.write(f"nvenc: error: {exc}\n")
        sys.exit(exc.exit_code)
    run()


if __name__ == "__main__":
    main()
