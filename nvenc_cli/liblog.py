"""How loud the encoder libraries are: one rule for the CLI, the API and batch workers.

libx264/libx265/SVT-AV1 print banners and per-encode statistics on their own (20–25
lines an encode). Without ``-v`` (CLI) or ``verbose=True`` / the ``nvenc_cli`` logger at
DEBUG (API) only their errors get through: libx265 follows FFmpeg's log level and SVT-AV1
reads ``SVT_LOG`` (1 = errors; a value the user set is kept).
"""

from __future__ import annotations

import logging
import os

LOGGER = logging.getLogger("nvenc_cli")


def wants_library_logs(verbose: bool | None = None) -> bool:
    """``verbose`` as given, else whether the ``nvenc_cli`` logger is at DEBUG."""
    return bool(verbose) if verbose is not None else LOGGER.isEnabledFor(logging.DEBUG)


def hush_encoders() -> None:
    """Errors only from FFmpeg and the encoders that print on their own."""
    import av.logging

    os.environ.setdefault("SVT_LOG", "1")
    av.logging.set_libav_level(av.logging.ERROR)


def api_logging(verbose: bool | None = None) -> None:
    """Before an encode from Python: quiet unless asked (then FFmpeg's lines at INFO)."""
    if not wants_library_logs(verbose):
        hush_encoders()
        return
    import av.logging

    av.logging.set_libav_level(av.logging.INFO)
