"""torchcodec's multi-stream ``Encoder``: video streams and audio streams, fed over time.

``Encoder()`` → ``add_video(...)``/``add_audio(...)`` → ``open_file``/``open_file_like`` →
``VideoStream.add_frames`` and ``AudioStream.add_samples`` in any order → ``close()``.
Underneath it is one ``pipeline.Job`` (the same plan, backend and muxer as ``nvenc encode``)
with audio tracks as further muxer lanes; the muxer interleaves the streams by time with a
bounded hold, whatever order and batch sizes the caller uses. A path output appears only
when ``close()`` completes it; an exception inside ``with`` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvenc_cli import errors
from nvenc_cli.errors import UsageError

if TYPE_CHECKING:
    from nvenc_cli.audio.inputs import ArrayAudio, PushedAudio
    from nvenc_cli.audio.track import AudioTrack
    from nvenc_cli.mux import Muxer
    from nvenc_cli.pipeline import Job
    from nvenc_cli.plan import EncodePlan
    from nvenc_cli.timestamps import StreamTicks

__all__ = ["AudioStream", "Encoder", "VideoStream"]

# torchcodec raises RuntimeError for misuse its C++ core detects: a usage error (exit 2,
# ValueError) that is also a RuntimeError.
_Misuse = errors.SettingError
# FFmpeg's frames hold at most 8 planes, so torchcodec (and this encoder) take 8 channels.
MAX_CHANNELS = 8


def check_file_like(file_like: Any) -> None:
    """Refuse objects the muxer could not write to, before anything is encoded."""
    for method in ("write", "seek"):
        if not callable(getattr(file_like, method, None)):
            raise _Misuse(
                f"file_like must have a {method}() method; {type(file_like).__name__} has none",
                torchcodec=errors.tc_file_like_lacks(method),
            )


@dataclass(frozen=True)
class AudioSettings:
    """One audio stream's arguments, as torchcodec names them."""

    sample_rate: int
    num_channels: int
    bit_rate: int | None = None
    out_num_channels: int | None = None
    out_sample_rate: int | None = None

    def check_input(self) -> None:
        """What ``add_audio`` refuses at once (torchcodec's wording)."""
        if (
            isinstance(self.sample_rate, bool)
            or not isinstance(self.sample_rate, int)
            or self.sample_rate <= 0
        ):
            raise _Misuse(f"sample_rate must be > 0, got {self.sample_rate!r}")
        if (
            isinstance(self.num_channels, bool)
            or not isinstance(self.num_channels, int)
            or self.num_channels <= 0
        ):
            raise _Misuse(f"num_channels must be > 0, got {self.num_channels!r}")
        if self.num_channels > MAX_CHANNELS:
            raise _Misuse(
                f"Trying to encode {self.num_channels} channels, but at most {MAX_CHANNELS} channels "
                "per frame are supported"
            )

    def check(self) -> None:
        """What opening refuses: a bit rate < 0, an output channel count or rate no encoder takes."""
        self.check_input()
        if self.bit_rate is not None and (isinstance(self.bit_rate, bool) or self.bit_rate < 0):
            raise _Misuse(f"bit_rate={self.bit_rate} must be >= 0")
        channels = self.out_num_channels
        if channels is not None and (isinstance(channels, bool) or not 1 <= channels <= MAX_CHANNELS):
            raise _Misuse(f"Desired number of channels ({channels}) is not supported")
        rate = self.out_sample_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0):
            raise _Misuse(f"invalid sample rate={rate}")


def audio_only_container(dest: Any, fmt: str | None, overwrite: bool) -> str:
    """The muxer for an output holding sound only: audio containers first, then video ones;
    the destination is checked as for video (torchcodec's wording comes with the errors)."""
    from nvenc_cli.audio.codecs import AUDIO_CONTAINERS, audio_container
    from nvenc_cli.mux import check_destination
    from nvenc_cli.options import container_for

    path = os.fspath(dest) if isinstance(dest, (str, os.PathLike)) else None
    container = audio_container(path, fmt)
    if container is None:
        try:
            container = container_for(path, fmt)
        except UsageError as exc:
            sound = ", ".join(sorted(AUDIO_CONTAINERS))
            raise errors.SettingError(
                f"{exc}; for sound only also {sound}", torchcodec=getattr(exc, "torchcodec", None)
            ) from None
    check_destination(dest, overwrite)
    return container


