"""The Python API: a torchcodec-compatible ``VideoEncoder`` and a streaming ``VideoWriter``.

Both are thin: they describe the frames (``sources.memory``), build the same
``EncodeOptions`` the CLI builds, resolve them with ``plan.make_plan`` and encode through
``pipeline`` — so a tensor encoded here and the same frames encoded by ``nvenc encode``
with the same settings give the same bytes.

Errors follow torchcodec: each is an instance of the built-in exception torchcodec raises
for the same failure (``RuntimeError`` for whatever FFmpeg refuses: pixel format, crf,
preset, extra option values, container, codec, destination), carries its wording in the
message, and is an ``NvencError`` with the CLI's exit code (see ``errors``). A crf or
preset that means nothing to the codec is dropped with a ``UserWarning``, where torchcodec
hands it to FFmpeg, which ignores it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeVar

from nvenc_cli.encoding import check_output
from nvenc_cli.errors import (
    NvencError,
    SettingError,
    UnavailableError,
    UsageError,
    tc_file_like_lacks,
    tc_frame_rate,
    with_torchcodec,
)
from nvenc_cli.liblog import api_logging, warn_caller
from nvenc_cli.mux import Destination, is_stdout
from nvenc_cli.options import EncodeOptions, parse_extra, parse_fps
from nvenc_cli.resize import parse_resize
from nvenc_cli.sources.layout import ValueMap, check_code_range, parse_value_range
from nvenc_cli.sources.memory import (
    MemoryFrames,
    MemorySource,
    check_readable,
    describe,
    same_family,
    to_backend,
)
from nvenc_cli.sources.sequence import as_frames
from nvenc_cli.timestamps import StreamTicks

if TYPE_CHECKING:
    import torch

    from nvenc_cli.audio import AudioTrack
    from nvenc_cli.pipeline import Job, Result
    from nvenc_cli.plan import EncodePlan

__all__ = ["VideoEncoder", "VideoWriter", "api_errors", "open_writer", "python_spelling", "warn_ignored"]

_T = TypeVar("_T")
Frames = Any  # torch.Tensor or numpy.ndarray; kept loose so numpy users need no torch


@dataclass(frozen=True)
class _Settings:
    """The per-call encoding arguments shared by every output method and the writer."""

    codec: str | None = None
    pixel_format: str | None = None
    crf: int | float | None = None
    preset: str | int | None = None
    extra_options: dict[str, Any] | None = None
    color_matrix: str | None = None
    color_range: str | None = None
    pad: bool = False
    crop: bool = False
    resize: tuple[int, int] | str | None = None

    def options(self, fps: Fraction, device: str, fmt: str | None, overwrite: bool) -> EncodeOptions:
        """The ``EncodeOptions`` the CLI would build from the same values."""
        return EncodeOptions(
            fps=fps,
            codec=self.codec,
            pixel_format=self.pixel_format,
            crf=_crf(self.crf),
            preset=None if self.preset is None else str(self.preset),
            extra=parse_extra(self.extra_options),
            device=device,
            color_matrix=self.color_matrix,
            color_range=self.color_range,
            pad=self.pad,
            crop=self.crop,
            format=fmt,
            overwrite=overwrite,
            lenient=True,
            resize=parse_resize(self.resize),
        )


# The shared option checks speak the CLI's language (--crf, -x KEY, --pad); Python callers
# get the same messages with the argument names they actually typed.
_NOT_IN_WORD = r"(?<![\w/.-])"
_SPELLING: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(_NOT_IN_WORD + r"--pad\b"), "pad=True"),
    (re.compile(_NOT_IN_WORD + r"--crop\b"), "crop=True"),
    (re.compile(r"use -y to overwrite"), "pass overwrite=True"),
    (re.compile(_NOT_IN_WORD + r"-x ([\w.-]+)=([^\s),]+)"), r"extra_options={'\1': '\2'}"),
    (re.compile(r"\boption -x ([\w.-]+)"), r"extra_options key '\1'"),
    (re.compile(_NOT_IN_WORD + r"-x\b"), "extra_options"),
    (re.compile(_NOT_IN_WORD + r"--value-range (-?[\d.]+),(-?[\d.]+)"), r"value_range=(\1, \2)"),
    (re.compile(_NOT_IN_WORD + r"--([a-z]+)-([a-z]+)\b"), r"\1_\2"),
    (re.compile(_NOT_IN_WORD + r"--([a-z]+)\b"), r"\1"),
)


def python_spelling(message: str) -> str:
    """Rewrite CLI option names in ``message`` as this API's argument names."""
    for pattern, replacement in _SPELLING:
        message = pattern.sub(replacement, message)
    return message


