"""Signals that end a run become one ``Interrupted`` exception, so cleanup always runs.

A dropped ssh session (SIGHUP), a batch scheduler's CPU limit (SIGXCPU) and ``kill``
(SIGTERM) deserve the cleanup Ctrl-C gets: the temporary file removed, the previous
output untouched, one line, exit 128 + the signal's number. Only the first signal
interrupts; the ones that follow while cleanup runs are ignored, since raising again
inside cleanup is exactly what would leave a ``.part`` file and a traceback behind. Once
the outcome is decided (``settle``), a signal ends the process at once with its code:
nothing is left to clean up, and blocking on a stalled pipe must not keep it alive.
"""

from __future__ import annotations

# The C module, not ``signal``: that one builds enums on import, and these handlers go in
# first thing at start-up, before anything slow.
import _signal
import _thread
import os
import sys
from typing import Any

from nvenc_cli.errors import Interrupted

# The line each signal's cancellation prints; the exit code is 128 + its number.
_NAMES = {
    "SIGINT": "interrupted",
    "SIGTERM": "terminated",
    "SIGHUP": "terminated by SIGHUP (the terminal or session went away)",
    "SIGXCPU": "terminated by SIGXCPU (CPU time limit reached)",
    "SIGXFSZ": "terminated by SIGXFSZ",
}
_MESSAGES = {getattr(_signal, name): text for name, text in _NAMES.items() if hasattr(_signal, name)}
_XFSZ = getattr(_signal, "SIGXFSZ", None)

_first: int | None = None


def handled() -> list[int]:
    """The numbers of the signals, of those that end a run, this platform has."""
    return list(_MESSAGES)


def exit_code(signum: int) -> int:
    return 128 + int(signum)


def _interrupt(signum: int, frame: Any) -> None:
    global _first
    if _first is not None:
        return  # cleanup of the first signal is under way: let it finish
    _first = signum
    raise _interruption(signum)


def _unraisable(unraisable: Any) -> None:
    """Python drops an exception raised where C code called back into Python (an import
    lock's or a weak reference's callback, a finalizer) and prints it as "Exception
    ignored", and the run would go on to exit 0. An interruption dropped that way is sent
    again a moment later, from another thread, so it is handled once that callback has
    returned (sent from here it would be handled inside this hook, and dropped again)."""
    global _first
    if isinstance(unraisable.exc_value, Interrupted) and _first is not None:
        signum, _first = _first, None
        _thread.start_new_thread(_send_again, (signum,))
        return
    _previous_hook(unraisable)


def _send_again(signum: int) -> None:
    import time

    time.sleep(0.001)
    os.kill(os.getpid(), signum)


_previous_hook = sys.unraisablehook


def _interruption(signum: int) -> Interrupted:
    return Interrupted(_MESSAGES[signum], exit_code=exit_code(signum))


def received() -> Interrupted | None:
    """The interruption a signal already caused, if one did, to raise again.

    The handler's exception is lost when it lands inside a callback that C code made
    (PyAV's write callback turns what it raises into a failed write), so code after
    such a call asks here whether the failure it sees was really a signal.
    """
    return None if _first is None else _interruption(_first)


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(exit_code(signum))


def install() -> None:
    """Turn every run-ending signal into ``Interrupted`` (first one only).

    SIGXFSZ is what the kernel sends a process writing past its file size limit
    (``ulimit -f``); ignored, the write fails with EFBIG instead and is reported as the
    write error it is (exit 74). So it is ignored while such a limit is set; without a
    limit the kernel never sends it, and one that arrives was sent on purpose.
    """
    global _first
    _first = None
    sys.unraisablehook = _unraisable
    for sig in handled():
        if sig == _XFSZ and _file_size_limited():
            _signal.signal(sig, _signal.SIG_IGN)
        else:
            _signal.signal(sig, _interrupt)


def settle() -> None:
    """The outcome is decided: from here a signal exits at once with its own code."""
    for sig in handled():
        if sig == _XFSZ and _file_size_limited():
            continue
        _signal.signal(sig, _exit_now)


def _file_size_limited() -> bool:
    try:
        import resource
    except ImportError:  # not POSIX
        return False
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft != resource.RLIM_INFINITY
