"""One exception hierarchy whose classes carry the process exit code.

The library raises these; only ``cli.py`` turns them into a stderr line and an exit
status, so Python callers get ordinary exceptions and shell callers get sysexits-style
codes (see README "Exit codes").
"""

from __future__ import annotations


class NvencError(Exception):
    """Base class: every failure nvenc reports on purpose."""

    exit_code: int = 1


class UsageError(NvencError, ValueError):
    """An option value that can never work (bad crf, unknown preset, unknown -x key)."""

    exit_code = 2


class InputDataError(NvencError, ValueError):
    """The input exists but its contents are unusable (shape, dtype, corrupt data)."""

    exit_code = 65


class InputMissingError(NvencError, FileNotFoundError):
    """The input cannot be found or opened for reading."""

    exit_code = 66


class UnavailableError(NvencError, RuntimeError):
    """A requested backend, codec or device is not available on this machine."""

    exit_code = 69


class OutputError(NvencError, OSError):
    """The output exists (and overwriting was not allowed) or cannot be created."""

    exit_code = 73


class WriteError(NvencError, OSError):
    """Writing the output failed part-way (disk full, broken pipe, muxer error)."""

    exit_code = 74


class EncoderError(NvencError, RuntimeError):
    """The encoder itself failed while encoding; reported like a write failure."""

    exit_code = 74


class Interrupted(BaseException):
    """The run was cancelled by a signal: SIGINT (130), SIGTERM (143), SIGHUP (129),
    SIGXCPU (152) or SIGXFSZ (153), i.e. 128 + the signal's number.

    A ``BaseException``, like ``KeyboardInterrupt``: the ``except Exception`` that guards
    a probe or a parser of untrusted bytes must never swallow a cancellation or turn it
    into another error; only cleanup (``finally``, ``except BaseException: ...; raise``)
    sees it on the way out.
    """

    exit_code = 130

    def __init__(self, message: str = "interrupted", exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def brief(exc: BaseException, limit: int = 200) -> str:
    """First line of an underlying library error, for a one-line message."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
