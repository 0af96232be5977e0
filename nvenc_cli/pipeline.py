"""Wire source → backend → mux, overlapping the stages with threads and bounded queues.

Reading (file I/O, image decode), colour conversion (swscale or CUDA) and encoding
(libx264/NVENC) all release the GIL, so running them on three threads keeps both cores
busy; queues of two windows keep memory to a handful of batches whatever the input size.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from nvenc_cli.backends import get_backend
from nvenc_cli.frames import FrameBatch
from nvenc_cli.mux import Destination, Muxer
from nvenc_cli.plan import EncodePlan
from nvenc_cli.sources.memory import is_torch

if TYPE_CHECKING:
    from nvenc_cli.audio import AudioPlan, AudioTrack

Progress = Callable[[int, int | None], None]
_QUEUE_DEPTH = 2
_DONE = object()


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


def fit_geometry(data: Any, plan: EncodePlan) -> Any:
    """Apply --pad (edge replication) or --crop (right/bottom) to an NHWC window."""
    if plan.geometry is None:
        return data
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
    """

    def __init__(
        self,
        plan: EncodePlan,
        dest: Destination,
        overwrite: bool = False,
        audio: AudioTrack | None = None,
    ) -> None:
        self.plan = plan
        self.audio = audio
        try:
            self.muxer = Muxer(dest, plan.container, plan.format_options, overwrite)
        except BaseException:
            if audio is not None:
                audio.close()
            raise
        try:
            self.session = get_backend(plan.backend).open(plan, self.muxer)
            if audio is not None:
                audio.attach(self.muxer)
        except BaseException:
            self.muxer.abort()
            if audio is not None:
                audio.close()
            raise
        self.frames = 0
        self.started = time.monotonic()
        self._resizer = None
        if plan.resize is not None:
            from nvenc_cli.resize import Resizer

            self._resizer = Resizer(*plan.resize)

    def convert(self, data: Any, start: int) -> Any:
        if self._resizer is not None:
            data = self._resizer(data)
        return self.session.convert(FrameBatch(fit_geometry(data, self.plan), start))

    def encode(self, converted: Any, count: int) -> None:
        self.muxer.write(self.session.encode(converted))
        self.frames += count
        if self.audio is not None:
            # Sound follows the video: read and written only as far as the frames have got.
            self.audio.pump(Fraction(self.frames) / self.plan.fps)

    def write(self, data: Any) -> None:
        """Convert and encode one NHWC window on the calling thread."""
        self.encode(self.convert(data, self.frames), int(data.shape[0]))

    def finish(self) -> Result:
        try:
            self.muxer.write(self.session.flush())
            if self.audio is not None:
                self.audio.finish(Fraction(self.frames) / self.plan.fps)
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
        )

    def abort(self) -> None:
        try:
            self.session.close()
        finally:
            self.muxer.abort()
            if self.audio is not None:
                self.audio.close()


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
            worker.join(timeout=5)
    return result


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
