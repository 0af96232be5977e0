"""Video files as input (transcoding): decoded by PyAV a window at a time."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from fractions import Fraction
from typing import IO, Any

import numpy as np

from nvenc_cli.errors import InputDataError, InputMissingError, brief
from nvenc_cli.frames import FrameInfo, PlaneWindow
from nvenc_cli.sources.base import Source

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".nut", ".gif",
    ".flv", ".mpg", ".mpeg", ".y4m", ".ogv", ".wmv", ".mxf", ".3gp",
)  # fmt: skip


# Formats whose frames carry no time of their own (one rate for the whole stream): no
# second pass over them looking for a variable rate (a 1080p y4m is 3 MB a frame).
_CONSTANT_RATE_FORMATS = frozenset({"yuv4mpegpipe", "rawvideo", "image2", "image2pipe"})


class VideoSource(Source):
    """The first video stream of any file FFmpeg opens, decoded to RGB.

    Sources deeper than 8 bits decode to 16-bit RGB so a 10-bit transcode keeps its depth.
    The decoder is told the stream's own matrix and range, so RGB comes out right.
    """

    def __init__(self, path: str, file: IO[bytes] | None = None) -> None:
        super().__init__()
        import av

        self.name = path
        #: a stream to close with the container (a FIFO the pipe reader opened).
        self.also_close: IO[bytes] | None = None
        try:
            from nvenc_cli.paths import for_ffmpeg

            self._container = av.open(file if file is not None else for_ffmpeg(path), "r")
        except (FileNotFoundError, PermissionError) as exc:
            if file is None and not os.access(path, os.R_OK):
                missing = isinstance(exc, FileNotFoundError)
                reason = "no such file" if missing else "cannot read (permission denied)"
                raise InputMissingError(f"{path}: {reason}") from None
            # The file itself is readable: what FFmpeg could not open or refused is
            # something the file names (a concat list's entry, an unsafe path in it).
            raise InputDataError(
                f"{path}: FFmpeg refused or could not open what the file refers to ({brief(exc)}); "
                "a concat list's entries must exist and be relative paths without '..' (safe mode)"
            ) from None
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputDataError(f"{path}: not a readable video ({brief(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputDataError(f"{path}: has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        if ctx is None:  # FFmpeg has no decoder for this stream's codec
            self._container.close()
            raise InputDataError(f"{path}: no decoder for its video stream")
        if not ctx.width or not ctx.height:
            self._container.close()
            raise InputDataError(f"{path}: the video stream has no frame size")
        fmt = ctx.format
        deep = fmt is not None and max(c.bits for c in fmt.components) > 8
        alpha = fmt is not None and any(c.is_alpha for c in fmt.components)
        self._stream = stream
        self._rgb = ("rgba64le" if alpha else "rgb48le") if deep else ("rgba" if alpha else "rgb24")
        self.info = FrameInfo(ctx.width, ctx.height, 4 if alpha else 3, 16 if deep else 8)
        rate = stream.average_rate or stream.guessed_rate
        self.fps_hint = Fraction(rate) if rate else None
        self._frames = int(stream.frames) or None
        #: counter-clockwise degrees the input is displayed at (its display matrix), and
        #: its sample aspect ratio when pixels are not square: the plan carries both.
        self.rotation = 0
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        self.sample_aspect = Fraction(sar) if sar and Fraction(sar) != 1 else None
        if (
            file is None
            and os.path.isfile(path)
            and self._container.format.name not in _CONSTANT_RATE_FORMATS
        ):
            self._keep_variable_rate(path)
        self._decoded = self._container.decode(self._stream)
        self._first = self._peek()
        if self._first is not None:
            self.rotation = round(self._first.rotation or 0) % 360

    def _keep_variable_rate(self, path: str) -> None:
        """A variable-rate video keeps its frames' times: they are read from its packets
        (no decoding) by a second reader, before the plan is made. A constant-rate one is
        written at its rate as before. ``-r`` re-times either (``encoding.prepare``)."""
        import av

        from nvenc_cli.paths import for_ffmpeg
        from nvenc_cli.timestamps import Timeline

        base = self._stream.time_base
        if base is None:
            return
        try:
            with av.open(for_ffmpeg(path), "r") as again:
                stream = again.streams.video[0]
                times = sorted(p.pts for p in again.demux(stream) if p.pts is not None and p.size)
        except (av.FFmpegError, OSError, ValueError, IndexError):
            return  # the decoder reports a damaged file; times stay at the constant rate
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
            self._container.close()
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
        try:
            for frame in frames:
                timing.see(index, frame.pts)  # type: ignore[attr-defined]
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
        note = timing.notice(self.name) if self.timeline is None else None
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

    def _window(self, batch: list) -> Any:
        if self.passthrough:
            return PlaneWindow(batch, self.info.width, self.info.height)
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
