"""Run a list of jobs through an executor; the results come back as each job finishes.

``iter_encode_many`` is the one loop (the CLI and ``encode_many`` are both thin over it):
jobs are planned up front (``plan_jobs``), finished outputs are reported as skipped, the
rest are submitted, and any way out of the loop other than its end (Ctrl-C, SIGTERM, the
caller leaving the iterator) stops every worker and removes the temporary files of the
jobs that were running.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from nvenc_cli.batch.executors import EventSink, LocalExecutor, RayExecutor, default_workers
from nvenc_cli.batch.jobs import JobSpec, check_collisions, is_done, jobs_from_inputs, select_shard
from nvenc_cli.batch.worker import (
    JobResult,
    failed,
    file_key,
    redo_over_own_output,
    remove_folders,
    remove_stale_temporaries,
)
from nvenc_cli.encoding import InputOptions
from nvenc_cli.errors import UsageError
from nvenc_cli.options import EncodeOptions

EXECUTORS = ("local", "ray")
MIXED_FAILURES = 1
"""Exit code of a run whose failed jobs failed for different reasons (each job's own code
is on its error line and in its --json object)."""
WORKER_ATTEMPTS = 3
"""Tries a job gets when its local worker process dies under it (killed, out of memory);
the pool is restarted for the jobs that are left."""


@dataclass(frozen=True)
class ExecutorOptions:
    """Where and how wide a run goes: ``local`` worker processes or ``ray`` tasks."""

    executor: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise UsageError(f"invalid --executor {self.executor!r}: choose local or ray")
        if self.ray_address is not None and self.executor != "ray":
            raise UsageError("--ray-address names a Ray cluster: it needs --executor ray")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"invalid --jobs {self.workers}: it must be at least 1")


def job_from_mapping(
    spec: Mapping[str, Any], index: int, options: EncodeOptions, inputs: InputOptions
) -> JobSpec:
    """A job from a dict: ``input``, ``output`` and any ``EncodeOptions``/``InputOptions``
    field by name, the given options being the defaults."""
    data = dict(spec)
    try:
        source, dest = data.pop("input"), data.pop("output")
    except KeyError as exc:
        raise UsageError(f"job {index}: {exc.args[0]!r} is missing") from None
    for name, value in (("input", source), ("output", dest)):
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise UsageError(
                f"job {index}: {name!r} must be a path (str or os.PathLike), not {type(value).__name__}"
            )
    source, dest = os.fspath(source), os.fspath(dest)
    encode_fields = {f.name for f in fields(EncodeOptions)}
    input_fields = {f.name for f in fields(InputOptions)}
    unknown = sorted(set(data) - encode_fields - input_fields)
    if unknown:
        raise UsageError(f"job {index}: unknown option {unknown[0]!r}")
    if data.get("fps") is not None:  # 30, 29.97, "30000/1001", a Fraction: as everywhere else
        from nvenc_cli.options import parse_fps

        if isinstance(data["fps"], bool):
            raise UsageError(f"job {index}: 'fps' must be a number or a string, not {data['fps']!r}")
        data["fps"] = parse_fps(data["fps"])
    types = {f.name: str(f.type) for f in (*fields(EncodeOptions), *fields(InputOptions))}
    for name, value in data.items():
        _check_plain_type(index, name, value, types[name])
    try:
        opts = replace(options, **{k: v for k, v in data.items() if k in encode_fields})
        ins = replace(inputs, **{k: v for k, v in data.items() if k in input_fields})
    except TypeError as exc:
        raise UsageError(f"job {index}: {exc}") from None
    return JobSpec(source, dest, opts, ins, index)


_PLAIN = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}


def _check_plain_type(index: int, name: str, value: Any, annotation: str) -> None:
    """A job's value of a plain field (bool, int, float, str) must be of that type: ``True``
    is no crf, ``2.7`` no frame count, ``"false"`` no switch. Richer fields (a Fraction, a
    tuple) are checked by their own types when the options are built."""
    kinds = [part.strip() for part in annotation.split("|")]
    if value is None and "None" in kinds:
        return
    plain = [kind for kind in kinds if kind != "None"]
    if not plain or any(kind not in _PLAIN for kind in plain):
        return
    wanted = tuple(t for kind in plain for t in _PLAIN[kind])
    if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
        raise UsageError(f"job {index}: {name!r} must be {' or '.join(plain)}, not {value!r}")


def plan_jobs(
    jobs: Iterable[JobSpec | Mapping[str, Any]] | None = None,
    *,
    inputs: Sequence[str] | None = None,
    output: str | None = None,
    options: EncodeOptions | None = None,
    input_options: InputOptions | None = None,
    shard: tuple[int, int] | None = None,
) -> list[JobSpec]:
    """The whole job list, checked (collisions refused) before the shard is taken, so
    every shard of a cluster run refuses or accepts the same arguments."""
    options = options or EncodeOptions()
    input_options = input_options or InputOptions()
    if (jobs is None) == (inputs is None):
        raise UsageError("give either jobs or inputs (with an output template)")
    if inputs is not None:
        if output is None:
            raise UsageError("inputs need an output template (e.g. 'out/{stem}.mp4')")
        planned = jobs_from_inputs(list(inputs), output, options, input_options)
    else:
        planned = []
        for i, spec in enumerate(jobs or ()):
            if isinstance(spec, JobSpec):
                planned.append(replace(spec, index=i))
            else:
                planned.append(job_from_mapping(spec, i, options, input_options))
    check_collisions(planned)
    return select_shard(planned, shard)


def combined_exit_code(results: Iterable[JobResult]) -> int:
    """0 when every job succeeded (or was skipped); the failures' code when they agree;
    ``MIXED_FAILURES`` (1) when they differ. An interruption (130/143) always wins."""
    codes = {r.exit_code for r in results if not r.ok}
    for signal_code in (130, 143):
        if signal_code in codes:
            return signal_code
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else MIXED_FAILURES


def iter_encode_many(
    jobs: Iterable[JobSpec | Mapping[str, Any]] | None = None,
    *,
    inputs: Sequence[str] | None = None,
    output: str | None = None,
    options: EncodeOptions | None = None,
    input_options: InputOptions | None = None,
    executor: ExecutorOptions | str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    skip_existing: bool = False,
    shard: tuple[int, int] | str | None = None,
    on_event: EventSink | None = None,
) -> Iterator[JobResult]:
    """Encode many clips; yield each job's ``JobResult`` as it finishes (in that order).

    ``jobs`` are ``JobSpec``s or dicts (``input``, ``output`` and option fields by name,
    ``options``/``input_options`` being their defaults); or give ``inputs`` and an
    ``output`` template (``{stem}``, ``{name}``, ``{parent}``, ``{index}``, ``{ext}``,
    or a folder ending in ``/``). A failed job yields a ``failed`` result; the others
    carry on. Leaving the loop early stops the workers and cleans up.
    """
    if isinstance(shard, str):
        from nvenc_cli.batch.jobs import parse_shard

        shard = parse_shard(shard)
    if isinstance(executor, str):
        executor = ExecutorOptions(executor, workers, ray_address)
    planned = plan_jobs(
        jobs, inputs=inputs, output=output, options=options, input_options=input_options, shard=shard
    )
    todo: list[JobSpec] = []
    for job in planned:
        if skip_existing and is_done(job):
            yield JobResult(job.index, job.input, job.output, "skipped")
        else:
            todo.append(job)
    if not todo:
        return
    tag = secrets.token_hex(4)  # this run's mark on its temporary files
    todo = [replace(job, run_tag=tag) for job in todo]
    made: set[str] = set()
    try:
        results = (
            _run_ray(todo, executor) if executor.executor == "ray" else _run_local(todo, executor, on_event)
        )
        for result in results:
            made.update(result.folders)
            yield result
    finally:
        # Once no job runs: the template folders the jobs made and left empty (their
        # encodes failed) go, deepest first; a folder holding anything stays.
        remove_folders([Path(p) for p in sorted(made, key=lambda p: (p.count(os.sep), p))])


def encode_many(*args: Any, **kwargs: Any) -> list[JobResult]:
    """``iter_encode_many``, collected and returned in job order."""
    return sorted(iter_encode_many(*args, **kwargs), key=lambda r: r.index)


def _run_local(todo: list[JobSpec], opts: ExecutorOptions, on_event: EventSink | None) -> Iterator[JobResult]:
    """The local pool; when a worker dies (which breaks a ``ProcessPoolExecutor`` and
    fails all its pending futures), a fresh pool takes the jobs that are left."""
    workers = min(opts.workers or default_workers(), len(todo))
    started: dict[int, int] = {}  # job index -> the pid of the worker running it
    starts = [0]  # jobs started, retries included

    def note(kind: str, *values: Any) -> None:
        if kind == "start":
            started[values[0]] = values[1]
            starts[0] += 1
        if on_event is not None:
            on_event(kind, *values)

    attempts = dict.fromkeys((job.index for job in todo), 0)
    before = {job.index: file_key(job.output) for job in todo}
    pending = list(todo)
    barren = 0  # pools in a row that broke before any job started: workers that cannot start
    while pending:
        if barren >= WORKER_ATTEMPTS:
            for job in pending:
                yield failed(job, 70, "worker processes died as they started; no job could run")
            return
        started_before = starts[0]
        started.clear()  # a job is charged a try only for a pool that broke while it ran
        executor = LocalExecutor(workers, verbose=opts.verbose, on_event=note)
        futures: dict[Future[JobResult], JobSpec] = {executor.submit(job): job for job in pending}
        pending, broken = [], False
        culprits: set[int] | None = None
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        if culprits is None:
                            culprits = executor.died_alone()
                        attempts[job.index] += _charged(job.index, started, culprits)
                        if attempts[job.index] >= WORKER_ATTEMPTS:
                            yield failed(job, 70, "its worker process died (killed or out of memory)")
                        else:
                            pending.append(job)
            if broken:  # a dead worker took the pool: clean what its jobs left, start afresh
                barren = barren + 1 if starts[0] == started_before else 0
                for job in pending:
                    remove_stale_temporaries(job.output, job.run_tag)
                pending.sort(key=lambda j: j.index)
        except BaseException:
            executor.interrupt()
            _clean_unfinished(futures.values())
            raise
        finally:
            executor.shutdown()
        # Only now are the old workers gone: a job whose attempt was still putting its
        # output in place when the pool broke is seen as finished, and redone over it.
        pending = [redo_over_own_output(job, before[job.index]) for job in pending]


def _charged(index: int, started: dict[int, int], culprits: set[int]) -> bool:
    """Whether job ``index`` is charged a try for the pool that broke: only when its own
    worker died. A job whose worker the pool stopped because another one died is retried
    free; when no worker is known to have died on its own (one killed with SIGTERM looks
    like those the pool stopped), every job that was running is charged, so a job that
    keeps killing its worker still ends."""
    if index not in started:
        return False
    return not culprits or started[index] in culprits


def _run_ray(todo: list[JobSpec], opts: ExecutorOptions) -> Iterator[JobResult]:
    """Ray tasks; Ray itself retries a task whose worker died."""
    # Ray workers run in their own folders (and on other machines): absolute paths only.
    jobs = [replace(j, input=_absolute(j.input), output=_absolute(j.output)) for j in todo]
    names = {j.index: (t.input, t.output) for j, t in zip(jobs, todo, strict=True)}
    executor = RayExecutor(opts.ray_address, local_cpus=opts.workers)
    futures = {executor.submit(job): job for job in jobs}
    try:
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                job = futures.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    result = failed(job, 70, f"the Ray task failed: {type(exc).__name__}: {exc}")
                source, dest = names[job.index]  # reported as the user named them
                report = {**result.report, "input": source, "output": dest} if result.report else {}
                yield replace(result, input=source, output=dest, report=report)
    except BaseException:
        executor.interrupt()
        wait(list(futures), timeout=10)  # let cancelled tasks unwind before cleaning up
        _clean_unfinished(futures.values())
        raise
    finally:
        executor.shutdown()


def _absolute(name: str) -> str:
    """A local path made absolute; a URL (an object every node reaches) as it is."""
    from nvenc_cli.storage import is_url

    return name if is_url(name) else os.path.abspath(name)


def _clean_unfinished(jobs: Iterable[JobSpec]) -> None:
    """After the workers are gone: no temporary file of an unfinished job survives."""
    for job in jobs:
        remove_stale_temporaries(job.output, job.run_tag)
