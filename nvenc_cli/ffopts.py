"""Ask FFmpeg itself which option names an encoder or a muxer understands.

FFmpeg (and PyNvVideoCodec) silently ignore unknown keys, so ``-x crf=20`` given to a
codec without ``crf`` would quietly do nothing. PyAV exposes no option introspection, so
we call ``av_opt_find`` in the FFmpeg libraries PyAV bundles (already loaded in-process)
on a freshly allocated encoder/muxer context, children (private options) included.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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


@contextmanager
def _encoder_context(encoder: str) -> Iterator[tuple[Any, Any] | None]:
    """libavutil and a fresh, unopened context of ``encoder`` to ask about its options
    (freed after), or None when the libraries or the encoder cannot be found."""
    libs = _libs()
    found = libs[1].avcodec_find_encoder_by_name(encoder.encode()) if libs is not None else None
    if not found:
        yield None
        return
    util, codec, _ = libs
    ctx = ctypes.c_void_p(codec.avcodec_alloc_context3(found))
    try:
        yield util, ctx
    finally:
        codec.avcodec_free_context(ctypes.byref(ctx))


def codec_accepts(encoder: str, keys: list[str]) -> dict[str, bool] | None:
    """Map each key to whether ``encoder`` has such an option; None if we cannot tell."""
    with _encoder_context(encoder) as asked:
        if asked is None:
            return None
        util, ctx = asked
        return {k: bool(util.av_opt_find(ctx, k.encode(), None, 0, _SEARCH_CHILDREN)) for k in keys}


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


# Codec options that carry a list of the encoder library's own settings (``a=1:b=2``).
# FFmpeg splits the list and hands each entry to the library's parser, and when the
# library rejects a name or a value it only logs a warning and encodes without it, so
# ``-x x264-params=keyint=abc`` would be ignored in silence.
PARAM_LISTS = {
    "libx264": ("x264-params", "x264opts"),
    "libx264rgb": ("x264-params", "x264opts"),
    "libx265": ("x265-params",),
    "libsvtav1": ("svtav1-params",),
}
_LIBRARIES = {"libx264": "x264", "libx264rgb": "x264", "libx265": "x265", "libsvtav1": "SvtAv1Enc"}
_PARAM_BAD = {-1: "unknown setting", -2: "bad value"}  # X264/X265_PARAM_BAD_NAME/VALUE


class _Entry(ctypes.Structure):
    _fields_ = [("key", ctypes.c_char_p), ("value", ctypes.c_char_p)]


def check_param_lists(encoder: str, options: dict[str, str]) -> None:
    """Refuse (exit 2) a settings list whose entries the encoder library rejects.

    The list is split as FFmpeg splits it (``av_dict_parse_string``, ``=`` and ``:``) and
    each entry is given to the library's own parser (``x264_param_parse``,
    ``x265_param_parse``, ``svt_av1_enc_parse_parameter``) in the build PyAV bundles, so
    the verdict is the library's: an unknown name is refused for every such list alike.
    """
    from nvenc_cli.errors import UsageError

    for key in PARAM_LISTS.get(encoder, ()):
        if key not in options:
            continue
        value = options[key]
        entries = _split_list(value)
        if entries is None:
            raise UsageError(f"-x {key}={value}: not a list of name=value settings separated by ':'")
        problems = _library_rejects(_LIBRARIES[encoder], entries)
        if problems:
            raise UsageError(f"-x {key}={value}: {encoder} rejects {'; '.join(problems)}")


def _split_list(value: str) -> list[tuple[str, str]] | None:
    """FFmpeg's own split of ``a=1:b=2`` (escapes and quoting included), or None."""
    libs = _libs()
    if libs is None:
        return [tuple(item.split("=", 1)) for item in value.split(":") if "=" in item]  # type: ignore[misc]
    util = libs[0]
    util.av_dict_parse_string.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_int,
    ]
    util.av_dict_get.restype = ctypes.POINTER(_Entry)
    util.av_dict_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_Entry), ctypes.c_int]
    util.av_dict_free.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    table = ctypes.c_void_p()
    try:
        if util.av_dict_parse_string(ctypes.byref(table), value.encode(), b"=", b":", 0) < 0:
            return None
        entries: list[tuple[str, str]] = []
        entry = util.av_dict_get(table, b"", None, 2)  # AV_DICT_IGNORE_SUFFIX: every entry
        while entry:
            entries.append((entry.contents.key.decode(), entry.contents.value.decode()))
            entry = util.av_dict_get(table, b"", entry, 2)
        return entries
    finally:
        util.av_dict_free(ctypes.byref(table))


