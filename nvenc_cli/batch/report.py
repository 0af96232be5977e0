"""What a run of many jobs shows: one progress display, one line per failure, a summary.

The single-encode conventions hold (``nvenc_cli.report``): the live display only on a
terminal, ``-q`` silent on success, stdout only for ``--json`` (one object per job as it
finishes, then a summary object), ``--progress FILE`` blocks for the whole run.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from nvenc_cli.batch.worker import JobResult
from nvenc_cli.errors import NvencError
from nvenc_cli.report import ProgressFile, color_enabled, is_terminal, progress_block, write_prefixed


class BatchReporter:
    """Aggregates workers' progress events and job results into the run's reports.

    ``event`` is called from the executor's event thread, ``result`` from the main
    thread; a lock keeps the counters consistent between them.
    """

    def __init__(
        self,
        total_jobs: int,
        *,
        quiet: bool,
        verbose: bool,
        no_color: bool,
        progress_path: str | None,
        as_json: bool,
        workers: str,
    ) -> None:
        self.total_jobs, self.quiet, self.as_json, self.workers = total_jobs, quiet, as_json, workers
        self.color = color_enabled(no_color)
        self.show_bar = is_terminal() and not quiet and not verbose and progress_path != "-"
        self.progress_file = ProgressFile(progress_path) if progress_path else None
        self._lock = threading.Lock()
        self._running: dict[int, int] = {}
        self._totals: dict[int, int | None] = {}
        self._finished: set[int] = set()
        self._done_frames = 0
        self._bytes = 0
        self.counts = {"ok": 0, "failed": 0, "skipped": 0, "cancelled": 0}
        self.results: list[JobResult] = []
        self._started = time.monotonic()
        self._console: Any = None
        self._bar: Any = None
        self._task: Any = None
        self.failure: NvencError | None = None

    # -- live state ----------------------------------------------------------------------
    def start(self) -> None:
        """The clock starts; the display appears; the progress file opens (or fails, 73)."""
        self._started = time.monotonic()
        if self.progress_file is not None:
            self.progress_file.open()
        if self.show_bar:
            self._start_bar()

    def event(self, kind: str, *values: Any) -> None:
        with self._lock:
            if values and values[0] in self._finished:
                return  # a late message (events and results travel apart): already counted
            if kind == "start":
                self._running[values[0]] = 0
            elif kind == "progress":
                index, done, total = values
                self._running[index] = done
                self._totals[index] = total
        try:
            self._refresh()
        except NvencError as exc:  # on the event thread: the main thread raises it
            self.failure = exc

    def result(self, result: JobResult) -> None:
        """One finished job: counted, reported; a failed --progress write stops the run (74)."""
        if self.failure is not None:
            raise self.failure
        with self._lock:
            self._finished.add(result.index)
            self._running.pop(result.index, None)
            self._totals.pop(result.index, None)
            self._done_frames += result.frames
            self._bytes += int(result.report.get("bytes") or 0)
            self.counts[result.status] = self.counts.get(result.status, 0) + 1
            self.results.append(result)
        if self.as_json:
            from nvenc_cli.storage import redact

            line = json.dumps({"type": "job", **result.to_json(), "exit_code": result.exit_code})
            sys.stdout.write(redact(line))
            sys.stdout.write("\n")
            sys.stdout.flush()
        if result.attempts > 1:  # a lost worker or node: the job ran again elsewhere
            lost = f"retried after its worker was lost (attempt {result.attempts})"
            self._say("note", f"{result.input}: {lost}")
        if result.status == "failed":
            self._say("error", _failure_line(result))
        elif result.status == "ok" and not self.quiet:
            for notice in result.report.get("notices") or ():
                self._say("note", f"{result.input}: {notice}")
        self._refresh()

    def frames(self) -> int:
        with self._lock:
            return self._done_frames + sum(self._running.values())

    def _fraction_done(self) -> float:
        """Jobs finished plus the running ones' share of their frames: what the ETA uses."""
        with self._lock:
            finished = sum(self.counts.values())
            partial = sum(done / total for i, done in self._running.items() if (total := self._totals.get(i)))
        return finished + partial

    def _refresh(self) -> None:
        if self.progress_file is not None:
            self.progress_file.write(self._block("continue"))
        if self._bar is not None:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            frames = self.frames()
            self._bar.update(
                self._task,
                completed=self._fraction_done(),
                jobs=sum(self.counts.values()),
                frames=frames,
                rate=f"{frames / elapsed:.0f}",
                failed=self.counts["failed"],
            )

    def _block(self, state: str) -> str:
        """An ffmpeg-style progress block for the whole run, with nvenc's job counts."""
        frames = self.frames()
        block = progress_block(frames, None, None, time.monotonic() - self._started, state)
        head, _, last = block.rstrip("\n").rpartition("\n")
        jobs = (
            f"jobs_done={sum(self.counts.values())}\njobs_total={self.total_jobs}\n"
            f"jobs_failed={self.counts['failed']}\n"
        )
        return f"{head}\n{jobs}{last}\n"

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._console = Console(stderr=True, color_system="auto" if self.color else None, highlight=False)
        self._bar = Progress(
            TextColumn("encoding"),
            BarColumn(),
            TextColumn("{task.fields[jobs]}/{task.total:.0f} jobs"),
            TextColumn("{task.fields[frames]} frames  {task.fields[rate]} fps"),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("jobs", total=self.total_jobs, jobs=0, frames=0, rate="0", failed=0)

    def _say(self, kind: str, message: str) -> None:
        if self._bar is not None:  # printed above the live display, which redraws below
            self._bar.console.print(_prefixed(kind, message, self.color), highlight=False, markup=False)
        else:
            write_prefixed(kind, message, self.color)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # -- the end -------------------------------------------------------------------------
    def finish(self, exit_code: int, interrupted: str | None = None) -> None:
        """Summary line (unless -q and all went well), summary JSON, final progress block."""
        self.stop()
        seconds = time.monotonic() - self._started
        if self.progress_file is not None:
            try:
                self.progress_file.write(self._block("end"), force=True)
                self.progress_file.close()
            except NvencError:
                if interrupted is None and exit_code == 0:
                    raise
                # otherwise the run already failed, for the reasons printed
        summary = self.summary(seconds, exit_code)
        if self.as_json:
            sys.stdout.write(json.dumps({"type": "summary", **summary}) + "\n")
            sys.stdout.flush()
        if interrupted:
            write_prefixed("error", f"{interrupted}: {self._tally()}", self.color)
        elif exit_code != 0 or not self.quiet:
            sys.stderr.write(self.summary_line(summary) + "\n")
            sys.stderr.flush()

    def summary(self, seconds: float, exit_code: int) -> dict[str, Any]:
        frames = self.frames()
        return {
            "jobs": self.total_jobs,
            **self.counts,
            "frames": frames,
            "bytes": self._bytes,
            "seconds": round(seconds, 3),
            "encode_fps": round(frames / seconds, 2) if seconds > 0 else None,
            "exit_code": exit_code,
        }

    def _tally(self) -> str:
        parts = [f"{self.counts['ok']} ok", f"{self.counts['failed']} failed"]
        if self.counts["skipped"]:
            parts.append(f"{self.counts['skipped']} skipped")
        left = self.total_jobs - sum(self.counts.values())
        if left > 0:
            parts.append(f"{left} not done")
        from nvenc_cli.report import counted

        return f"{counted(self.total_jobs, 'job')}: " + ", ".join(parts)

    def summary_line(self, s: dict[str, Any]) -> str:
        from nvenc_cli.report import _size, counted

        return (
            f"nvenc: {self._tally()}; {counted(s['frames'], 'frame')}, "
            f"{_size(s['bytes'])} in {s['seconds']:.2f} s "
            f"({s['encode_fps'] or 0:.1f} fps) [{self.workers}]"
        )


def _failure_line(result: JobResult) -> str:
    """One line naming the input, whatever the error message already says."""
    message = result.error or "failed"
    if message.startswith(result.input):
        return message
    return f"{result.input}: {message}"


def _prefixed(kind: str, message: str, color: bool) -> Any:
    from rich.text import Text

    style = {"error": "bold red", "note": "yellow"}[kind] if color else ""
    from nvenc_cli.report import printable

    text = Text(f"nvenc: {kind}:", style=style)
    text.append(" " + printable(message))
    return text