def open_audio_track(settings: AudioSettings, container: str, source: ArrayAudio | PushedAudio) -> AudioTrack:
    """Plan one raw-samples track for ``container``; refusals use torchcodec's words."""
    from nvenc_cli.audio.plan import AudioOptions, plan_audio
    from nvenc_cli.audio.track import AudioTrack

    options = AudioOptions(
        bitrate=settings.bit_rate or None,
        out_rate=settings.out_sample_rate or settings.sample_rate,
        out_channels=settings.out_num_channels,
    )
    try:
        plan = plan_audio(options, container, source, "samples")
    except UsageError as exc:
        text = str(exc)
        if "cannot encode at" in text or "invalid audio sample rate" in text:
            wording = f"invalid sample rate={options.out_rate}"
        elif "cannot encode" in text and settings.out_num_channels:
            wording = f"Desired number of channels ({settings.out_num_channels}) is not supported"
        elif "cannot encode" in text:
            wording = f"Trying to encode {settings.num_channels} channels"
        else:
            wording = None
        raise _Misuse(text, torchcodec=wording) from None
    return AudioTrack(plan, source)


def _bool_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Misuse(f"{name} must be True or False, got {value!r}")
    return value


class VideoStream:
    """A video stream of an :class:`Encoder`; feed it with :meth:`add_frames`."""

    def __init__(self, encoder: Encoder, index: int, spec: dict[str, Any]) -> None:
        self._encoder = encoder
        self._index = index
        self._spec = spec
        self._height, self._width = spec["height"], spec["width"]
        self._job: Job | None = None
        #: the frames' own times, for a stream declared with ``timestamps=True``
        self._ticks: StreamTicks | None = None

    def add_frames(self, frames: Any, pts: Any = None) -> None:
        """Encode frames: a uint8 (N, C, H, W) tensor with C = 3 (RGB) of the size given to
        ``add_video``; channels-last (N, H, W, 3) tensors, numpy arrays and lists of frames
        work too. ``pts`` (seconds, one per frame) is required by a stream declared with
        ``timestamps=True`` and refused otherwise.

        Raises:
            RuntimeError: before :meth:`Encoder.open_file` or after :meth:`Encoder.close`;
                frames of another size, dtype or device than the stream's.
        """
        self._encoder._add_frames(self, frames, pts)


class AudioStream:
    """An audio stream of an :class:`Encoder`; feed it with :meth:`add_samples`."""

    def __init__(self, encoder: Encoder, index: int, settings: AudioSettings) -> None:
        self._encoder = encoder
        self._index = index
        self.settings = settings
        self._track: AudioTrack | None = None
        self._loud = False  # samples outside [-1, 1] were seen (and warned about once)

    def add_samples(self, samples: Any) -> None:
        """Encode samples: a float32 (num_channels, num_samples) CPU tensor in [-1, 1].
        Louder samples are encoded as given, as torchcodec does, with one ``UserWarning``
        per stream: integer-sample codecs (PCM, FLAC) clip them, float ones take them as
        they are.

        Raises:
            RuntimeError: before :meth:`Encoder.open_file` or after :meth:`Encoder.close`;
                samples of another channel count, dtype or rank; samples on a GPU.
        """
        self._encoder._add_samples(self, samples)