def _library_rejects(library: str, entries: list[tuple[str, str]]) -> list[str]:
    lib = _encoder_library(library)
    if lib is None:
        return []  # the library is not where PyAV keeps it: FFmpeg alone decides
    if library == "SvtAv1Enc":
        return _svt_rejects(lib, entries)
    if library == "x264":
        param = ctypes.create_string_buffer(1 << 16)  # x264_param_t is ~1 KiB; room to spare
        lib.x264_param_default(param)
        parse, handle, free = lib.x264_param_parse, ctypes.cast(param, ctypes.c_void_p), None
    else:
        lib.x265_param_alloc.restype = ctypes.c_void_p
        lib.x265_param_default.argtypes = [ctypes.c_void_p]
        lib.x265_param_free.argtypes = [ctypes.c_void_p]
        handle = ctypes.c_void_p(lib.x265_param_alloc())
        lib.x265_param_default(handle)
        parse, free = lib.x265_param_parse, lib.x265_param_free
    parse.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    try:
        problems = []
        for name, value in entries:
            code = parse(handle, name.encode(), value.encode())
            if code < 0:
                problems.append(f"{name}={value} ({_PARAM_BAD.get(code, 'refused')})")
        return problems
    finally:
        if free is not None:
            free(handle)


def _svt_rejects(lib: ctypes.CDLL, entries: list[tuple[str, str]]) -> list[str]:
    """SVT-AV1's own verdict on each ``name=value``: its parser writes the named field of a
    configuration (a zeroed one is enough: no field is read) and answers
    ``EB_ErrorBadParameter`` for a name it does not know or a value it cannot read."""
    parse = getattr(lib, "svt_av1_enc_parse_parameter", None)
    if parse is None:
        return []
    parse.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    parse.restype = ctypes.c_int
    config = ctypes.create_string_buffer(1 << 16)  # EbSvtAv1EncConfiguration is ~1 KiB
    problems = []
    with _stderr_hushed():  # the parser prints its own "Svt[error]" line: ours says it
        for name, value in entries:
            if parse(ctypes.cast(config, ctypes.c_void_p), name.encode(), value.encode()) != 0:
                problems.append(f"{name}={value} (unknown setting or bad value)")
    return problems


@contextlib.contextmanager
def _stderr_hushed() -> Iterator[None]:
    """Descriptor 2 points at /dev/null for the duration: a library that prints straight to
    it (no log callback to set) says nothing, while the one line reporting it is nvenc's.
    Used at plan time only, around calls that take microseconds."""
    import sys

    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def _encoder_library(library: str) -> ctypes.CDLL | None:
    import av

    paths = glob.glob(os.path.join(os.path.dirname(av.__file__), "..", "av.libs", f"lib{library}-*"))
    try:
        return ctypes.CDLL(paths[0]) if paths else None
    except OSError:
        return None


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
    with _encoder_context(encoder) as asked:
        if asked is None:
            return None
        util, ctx = asked
        address = util.av_opt_find(ctx, key.encode(), None, 0, _SEARCH_CHILDREN)
        if not address:
            return None
        option = _AVOption.from_address(address)
        kind = _numeric_types().get(option.type)
        return None if kind is None else NumericOption(key, kind, option.min, option.max)


def codec_refuses(encoder: str, key: str, value: str) -> bool:
    """True when FFmpeg's own parser refuses ``value`` for ``encoder``'s option ``key``
    (a number out of its range, text where a number or one of its named constants is
    due); False when it takes it, or when the libraries cannot be asked."""
    with _encoder_context(encoder) as asked:
        if asked is None:
            return False
        util, ctx = asked
        util.av_opt_set.restype = ctypes.c_int
        util.av_opt_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
        return util.av_opt_set(ctx, key.encode(), value.encode(), _SEARCH_CHILDREN) < 0
