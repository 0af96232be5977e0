"""Ask FFmpeg itself which option names an encoder or a muxer understands.

FFmpeg (and PyNvVideoCodec) silently ignore unknown keys, so ``-x crf=20`` given to a
codec without ``crf`` would quietly do nothing. PyAV exposes no option introspection, so
we call ``av_opt_find`` in the FFmpeg libraries PyAV bundles (already loaded in-process)
on a freshly allocated encoder/muxer context, children (private options) included.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

_SEARCH_CHILDREN = 1


@functools.cache
def _libs() -> tuple[ctypes.CDLL, ctypes.CDLL, ctypes.CDLL] | None:
    import av

    base = os.path.dirname(av.__file__)
    found = []
    for name in ("libavutil", "libavcodec", "libavformat"):
        paths = glob.glob(os.path.join(base, "..", "av.libs", name + "-*")) or glob.glob(
            os.path.join(base, "..", "av.libs", name + ".*")
        )
        if not paths:
            return None
        found.append(ctypes.CDLL(paths[0]))
    util, codec, fmt = found
    util.av_opt_find.restype = ctypes.c_void_p
    util.av_opt_find.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    codec.avcodec_find_encoder_by_name.restype = ctypes.c_void_p
    codec.avcodec_find_encoder_by_name.argtypes = [ctypes.c_char_p]
    codec.avcodec_alloc_context3.restype = ctypes.c_void_p
    codec.avcodec_alloc_context3.argtypes = [ctypes.c_void_p]
    codec.avcodec_free_context.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    fmt.avformat_alloc_output_context2.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
    ]
    fmt.avformat_free_context.argtypes = [ctypes.c_void_p]
    return util, codec, fmt


def codec_accepts(encoder: str, keys: list[str]) -> dict[str, bool] | None:
    """Map each key to whether ``encoder`` has such an option; None if we cannot tell."""
    libs = _libs()
    if libs is None:
        return None
    util, codec, _ = libs
    found = codec.avcodec_find_encoder_by_name(encoder.encode())
    if not found:
        return None
    ctx = ctypes.c_void_p(codec.avcodec_alloc_context3(found))
    try:
        return {k: bool(util.av_opt_find(ctx, k.encode(), None, 0, _SEARCH_CHILDREN)) for k in keys}
    finally:
        codec.avcodec_free_context(ctypes.byref(ctx))


def muxer_accepts(muxer: str, keys: list[str]) -> dict[str, bool] | None:
    """Map each key to whether the ``muxer`` (mp4, matroska, ...) has such an option."""
    libs = _libs()
    if libs is None:
        return None
    util, _, fmt = libs
    ctx = ctypes.c_void_p()
    if fmt.avformat_alloc_output_context2(ctypes.byref(ctx), None, muxer.encode(), None) < 0:
        return None
    try:
        return {k: bool(util.av_opt_find(ctx, k.encode(), None, 0, _SEARCH_CHILDREN)) for k in keys}
    finally:
        fmt.avformat_free_context(ctx)
