"""Wire source → backend → mux, overlapping the stages with threads and bounded queues.

Reading (file I/O, image decode), colour conversion (swscale or CUDA) and encoding
(libx264/NVENC) all release the GIL, so running them on three threads keeps both cores
busy; queues of two windows keep memory to a handful of batches whatever the input size.
A clip known to be small (``INLINE_PIXELS``) runs the same steps on the calling thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from nvenc_cli.backends import get_backend
from nvenc_cli.errors import EncoderError, UnavailableError, brief
from nvenc_cli.frames import FrameBatch, PlaneWindow, is_torch
from nvenc_cli.mux import Destination, Muxer, VideoPort
from nvenc_cli.plan import EncodePlan

if TYPE_CHECKING:
    from nvenc_cli.audio import AudioPlan, AudioTrack

Progress = Callable[[int, int | None], None]
_QUEUE_DEPTH = 2
_DONE = object()
# Clips of at most this many pixels in all (e.g. 64 frames of 256x256) are read,
# converted and encoded on the calling thread; see ``_inline``.
INLINE_PIXELS = 1 << 22


@dataclass(frozen=True)
class Result:
    """What one encode produced, for the summary line and the JSON report."""

    plan: EncodePlan
    frames: int
    bytes: int
    seconds: float
    backend_description: str
    audio: AudioPlan | None = None
    audio_duration: float | None = None
    fell_back: bool = False  # NVENC failed at its start and the CPU encoded (plan says why)
    #: where frames were converted and which encoder took them (``route_of``)
    route: str = ""
    #: bytes of finished planes copied device→host (the device-convert routes only)
    bytes_to_host: int = 0


def fit_geometry(data: Any, plan: EncodePlan) -> Any:
    """Apply --pad (edge replication) or --crop (right/bottom) to an NHWC window."""
    if plan.geometry is None:
        return data
    import numpy as np  # here, not at the top: decoded planes passing through never need it

    extra_h, extra_w = plan.height - data.shape[1], plan.width - data.shape[2]
    if plan.geometry == "crop":
        cropped = data[:, : plan.height, : plan.width]
        return cropped.contiguous() if is_torch(data) else np.ascontiguousarray(cropped)
    if is_torch(data):
        import torch

        last_row = data[:, -1:].expand(-1, extra_h, -1, -1)
        data = torch.cat([data, last_row], dim=1)
        last_col = data[:, :, -1:].expand(-1, -1, extra_w, -1)
        return torch.cat([data, last_col], dim=2).contiguous()
    return np.pad(data, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)), mode="edge")


class Job:
    """An open encoder + output; feed it windows in order, then finish or abort.

    Used directly by the streaming writer (synchronous) and by ``run`` (threaded).

    When the plan carries a CPU ``fallback`` (``--device auto`` chose NVENC), the job keeps
    a copy of every window until the first packet reaches the muxer. If NVENC fails before
    that — opening, or on its first frames, where a missing engine, a session cap or a
    wrong calling convention shows — the output is discarded and the whole encode runs
    again on the CPU from those copies, so ``auto`` is never worse than the CPU. After the
    first packet a failure is final (74), as it always is for ``--device cuda``. Audio is
    held back until then, so a restart finds it untouched.
    """

    def __init__(
        self,
        plan: EncodePlan,
        dest: Destination,
        overwrite: bool = False,
        audio: AudioTrack | None = None,
        port: VideoPort | None = None,
    ) -> None:
        assert port is None or plan.fallback is None, "a shared file cannot be restarted on the CPU"
        self.plan = plan
        self.audio = audio
        self._port = port
        self._dest, self._overwrite = dest, overwrite
        self._held: dict[int, Any] | None = {} if plan.fallback is not None else None
        self._written = False
        self._fell_back = False
        #: the device converter of the current plan, made at its first torch window
        self._device: tuple[EncodePlan, Any] | None = None
        self.route = route_of(plan.backend)
        # A session's converter is not thread-safe (one swscale context); after a fallback
        # the encode thread converts kept windows while the converter thread goes on.
        self._converting = threading.Lock()
        #: times given with the frames (``write(..., pts=)``), by window start, in ticks
        self._given_pts: dict[int, tuple[int, ...]] = {}
        self._last_given: int | None = None  # the latest of them
        self.frames = 0
        self.started = time.monotonic()
        try:
            try:
                self._open(plan)
            except (UnavailableError, EncoderError) as exc:
                if plan.fallback is None:
                    raise
                self._fall_back(exc, upto=-1)
        except BaseException:
            if audio is not None:
                audio.close()
            raise

    def _open(self, plan: EncodePlan) -> None:
        self._resizer = None
        if plan.resize is not None:
            from nvenc_cli.resize import Resizer

            self._resizer = Resizer(*plan.resize)
        # A further video stream of a file another job owns writes through its port.
        self.muxer: Muxer | VideoPort = self._port or Muxer(
            self._dest, plan.container, plan.format_options, self._overwrite
        )
        self.muxer.display(plan.rotation, plan.sample_aspect)
        try:
            self.session = get_backend(plan.backend).open(plan, self.muxer)
            if self.audio is not None:
                self.audio.attach(self.muxer)
        except BaseException:
            self.muxer.abort()
            raise
        # One attribute, so the converter thread never sees a new session with an old plan.
        self._current = (self.session, plan)

    @property
    def _may_fall_back(self) -> bool:
        return self.plan.fallback is not None and not self._written

    def convert(self, data: Any, start: int) -> Any:
        """Convert one window; returns it tagged with the session that converted it."""
        (session, plan), held = self._current, self._held
        if held is not None and plan.fallback is not None and not self._written:
            held[start] = _copy(data)
        with self._converting:
            return session, start, session.convert(self._batch(data, start, plan))

    def _batch(self, data: Any, start: int, plan: EncodePlan) -> FrameBatch:
        """A window as ``plan``'s session takes it: resized, padded or cropped, on its side,
        with its frames' times where they are not the constant rate's."""
        if self._resizer is not None:
            data = self._resizer(data)
        pts, after = self._given_pts.get(start), None
        if pts is None and plan.ticks is not None:
            end = start + int(data.shape[0])
            pts, after = plan.ticks[start:end], (plan.ticks[end] if end < len(plan.ticks) else None)
        return FrameBatch(self._for(plan, fit_geometry(data, plan)), start, pts, after)

    def _for(self, plan: EncodePlan, data: Any) -> Any:
        """The window in the form ``plan``'s backend converts: a torch window bound for an
        FFmpeg encoder is converted on its device when ``devconvert`` makes that
        encoder's planes (only they cross to the host), else it comes to the host as RGB."""
        if isinstance(data, PlaneWindow):
            self.route = "planes-passthrough"
            return data
        if plan.backend == "nvenc" or not is_torch(data):
            return data
        from nvenc_cli import devconvert

        if not (devconvert.keeps_tensor(data, plan.backend) and devconvert.supports(plan)):
            return data.detach().cpu().numpy()
        if self._device is None or self._device[0] is not plan:
            self._device = (plan, devconvert.DeviceConverter(plan, data.device))
            self.route = devconvert.route_name(str(data.device), plan)
        return self._device[1](data)

    def encode(self, converted: Any, count: int) -> None:
        session, start, item = converted
        if session is not self._current[0]:  # converted by the encoder that failed: again
            item = self._reconvert(start)
        try:
            self._write(self.session.encode(item))
        except (UnavailableError, EncoderError) as exc:
            if not self._may_fall_back:
                raise
            self._fall_back(exc, upto=start)
        else:
            self.frames += count
        if self.audio is not None and not self._may_fall_back:
            # Sound follows the video: read and written only as far as the frames have got.
            self.audio.pump(self._clock_at(self.frames))

    def write(self, data: Any, pts: tuple[int, ...] | None = None) -> None:
        """Convert and encode one NHWC window on the calling thread; ``pts`` are its
        frames' times in the plan's time base (per-frame timestamps)."""
        if pts is not None:
            self._given_pts[self.frames] = pts
            self._last_given = pts[-1]
        self.encode(self.convert(data, self.frames), int(data.shape[0]))

    def _clock_at(self, frames: int) -> Fraction:
        """The video's real time after ``frames`` frames, which the sound follows."""
        if self._last_given is not None:
            return (self._last_given * self.plan.time_base) + 1 / self.plan.fps
        return self.plan.seconds_at(frames)

    def finish(self) -> Result:
        try:
            try:
                self._write(self.session.flush())
            except (UnavailableError, EncoderError) as exc:
                if not self._may_fall_back:
                    raise
                self._fall_back(exc, upto=None)
                self._write(self.session.flush())
            if self.audio is not None:
                self.audio.finish(self._clock_at(self.frames))
            size = self.muxer.finish()
        except BaseException:
            self.abort()
            raise
        self.session.close()
        audio = self.audio
        if audio is not None:
            audio.close()
        return Result(
            self.plan,
            self.frames,
            size,
            time.monotonic() - self.started,
            self.session.description,
            audio.plan if audio is not None else None,
            audio.duration() if audio is not None else None,
            self._fell_back,
            self.route,
            self._device[1].bytes_to_host if self._device is not None else 0,
        )

    def abort(self) -> None:
        try:
            self.session.close()
        finally:
            self.muxer.abort()
            if self.audio is not None:
                self.audio.close()

    def _write(self, packets: list[Any]) -> None:
        if packets and not self._written:
            self._written = True
            if self.plan.fallback is not None:  # NVENC delivered: no copy will be needed
                self._held = None
        self.muxer.write(packets)

    def _reconvert(self, start: int) -> Any:
        """Convert a kept window with the current session (each is used once, then freed)."""
        assert self._held is not None and start in self._held, (
            "a window converted before a fallback was not kept"
        )
        data = self._held.pop(start)
        with self._converting:
            return self.session.convert(self._batch(data, start, self.plan))

    def _fall_back(self, exc: BaseException, upto: int | None) -> None:
        """Discard the NVENC output and encode every kept window up to ``upto`` on the CPU."""
        fallback = self.plan.fallback
        assert fallback is not None and self._held is not None
        reason = f"NVENC failed before its first packet ({brief(exc, 300)}); encoded on the CPU instead"
        with contextlib.suppress(Exception):  # already failing: just free the session
            self.session.close()
        with contextlib.suppress(AttributeError):  # the muxer was never opened
            self.muxer.abort()
        self.plan = replace(fallback, fallback_reason=reason)
        self._fell_back = True
        self.route = route_of(self.plan.backend)
        self._open(self.plan)
        self.frames = 0
        for start in sorted(self._held):
            if upto is not None and start > upto:
                break
            count = int(self._held[start].shape[0])
            self._write(self.session.encode(self._reconvert(start)))
            self.frames += count


