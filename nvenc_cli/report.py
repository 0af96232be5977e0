"""Everything the CLI shows people (stderr) and scripts (stdout JSON, --progress lines)."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import IO, Any, NoReturn

import typer


def _use_color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stderr.isatty()


class Reporter:
    """Progress bar (TTY only), progress file, summary line, JSON report and errors."""

    def __init__(
        self, *, quiet: bool, verbose: bool, no_color: bool, progress_path: str | None
    ) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.color = _use_color(no_color)
        self._bar: Any = None
        self._task: Any = None
        self._progress_file: IO[str] | None = None
        self._progress_path = progress_path
        self._last_line = 0.0
        self._started = time.monotonic()
        self._frames = 0

    # -- progress --------------------------------------------------------------------
    def progress(self, done: int, total: int | None) -> None:
        self._frames = done
        if self._bar is None and not self.quiet and sys.stderr.isatty():
            self._start_bar(total)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)
        if self._progress_path is not None:
            now = time.monotonic()
            if now - self._last_line >= 0.5:
                self._last_line = now
                self._progress_block(done, "continue")

    def _start_bar(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True, no_color=not self.color, highlight=False)
        self._bar = Progress(
            TextColumn("encoding"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("encode", total=total, fps="")
        self._bar.update(self._task, fps="")

    def _progress_block(self, frames: int, state: str, fps_rate: Any = None) -> None:
        if self._progress_file is None:
            if self._progress_path == "-":
                self._progress_file = sys.stderr
            else:
                self._progress_file = open(self._progress_path, "w", encoding="utf-8")  # noqa: SIM115
        elapsed = max(time.monotonic() - self._started, 1e-9)
        out_us = int(frames / fps_rate * 1_000_000) if fps_rate else 0
        lines = [
            f"frame={frames}",
            f"fps={frames / elapsed:.2f}",
            f"out_time_us={out_us}",
            f"out_time={_clock(out_us)}",
            f"elapsed={elapsed:.3f}",
            f"progress={state}",
        ]
        self._progress_file.write("\n".join(lines) + "\n")
        self._progress_file.flush()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # -- endings ---------------------------------------------------------------------
    def fail(self, exc: BaseException, code: int | None = None) -> NoReturn:
        self._stop()
        if self.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        exit_code = code if code is not None else getattr(exc, "exit_code", 1)
        message = str(exc) or type(exc).__name__
        if code == 70:
            message = f"internal error: {type(exc).__name__}: {message} (rerun with -v for details)"
        self._echo_error(message)
        if self._progress_path is not None:
            self._progress_block(self._frames, "end")
        raise typer.Exit(exit_code)

    def _echo_error(self, message: str) -> None:
        prefix = "nvenc: error:"
        if self.color:
            prefix = typer.style(prefix, fg=typer.colors.RED, bold=True)
        sys.stderr.write(f"{prefix} {message}\n")
        sys.stderr.flush()

    def done(self, source: str, dest: str, result: Any, as_json: bool) -> None:
        self._stop()
        plan = result.plan
        if self._progress_path is not None:
            self._progress_block(result.frames, "end", plan.fps)
        report = json_report(source, dest, result)
        if as_json:
            sys.stdout.write(json.dumps(report) + "\n")
            sys.stdout.flush()
        if self.quiet:
            return
        for notice in plan.notices:
            sys.stderr.write(f"nvenc: note: {notice}\n")
        sys.stderr.write(summary_line(report) + "\n")

    def ffmpeg_logging(self) -> None:
        """FFmpeg's own log lines only with -v (PyAV keeps them off otherwise)."""
        if self.verbose:
            import av.logging

            av.logging.set_level(av.logging.VERBOSE)


def _clock(us: int) -> str:
    seconds, micro = divmod(us, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{micro:06d}"


def json_report(source: str, dest: str, result: Any) -> dict[str, Any]:
    plan = result.plan
    return {
        "input": source,
        "output": dest,
        "frames": result.frames,
        "width": plan.width,
        "height": plan.height,
        "fps": f"{plan.fps.numerator}/{plan.fps.denominator}",
        "duration": float(result.frames / plan.fps),
        "container": plan.container,
        "codec": plan.encoder,
        "pixel_format": plan.pixel_format,
        "color_matrix": plan.color.matrix,
        "color_range": plan.color.range,
        "backend": plan.backend,
        "fallback_reason": plan.fallback_reason,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "encode_fps": round(result.frames / result.seconds, 2) if result.seconds else None,
        "notices": list(plan.notices),
    }


def summary_line(r: dict[str, Any]) -> str:
    fps = r["fps"].removesuffix("/1")
    colour = f" {r['color_matrix']}/{r['color_range']}" if r["color_matrix"] else ""
    where = r["backend"] if not r["fallback_reason"] else f"cpu; NVENC not used: {r['fallback_reason']}"
    return (
        f"nvenc: wrote {r['output']}: {r['frames']} frames {r['width']}x{r['height']} @ {fps} fps, "
        f"{r['codec']} {r['pixel_format']}{colour}, {_size(r['bytes'])} in {r['seconds']:.2f} s "
        f"({r['encode_fps'] or 0:.1f} fps) [{where}]"
    )


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def print_info(as_json: bool) -> None:
    """Render ``nvenc info``: versions, backends and what they encode."""
    try:
        from nvenc_cli.info import collect_info
    except ImportError:
        collect_info = _basic_info
    data = collect_info()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for name, value in data.get("versions", {}).items():
        sys.stdout.write(f"{name:>16}: {value}\n")
    for name, backend in data.get("backends", {}).items():
        state = "available" if backend["available"] else "unavailable"
        sys.stdout.write(f"backend {name}: {state} — {backend['reason']}\n")
        if backend.get("encoders"):
            sys.stdout.write(f"  encoders: {', '.join(backend['encoders'])}\n")


def _basic_info() -> dict[str, Any]:
    import av

    from nvenc_cli import __version__
    from nvenc_cli.backends import probe_nvenc
    from nvenc_cli.backends.cpu import CpuBackend

    cpu = CpuBackend()
    nv = probe_nvenc()
    return {
        "versions": {"nvenc": __version__, "av": av.__version__},
        "backends": {
            "cpu": {"available": True, "reason": cpu.probe().reason, "encoders": cpu.encoders()},
            "nvenc": {"available": nv.ok, "reason": nv.reason, "encoders": []},
        },
    }
