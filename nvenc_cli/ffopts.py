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
from dataclasses import dataclass

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


def libavutil() -> ctypes.CDLL | None:
    """PyAV's own libavutil (for calls PyAV does not wrap), or None if it cannot be found."""
    libs = _libs()
    return None if libs is None else libs[0]


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


class _AVOption(ctypes.Structure):
    """The head of FFmpeg's ``AVOption`` (libavutil/opt.h), unchanged from FFmpeg 4 to 8."""

    _fields_ = (
        ("name", ctypes.c_char_p),
        ("help", ctypes.c_char_p),
        ("offset", ctypes.c_int),
        ("type", ctypes.c_int),
        ("default_val", ctypes.c_int64),
        ("min", ctypes.c_double),
        ("max", ctypes.c_double),
    )


def _numeric_types() -> dict[int, str]:
    """AVOptionType codes of the numeric kinds; libavutil 59 (FFmpeg 7) moved them up by one."""
    import av

    shift = 1 if av.library_versions["libavutil"][0] >= 59 else 0
    return {1 + shift: "int", 2 + shift: "int64", 3 + shift: "double", 4 + shift: "float"}


@dataclass(frozen=True)
class NumericOption:
    """A numeric option of an encoder and the range FFmpeg declares for it."""

    name: str
    kind: str
    low: float
    high: float


@functools.cache
def numeric_option(encoder: str, key: str) -> NumericOption | None:
    """The declared range of ``encoder``'s numeric option ``key``; None when the option is
    not numeric, does not exist, or the libraries cannot be asked.

    FFmpeg clamps nothing: an out-of-range or non-numeric value only fails, with
    ``Invalid argument``, when the encoder opens, mid-setup. Asking first gives a message
    that names the option and its range, and lets ``crf`` follow each encoder's own range
    (libx264: -1 to 51 in fractions, libvpx-vp9: -1 to 63) instead of a table of ours.
    """
    libs = _libs()
    if libs is None:
        return None
    util, codec, _ = libs
    found = codec.avcodec_find_encoder_by_name(encoder.encode())
    if not found:
        return None
    ctx = ctypes.c_void_p(codec.avcodec_alloc_context3(found))
    try:
        address = util.av_opt_find(ctx, key.encode(), None, 0, _SEARCH_CHILDREN)
        if not address:
            return None
        option = _AVOption.from_address(address)
        kind = _numeric_types().get(option.type)
        return None if kind is None else NumericOption(key, kind, option.min, option.max)
    finally:
        codec.avcodec_free_context(ctypes.byref(ctx))


def codec_refuses(encoder: str, key: str, value: str) -> bool:
    """True when FFmpeg's own parser refuses ``value`` for ``encoder``'s option ``key``
    (a number out of its range, text where a number or one of its named constants is
    due); False when it takes it, or when the libraries cannot be asked."""
    libs = _libs()
    if libs is None:
        return False
    util, codec, _ = libs
    util.av_opt_set.restype = ctypes.c_int
    util.av_opt_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    found = codec.avcodec_find_encoder_by_name(encoder.encode())
    if not found:
        return False
    ctx = ctypes.c_void_p(codec.avcodec_alloc_context3(found))
    try:
        return util.av_opt_set(ctx, key.encode(), value.encode(), _SEARCH_CHILDREN) < 0
    finally:
        codec.avcodec_free_context(ctypes.byref(ctx))
