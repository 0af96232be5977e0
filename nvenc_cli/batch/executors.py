"""Where jobs run: long-lived local worker processes, or Ray tasks on a cluster.

Both have the ``concurrent.futures`` shape (``submit(job) -> Future[JobResult]``) so the
runner and the CLI see only futures and results. Each adds what a run needs on top:
``interrupt()`` (stop every running job, their temporary files removed) and progress
events (``on_event(kind, *values)``: ``start``, ``progress``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from nvenc_cli.batch.jobs import JobSpec
from nvenc_cli.batch.warmup import main_kept_from_workers, pool_context, start_workers_early
from nvenc_cli.batch.worker import JobResult, file_key
from nvenc_cli.errors import UnavailableError, UsageError

EventSink = Callable[..., None]
DEFAULT_GPU_SHARE = 0.25
"""GPU a Ray task asks for when it encodes on NVENC: at most 4 encodes per GPU at a time,
under the 5–8 concurrent sessions consumer drivers allow (data-centre GPUs have no cap)."""


def available_cores() -> int:
    """Cores this process may run on (a cpuset or ``taskset`` narrows ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """One worker per core: each job's pipeline keeps its share busy (measured in README,
    "Many clips")."""
    return available_cores()


def cores_per_worker(workers: int) -> int:
    """The cores one job's encoder threads are sized for: an equal share, at least one."""
    return max(1, available_cores() // max(1, workers))


# File descriptors a pool takes: its pipes and queues, then a few per worker (its
# sentinel and queue ends) beyond what each encode opens in its own process.
_POOL_DESCRIPTORS, _WORKER_DESCRIPTORS = 16, 4


def _check_descriptors(workers: int) -> None:
    """Refuse up front (69, one line) a pool the open-file limit cannot hold: failing
    half-way through making it leaves the pieces already made (semaphores) behind, which
    Python then reports on standard error at exit."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:  # no /proc: nothing to count with, the pool's own error will tell
        return
    need = _POOL_DESCRIPTORS + _WORKER_DESCRIPTORS * workers
    if soft != resource.RLIM_INFINITY and soft - used < need:
        raise UnavailableError(
            f"too many open files for this process (ulimit -n is {soft}, {used} in use; {workers} "
            f"worker(s) need about {need} more): raise the limit or run fewer workers (-j)"
        )


class LocalExecutor:
    """A process pool whose workers import nvenc once and then take job after job.

    Workers are forked from a forkserver that has already imported nvenc (numpy, PyAV;
    started as soon as the run is known to need it, see ``batch.warmup``),
    so even that start-up is paid once per run, not once per worker; the parent's own
    threads (the progress display) are never forked.
    """

    def __init__(self, workers: int, *, verbose: bool = False, on_event: EventSink | None = None) -> None:
        if workers < 1:
            raise UsageError(f"invalid --jobs {workers}: it must be at least 1")
        from nvenc_cli.batch import worker

        self.workers = workers
        _check_descriptors(workers)
        context = pool_context()
        start_workers_early()  # a no-op when the CLI has started it already
        # No cross-process lock anywhere: a worker killed while holding one (SIGKILL, the
        # OOM killer) would block every other process for good. Events are small pickles
        # written to one pipe (a write under PIPE_BUF is atomic), the stop flag a raw int.
        self._events, self._writer = context.Pipe(duplex=False)
        self._stop = context.RawValue("i", 0)
        self._on_event = on_event
        self._pids: set[int] = set()
        self._workers: dict[int, Any] = {}  # pid -> the pool's process object, once it ran a job
        self._lock = threading.Lock()
        with main_kept_from_workers():
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=worker.init_pool_worker,
                initargs=(self._writer, self._stop, cores_per_worker(workers), verbose),
            )
        self._reader = threading.Thread(target=self._read_events, daemon=True, name="nvenc-batch-events")
        self._reader.start()

    def submit(self, job: JobSpec) -> Future[JobResult]:
        from nvenc_cli.batch import worker

        with main_kept_from_workers():  # the pool starts its workers on submit
            return self._pool.submit(worker.pool_job, job)

    def _read_events(self) -> None:
        while True:
            try:
                message = self._events.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            kind, *values = message
            if kind == "hello":
                with self._lock:
                    self._pids.add(values[0])
                continue
            if kind == "start":
                self._keep_process(values[1])
            if self._on_event is not None:
                with contextlib.suppress(Exception):  # a display error must not stop the run
                    self._on_event(kind, *values)

    def _keep_process(self, pid: int) -> None:
        """Hold on to the worker's process object: once the pool breaks it forgets its
        workers, and their exit codes are what tells the worker that died from the ones
        the pool stopped after it."""
        processes = getattr(self._pool, "_processes", None) or {}
        with self._lock:
            if pid in processes:
                self._workers[pid] = processes[pid]

    def died_alone(self) -> set[int]:
        """After the pool broke: the workers that died of something else than the SIGTERM
        the pool sends every other worker once one has died (a worker stopped that way
        exits 143 from an encode, or with SIGTERM's own code when idle)."""
        with self._lock:
            workers = dict(self._workers)
        dead = set()
        for pid, process in workers.items():
            process.join(timeout=5)
            if process.exitcode is not None and process.exitcode not in (143, -signal.SIGTERM):
                dead.add(pid)
        return dead

    def interrupt(self) -> None:
        """Stop every worker: queued jobs are not started, running ones unwind (their
        temporary files removed) on SIGTERM, idle workers exit at once."""
        self._stop.value = 1
        deadline = time.monotonic() + 1.0
        while self._events.poll() and time.monotonic() < deadline:
            time.sleep(0.01)  # every worker that could be running said hello before it ran
        with self._lock:
            pids = list(self._pids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(OSError):
            self._writer.send(None)
        self._reader.join(timeout=2)
        self._writer.close()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def import_ray() -> Any:
    """Ray, imported only when ``--executor ray`` asks for it."""
    try:
        import ray
    except ImportError:
        from nvenc_cli.extras import install_hint

        raise UnavailableError(f"--executor ray needs Ray: {install_hint('ray')}") from None
    return ray


def _ray_task(job: JobSpec, cores: int, before: tuple[Any, ...] | None, attempts: Any = None) -> JobResult:
    """A Ray task: one job. A retry after a killed worker first removes the temporary file
    the dead attempt left beside the output (the output path itself never holds a partial
    file: it appears by rename only), and redoes a job whose output the dead attempt had
    already finished. ``attempts`` (the run's ``_Attempts`` actor) counts the starts, so
    the report can say which jobs Ray ran again."""
    from dataclasses import replace

    from nvenc_cli.batch import worker

    attempt = 1
    if attempts is not None:
        ray = import_ray()
        attempt = ray.get(attempts.begin.remote(job.index))
    worker.set_cores(cores)
    worker.quiet_libraries(False)
    worker.remove_stale_temporaries(job.output, job.run_tag)
    job = worker.redo_over_own_output(job, before)
    try:
        return replace(worker.run_job(job), attempts=attempt)
    except KeyboardInterrupt:  # ray.cancel: the encode has unwound and cleaned up
        return worker.failed(job, 130, "cancelled", status="cancelled")


class _Attempts:
    """A Ray actor on the driver's node: how many times each job was started. It lives
    where the run is watched, so losing a worker node loses none of its counts."""

    def __init__(self) -> None:
        self.starts: dict[int, int] = {}

    def begin(self, index: int) -> int:
        self.starts[index] = self.starts.get(index, 0) + 1
        return self.starts[index]


def _attempts_actor(ray: Any) -> Any:
    """The run's ``_Attempts`` actor pinned to this node, or None where it cannot be made
    (the counts are a report, never a reason to refuse a run)."""
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        strategy = NodeAffinitySchedulingStrategy(here, soft=False)
        return ray.remote(_Attempts).options(num_cpus=0, scheduling_strategy=strategy).remote()
    except Exception:
        return None


RAY_CONNECT_SECONDS = 10.0
"""How long a cluster address may take to accept a connection before the run is refused."""


def check_reachable(address: str, timeout: float = RAY_CONNECT_SECONDS) -> None:
    """Refuse (69) a ``HOST:PORT`` or ``ray://HOST:PORT`` that accepts no connection.

    Ray itself retries an address that is down for as long as the run lasts, printing its
    own log lines; one connection attempt first turns that into one line. ``auto`` and
    ``local`` are Ray's own words for "find it" and "start one": they pass as they are.
    """
    import re
    import socket

    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]]+?)\]?:(\d{1,5})", address.strip())
    if match is None:
        if address.strip() in ("auto", "local"):
            return
        raise UsageError(f"invalid --ray-address {address!r}: use HOST:PORT, ray://HOST:PORT or auto")
    host, port = match.group(1), int(match.group(2))
    if not 0 < port < 65536:
        raise UsageError(f"invalid --ray-address {address!r}: the port must be 1-65535")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise UnavailableError(f"cannot reach the Ray cluster at {address} ({why})") from None