@contextmanager
def api_errors() -> Iterator[None]:
    """Let nvenc's errors through as the API states them: the Python argument names in
    the message, then torchcodec's wording for the same failure (``errors``).

    The exception object itself is re-raised (its class and traceback intact); only its
    message is rewritten, once (the CLI's text stays free of torchcodec's words).
    """
    try:
        yield
    except NvencError as exc:
        if len(exc.args) == 1 and isinstance(exc.args[0], str) and not getattr(exc, "_api_worded", False):
            exc.args = (with_torchcodec(python_spelling(exc.args[0]), exc),)
            exc._api_worded = True  # type: ignore[attr-defined]
        raise


_api_errors = api_errors


def warn_ignored(plan: EncodePlan) -> None:
    """One ``UserWarning`` per setting the plan dropped as meaningless for the codec."""
    for message in plan.ignored:
        warn_caller(python_spelling(message))


def _crf(value: int | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise UsageError(f"invalid crf {value!r}: it must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"invalid crf {value!r}: it must be a number") from None


def _frame_rate(value: float | int | Fraction | str) -> Fraction:
    """torchcodec takes a float; an exact ``Fraction`` or ``"30000/1001"`` works too."""
    if isinstance(value, bool) or value is None:
        raise UsageError(
            f"invalid frame_rate {value!r}: it must be a number greater than 0",
            torchcodec=tc_frame_rate(value),
        )
    try:
        return parse_fps(value)
    except UsageError as exc:
        exc.torchcodec = tc_frame_rate(value)
        raise


def _value_range(value: Any, described: MemoryFrames | None) -> tuple[float, float] | None:
    """``value_range=(lo, hi)`` checked now; only float frames have a range to map."""
    pair = parse_value_range(value)
    if pair is not None and described is not None and described.depth != 0:
        check_code_range(pair, (1 << described.depth) - 1, f"{described.dtype} frames")
    return pair


def _timeline(timestamps: Any, frames: int) -> Any:
    """``timestamps=`` (seconds, one per frame) checked now: count, order, finiteness."""
    if timestamps is None:
        return None
    from nvenc_cli.timestamps import Timeline

    timeline = Timeline.of(timestamps)
    timeline.check_count(frames, "frames")
    return timeline


def _run(job: Callable[[], _T], wait: bool) -> _T | Future[_T]:
    """``job()`` now (``wait=True``), or on the background pool, returning its future."""
    if _flag("wait", wait):
        return job()
    from nvenc_cli.api.background import background

    return background().submit(job)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"invalid {name}={value!r}: True or False")
    return value


def _warn_clamped(values: ValueMap) -> None:
    """``clamp=True`` changed samples: say how many and by how much, as the CLI's notice."""
    notice = values.notice()
    if notice is not None:
        warn_caller(notice)


def _warn_if_fell_back(result: Result) -> None:
    """NVENC failed at its start and the CPU encoded instead: say why, as the CLI does."""
    if result.fell_back:
        warn_caller(result.plan.fallback_reason or "NVENC failed; encoded on the CPU", RuntimeWarning)


def _device(frames_device: str, override: str | None) -> str:
    """The tensor's device picks the backend (torchcodec's rule) unless ``device=`` says.

    ``"cuda:1"`` is accepted as ``"cuda"``; the window stays on the tensor's own GPU.
    """
    chosen = frames_device if override is None else str(override)
    kind = chosen.split(":", 1)[0].lower()
    if kind not in ("cpu", "cuda", "auto"):
        raise UsageError(f"invalid device {override!r}: choose 'cpu', 'cuda' or 'auto'")
    return kind


def _check_file_like(file_like: Any) -> None:
    """Refuse, before encoding, objects the muxer could not write to (torchcodec's rule)."""
    missing = [m for m in ("write", "seek") if not callable(getattr(file_like, m, None))]
    if missing:
        raise SettingError(
            f"file_like must have write() and seek() methods; {type(file_like).__name__} "
            f"lacks {' and '.join(m + '()' for m in missing)}",
            torchcodec=tc_file_like_lacks(missing[0]),
        )


def _check_path(dest: Any) -> None:
    if not isinstance(dest, (str, os.PathLike)):
        raise UsageError(
            f"dest must be a path (str or pathlib.Path), got {type(dest).__name__}: "
            "use to_file_like for file objects"
        )


def _plan(
    options: EncodeOptions, source: MemorySource, container: str, cuda_frames: bool, timeline: Any = None
) -> EncodePlan:
    """``make_plan`` with a hint when CUDA frames meet a machine without NVENC."""
    from nvenc_cli.plan import make_plan

    try:
        return make_plan(options, source.info, container, None, timeline)
    except UnavailableError as exc:
        if cuda_frames and options.device == "cuda":
            raise UnavailableError(
                f"{exc}; pass device='cpu' to encode these CUDA frames on the CPU"
            ) from None
        raise


class VideoEncoder:
    """Encode a batch of frames to a file, a file-like object or bytes; a drop-in for
    ``torchcodec.encoders.VideoEncoder``.

    Args:
        frames: uint8 tensor of shape (N, C, H, W) with C = 3 (RGB), on CPU or CUDA, as in
            torchcodec. Also accepted: channels-last (N, H, W, C) tensors, numpy arrays,
            one frame as a 3-D array, 1 (gray) or 4 (RGBA) channels, uint16 samples and
            floats in [0, 1].
        frame_rate: frames per second of the input and the output; a float as in
            torchcodec, or exact: ``Fraction(30000, 1001)``, ``"30000/1001"`` (``29.97``
            also means 30000/1001).
        device: ``None`` (default) encodes on the frames' device: CPU tensors and numpy
            arrays with FFmpeg's CPU encoders, CUDA tensors with NVENC. ``"cpu"``,
            ``"cuda"`` or ``"auto"`` (NVENC when usable, else the CPU) override it.
        layout: ``"nchw"`` or ``"nhwc"`` when a shape could be read both ways; by default
            tensors are read channels first, numpy arrays channels last.
        value_range: ``(lo, hi)`` the samples are in, mapped linearly onto black to
            white: ``(-1, 1)`` for a diffusion model's output, ``(0, 255)``; for integer
            frames whole codes, ``(0, 4095)`` for 12-bit depth in uint16. Default ``(0, 1)``
            for floats, the dtype's range for integers; samples outside it (floats beyond
            rounding noise) raise ValueError.
        clamp: clamp samples outside ``value_range`` instead (a VAE's ±1.08); a
            ``UserWarning`` says how many were clamped and by how much. NaN still raises.
        verbose: let the encoder libraries print their banners and statistics (default:
            only when the ``nvenc_cli`` logger is at DEBUG).

    ``frames`` may also be a list or tuple of frames (arrays, tensors or PIL images, each
    one frame), read a window at a time without stacking the list.

    Raises:
        ValueError: frames of the wrong type, dimensions, channel count or dtype, no
            frames, or a frame rate that is not a number greater than 0.
    """

    def __init__(
        self,
        frames: Frames,
        *,
        frame_rate: float | Fraction | str | None = None,
        device: str | None = None,
        layout: str | None = None,
        value_range: tuple[float, float] | None = None,
        clamp: bool = False,
        verbose: bool | None = None,
        timestamps: Any = None,
    ) -> None:
        self._clamp = _flag("clamp", clamp)
        self._verbose = verbose
        with _api_errors():
            frames = as_frames(frames)
            self._described = describe(frames, layout)
            check_readable(frames)
            self._info = self._described.info  # refuses an empty batch now, not at encode time
            self._timeline = _timeline(timestamps, self._described.layout.frames)
            # frame_rate may be left out only when timestamps= give the frames' times.
            given = frame_rate is not None or self._timeline is None
            self._frame_rate = _frame_rate(frame_rate) if given else None
            self._device = _device(self._described.device, device)
            self._value_range = _value_range(value_range, self._described)
        self._frames = frames

    def to_file(
        self,
        dest: str | os.PathLike,
        *,
        codec: str | None = None,
        pixel_format: str | None = None,
        crf: int | float | None = None,
        preset: str | int | None = None,
        extra_options: dict[str, Any] | None = None,
        color_matrix: str | None = None,
        color_range: str | None = None,
        pad: bool = False,
        crop: bool = False,
        resize: tuple[int, int] | str | None = None,
        overwrite: bool = True,
        wait: bool = True,
    ) -> Future[None] | None:
        """Encode the frames into the file ``dest``; its extension picks the container.

        Args:
            dest: output path, e.g. ``video.mp4`` (.mp4 .mov .mkv .webm .avi .ts .nut .gif).
            codec: e.g. ``"libx264"``, ``"h264"``, ``"libx265"``, ``"libsvtav1"``,
                ``"h264_nvenc"``; default: H.264 (VP9 for .webm).
            pixel_format: e.g. ``"yuv420p"`` (default for H.264/HEVC/VP9/AV1), ``"yuv444p"``.
            crf: constant-quality level, lower is better (0–51 for libx264); default: the
                encoder's.
            preset: speed/size trade-off, e.g. ``"fast"``, ``"slow"`` (x264/x265), ``8``
                (SVT-AV1), ``"p4"`` (NVENC); default: the encoder's.
            extra_options: further codec or muxer options, e.g. ``{"qp": 5, "tune": "film"}``
                or ``{"movflags": "+faststart"}``; an option nobody knows is an error.
            color_matrix: ``"bt601"``, ``"bt709"`` or ``"bt2020"``; default: BT.709 from
                720 lines up, else BT.601. The file is tagged with what was applied.
            color_range: ``"tv"`` (limited, default) or ``"pc"`` (full).
            pad: grow a size the pixel format cannot hold (odd, for 4:2:0) by repeating
                the last row/column; without ``pad`` or ``crop`` such sizes raise.
            crop: shrink such a size by dropping the last row/column instead.
            resize: scale to ``(width, height)`` (or ``"640x360"``); a side of -1 keeps
                the aspect ratio, -2 keeps it rounded to even. Area filter when shrinking,
                Lanczos when growing; the colour rules follow the new size.
            overwrite: replace an existing ``dest`` (default, as torchcodec does); with
                ``False`` an existing file raises ``OSError``.
            wait: ``True`` (default, as torchcodec): return when the file is written.
                ``False``: return a ``concurrent.futures.Future`` at once and encode on a
                background thread (see :func:`nvenc_cli.api.set_background`); its
                ``result()`` is ``None`` or raises what this call would have raised. The
                frames are read while it runs: do not change them in place until it is
                done. When too many encodes are pending, the call waits for a slot.

        The file appears only once complete; on any error nothing is left behind.
        """

        def job() -> None:
            with _api_errors():
                _check_path(dest)
            settings = _Settings(
                codec, pixel_format, crf, preset, extra_options, color_matrix, color_range, pad, crop, resize
            )
            from nvenc_cli.storage import is_url, written_at

            if not is_url(os.fspath(dest)):
                self._encode(os.fspath(dest), None, settings, overwrite)
                return
            with _api_errors(), written_at(os.fspath(dest), overwrite) as local:  # uploaded once whole
                self._encode(local, None, settings, overwrite)

        return _run(job, wait)

    def to_file_like(
        self,
        file_like: Any,
        format: str,
        *,
        codec: str | None = None,
        pixel_format: str | None = None,
        crf: int | float | None = None,
        preset: str | int | None = None,
        extra_options: dict[str, Any] | None = None,
        color_matrix: str | None = None,
        color_range: str | None = None,
        pad: bool = False,
        crop: bool = False,
        resize: tuple[int, int] | str | None = None,
        wait: bool = True,
    ) -> Future[None] | None:
        """Encode the frames into a binary file-like object, e.g. ``io.BytesIO()``.

        ``file_like`` needs ``write(data: bytes) -> int`` and ``seek(offset, whence=0) ->
        int``; ``format`` names the container (``"mp4"``, ``"mkv"``, ``"webm"``…). MP4/MOV
        into an object that cannot really seek (``seekable()`` is False, e.g. a pipe) is
        written as fragmented MP4. The other arguments are those of :meth:`to_file`;
        with ``wait=False`` nothing else may write to ``file_like`` until the future is done.
        """

        def job() -> None:
            with _api_errors():
                _check_file_like(file_like)
            settings = _Settings(
                codec, pixel_format, crf, preset, extra_options, color_matrix, color_range, pad, crop, resize
            )
            self._encode(file_like, format, settings, overwrite=False)

        return _run(job, wait)

    def to_tensor(
        self,
        format: str,
        *,
        codec: str | None = None,
        pixel_format: str | None = None,
        crf: int | float | None = None,
        preset: str | int | None = None,
        extra_options: dict[str, Any] | None = None,
        color_matrix: str | None = None,
        color_range: str | None = None,
        pad: bool = False,
        crop: bool = False,
        resize: tuple[int, int] | str | None = None,
        wait: bool = True,
    ) -> torch.Tensor | Future[torch.Tensor]:
        """Encode the frames and return the container's bytes as a 1-D uint8 CPU tensor.

        ``format`` names the container (``"mp4"``, ``"mkv"``…); the other arguments are
        those of :meth:`to_file`, whose file would hold the same bytes. With
        ``wait=False`` the tensor comes from the returned future's ``result()``.
        """

        def job() -> torch.Tensor:
            from nvenc_cli.extras import require_torch

            torch = require_torch("to_tensor (it returns a torch.Tensor; to_file_like needs no torch)")
            buffer = io.BytesIO()
            settings = _Settings(
                codec, pixel_format, crf, preset, extra_options, color_matrix, color_range, pad, crop, resize
            )
            self._encode(buffer, format, settings, overwrite=False)
            return torch.frombuffer(bytearray(buffer.getbuffer()), dtype=torch.uint8)

        return _run(job, wait)

    def _encode(self, dest: Destination, fmt: str | None, settings: _Settings, overwrite: bool) -> None:
        """Plan and run exactly as ``encode.encode_path`` does for a file input."""
        from nvenc_cli.encoding import adopt_plan, check_output, run_source

        with _api_errors():
            options = settings.options(self._frame_rate, self._device, fmt, overwrite)
            container = check_output(dest, options)
            source = MemorySource(self._frames, self._described)
            source.set_value_range(self._value_range, self._clamp)
            cuda = self._described.device.startswith("cuda")
            plan = _plan(options, source, container, cuda, self._timeline)
            warn_ignored(plan)
            adopt_plan(source, plan)
            plan = source.adopt(plan)
            with api_logging(self._verbose):
                result = run_source(source, plan, dest, options)
            _warn_if_fell_back(result)
        _warn_clamped(source.value_range)


class VideoWriter:
    """Encode frames that arrive over time (model sampling, simulation, rendering).

    Made by :func:`open_writer`; use it as a context manager. The first frame written
    fixes the frame size, channel count, dtype and device; later frames must match (a
    shape that could be read channels first or last is read as the first frame was).
    Each :meth:`write` converts and encodes before it returns, so the caller may reuse
    its buffer. Leaving the ``with`` block through an exception discards the output.
    """

    def __init__(
        self,
        dest: Destination,
        options: EncodeOptions,
        container: str,
        device: str | None,
        layout: str | None,
        value_range: tuple[float, float] | None = None,
        audio: AudioTrack | None = None,
        clamp: bool = False,
        verbose: bool | None = None,
    ) -> None:
        self._dest = dest
        self._audio = audio
        self._value_range = value_range
        self._values = ValueMap(value_range, clamp)
        self._verbose = verbose
        self._options = options
        self._container = container
        self._device = device
        self._layout = layout
        self._prefer: str | None = None
        self._first: MemoryFrames | None = None
        self._job: Job | None = None
        self._closed = False
        self._failed = False
        #: one call at a time: the encoder and the muxer are not thread-safe, and two
        #: threads in them at once crashed the process; calls from threads queue here.
        self._lock = threading.RLock()
        self.frames_written = 0
        """Frames encoded so far."""
        #: per-frame timestamps: None until the first write says (then every write must)
        self._timed: bool | None = None
        self._ticks: StreamTicks | None = None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`abort` ran (or a write failed)."""
        return self._closed

    def write(self, frames: Frames, pts: Any = None) -> None:
        """Encode one frame (3-D) or a batch (4-D), tensor or numpy array.

        ``pts`` gives the frames' times in seconds (a number for one frame, a sequence for
        a batch): they are kept in the file, exactly where the container's clock allows
        (1 µs for MP4/MOV, 1 ms for Matroska). Give it with every write or with none.

        Raises:
            ValueError: the writer is closed; the frames are malformed; or their size,
                channel count, dtype or device differ from the first frame's. These are
                checked before anything is encoded and leave the writer open.
            RuntimeError: the encoder failed. Any failure once encoding has begun (this
                one, NaN in float frames, an ``OSError`` while writing) closes the writer
                and removes the partial output.
        """
        with self._lock:
            self._write(frames, pts)

    def _write(self, frames: Frames, pts: Any) -> None:
        if self._closed:
            why = " after an earlier error" if self._failed else ""
            raise ValueError(f"write to a closed VideoWriter{why}")
        with _api_errors():
            frames = as_frames(frames)
            described = describe(frames, self._layout, self._prefer)
            if self._first is not None:
                self._check_same(described)
            check_readable(frames)
            if described.layout.frames == 0:
                return
            if self._first is None:
                _value_range(self._value_range, described)
                self._start(described, pts is not None)
            ticks = self._times(pts, described.layout.frames)
        try:
            with _api_errors():
                self._encode(frames, described, ticks)
        except BaseException:
            self._failed = True
            self.abort()
            raise

    def _times(self, pts: Any, count: int) -> tuple[int, ...] | None:
        """The frames' times in the plan's ticks, checked before anything is encoded."""
        if (pts is not None) != self._timed:
            raise UsageError(
                "pts was given with the first write, so every write needs it"
                if self._timed
                else "pts was not given with the first write: give it with every write or none"
            )
        if pts is None:
            return None
        if self._ticks is None:
            assert self._job is not None
            self._ticks = StreamTicks(self._job.plan.time_base)
        return self._ticks.ticks(pts, count)

    def _start(self, described: MemoryFrames, timed: bool = False) -> None:
        """Plan from the first frame: its size is checked against the pixel format here."""
        from nvenc_cli.pipeline import Job

        source = MemorySource(None, described)
        options = replace(self._options, device=_device(described.device, self._device))
        tick = None
        if timed:
            from nvenc_cli.timestamps import writer_clock

            tick = writer_clock(self._container)
        plan = _plan(options, source, self._container, described.device.startswith("cuda"), tick)
        self._timed = timed
        warn_ignored(plan)
        with api_logging(self._verbose):
            self._job = Job(plan, self._dest, options.overwrite, self._audio)
        self._first = described
        self._prefer = same_family(described.layout.kind)

    def _check_same(self, described: MemoryFrames) -> None:
        first = self._first
        assert first is not None
        for what, want, got in (
            ("size (height, width, channels)", first.size, described.size),
            ("dtype", first.dtype, described.dtype),
            ("device", first.device, described.device),
        ):
            if want != got:
                raise UsageError(f"frame {what} {got} differs from the first frame's {want}")

    def _encode(self, frames: Frames, described: MemoryFrames, ticks: tuple[int, ...] | None = None) -> None:
        job = self._job
        assert job is not None
        layout = described.layout
        depth = 16 if job.plan.out_depth > 8 else 8
        step = self._options.batch_size
        for index in range(0, layout.frames, step):
            raw = frames if layout.single else frames[index : index + step]
            job.write(
                to_backend(raw, layout, depth, self.frames_written, job.plan.backend, self._values),
                None if ticks is None else ticks[index : index + step],
            )
            self.frames_written = job.frames

    def close(self) -> None:
        """Flush the encoder and complete the output; closing again does nothing.

        Raises:
            ValueError: no frame was written (there is nothing to make a video of).
            OSError: the output could not be completed (it is removed).
        """
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._job is None:
            if self._audio is not None:
                self._audio.close()
            raise UsageError("no frames were written: nothing to encode")
        job, self._job = self._job, None
        with _api_errors():
            _warn_if_fell_back(job.finish())
        _warn_clamped(self._values)
        rounded = None if self._ticks is None else self._ticks.warning()
        if rounded is not None:
            warnings.warn(rounded, UserWarning, stacklevel=2)

    def abort(self) -> None:
        """Stop without completing: a path output is removed; safe to call any time."""
        with getattr(self, "_lock", contextlib.nullcontext()):
            self._abort()

    def _abort(self) -> None:
        self._closed = True
        job, self._job = self._job, None
        if job is not None:
            job.abort()
        elif self._audio is not None:
            self._audio.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if getattr(self, "_job", None) is not None:
            warnings.warn(
                "VideoWriter was never closed: its output was discarded",
                ResourceWarning,
                stacklevel=2,
            )
            self.abort()


def open_writer(
    dest: Destination,
    *,
    frame_rate: float | Fraction | str,
    codec: str | None = None,
    pixel_format: str | None = None,
    crf: int | float | None = None,
    preset: str | int | None = None,
    extra_options: dict[str, Any] | None = None,
    format: str | None = None,
    device: str | None = None,
    color_matrix: str | None = None,
    color_range: str | None = None,
    pad: bool = False,
    crop: bool = False,
    resize: tuple[int, int] | str | None = None,
    layout: str | None = None,
    overwrite: bool = True,
    batch_size: int = 8,
    value_range: tuple[float, float] | None = None,
    audio: Any = None,
    audio_sample_rate: int | None = None,
    audio_codec: str | None = None,
    audio_bit_rate: int | None = None,
    clamp: bool = False,
    verbose: bool | None = None,
) -> VideoWriter:
    """Open a :class:`VideoWriter` on ``dest``: a path, ``"-"`` (stdout) or a file object.

    The arguments are those of :class:`VideoEncoder` and :meth:`VideoEncoder.to_file`;
    ``format`` names the container when ``dest`` has no extension (required for ``"-"``
    and file objects); ``batch_size`` caps how many frames of one ``write`` are
    converted at once; ``value_range`` is the ``(lo, hi)`` float frames are in.

    ``audio`` adds a sound track cut at the video's end: a file (wav, flac, mp3, m4a, a
    video's sound, or an .npz/.pt holding samples) or samples in memory, (C, S) or (S,),
    float in [-1, 1] or int16, at ``audio_sample_rate``. ``audio_codec`` (default: copy a
    file's codec when the container takes it, else the container's usual one) and
    ``audio_bit_rate`` (bits per second) shape it. ``clamp`` and ``verbose`` are
    :class:`VideoEncoder`'s; ``write`` also takes a list of frames or a PIL image.

    The container, destination and frame rate are checked now. When ``device`` is
    given, codec, pixel format, crf, preset and extra options are checked now too;
    otherwise they are checked at the first write, once the frames' device is known.
    Nothing is created on disk before the first write.

    Example::

        with nvenc_cli.open_writer("run.mp4", frame_rate=24, crf=20) as w:
            for step in range(100):
                w.write(render(step))  # (3, H, W) or (H, W, 3), uint8
    """
    with _api_errors():
        path = os.fspath(dest) if isinstance(dest, (str, os.PathLike)) else None
        if path is None:
            _check_file_like(dest)
        if format is None and (path is None or is_stdout(path)):
            raise UsageError("format is required when dest is a file object or '-' (e.g. format='mp4')")
        settings = _Settings(
            codec, pixel_format, crf, preset, extra_options, color_matrix, color_range, pad, crop, resize
        )
        options = replace(
            settings.options(_frame_rate(frame_rate), "auto", format, overwrite), batch_size=batch_size
        )
        container = check_output(dest if path is None else path, options)
        if device is not None:
            _precheck(options, container, _device("cpu", device))
        pair = _value_range(value_range, None)
        from nvenc_cli.audio import writer_track

        track = writer_track(audio, audio_sample_rate, audio_codec, audio_bit_rate, container)
        clamped = _flag("clamp", clamp)
    return VideoWriter(
        dest if path is None else path, options, container, device, layout, pair, track, clamped, verbose
    )


def _precheck(options: EncodeOptions, container: str, device: str) -> None:
    """Resolve the options against a nominal frame so typos fail before any frame."""
    from nvenc_cli.frames import FrameInfo
    from nvenc_cli.plan import make_plan

    make_plan(replace(options, device=device), FrameInfo(64, 64), container)
