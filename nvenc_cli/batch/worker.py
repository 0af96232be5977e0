"""What runs inside a worker: one job is one ``encode_path`` call, its outcome plain data.

The same ``run_job`` serves the local process pool and Ray tasks. Failures never escape
as exceptions (a bad job must not look like a broken worker); only an interruption
does, after ``encode_path`` has removed its temporary file on the way out.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nvenc_cli.batch.jobs import JobSpec
from nvenc_cli.errors import Interrupted, NvencError, OutputError, out_of_resources

CORES_ENV = "NVENC_CORES"
PROGRESS_PERIOD = 0.25  # seconds between a worker's progress messages for one job


@dataclass(frozen=True)
class JobResult:
    """The outcome of one job: ``status`` is ``ok``, ``failed``, ``skipped`` or
    ``cancelled``; ``report`` holds the single-encode ``--json`` fields when it is ok."""

    index: int
    input: str
    output: str
    status: str
    exit_code: int = 0
    error: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: folders this job's output template made (deepest last): the run removes those
    #: left empty once every job is done
    folders: tuple[str, ...] = ()
    #: how many times the job was started: more than 1 when a lost worker or node made
    #: the executor run it again
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")

    @property
    def frames(self) -> int:
        return int(self.report.get("frames") or 0)

    def to_json(self) -> dict[str, Any]:
        """The job's ``--json`` object: today's fields, then ``status`` and ``error``."""
        base = self.report or {"input": self.input, "output": self.output}
        fields = {**base, "index": self.index, "status": self.status, "error": self.error}
        return {**fields, "attempts": self.attempts} if self.attempts > 1 else fields


def failed(job: JobSpec, code: int, message: str, status: str = "failed") -> JobResult:
    return JobResult(job.index, job.input, job.output, status, code, message)


def run_job(job: JobSpec, progress: Callable[[int, int | None], None] | None = None) -> JobResult:
    """Encode one job; every failure becomes a ``failed`` result with its exit code."""
    from nvenc_cli.encoding import encode_path
    from nvenc_cli.mux import set_run_tag
    from nvenc_cli.report import json_report

    started = time.monotonic()
    made: list[Path] = []
    try:
        made = make_folder(job.output)
        set_run_tag(job.run_tag)
        try:
            result = encode_path(job.input, job.output, job.options, job.inputs, progress=progress)
        finally:
            set_run_tag("")
    except Interrupted:
        remove_folders(made)
        raise
    except NvencError as exc:
        return _with_folders(failed(job, exc.exit_code, str(exc) or type(exc).__name__), made)
    except Exception as exc:  # a bug must cost its job, not the run
        limit = out_of_resources(exc)
        if limit is not None:
            return _with_folders(failed(job, limit.exit_code, str(limit)), made)
        return _with_folders(failed(job, 70, f"internal error: {type(exc).__name__}: {exc}"), made)
    report = json_report(job.input, job.output, result)
    return JobResult(
        job.index, job.input, job.output, "ok", 0, None, report, time.monotonic() - started,
        tuple(map(str, made)),
    )  # fmt: skip


def _with_folders(result: JobResult, made: list[Path]) -> JobResult:
    """A failed job's result, naming the folders it made: they are not removed here,
    where another job running now may be about to write into one of them."""
    return replace(result, folders=tuple(map(str, made)))


def make_folder(output: str) -> list[Path]:
    """Templates name folders per input (``out/{parent}/{stem}.mp4``): create them.

    Every name is checked against the file system's limit first, so a name too long
    creates nothing at all; returns the folders made (deepest last), for a caller that
    removes them again when its encode fails."""
    from nvenc_cli.storage import is_url

    if output == "-" or is_url(output):  # a store has no folders to make
        return []
    folder = Path(output).parent
    if str(folder) in ("", ".") or os.path.isdir(folder):  # False, not an error, for a name too long
        return []
    missing: list[Path] = []
    here = folder
    while str(here) not in ("", ".", "/") and not os.path.isdir(here):
        missing.append(here)
        here = here.parent
    try:
        limit = int(os.pathconf(here if str(here) else ".", "PC_NAME_MAX"))
    except (OSError, ValueError):
        limit = 255
    for part in missing:
        if len(os.fsencode(part.name)) > limit:
            raise OutputError(
                f"{output}: cannot create folder {folder} (a name is longer than {limit} bytes)"
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{output}: cannot create folder {folder} ({exc.strerror or exc})") from None
    return list(reversed(missing))


def remove_folders(made: list[Path]) -> None:
    """Remove folders ``make_folder`` made, deepest first, each only while empty."""
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def stale_temporaries(output: str, tag: str) -> list[str]:
    """Temporary files an earlier, killed attempt of this run at ``output`` left (the
    muxer names them ``.NAME.TAG-XXXXXXXX.part`` beside the target, ``TAG`` being the
    run's own random mark). Without a tag nothing is this run's: another run's file for
    the same output (``.NAME.XXXXXXXX.part``, or another tag) is never touched."""
    from nvenc_cli.mux import temp_prefix
    from nvenc_cli.storage import is_url

    if output == "-" or not tag or is_url(output):  # an object has no temporary beside it
        return []
    path = Path(output)
    prefix = temp_prefix(path, tag)
    pattern = os.path.join(glob.escape(str(path.parent)), glob.escape(prefix) + "*.part")
    mine = re.compile(re.escape(prefix) + r"[A-Za-z0-9_]{8}\.part")
    return [name for name in glob.glob(pattern) if mine.fullmatch(os.path.basename(name))]


def remove_stale_temporaries(output: str, tag: str) -> None:
    for name in stale_temporaries(output, tag):
        with contextlib.suppress(OSError):
            os.unlink(name)


def file_key(path: str) -> tuple[Any, ...] | None:
    """What tells a run's own output from a file that was there before the run (inode,
    size, modification time: the same on every node of a shared filesystem; for an
    object in a store, its ETag, size and time)."""
    from nvenc_cli import storage

    if storage.remote(path):
        return storage.object_key(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def redo_over_own_output(job: JobSpec, before: tuple[Any, ...] | None) -> JobSpec:
    """A retried job whose earlier attempt finished (its output appeared since the run
    began) but whose result was lost with its worker: encode it again over that output."""
    now = file_key(job.output)
    if now is None or now == before or job.options.overwrite:
        return job
    return replace(job, options=replace(job.options, overwrite=True))


def quiet_libraries(verbose: bool) -> None:
    """Encoder logs as the single-encode CLI has them: FFmpeg's lines only with -v."""
    from nvenc_cli.report import Reporter

    Reporter(quiet=True, verbose=verbose, no_color=True, progress_path=None).ffmpeg_logging()