def _copy(data: Any) -> Any:
    """A private copy of a window: readers reuse window memory once it is handed back."""
    if is_torch(data):
        return data.clone()
    import numpy as np

    return np.array(data, copy=True)


def route_of(backend: str) -> str:
    """A route's report name before any window says more (``Job._for`` refines it: planes
    passed through, or converted on the frames' device)."""
    return backend.replace("_", "-")


def run(
    batches: Iterable[Any],
    plan: EncodePlan,
    dest: Destination,
    *,
    overwrite: bool = False,
    total: int | None = None,
    progress: Progress | None = None,
    audio: AudioTrack | None = None,
) -> Result:
    """Encode every window of ``batches`` (NHWC arrays/tensors) into ``dest``, with the
    ``audio`` track (if any) muxed beside it."""
    job = Job(plan, dest, overwrite, audio)
    if _inline(plan, total):
        return _run_inline(job, batches, total, progress)
    stop = threading.Event()
    read_q: queue.Queue[Any] = queue.Queue(_QUEUE_DEPTH)
    conv_q: queue.Queue[Any] = queue.Queue(_QUEUE_DEPTH)
    workers: list[threading.Thread] = []
    try:
        # Started inside the try: a signal (Ctrl-C) landing here must still abort the
        # job, which already holds a temporary file.
        workers += [
            threading.Thread(target=_reader, args=(iter(batches), read_q, stop), daemon=True),
            threading.Thread(target=_converter, args=(job, read_q, conv_q, stop), daemon=True),
        ]
        for worker in workers:
            worker.start()
        for converted, count in _drain(conv_q):
            job.encode(converted, count)
            if progress is not None:
                progress(job.frames, total)
        result = job.finish()
    except BaseException:
        stop.set()
        job.abort()
        raise
    finally:
        stop.set()
        for q in (read_q, conv_q):
            _empty(q)
        for worker in workers:
            if worker.ident is not None:  # a signal may land before the second one started
                worker.join(timeout=5)
    return result