class Encoder:
    """Several streams, encoded incrementally; a drop-in for ``torchcodec.encoders.Encoder``.

    Example::

        encoder = Encoder()
        video = encoder.add_video(height=256, width=256, frame_rate=30)
        audio = encoder.add_audio(sample_rate=16000, num_channels=1)
        with encoder.open_file("out.mp4"):
            video.add_frames(frames)      # uint8 (N, 3, H, W)
            audio.add_samples(samples)    # float32 (1, S) in [-1, 1]

    Any number of video streams (each its own encoder session, of its own size, rate and
    settings) and audio streams; the file's streams are the video ones in the order they
    were added, then the audio ones.
    """

    def __init__(self) -> None:
        self._videos: list[VideoStream] = []
        self._audio: list[AudioStream] = []
        self._state = "new"  # new -> open -> closed
        self._job: Job | None = None
        self._muxer: Muxer | None = None
        self._frames = 0

    # -- streams --------------------------------------------------------------------------
    def add_video(
        self,
        *,
        height: int,
        width: int,
        frame_rate: float,
        device: str | Any | None = None,
        codec: str | None = None,
        pixel_format: str | None = None,
        crf: int | float | None = None,
        preset: str | int | None = None,
        extra_options: dict[str, Any] | None = None,
        timestamps: bool = False,
    ) -> VideoStream:
        """Declare the video stream (before opening): the frames' size and rate, the device
        (``None``: torch's default device; ``"cpu"``; ``"cuda"`` for NVENC) and the encoding
        settings of ``VideoEncoder.to_file``. With ``timestamps=True`` every ``add_frames``
        gives the frames' times (``pts=``, seconds), kept in the file; ``frame_rate`` is then
        the nominal rate."""
        from nvenc_cli.api.video import _frame_rate

        self._check_new("add_video")
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise _Misuse(f"{name} must be > 0, got {value!r}")
        if device is None:
            device = _default_device()
        spec = {
            "height": height,
            "width": width,
            "rate": _frame_rate(frame_rate),
            "device": str(device),
            "settings": (codec, pixel_format, crf, None if preset is None else str(preset), extra_options),
            "timed": _bool_flag("timestamps", timestamps),
        }
        stream = VideoStream(self, len(self._videos), spec)
        self._videos.append(stream)
        return stream

    def add_audio(
        self,
        *,
        sample_rate: int,
        num_channels: int,
        bit_rate: int | None = None,
        out_num_channels: int | None = None,
        out_sample_rate: int | None = None,
    ) -> AudioStream:
        """Declare an audio stream (before opening): the samples' rate and channel count,
        and optionally the output's bit rate, channel count and rate."""
        self._check_new("add_audio")
        settings = AudioSettings(sample_rate, num_channels, bit_rate, out_num_channels, out_sample_rate)
        settings.check_input()
        stream = AudioStream(self, len(self._audio), settings)
        self._audio.append(stream)
        return stream

    # -- opening --------------------------------------------------------------------------
    def open_file(self, dest: str | Path) -> Encoder:
        """Open the output file; its extension picks the container. Returns the encoder."""
        if not isinstance(dest, (str, os.PathLike)):
            raise _Misuse(f"dest must be a path (str or pathlib.Path), got {type(dest).__name__}")
        self._open(os.fspath(dest), None)
        return self

    def open_file_like(self, dest: Any, *, format: str) -> Encoder:
        """Open a binary file-like object (``write`` and ``seek``) as the output, in the
        container ``format`` ("mp4", "mkv", "wav"…). Returns the encoder."""
        from nvenc_cli.api.video import api_errors

        with api_errors():
            check_file_like(dest)
        self._open(dest, format)
        return self

    def _open(self, dest: Any, fmt: str | None) -> None:
        if self._state == "open":
            raise _Misuse("open() was already called")
        if self._state == "closed":
            raise _Misuse("Cannot open after close()")
        if not self._videos and not self._audio:
            raise _Misuse("Call addVideoStream() or addAudioStream() before open()")
        from nvenc_cli.api.video import _api_errors
        from nvenc_cli.liblog import api_logging

        with _api_errors(), api_logging():
            for stream in self._audio:
                stream.settings.check()
            if self._videos:
                self._open_with_video(dest, fmt)
            else:
                self._open_audio_only(dest, fmt)
        self._state = "open"

    def _open_with_video(self, dest: Any, fmt: str | None) -> None:
        """The first video stream's job owns the file; every further video stream is a
        job of its own that writes through a port of that file's muxer."""
        from nvenc_cli.pipeline import Job

        first, *others = self._videos
        plan = self._video_plan(first, dest, fmt)
        tracks = self._plan_audio(plan.container)
        job = Job(plan, dest, True)
        first._job = job
        self._job, self._muxer = job, job.muxer
        try:
            for stream in others:
                stream._job = Job(self._video_plan(stream, dest, fmt), dest, True, port=job.muxer.add_video())
            for stream, track in zip(self._audio, tracks, strict=True):
                track.attach(job.muxer)
                stream._track = track
        except BaseException:
            self._abort()
            raise

    @staticmethod
    def _video_plan(stream: VideoStream, dest: Any, fmt: str | None) -> EncodePlan:
        from nvenc_cli.api.video import _device, _Settings
        from nvenc_cli.encoding import check_output
        from nvenc_cli.frames import FrameInfo
        from nvenc_cli.plan import make_plan
        from nvenc_cli.timestamps import StreamTicks, writer_clock

        spec = stream._spec
        settings = _Settings(*spec["settings"])
        options = settings.options(spec["rate"], _device(spec["device"], None), fmt, True)
        container = check_output(dest, options)
        tick = writer_clock(container) if spec["timed"] else None
        plan = make_plan(options, FrameInfo(spec["width"], spec["height"], 3, 8), container, None, tick)
        stream._ticks = None if tick is None else StreamTicks(plan.time_base)
        return plan

    def _open_audio_only(self, dest: Any, fmt: str | None) -> None:
        from nvenc_cli.mux import Muxer

        container = audio_only_container(dest, fmt, True)
        tracks = self._plan_audio(container)
        muxer = Muxer(dest, container, None, True, video=False)
        try:
            for stream, track in zip(self._audio, tracks, strict=True):
                track.attach(muxer)
                stream._track = track
            muxer.start()
        except BaseException:
            muxer.abort()
            raise
        self._muxer = muxer

    def _plan_audio(self, container: str) -> list[AudioTrack]:
        from nvenc_cli.audio.inputs import PushedAudio

        return [
            open_audio_track(
                s.settings, container, PushedAudio(s.settings.sample_rate, s.settings.num_channels)
            )
            for s in self._audio
        ]

    # -- feeding --------------------------------------------------------------------------
    def _add_frames(self, stream: VideoStream, frames: Any, pts: Any = None) -> None:
        from nvenc_cli.api.video import _api_errors
        from nvenc_cli.sources.memory import check_readable, describe, to_backend

        self._check_open("add frames", "addFrames")
        job = stream._job
        assert job is not None
        if isinstance(frames, list | tuple):  # a list of frames, stacked a window at a time
            from nvenc_cli.sources.sequence import as_frames

            with _api_errors():
                frames = as_frames(frames)
        elif not _is_tensor_or_array(frames):
            raise _Misuse(f"frames must be a torch.Tensor, got {type(frames).__name__}")
        if str(frames.dtype).removeprefix("torch.") != "uint8":
            raise _Misuse(f"frames must have uint8 dtype, got {frames.dtype}")
        if frames.ndim != 4:
            raise _Misuse(f"frames must have 4 dimensions (N, C, H, W), got shape {tuple(frames.shape)}")
        try:
            with _api_errors():
                described = describe(frames, None, "nchw")
                check_readable(frames)
        except ValueError as exc:
            raise _Misuse(str(exc)) from None
        height, width, channels = described.size
        if channels != 3:
            raise _Misuse(f"frames must have 3 channels (RGB), got {channels}")
        if (height, width) != (stream._height, stream._width):
            raise _Misuse(
                f"All frames must have the same dimensions as the stream: expected "
                f"{stream._height}x{stream._width} (height x width), got {height}x{width}"
            )
        on_cuda = described.device.startswith("cuda")
        want = stream._spec["device"]
        if on_cuda != want.startswith("cuda"):
            raise _Misuse(f"frames must be on the same device as the stream ({want}), got {described.device}")
        layout = described.layout
        if layout.frames == 0:
            return
        if (pts is not None) != (stream._ticks is not None):
            raise _Misuse(
                "pts needs a stream added with timestamps=True"
                if pts is not None
                else "this stream was added with timestamps=True: give pts= with its frames"
            )
        try:
            with _api_errors():
                ticks = None if stream._ticks is None else stream._ticks.ticks(pts, layout.frames)
        except ValueError as exc:
            raise _Misuse(str(exc)) from None
        try:
            with _api_errors():
                step = 8
                for index in range(0, layout.frames, step):
                    raw = frames[index : index + step]
                    times = None if ticks is None else ticks[index : index + step]
                    job.write(to_backend(raw, layout, 8, job.frames, job.plan.backend), times)
        except BaseException:
            self._fail()
            raise

    def _add_samples(self, stream: AudioStream, samples: Any) -> None:
        from nvenc_cli.audio.inputs import check_samples, samples_frame

        self._check_open("add samples", "addSamples")
        data = _samples_array(samples)
        expected = stream.settings.num_channels
        if data.shape[0] != expected:
            raise _Misuse(f"Expected {expected} channels, got {data.shape[0]}")
        if data.shape[1] == 0:
            return
        if data.dtype.kind == "f":  # int16 samples are in range by construction
            loud = check_samples(data, f"audio stream {stream._index}", lenient=True, warn=not stream._loud)
            stream._loud = stream._loud or loud
        track = stream._track
        assert track is not None
        try:
            from nvenc_cli.api.video import _api_errors

            with _api_errors():
                muxer = self._muxer
                assert muxer is not None
                if not muxer.started and muxer.can_start:
                    muxer.start()
                if not muxer.started:
                    # NVENC describes its stream at its first packet; until then the
                    # encoder context does not exist, so the samples wait as frames.
                    stream.__dict__.setdefault("_waiting", []).append(data.copy())
                    return
                for waiting in stream.__dict__.pop("_waiting", []):
                    track.write(samples_frame(waiting, stream.settings.sample_rate, track.source.layout))
                track.write(samples_frame(data, stream.settings.sample_rate, track.source.layout))
        except BaseException:
            self._fail()
            raise

    # -- closing --------------------------------------------------------------------------
    def close(self) -> None:
        """Flush every stream and complete the output; a second call does nothing."""
        if self._state != "open":
            self._state = "closed"
            return
        self._state = "closed"
        from nvenc_cli.api.video import _api_errors
        from nvenc_cli.audio.inputs import samples_frame

        try:
            with _api_errors():
                muxer = self._muxer
                assert muxer is not None
                if not muxer.started:
                    muxer.start()
                for stream in self._audio:
                    track = stream._track
                    assert track is not None
                    for waiting in stream.__dict__.pop("_waiting", []):
                        track.write(samples_frame(waiting, stream.settings.sample_rate, track.source.layout))
                    track.finish_pushed()
                for video in self._videos[1:]:
                    assert video._job is not None
                    video._job.finish()  # flushes its encoder and ends its stream
                if self._job is not None:
                    self._job.finish()  # no frames at all gives a valid, empty video stream
                else:
                    muxer.finish()
        except BaseException:
            self._abort()
            raise

    def _fail(self) -> None:
        self._state = "closed"
        self._abort()

    def _abort(self) -> None:
        job, muxer = self._job, self._muxer
        self._job = self._muxer = None
        for video in self._videos[1:]:
            if video._job is not None:
                with contextlib.suppress(Exception):  # the file is going anyway
                    video._job.session.close()
                video._job = None
        if job is not None:
            job.abort()
        elif muxer is not None:
            muxer.abort()
        for stream in self._audio:
            if stream._track is not None:
                stream._track.close()

    def _check_new(self, what: str) -> None:
        if self._state != "new":
            raise _Misuse(f"Call {what}() before open()")

    def _check_open(self, what: str, name: str) -> None:
        if self._state == "new":
            raise _Misuse(f"Call open() before {name}()")
        if self._state == "closed":
            raise _Misuse(f"Cannot {what} after close()")

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._fail()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "open":
            self._abort()


def _default_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    return str(torch.get_default_device())


def _is_tensor_or_array(value: Any) -> bool:
    import numpy as np

    from nvenc_cli.sources.memory import is_torch

    return is_torch(value) or isinstance(value, np.ndarray)


def _samples_array(samples: Any) -> Any:
    """(C, S) float32 (or int16) CPU samples as numpy, with torchcodec's checks."""
    import numpy as np

    from nvenc_cli.sources.memory import is_torch

    if is_torch(samples):
        if samples.device.type != "cpu":
            raise _Misuse(f"samples must be on CPU, got {samples.device.type}")
        dtype = str(samples.dtype).removeprefix("torch.")
    elif isinstance(samples, np.ndarray):
        dtype = str(samples.dtype)
    else:
        raise _Misuse(f"samples must be a torch.Tensor, got {type(samples).__name__}")
    if dtype not in ("float32", "int16"):
        raise _Misuse(f"samples must have float32 dtype, got {dtype}")
    if samples.ndim != 2:
        raise _Misuse(f"samples must have 2 dimensions (num_channels, num_samples), got {samples.ndim}")
    data = samples.detach().numpy() if is_torch(samples) else samples
    return data
