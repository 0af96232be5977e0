"""How loud the encoder libraries are: one rule for the CLI, the API and batch workers.

libx264/libx265/SVT-AV1 print banners and per-encode statistics on their own (20–25
lines an encode). Without ``-v`` (CLI) or ``verbose=True`` / the ``nvenc_cli`` logger at
DEBUG (API) only their errors get through: libx265 follows FFmpeg's log level and SVT-AV1
reads ``SVT_LOG`` (1 = errors; a value the user set is kept).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

LOGGER = logging.getLogger("nvenc_cli")
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn at the caller's own line, the first frame outside the package.

    A fixed ``stacklevel`` points into nvenc itself as soon as a call goes one level
    deeper (a ``wait=False`` job, a URL upload's wrapper); users filter warnings by
    their own module and line, so the frame is found rather than counted.
    """
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def wants_library_logs(verbose: bool | None = None) -> bool:
    """``verbose`` as given, else whether the ``nvenc_cli`` logger is at DEBUG."""
    return bool(verbose) if verbose is not None else LOGGER.isEnabledFor(logging.DEBUG)


def hush_encoders() -> None:
    """Errors only from FFmpeg and the encoders that print on their own."""
    import av.logging

    os.environ.setdefault("SVT_LOG", "1")
    av.logging.set_libav_level(av.logging.ERROR)


@contextlib.contextmanager
def api_logging(verbose: bool | None = None) -> Iterator[None]:
    """Around opening encoders from Python: quiet unless asked (then FFmpeg's lines at
    INFO). ``SVT_LOG`` is read when SVT-AV1 opens, so it is set only meanwhile: the
    caller's environment (and a later ``nvenc -v`` it starts) is left as it was."""
    import av.logging

    if wants_library_logs(verbose):
        av.logging.set_libav_level(av.logging.INFO)
        yield
        return
    av.logging.set_libav_level(av.logging.ERROR)
    before = os.environ.get("SVT_LOG")
    os.environ.setdefault("SVT_LOG", "1")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SVT_LOG", None)