def _ray_notices_to_stderr() -> None:
    """Ray's driver prints its raylet's notices (a task retried because its worker or
    node was lost) on stdout, which carries nvenc's data and ``--json`` lines only: send
    them to stderr. Ray's private printer is wrapped where it exists; elsewhere nothing
    changes."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "nvenc_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    to_stderr.nvenc_stderr = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


class RayExecutor:
    """Each job a Ray task, on the cluster at ``address`` or on a local one started for the
    run (and shut down after it). Ray retries a task whose worker died (``max_retries``);
    a job that fails on its own merits returns a ``failed`` result and is not retried."""

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus_per_job: int = 1,
        gpu_share: float = DEFAULT_GPU_SHARE,
        max_retries: int = 3,
        local_cpus: int | None = None,
    ) -> None:
        ray = import_ray()
        self._ray = ray
        self._owns_cluster = not ray.is_initialized()
        if self._owns_cluster:
            import logging

            if address is not None:
                check_reachable(address)
            try:
                ray.init(
                    address=address,
                    num_cpus=local_cpus if address is None else None,
                    include_dashboard=False,
                    logging_level=logging.ERROR,  # nvenc reports; Ray's notices stay in its logs
                    log_to_driver=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = address or "a local cluster"
                raise UnavailableError(f"cannot start Ray on {where} ({exc})") from None
        _ray_notices_to_stderr()
        self._cpus = cpus_per_job
        self._gpu_share = gpu_share
        self._has_gpus = float(ray.cluster_resources().get("GPU", 0)) > 0
        self._task = ray.remote(_ray_task)
        self._attempts = _attempts_actor(ray)
        self._retries = max_retries
        self._refs: list[Any] = []

    def wants_gpu(self, job: JobSpec) -> bool:
        """NVENC jobs reserve a GPU share so Ray spreads their sessions over the GPUs:
        ``--device cuda``, an ``*_nvenc`` codec, or ``auto`` on a cluster that has GPUs."""
        options = job.options
        if options.device == "cpu":
            return False
        if options.device == "cuda" or (options.codec or "").endswith("_nvenc"):
            return True
        return self._has_gpus

    def submit(self, job: JobSpec) -> Future[JobResult]:
        gpus = self._gpu_share if self.wants_gpu(job) else 0
        task = self._task.options(
            name="nvenc-job", max_retries=self._retries, num_cpus=self._cpus, num_gpus=gpus
        )
        ref = task.remote(job, self._cpus, file_key(job.output), self._attempts)
        self._refs.append(ref)
        return ref.future()

    def interrupt(self) -> None:
        """Cancel every task: a running one gets KeyboardInterrupt and unwinds its encode."""
        for ref in self._refs:
            with contextlib.suppress(Exception):  # already finished, or the cluster is gone
                self._ray.cancel(ref, force=False)

    def shutdown(self) -> None:
        if self._owns_cluster and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