def _inline(plan: EncodePlan, total: int | None) -> bool:
    """Whether a clip is small enough to gain nothing from the reader/converter threads.

    For a short, small clip (a training sample: 16 frames of 256x256) reading and
    converting take a few milliseconds, so there is little to overlap, while the two
    threads' start and the hand-offs between three threads cost each clip time: on a
    machine whose cores are busy every hand-off waits for the next thread to be
    scheduled. The same windows reach the same session in the same order either way, so
    the output is the same bytes.
    """
    return total is not None and total * plan.width * plan.height <= INLINE_PIXELS


def _run_inline(job: Job, batches: Iterable[Any], total: int | None, progress: Progress | None) -> Result:
    """``run`` without threads: each window is converted and encoded as it is read."""
    try:
        start = 0
        for data in batches:
            count = int(data.shape[0])
            job.encode(job.convert(data, start), count)
            start += count
            if progress is not None:
                progress(job.frames, total)
        return job.finish()
    except BaseException:
        job.abort()
        raise


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _reader(batches: Iterator[Any], out: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for data in batches:
            if stop.is_set() or not _put(out, data, stop):
                return
        _put(out, _DONE, stop)
    except BaseException as exc:
        _put(out, _Failure(exc), stop)


def _converter(job: Job, src: queue.Queue[Any], out: queue.Queue[Any], stop: threading.Event) -> None:
    start = 0
    try:
        for data in _drain(src, stop):
            count = int(data.shape[0])
            converted = job.convert(data, start)
            start += count
            if not _put(out, (converted, count), stop):
                return
        _put(out, _DONE, stop)
    except BaseException as exc:
        _put(out, _Failure(exc), stop)


def _drain(q: queue.Queue[Any], stop: threading.Event | None = None) -> Iterator[Any]:
    while True:
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            if stop is not None and stop.is_set():
                return
            continue
        if item is _DONE:
            return
        if isinstance(item, _Failure):
            raise item.exc
        yield item


def _empty(q: queue.Queue[Any]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
