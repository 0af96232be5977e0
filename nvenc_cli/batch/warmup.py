"""The local workers' forkserver, started as early as a run can know it will need one.

Every local run forks its workers from one forkserver that has imported nvenc's encode
path (numpy, PyAV: ~0.3 s of one core). Nothing else waits on that start-up, so it is
begun before the parent's own: with 24 clips of 48 frames at 640x360 on 2 cores, the
first job used to start 0.72 s after launch, one core idle most of that time, which was
almost all of the run's idle time (the rest of a ``-j 2`` run keeps both cores busy).
This module imports nothing of nvenc's, so ``__main__`` can use it before Typer loads.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

WORKER_PRELOAD = ("nvenc_cli.batch.worker", "nvenc_cli.encoding", "nvenc_cli.report", "av.logging")
"""What the forkserver imports before it forks the first worker, so each worker starts with
it instead of importing it again (PyAV included: a worker's set-up logs through it)."""


STORE_PRELOAD = ("fsspec", "s3fs")
"""Imported by the forkserver too when the command line names an object in a store
(``s3://…``): s3fs and its client take ~1 s of one core to import, paid once, not per
worker. A module that is not installed is skipped by the forkserver."""

_STORE_URL = re.compile(r"^(?:s3a?|gs|gcs|az|abfss?|https?)://", re.IGNORECASE)


def names_store(argv: Sequence[str]) -> bool:
    """Whether a command line names an object in a store (an input, ``-o``, a manifest)."""
    return any(_STORE_URL.match(word) for word in argv)


def pool_context() -> BaseContext:
    """The workers' start method: a forkserver that has imported ``WORKER_PRELOAD`` where the
    platform has one, else spawn (Windows: each worker imports nvenc itself, still once for
    all its jobs). A forkserver also keeps the parent's threads (the display) unforked."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    import sys

    context = multiprocessing.get_context("forkserver")
    stores = STORE_PRELOAD if names_store(sys.argv[1:]) else ()
    context.set_forkserver_preload([*WORKER_PRELOAD, *stores])
    return context


def start_workers_early() -> None:
    """Start the forkserver now (if it is not running); the pool forks its workers from it.

    A run that turns out to need no workers (a usage error, every job already done)
    leaves it idle, and it exits with the parent.

    It starts with SIGINT ignored: Ctrl-C reaches the whole process group, and until its
    imports are done the forkserver would die of it with a traceback (or a "Fatal Python
    error" inside its interpreter's start-up) under the parent's one "interrupted" line.
    An ignored signal stays ignored across exec, and Python then installs no handler; its
    workers ignore SIGINT anyway (the parent stops them with SIGTERM).
    """
    import multiprocessing
    import os
    from multiprocessing import forkserver, resource_tracker

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    # Set before numpy loads in the forkserver, as ``cli.run`` does for the parent: nvenc
    # does no linear algebra, and OpenBLAS's idle threads would sit in every worker.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    pool_context()
    resource_tracker.ensure_running()  # it guards its own start-up; it must not undo ours
    with _sigint_ignored_by_children():
        forkserver.ensure_running()


@contextlib.contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """SIGINT's action is "ignore" for processes started inside, and a Ctrl-C that lands
    meanwhile reaches this process's own handler afterwards: it is blocked throughout (a
    blocked signal stays pending even while its action is "ignore"), so none is lost."""
    import signal
    import threading

    handler = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or handler is None:
        yield  # only the main thread may change handlers; None: one this code cannot restore
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, handler)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextlib.contextmanager
def main_kept_from_workers() -> Iterator[None]:
    """Workers run nvenc's own functions only, so the caller's main script need not run in
    them; where it cannot (a script read from standard input, ``python - <<EOF``, whose
    ``__file__`` is ``<stdin>``), multiprocessing would try in every new worker, each would
    die of it, and the pool would break and start again without end. While workers start,
    such a main module's unreadable path is hidden from multiprocessing."""
    import os
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    named = getattr(getattr(main, "__spec__", None), "name", None)
    if main is None or path is None or named is not None or os.path.isfile(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def wants_workers(argv: Sequence[str]) -> bool:
    """Whether a command line asks for local workers, judged before it is parsed.

    ``batch``, or ``encode`` with ``-j``/``--jobs``, unless ``--executor ray``. A wrong
    guess only costs (or misses) an early start: the parsed options decide the run.
    """
    words = list(argv)
    if not words or words[0] not in ("encode", "batch"):
        return False
    if "--executor=ray" in words or any(pair == ("--executor", "ray") for pair in itertools.pairwise(words)):
        return False
    return words[0] == "batch" or any(w in ("-j", "--jobs") or w.startswith(("--jobs=", "-j")) for w in words)
