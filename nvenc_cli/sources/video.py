"""Video files as input (transcoding): decoded by PyAV a window at a time."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from fractions import Fraction
from typing import IO, TYPE_CHECKING, Any

from nvenc_cli.errors import InputDataError, InputMissingError, brief
from nvenc_cli.frames import FrameInfo, PlaneWindow
from nvenc_cli.sources.base import Source

if TYPE_CHECKING:  # RGB windows only: decoded planes that pass through need no numpy
    import numpy as np

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".nut", ".gif",
    ".flv", ".mpg", ".mpeg", ".y4m", ".ogv", ".wmv", ".mxf", ".3gp",
)  # fmt: skip


# Formats whose frames carry no time of their own (one rate for the whole stream): no
# second pass over them looking for a variable rate (a 1080p y4m is 3 MB a frame).
_CONSTANT_RATE_FORMATS = frozenset({"yuv4mpegpipe", "rawvideo", "image2", "image2pipe"})
# Bare elementary streams: no container, so no rate but what the bitstream's timing says.
_ELEMENTARY_FORMATS = frozenset({"h264", "hevc", "vvc", "mpegvideo", "m4v", "cavsvideo"})


class VideoSource(Source):
    """The first video stream of any file FFmpeg opens, decoded to RGB.

    Sources deeper than 8 bits decode to 16-bit RGB so a 10-bit transcode keeps its depth.
    The decoder is told the stream's own matrix and range, so RGB comes out right.
    """

    def __init__(self, path: str, file: IO[bytes] | None = None) -> None:
        super().__init__()
        import av

        from nvenc_cli import storage

        self.name = storage.redact(path)
        self._path = path
        self._file = file
        #: an object in a store, read through file objects (``storage.media_input``)
        self._remote = file is None and storage.streams(path)
        #: a stream to close with the container (a FIFO the pipe reader opened).
        self.also_close: IO[bytes] | None = None
        opened = file if file is not None else storage.media_input(path)  # 66 for a missing object
        if self._remote:
            self.also_close = opened
        try:
            self._container = av.open(opened, "r")
        except (FileNotFoundError, PermissionError) as exc:
            if self._remote:
                storage.close_media(opened)
            if file is None and not self._remote and not os.access(path, os.R_OK):
                missing = isinstance(exc, FileNotFoundError)
                reason = "no such file" if missing else "cannot read (permission denied)"
                raise InputMissingError(f"{self.name}: {reason}") from None
            # The file itself is readable: what FFmpeg could not open or refused is
            # something the file names (a concat list's entry, an unsafe path in it).
            raise InputDataError(
                f"{self.name}: FFmpeg refused or could not open what the file refers to ({brief(exc)}); "
                "a concat list's entries must exist and be relative paths without '..' (safe mode)"
            ) from None
        except (av.FFmpegError, OSError, ValueError) as exc:
            if self._remote:
                storage.close_media(opened)
            raise InputDataError(f"{self.name}: not a readable video ({brief(exc)})") from None
        if not self._container.streams.video:
            self.close()
            raise InputDataError(f"{self.name}: has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        if ctx is None:  # FFmpeg has no decoder for this stream's codec
            self.close()
            raise InputDataError(f"{self.name}: no decoder for its video stream")
        if not ctx.width or not ctx.height:
            self.close()
            raise InputDataError(f"{self.name}: the video stream has no frame size")
        fmt = ctx.format
        deep = fmt is not None and max(c.bits for c in fmt.components) > 8
        alpha = fmt is not None and any(c.is_alpha for c in fmt.components)
        self._stream = stream
        self._rgb = ("rgba64le" if alpha else "rgb48le") if deep else ("rgba" if alpha else "rgb24")
        self.info = FrameInfo(ctx.width, ctx.height, 4 if alpha else 3, 16 if deep else 8)
        self.fps_hint = self._own_rate(stream)
        self._frames = int(stream.frames) or None
        self._declared_end = _declared_end(self._container, stream)
        #: counter-clockwise degrees the input is displayed at (its display matrix), and
        #: its sample aspect ratio when pixels are not square: the plan carries both.
        self.rotation = 0
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        self.sample_aspect = Fraction(sar) if sar and Fraction(sar) != 1 else None
        if (
            file is None
            and (self._remote or os.path.isfile(path))
            and self._container.format.name not in _CONSTANT_RATE_FORMATS
        ):
            self._keep_variable_rate(path)
        self._decoded = self._container.decode(self._stream)
        self._first = self._peek()
        if self._first is not None:
            self.rotation = round(self._first.rotation or 0) % 360

    def _own_rate(self, stream: Any) -> Fraction | None:
        """The rate the input itself gives, never one FFmpeg made up: its demuxers put 25
        fps on a y4m whose header says ``F0:0`` and on a raw H.264/HEVC stream (where
        the rate, if any, is the SPS timing the decoder reads). Without one, ``rate_missing``
        says why and the documented default applies, with a notice."""
        kind = self._container.format.name
        if kind == "yuv4mpegpipe":
            head = self._head()
            fields = head.split(b"\n", 1)[0].split()[1:] if head else []
            given = [f[1:] for f in fields if f.startswith(b"F")]
            parts = given[0].split(b":") if given else []
            if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
                said = f"F{given[0].decode('ascii', 'replace')}" if given else "no F field"
                self.rate_missing = f"{self.name}: its y4m header gives no frame rate ({said})"
                return None
            return Fraction(int(parts[0]), int(parts[1]))
        if kind in _ELEMENTARY_FORMATS:
            timing = stream.codec_context.framerate
            if timing and timing > 0:
                self.fps_from = "the stream's own timing (SPS)"
                return Fraction(timing)
            self.rate_missing = f"{self.name}: a raw {kind} stream without timing information"
            return None
        rate = stream.average_rate or stream.guessed_rate
        return Fraction(rate) if rate else None

    def _head(self) -> bytes:
        """The input's first bytes (a y4m header), from the file or the pipe's sniffed start."""
        if self._file is None:
            from nvenc_cli.storage import close_media, media_input

            try:
                if not self._remote:
                    with open(self._path, "rb") as local:
                        return local.read(4096)
                fh = media_input(self._path)
                try:
                    return bytes(fh.read(4096))
                finally:
                    close_media(fh)
            except OSError:
                return b""
        return getattr(getattr(self._file, "raw", self._file), "sniffed", b"")

    def _keep_variable_rate(self, path: str) -> None:
        """A variable-rate video keeps its frames' times: they are read from its packets
        (no decoding) by a second reader, before the plan is made. A constant-rate one is
        written at its rate as before. ``-r`` re-times either (``encoding.prepare``)."""
        import av

        from nvenc_cli.storage import close_media, media_input
        from nvenc_cli.timestamps import Timeline

        base = self._stream.time_base
        if base is None:
            return
        opened = media_input(path)  # a second reader: its own file object for an object
        try:
            with av.open(opened, "r") as again:
                stream = again.streams.video[0]
                times = sorted(p.pts for p in again.demux(stream) if p.pts is not None and p.size)
        except (av.FFmpegError, OSError, ValueError, IndexError):
            return  # the decoder reports a damaged file; times stay at the constant rate
        finally:
            close_media(opened)
        if len(times) < 2 or len(set(times)) < len(times) or self._constant(times, Fraction(base)):
            return
        self.timeline = Timeline(tuple((t - times[0]) * Fraction(base) for t in times))
        self.timeline_from = "the input's own frame times (variable frame rate)"
        self.timeline_hint = "-r N re-times them to a constant rate"
        self.variable_rate = True
        self._frames = len(times)

    def _constant(self, times: list[int], base: Fraction) -> bool:
        """Whether every frame lies within one tick of where the stream's own rate puts it
        (a constant rate rounded to the container's clock, e.g. 24 fps in milliseconds)."""
        rate = self.fps_hint
        if not rate:
            return False
        tick = 1 / rate / base  # frame length in ticks
        return all(abs((t - times[0]) - k * tick) <= 1 for k, t in enumerate(times))

    def _peek(self) -> object | None:
        """The first frame, decoded now: its side data carries the display matrix, which
        the plan must know before the output stream is made."""
        import av

        try:
            return next(self._decoded)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            self.close()
            raise InputDataError(f"{self.name}: decoding failed at frame 0 ({exc})") from None

    @property
    def total(self) -> int | None:
        return self._frames

    #: the decoded frames go to the encoder as they are (``encoding.pass_planes``)
    passthrough = False

    def planes(self) -> tuple[str, int, int, int, int] | None:
        """The decoded frames' pixel format and colour codes (primaries, transfer, matrix,
        range), read from the first frame; None when there is no frame to read them from."""
        frame = self._first
        if frame is None or frame.format is None:
            return None
        return (
            frame.format.name,
            int(frame.color_primaries or 2),
            int(frame.color_trc or 2),
            int(frame.colorspace or 2),
            int(frame.color_range or 0),
        )

    def _windows(self, start: int, size: int) -> Iterator[np.ndarray]:
        import av

        batch: list[np.ndarray] = []
        index = 0
        timing = _Timing(self._stream.time_base, self.out_rate or self.fps_hint)
        frames = self._decoded if self._first is None else itertools.chain([self._first], self._decoded)
        self._first = None
        damaged: list[int] = []
        end: Fraction | None = None
        try:
            for frame in frames:
                timing.see(index, frame.pts)  # type: ignore[attr-defined]
                end = _frame_end(frame, self._stream, self.fps_hint)
                if frame.is_corrupt:  # type: ignore[attr-defined]
                    damaged.append(index)
                if index >= start:
                    batch.append(self._as_is(frame) if self.passthrough else self._to_rgb(frame))
                    if len(batch) == size:
                        yield self._window(batch)
                        batch = []
                index += 1
        except av.FFmpegError as exc:
            raise InputDataError(f"{self.name}: decoding failed at frame {index} ({exc})") from None
        if batch:
            yield self._window(batch)
        self._notice_damage(index, damaged)
        self._check_cut(index, end)
        # Without a rate of its own the input's times are FFmpeg's invention: nothing to keep.
        timed = self.timeline is None and self.rate_missing is None
        note = timing.notice(self.name) if timed else None
        if note:
            self.notices.append(note)

    def _notice_damage(self, decoded: int, damaged: list[int]) -> None:
        """Say what the decoder hid: frames it concealed, frames the header promised."""
        if damaged:
            self.notices.append(
                f"{self.name}: {len(damaged)} frame(s) were damaged in the file and concealed by "
                f"the decoder (first at frame {damaged[0]})"
            )
        if self._frames is not None and decoded < self._frames and self.limit is None:
            self.notices.append(
                f"{self.name}: its header promises {self._frames} frames, {decoded} could be decoded "
                "(damaged or missing data was skipped)"
            )

    def _check_cut(self, decoded: int, end: Fraction | None) -> None:
        """Refuse a y4m whose last frame is cut off (FFmpeg drops the partial frame without
        a word), as a raw or ``.npy`` stream cut inside a frame is refused; say when a file's
        frames end well before the duration its header gives (a download or copy cut
        short): its whole frames are encoded, as a file missing frames its header counts."""
        if self.limit is not None:
            return
        if self._container.format.name == "yuv4mpegpipe":
            partial = self._y4m_partial(decoded)
            if partial is not None:
                got, whole = partial
                raise InputDataError(
                    f"{self.name}: the y4m stream ends inside frame {decoded} ({got} of its {whole} "
                    "bytes): it was cut off"
                )
            return
        declared, rate = self._declared_end, self.fps_hint
        if declared is None or end is None or not rate or (self._frames and decoded < self._frames):
            return
        if declared - end > Fraction(3, 2) / rate:
            self.notices.append(
                f"{self.name}: its frames end at {float(end):.3f} s, its header says "
                f"{float(declared):.3f} s: the file looks cut short ({decoded} frames could be "
                "decoded, the rest is missing)"
            )

    def _y4m_partial(self, decoded: int) -> tuple[int, int] | None:
        """(bytes of the cut-off frame, bytes of a whole one) when a y4m stream ended inside
        a frame, else None. Counts what was read: the file's size, or the pipe's bytes."""
        import av

        if self._remote:
            total = getattr(self.also_close, "size", None)
        elif self._file is None:
            total = os.path.getsize(self._path) if os.path.isfile(self._path) else None
        else:
            total = getattr(getattr(self._file, "raw", self._file), "consumed", None)
        head = self._head()
        if total is None or b"\n" not in head:
            return None
        ctx = self._stream.codec_context
        try:
            fmt = av.VideoFormat(ctx.format.name, ctx.width, ctx.height)
        except (ValueError, AttributeError):
            return None
        planes = {c.plane: c.width * c.height * ((c.bits + 7) // 8) for c in fmt.components}
        whole = sum(planes.values())
        left = total - (head.index(b"\n") + 1) - decoded * (len(b"FRAME\n") + whole)
        return (max(left - len(b"FRAME\n"), 0), whole) if 0 < left < len(b"FRAME\n") + whole else None

    def _window(self, batch: list) -> Any:
        if self.passthrough:
            return PlaneWindow(batch, self.info.width, self.info.height)
        import numpy as np

        return np.stack(batch)

    def _as_is(self, frame: Any) -> Any:
        """A decoded frame for the encoder as it is, once its size is checked."""
        self._check_size(frame)
        return frame

    def _check_size(self, frame: Any) -> None:
        if frame.width != self.info.width or frame.height != self.info.height:
            raise InputDataError(
                f"{self.name}: frame size changes mid-stream "
                f"({self.info.width}x{self.info.height} → {frame.width}x{frame.height})"
            )

    def _to_rgb(self, frame: Any) -> np.ndarray:
        self._check_size(frame)
        rgb = frame.reformat(  # type: ignore[attr-defined]
            format=self._rgb,
            src_color_range=frame.color_range or None,  # type: ignore[attr-defined]
        )
        return rgb.to_ndarray()

    def close(self) -> None:
        self._container.close()
        if self.also_close is not None:
            self.also_close.close()


def _declared_end(container: Any, stream: Any) -> Fraction | None:
    """Where the video stream's header says it ends, in seconds from its start: the
    stream's duration, else the DURATION tag Matroska muxers write, else the file's
    duration when the video is its only stream (a longer sound track would not count)."""
    if stream.duration and stream.time_base:
        return stream.duration * Fraction(stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return (int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
        except ValueError:
            return None
    if len(container.streams) == 1 and container.duration:
        return Fraction(container.duration, 1_000_000)
    return None


def _frame_end(frame: Any, stream: Any, rate: Fraction | None) -> Fraction | None:
    """Where a decoded frame ends, in seconds from the stream's start (None: untimed)."""
    if frame.pts is None or not stream.time_base:
        return None
    base = Fraction(stream.time_base)
    start = stream.start_time or 0
    length = frame.duration * base if frame.duration else (1 / rate if rate else Fraction(0))
    return (frame.pts - start) * base + length


class _Timing:
    """Watches the input's timestamps against the constant rate the output is written at.

    The output gives frame k the time k/fps; a variable-frame-rate input whose frames sit
    elsewhere is re-timed, which is said (with the largest shift) rather than done silently.
    """

    def __init__(self, time_base: Fraction | None, fps: Fraction | None) -> None:
        self.time_base, self.fps = time_base, fps
        self.origin: int | None = None
        self.worst: tuple[float, int, float, float] | None = None

    def see(self, index: int, pts: int | None) -> None:
        if pts is None or self.time_base is None or not self.fps:
            return
        if self.origin is None:
            self.origin = pts
        actual = float((pts - self.origin) * self.time_base)
        constant = float(index / self.fps)
        shift = abs(actual - constant)
        if self.worst is None or shift > self.worst[0]:
            self.worst = (shift, index, actual, constant)

    def notice(self, name: str) -> str | None:
        if self.worst is None or not self.fps or self.worst[0] <= 0.5 / float(self.fps):
            return None
        shift, index, actual, constant = self.worst
        rate = f"{self.fps.numerator}/{self.fps.denominator}".removesuffix("/1")
        return (
            f"{name}: variable frame rate re-timed to a constant {rate} fps: frame {index} was at "
            f"{actual:.3f} s and is now at {constant:.3f} s (moved by {shift:.3f} s)"
        )
