"""Encodes that run behind the caller's loop: ``VideoEncoder.to_*(..., wait=False)``.

A training loop that saves hundreds of short clips spends most of each clip waiting for
the encoder to open, code a few frames and close the container. Handing each clip to a
small pool of threads lets the loop go on while earlier clips encode, and lets two clips'
serial parts (open, mux, close) overlap on a multi-core machine: the encoders release the
GIL, so the threads really run side by side.

Two limits keep it safe to call in a loop: a fixed number of worker threads, and a cap
on the encodes handed over but not finished (``pending``). When the cap is reached the
next ``submit`` waits for a slot, so a loop that produces clips faster than they encode
is slowed to the encoders' pace instead of holding every clip's frames in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["Background", "background", "set_background"]


def _default_workers() -> int:
    """One worker per core the encodes size themselves for (``NVENC_CORES`` or all)."""
    from nvenc_cli.backends.cpu import cores

    return cores()


class Background:
    """A thread pool whose ``submit`` blocks while ``pending`` encodes are unfinished."""

    def __init__(self, workers: int | None = None, pending: int | None = None) -> None:
        self.workers = int(workers) if workers is not None else _default_workers()
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.pending = int(pending) if pending is not None else 2 * self.workers
        if self.pending < self.workers:
            raise ValueError(f"pending must be at least workers ({self.workers}), got {pending}")
        self._slots = threading.BoundedSemaphore(self.pending)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="nvenc-encode")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a worker; wait first while the pool is full.

        Whatever ``fn`` raises is kept for ``Future.result()`` / ``exception()``.
        """
        self._slots.acquire()
        try:
            future = self._pool.submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work; with ``wait`` return once every handed-over encode is done."""
        self._pool.shutdown(wait=wait)


_lock = threading.Lock()
_shared: Background | None = None


def background() -> Background:
    """The process's pool for ``wait=False`` encodes, made on first use."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = Background()
        return _shared


def set_background(workers: int | None = None, pending: int | None = None) -> None:
    """Size the pool that ``wait=False`` encodes run on.

    Args:
        workers: encodes running at once (default: the machine's cores, or
            ``NVENC_CORES``).
        pending: encodes handed over and not yet finished, running ones included, before
            a further ``wait=False`` call waits (default: twice ``workers``). Each pending
            encode keeps its frames alive, so this bounds the memory held for them.

    Encodes already handed to the previous pool finish there first.
    """
    global _shared
    new = Background(workers, pending)
    with _lock:
        old, _shared = _shared, new
    if old is not None:
        old.shutdown(wait=True)
