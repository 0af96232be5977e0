"""Frames from standard input or a FIFO: raw frames, a ``.npy`` stream, or a container.

A pipe cannot seek, so everything is read in order, a window at a time, and what the
stream is has to be decided from its first bytes: the ``.npy`` magic, else raw frames
when ``--input-size`` says how big one is (as ``ffmpeg -f rawvideo -s WxH -i -``), else
whatever FFmpeg's demuxers recognise (y4m, nut, Matroska, MPEG-TS…). Memory stays at a
few windows whatever the length of the stream.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from nvenc_cli.errors import InputDataError, InputMissingError, UsageError, brief
from nvenc_cli.sources.base import Source
from nvenc_cli.sources.layout import Layout, detect_layout, dtype_depth, frame_info, to_nhwc

if TYPE_CHECKING:  # the array readers import it: a container on stdin (y4m, nut) needs none
    import numpy as np

_NPY_MAGIC = b"\x93NUMPY"
_SNIFF = 64


@dataclass(frozen=True)
class RawFormat:
    """How one raw pixel is stored: channels, sample dtype, and where R, G, B (A) lie."""

    channels: int
    dtype: str
    order: tuple[int, ...] | None = None  # stored channel index of R, G, B(, A); None = as is


# FFmpeg's names for the packed formats whose samples nvenc can take as they are (after
# reordering the channels); planar and YUV formats would need a converter of their own.
RAW_FORMATS: dict[str, RawFormat] = {
    "rgb24": RawFormat(3, "u1"),
    "bgr24": RawFormat(3, "u1", (2, 1, 0)),
    "rgba": RawFormat(4, "u1"),
    "bgra": RawFormat(4, "u1", (2, 1, 0, 3)),
    "argb": RawFormat(4, "u1", (1, 2, 3, 0)),
    "abgr": RawFormat(4, "u1", (3, 2, 1, 0)),
    "gray": RawFormat(1, "u1"),
    "gray16le": RawFormat(1, "<u2"),
    "gray16be": RawFormat(1, ">u2"),
    "rgb48le": RawFormat(3, "<u2"),
    "rgb48be": RawFormat(3, ">u2"),
    "bgr48le": RawFormat(3, "<u2", (2, 1, 0)),
    "bgr48be": RawFormat(3, ">u2", (2, 1, 0)),
    "rgba64le": RawFormat(4, "<u2"),
    "rgba64be": RawFormat(4, ">u2"),
    "bgra64le": RawFormat(4, "<u2", (2, 1, 0, 3)),
    "bgra64be": RawFormat(4, ">u2", (2, 1, 0, 3)),
    "grayf32le": RawFormat(1, "<f4"),
    "rgbf32le": RawFormat(3, "<f4"),
    "rgbaf32le": RawFormat(4, "<f4"),
}


def raw_format(name: str) -> RawFormat:
    """The layout of ``--input-pixel-format NAME``, or a usage error with a suggestion."""
    fmt = RAW_FORMATS.get(name.strip().lower())
    if fmt is not None:
        return fmt
    import difflib

    close = difflib.get_close_matches(name.lower(), RAW_FORMATS, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(f"unknown --input-pixel-format {name!r}: {hint}raw input takes {', '.join(RAW_FORMATS)}")


def parse_size(text: str, option: str = "--input-size") -> tuple[int, int]:
    """``WxH`` (or ``W:H``) as positive integers."""
    parts = text.lower().replace(":", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"invalid {option} {text!r}: use WIDTHxHEIGHT, e.g. 1280x720") from None
    if width < 1 or height < 1:
        raise UsageError(f"invalid {option} {text!r}: width and height must be at least 1")
    return width, height


def is_pipe(spec: str) -> bool:
    """``-``, or a path naming a FIFO or a character device (``/dev/stdin``): no seeking."""
    if spec == "-":
        return True
    try:
        mode = os.stat(spec).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


class _Peeked(io.RawIOBase):
    """A stream whose first bytes were read to sniff it, handed on as if unread.

    It cannot seek, so FFmpeg's demuxers treat it as the pipe it is.
    """

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head, self._stream = head, stream
        #: the sniffed bytes, and every byte handed on so far: at the end of the stream
        #: a reader can tell how much it was sent (a y4m cut inside a frame)
        self.sniffed, self.consumed = head, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            self.consumed += n
            return n
        n = self._stream.readinto(view) or 0
        self.consumed += n
        return n


def _read_full(stream: IO[bytes], view: memoryview) -> int:
    """Fill ``view`` unless the stream ends first; returns the bytes read."""
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def open_pipe(
    spec: str,
    *,
    size: tuple[int, int] | None,
    pixel_format: str | None,
    layout: str | None,
) -> Source:
    """The source for a pipe: sniffed from its first bytes (see the module docstring)."""
    name = "standard input" if spec == "-" else spec
    if spec == "-":
        stream: IO[bytes] = sys.stdin.buffer
        owned = False
    else:
        try:
            stream = open(spec, "rb", buffering=0)  # noqa: SIM115 - owned by the source
        except OSError as exc:
            raise InputMissingError(f"{spec}: cannot read ({exc.strerror or exc})") from None
        owned = True
    try:
        if size is not None:
            return RawSource(stream, name, size, raw_format(pixel_format or "rgb24"), owned)
        if pixel_format is not None:
            raise UsageError("--input-pixel-format needs --input-size WxH (raw frames carry no size)")
        head = bytearray(_SNIFF)
        got = _read_full(stream, memoryview(head))
        head = head[:got]
        if not head:
            raise InputMissingError(f"{name}: no data: nothing was piped in (… | nvenc encode - …)")
        peeked = io.BufferedReader(_Peeked(bytes(head), stream), buffer_size=1 << 20)
        if bytes(head).startswith(_NPY_MAGIC):
            return NpyPipeSource(peeked, name, layout, stream if owned else None)
        return _container(peeked, name, stream if owned else None)
    except BaseException:
        if owned:
            stream.close()
        raise


def _container(peeked: IO[bytes], name: str, owned: IO[bytes] | None) -> Source:
    from nvenc_cli.sources.video import VideoSource

    try:
        source = VideoSource(name, file=peeked)
    except InputDataError:
        raise InputDataError(
            f"{name}: neither a .npy stream nor a video FFmpeg can read from a pipe: for raw "
            "frames give --input-size WxH (and --input-pixel-format, default rgb24)"
        ) from None
    source.also_close = owned
    return source


class RawSource(Source):
    """Raw packed frames of a known size, read in order (``ffmpeg -f rawvideo`` style)."""

    def __init__(
        self, stream: IO[bytes], name: str, size: tuple[int, int], fmt: RawFormat, owned: bool
    ) -> None:
        import numpy as np

        from nvenc_cli.sources.buffers import WindowBuffers

        super().__init__()
        self.name = name
        self._stream, self._owned, self._fmt = stream, owned, fmt
        width, height = size
        self.dtype = np.dtype(fmt.dtype)
        self.layout = Layout("nhwc", 1, height, width, fmt.channels)
        self.depth = dtype_depth(self.dtype)
        self.info = frame_info(self.layout, self.depth)
        self.frame_bytes = width * height * fmt.channels * self.dtype.itemsize
        self._buffers = WindowBuffers()

    @property
    def is_float(self) -> bool:
        return self.depth == 0

    def _windows(self, start: int, size: int) -> Iterator[np.ndarray]:
        index = 0
        while True:
            raw = self._read(size if index >= start else min(size, start - index), index)
            if raw is None:
                return
            if index >= start:
                yield self._normalise(raw, index)
            index += len(raw)

    def _read(self, count: int, index: int) -> np.ndarray | None:
        """Up to ``count`` whole frames; None at the end; a cut-off frame is an error."""
        block = self._buffers.empty((count * self.frame_bytes,), "uint8")
        try:
            got = _read_full(self._stream, memoryview(block))
        except OSError as exc:
            raise InputMissingError(f"{self.name}: cannot read ({exc.strerror or exc})") from None
        whole, rest = divmod(got, self.frame_bytes)
        if rest:
            width, height = self.info.width, self.info.height
            raise InputDataError(
                f"{self.name}: ends in a partial frame: {rest} bytes after frame {index + whole - 1}, "
                f"and a {width}x{height} frame is {self.frame_bytes} bytes; check --input-size "
                "and --input-pixel-format"
            )
        if not whole:
            return None
        shape = (whole, self.info.height, self.info.width, self._fmt.channels)
        return block[: whole * self.frame_bytes].view(self.dtype).reshape(shape)

    def _normalise(self, raw: np.ndarray, index: int) -> np.ndarray:
        if self._fmt.order is not None:
            raw = raw[..., list(self._fmt.order)]
        try:
            return to_nhwc(raw, self.layout, self.float_depth, index, self.value_range)
        except InputDataError as exc:
            raise InputDataError(f"{self.name}: {exc}") from None

    def close(self) -> None:
        if self._owned:
            self._stream.close()


class NpyPipeSource(Source):
    """A ``.npy`` arriving through a pipe: header first, then frames in order."""

    def __init__(self, stream: IO[bytes], name: str, layout: str | None, owned: IO[bytes] | None) -> None:
        import numpy as np

        from nvenc_cli.sources.buffers import WindowBuffers
        from nvenc_cli.sources.npyheader import read_header

        super().__init__()
        self.name, self._stream, self._owned = name, stream, owned
        try:
            shape, fortran, dtype = read_header(stream, name, "stream")
        except InputDataError:
            raise
        except Exception as exc:  # a parser of untrusted bytes: any failure means corrupt
            raise InputDataError(f"{name}: not a valid .npy stream ({brief(exc)})") from None
        if dtype.hasobject:
            raise InputDataError(f"{name}: holds Python objects (dtype {dtype}); nvenc refuses pickle")
        if fortran and len(shape) > 1:
            raise InputDataError(f"{name}: stored in Fortran order; send np.ascontiguousarray(frames)")
        self.dtype = dtype
        try:
            self.layout = detect_layout(tuple(shape), layout)
            self.depth = dtype_depth(dtype)
            self.info = frame_info(self.layout, self.depth)
        except InputDataError as exc:
            raise InputDataError(f"{name}: {exc}") from None
        frame_shape = tuple(shape) if self.layout.single else tuple(shape[1:])
        self._frame_shape = frame_shape
        self.frame_bytes = int(np.prod(frame_shape, dtype=np.int64)) * dtype.itemsize
        self._buffers = WindowBuffers()

    @property
    def total(self) -> int:
        return self.layout.frames

    @property
    def is_float(self) -> bool:
        return self.depth == 0

    def _windows(self, start: int, size: int) -> Iterator[np.ndarray]:
        index = 0
        while index < self.layout.frames:
            wanted = size if index >= start else min(size, start - index)
            count = min(wanted, self.layout.frames - index)
            shape = self._frame_shape if self.layout.single else (count, *self._frame_shape)
            raw = self._buffers.empty(shape, self.dtype)
            got = _read_full(self._stream, memoryview(raw.reshape(-1).view("uint8")))
            if got < raw.nbytes:
                raise InputDataError(
                    f"{self.name}: ended early, at frame {index + got // max(self.frame_bytes, 1)} of "
                    f"{self.layout.frames} its header promises"
                )
            if index >= start:
                try:
                    yield to_nhwc(raw, self.layout, self.float_depth, index, self.value_range)
                except InputDataError as exc:
                    raise InputDataError(f"{self.name}: {exc}") from None
            index += count
        # The stream ends where the array does: bytes after it (a second .npy sent down the
        # same pipe) would otherwise be dropped without a word.
        if _read_full(self._stream, memoryview(bytearray(1))):
            raise InputDataError(
                f"{self.name}: more data follows the {self.layout.frames} frames its .npy header "
                "describes (several arrays in one stream?): send one array, or np.concatenate them"
            )

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
