"""Many encodes in one run: job lists (templates, manifests, shards) and their executors.

A job is one ``encode_path`` call and nothing more; this package only decides which jobs
there are and where they run (long-lived local worker processes, or Ray tasks).
"""

from __future__ import annotations

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