def set_cores(cores: int | None) -> None:
    """Encoder threads follow ``NVENC_CORES``: each of N workers gets its share of the
    machine's cores rather than all of them (a value the user set is kept)."""
    if cores and not os.environ.get(CORES_ENV):
        os.environ[CORES_ENV] = str(cores)


# -- the local pool's worker process ---------------------------------------------------------
_events: Any = None
_stop: Any = None
_busy = False


def init_pool_worker(events: Any, stop: Any, cores: int | None, verbose: bool) -> None:
    """Runs once per worker process: the imports, the signal rules, the logging.

    The parent coordinates Ctrl-C: workers ignore SIGINT (a terminal sends it to the whole
    process group, and SIGHUP too) and stop on the SIGTERM the parent sends them, which unwinds a running
    encode (removing its temporary file) exactly as it does for ``nvenc encode``.
    """
    global _events, _stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP", "SIGXCPU"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _on_term)
    if hasattr(signal, "SIGXFSZ"):  # a file size limit is a write error (74), as for one encode
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _events, _stop = events, stop
    set_cores(cores)
    importlib.import_module("nvenc_cli.encoding")  # the point of a long-lived worker: import once
    from nvenc_cli.allocator import keep_freed_memory

    keep_freed_memory()
    quiet_libraries(verbose)
    try:
        events.send(("hello", os.getpid()))
    except OSError:  # the parent has closed the run (Ctrl-C as this worker started): no job
        os._exit(143)  # will come, and a traceback here would land under its one line
    _stop_with_the_parent()


def _stop_with_the_parent() -> None:
    """End this worker as SIGTERM would once the run's process is gone (SIGKILL, a crash).

    A pool worker waits for jobs on a pipe that it holds the writing end of itself, so it
    never sees the parent die: it would sleep for good, its forkserver with it (each
    killed run left 2-3 idle processes behind). The parent's sentinel is a pipe that only
    the parent's end keeps open; a running encode unwinds and removes its temporary file.
    """
    import multiprocessing
    import threading

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    sentinel, main = parent.sentinel, threading.main_thread().ident

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        signal.pthread_kill(main, signal.SIGTERM)  # type: ignore[arg-type]

    threading.Thread(target=watch, daemon=True, name="nvenc-parent-watch").start()


def _on_term(signum: int, frame: Any) -> None:
    if _busy:
        raise Interrupted("terminated", exit_code=143)
    os._exit(143)


def pool_job(job: JobSpec) -> JobResult:
    """The function the pool runs per job: progress messages out, the result back."""
    global _busy
    if _stop is not None and _stop.value:
        return failed(job, 130, "cancelled", status="cancelled")
    _busy = True
    try:
        _events.send(("start", job.index, os.getpid()))
        return run_job(job, _progress_sender(job.index))
    except Interrupted:
        # encode_path has removed its temporary file while unwinding; the run is over.
        os._exit(143)
    finally:
        _busy = False


def _progress_sender(index: int) -> Callable[[int, int | None], None]:
    last = [float("-inf")]

    def send(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_PERIOD or (total is not None and done >= total):
            last[0] = now
            _events.send(("progress", index, done, total))

    return send
