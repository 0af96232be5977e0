"""Many encodes in one run: job lists (templates, manifests, shards) and their executors.

A job is one ``encode_path`` call and nothing more; this package only decides which jobs
there are and where they run (long-lived local worker processes, or Ray tasks).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nvenc_cli.batch.jobs import JobSpec
    from nvenc_cli.batch.run import ExecutorOptions, combined_exit_code, encode_many, iter_encode_many
    from nvenc_cli.batch.worker import JobResult

__all__ = [
    "ExecutorOptions",
    "JobResult",
    "JobSpec",
    "combined_exit_code",
    "encode_many",
    "iter_encode_many",
]
_HOMES = {
    "ExecutorOptions": "run",
    "JobResult": "worker",
    "JobSpec": "jobs",
    "combined_exit_code": "run",
    "encode_many": "run",
    "iter_encode_many": "run",
}


def __getattr__(name: str) -> Any:
    """The names above, imported on first use rather than with the package, so that
    ``__main__`` can start the workers' forkserver (``batch.warmup``) before anything
    slow is imported: the runner brings the whole encode path, numpy included."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
