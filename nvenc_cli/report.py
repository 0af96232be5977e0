"""Everything the CLI shows people (stderr) and scripts (stdout JSON, --progress lines).

The conventions mirror the tools shell users already trust: colour and the live progress
bar only on a terminal (never in a pipe, a log file or with ``NO_COLOR``/``--no-color``);
``-q`` silent on success; ``-v`` adds FFmpeg's own log lines and tracebacks; standard
output carries nothing but data or the JSON report.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
import traceback
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any, NoReturn

import typer

from nvenc_cli.errors import OutputError, UsageError, WriteError, out_of_resources

PROGRESS_PERIOD = 0.5  # seconds between --progress blocks, ffmpeg's default -stats_period
PROGRESS_KEYS = (
    "frame",
    "fps",
    "total_frames",
    "out_time_us",
    "out_time_ms",
    "out_time",
    "speed",
    "elapsed",
    "progress",
)


def is_terminal(stream: IO[str] | None = None) -> bool:
    """A stream a person is watching: a TTY whose terminal can move the cursor."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb"


def color_enabled(no_color: bool = False, stream: IO[str] | None = None) -> bool:
    """Whether to emit ANSI colour on ``stream`` (stderr by default).

    ``--no-color`` and a non-empty ``NO_COLOR`` (no-color.org) always win; a non-empty
    ``FORCE_COLOR`` turns colour on for CI logs that render ANSI; otherwise colour goes to
    terminals only.
    """
    if no_color or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(stream)


def clock(us: int) -> str:
    """``HH:MM:SS.micro``, the form of ffmpeg's ``out_time``."""
    seconds, micro = divmod(us, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{micro:06d}"


def progress_block(frames: int, total: int | None, rate: Fraction | None, elapsed: float, state: str) -> str:
    """One ``--progress`` block: ``key=value`` lines ending with ``progress=continue|end``.

    The keys and their formats follow ffmpeg's ``-progress`` (``out_time_ms`` is in
    microseconds there too, and kept so for parsers written against ffmpeg); unknown
    values are ``N/A`` as in ffmpeg. ``total_frames`` and ``elapsed`` are nvenc's additions.
    """
    elapsed = max(elapsed, 0.0)
    out_us = int(frames * 1_000_000 / rate) if rate else None
    speed = "N/A"
    if out_us is not None and elapsed > 0:
        speed = f"{out_us / 1_000_000 / elapsed:.3f}x"
    values = {
        "frame": str(frames),
        "fps": f"{frames / elapsed:.2f}" if elapsed > 0 else "0.00",
        "total_frames": str(total) if total is not None else "N/A",
        "out_time_us": str(out_us) if out_us is not None else "N/A",
        "out_time_ms": str(out_us) if out_us is not None else "N/A",
        "out_time": clock(out_us) if out_us is not None else "N/A",
        "speed": speed,
        "elapsed": f"{elapsed:.3f}",
        "progress": state,
    }
    return "".join(f"{key}={values[key]}\n" for key in PROGRESS_KEYS)


class ProgressFile:
    """The ``--progress FILE|-`` sink: a block at most every ``PROGRESS_PERIOD`` and a final
    ``progress=end``. ``-`` is standard error, because standard output carries only data.

    Its failures are the exit codes' like any other output's: one that cannot be created
    is 73, a write that fails (a full disk, ``/dev/full``, a closed pipe) is 74. The first
    block is written after the first window is encoded, while the video is still a
    temporary file: a sink that cannot take it stops the run, and no output appears.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._last = float("-inf")
        self._failed = False

    def open(self) -> None:
        """Open now, so an unwritable path fails before encoding (exit 73/74)."""
        if self._file is not None:
            return
        if self.path == "-":
            self._file = sys.stderr
        else:
            try:
                self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise OutputError(
                    f"{self.path}: cannot write the progress file ({exc.strerror or exc})"
                ) from None

    def write(self, block: str, force: bool = False) -> None:
        now = time.monotonic()
        if self._failed or (not force and now - self._last < PROGRESS_PERIOD):
            return
        self._last = now
        self.open()
        assert self._file is not None
        try:
            self._file.write(block)
            self._file.flush()
        except (OSError, ValueError) as exc:
            self._failed = True
            self._discard()
            raise _progress_error(self.path, exc) from None

    def close(self) -> None:
        try:
            if self._file is not None and self._file is not sys.stderr:
                self._file.close()
        except OSError as exc:
            if not self._failed:
                raise _progress_error(self.path, exc) from None
        finally:
            self._file = None

    def _discard(self) -> None:
        """After a failed write, drop the file without flushing what it still buffers
        (the flush would fail again, at exit, as a traceback)."""
        file, self._file = self._file, None
        if file is None or file is sys.stderr:
            return
        with contextlib.suppress(OSError, ValueError):
            os.close(file.fileno())
        with contextlib.suppress(OSError, ValueError):
            file.close()


def _progress_error(path: str, exc: BaseException) -> WriteError:
    name = "standard error" if path == "-" else path
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        why = "disk full"
    elif code == errno.EPIPE:
        why = "the reader closed the pipe"
    else:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return WriteError(f"{name}: cannot write the progress file ({why})")


def check_progress_path(
    progress: str | None,
    output: str,
    inputs: list[str],
    stdout_data: bool,
    others: tuple[tuple[str, str | None], ...] = (),
) -> None:
    """Refuse a --progress FILE that is the output, an input, another file the run reads
    (``others``: the --audio file, the manifest, as (role, path)) or standard output in use.

    Opening it truncates it, so naming one of those by mistake (or through another name:
    a link, ``/dev/stdout``, ``/proc/self/fd/1``) would destroy that file or corrupt the
    video; it is refused as a usage error before anything is read.
    """
    from nvenc_cli.paths import RunFiles, identity

    if progress is None or progress == "-":
        return
    if stdout_data and identity(progress) is not None and identity(progress) == _fd_identity(1):
        raise UsageError(
            f"--progress {progress} is standard output, which carries the video or the JSON report"
        )
    files = RunFiles()
    files.writes("--progress", progress)
    files.reads("the output", output)
    for name in inputs:
        files.reads("an input", name)
    for role, path in others:
        files.reads(role, path)
    files.check()


def names_stdout(path: str) -> bool:
    """Whether ``path`` is standard output: ``-``, or a name that reaches descriptor 1
    (``/dev/stdout``, ``/proc/self/fd/1``, the very file stdout is redirected to)."""
    from nvenc_cli.mux import descriptor_of
    from nvenc_cli.paths import identity

    if path == "-":
        return True
    if descriptor_of(path) == 1:
        return True
    mine = identity(path)
    return mine is not None and mine == _fd_identity(1)


def _fd_identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Reporter:
    """Progress bar (terminal only), --progress blocks, summary line, JSON report, errors."""

    def __init__(self, *, quiet: bool, verbose: bool, no_color: bool, progress_path: str | None) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.color = color_enabled(no_color)
        # A live bar only for a person at a terminal: not with -q, not with -v (FFmpeg's log
        # lines would tear it) and not when --progress - already writes to stderr.
        self.show_bar = is_terminal() and not quiet and not verbose and progress_path != "-"
        self.progress_file = ProgressFile(progress_path) if progress_path else None
        self._bar: Any = None
        self._task: Any = None
        self._rate: Fraction | None = None
        self._started = time.monotonic()
        self._frames = 0
        self._total: int | None = None

    # -- progress --------------------------------------------------------------------
    def planned(self, plan: Any) -> None:
        """Called once the plan is known and before the first frame: the clock starts."""
        self._rate = plan.fps
        self._started = time.monotonic()
        if self.progress_file is not None:
            self.progress_file.open()

    def progress(self, done: int, total: int | None) -> None:
        """The pipeline's callback after each encoded window."""
        self._frames, self._total = done, total
        if self.show_bar:
            self._update_bar(done, total)
        if self.progress_file is not None:
            self.progress_file.write(self._block("continue"))

    def _block(self, state: str) -> str:
        elapsed = time.monotonic() - self._started
        return progress_block(self._frames, self._total, self._rate, elapsed, state)

    def _update_bar(self, done: int, total: int | None) -> None:
        if self._bar is None:
            self._start_bar(total)
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._bar.update(self._task, completed=done, total=total, rate=f"{done / elapsed:.0f} fps")

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

        console = Console(stderr=True, color_system="auto" if self.color else None, highlight=False)
        self._bar = Progress(
            TextColumn("encoding"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("frames  {task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("encode", total=total, rate="")

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # -- endings ---------------------------------------------------------------------
    def fail(self, exc: BaseException, code: int | None = None) -> NoReturn:
        """Report a failure as one ``nvenc: error:`` line and exit with its class's code."""
        self._stop()
        if self.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        limit = out_of_resources(exc) if code == 70 else None
        if limit is not None:
            exc, code = limit, limit.exit_code
        exit_code = code if code is not None else getattr(exc, "exit_code", 1)
        message = str(exc) or type(exc).__name__
        if code == 70:
            message = f"internal error: {type(exc).__name__}: {message} (rerun with -v for details)"
        self.error(message)
        if self.progress_file is not None:
            try:
                self.progress_file.write(self._block("end"), force=True)
                self.progress_file.close()
            except (WriteError, OutputError):
                pass  # the run already failed, for the reason printed above
        raise typer.Exit(exit_code)

    def error(self, message: str) -> None:
        write_prefixed("error", message, self.color)

    def note(self, message: str) -> None:
        if not self.quiet:
            write_prefixed("note", message, self.color)

    def done(self, source: str, dest: str, result: Any, as_json: bool) -> None:
        """Success: final progress block, JSON on stdout if asked, notes and summary unless -q."""
        self._stop()
        plan = result.plan
        self._frames, self._rate = result.frames, plan.fps
        if self.progress_file is not None:
            try:
                self.progress_file.write(self._block("end"), force=True)
                self.progress_file.close()
            except (WriteError, OutputError) as exc:
                # The video is complete and in place; only the last progress block is lost.
                self.error(f"{exc}; the video itself was written")
                raise typer.Exit(exc.exit_code) from None
        report = json_report(source, dest, result)
        if as_json:
            from nvenc_cli.storage import redact

            sys.stdout.write(redact(json.dumps(report)) + "\n")
            sys.stdout.flush()
        if self.quiet:
            return
        for notice in plan.notices:
            self.note(notice)
        # An NVENC run that failed and gave way to the CPU is always news.
        fell_back = bool(getattr(result, "fell_back", False))
        show = self.verbose or fell_back or (bool(report["fallback_reason"]) and nvidia_driver_present())
        sys.stderr.write(summary_line(report, show_fallback=show) + "\n")
        sys.stderr.flush()

    def ffmpeg_logging(self) -> None:
        """Encoder libraries' own logs: FFmpeg's lines with -v, nothing but errors without.

        With -v, FFmpeg's default logger prints ``[libx264 @ 0x…] …`` straight to stderr (it
        writes from encoder threads without taking the GIL, and colours only a terminal;
        ``AV_LOG_FORCE_NOCOLOR`` keeps it plain under NO_COLOR/--no-color). Without -v the
        libraries that print on their own are hushed: libx265 follows FFmpeg's log level,
        SVT-AV1 reads ``SVT_LOG`` (1 = errors; a value the user set is kept).
        """
        import av.logging

        from nvenc_cli.liblog import hush_encoders

        if not self.verbose:
            hush_encoders()
            return
        if not self.color:
            os.environ["AV_LOG_FORCE_NOCOLOR"] = "1"
        av.logging.restore_default_callback()
        av.logging.set_libav_level(av.logging.VERBOSE)


_PREFIX_STYLE = {"error": (typer.colors.RED, True), "note": (typer.colors.YELLOW, False)}


def write_prefixed(kind: str, message: str, color: bool) -> None:
    """One ``nvenc: KIND: message`` line; the message's control characters escaped."""
    prefix = f"nvenc: {kind}:"
    if color:
        fg, bold = _PREFIX_STYLE[kind]
        prefix = typer.style(prefix, fg=fg, bold=bold)
    sys.stderr.write(f"{prefix} {printable(message)}\n")
    sys.stderr.flush()


# Bidirectional overrides and isolates: they reorder what a terminal shows.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``).

    Messages quote file names and other libraries' errors, which may hold anything: a
    newline would split one message into two lines (and could forge a second
    ``nvenc: wrote`` line), an ESC would reach a log as a terminal command. Bytes of a
    name that are not UTF-8 (surrogate escapes) are shown as ``\\xNN`` too. A URL's
    secrets (a password, a signed query) are replaced by ``***``.
    """
    from nvenc_cli.storage import redact

    text = redact(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isprintable() or (category in ("Zs", "Mn", "Mc", "Me", "Cf") and ch not in _BIDI):
            out.append(ch)
        elif category == "Cs" and 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable name byte
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(repr(ch)[1:-1] if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return "".join(out)


def json_report(source: str, dest: str, result: Any) -> dict[str, Any]:
    """The ``--json`` document: one object, stable keys, on one line of stdout."""
    plan = result.plan
    return {
        "input": source,
        "output": dest,
        "frames": result.frames,
        "width": plan.width,
        "height": plan.height,
        "fps": f"{plan.fps.numerator}/{plan.fps.denominator}",
        "duration": float(plan.seconds_at(result.frames) - plan.seconds_at(0)),
        "container": plan.container,
        "codec": plan.encoder,
        "pixel_format": plan.pixel_format,
        "color_matrix": plan.color.matrix,
        "color_range": plan.color.range,
        "backend": plan.backend,
        # where frames were converted and which encoder took them (e.g. cuda-convert+cpu-encode)
        "route": getattr(result, "route", "") or plan.backend.replace("_", "-"),
        "fallback_reason": plan.fallback_reason,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "encode_fps": round(result.frames / result.seconds, 2) if result.seconds else None,
        "notices": list(plan.notices),
        "audio": _audio_report(result),
        # Per-frame timestamps: first, last, largest gap and mean rate, in seconds.
        "timestamps": getattr(plan, "timeline", None),
    }


def _audio_report(result: Any) -> dict[str, Any] | None:
    """What happened to the sound: codec, copied or re-encoded, rate, channels, duration."""
    audio = getattr(result, "audio", None)
    if audio is None:
        return None
    from nvenc_cli.audio import describe

    return describe(audio, getattr(result, "audio_duration", None))


def _audio_summary(audio: dict[str, Any] | None) -> str:
    if not audio:
        return ""
    duration = f" {audio['duration']:.2f} s" if audio.get("duration") is not None else ""
    return f", audio {audio['codec']} {audio['sample_rate']} Hz {audio['layout']}{duration} {audio['action']}"


def nvidia_driver_present() -> bool:
    """Whether NVENC could have run here at all (libcuda.so.1 loads).

    On a machine without an NVIDIA driver, "NVENC not used: no driver" on every summary
    is noise; where a driver exists the reason (a GPU without NVENC, the session cap) is
    news. ``-v`` and ``--json`` always carry it.
    """
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def counted(count: int, noun: str) -> str:
    """``1 frame``, ``2 frames``: people read the summary lines, and "1 frames" reads as a bug."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_line(r: dict[str, Any], show_fallback: bool = True) -> str:
    """The one line for people; ``show_fallback`` adds why NVENC was not used."""
    fps = r["fps"].removesuffix("/1")
    colour = f" {r['color_matrix']}/{r['color_range']}" if r["color_matrix"] else ""
    reason = r["fallback_reason"] if show_fallback else None
    where = r["backend"] if not reason else f"cpu; NVENC not used: {reason}"
    route = r.get("route")
    if route and route != str(r["backend"]).replace("_", "-"):
        where = f"{where}; route {route}"
    where = printable(str(where))  # a driver's or library's words: one line, no escape codes
    name = printable(str(r["output"]))
    return (
        f"nvenc: wrote {name}: {counted(r['frames'], 'frame')} {r['width']}x{r['height']} @ {fps} fps, "
        f"{r['codec']} {r['pixel_format']}{colour}{_audio_summary(r.get('audio'))}, "
        f"{_size(r['bytes'])} in {r['seconds']:.2f} s "
        f"({r['encode_fps'] or 0:.1f} fps) [{where}]"
    )


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


# -- nvenc info --------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """One block of ``nvenc info``: a title, column headers, rows and an optional footnote."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""


def print_info(as_json: bool, no_color: bool = False) -> None:
    """Render ``nvenc info``: rich tables on a terminal, aligned plain text elsewhere, or JSON."""
    try:
        from nvenc_cli.info import collect_info
    except ImportError:
        collect_info = _basic_info
    data = collect_info()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    sections = info_sections(data)
    if is_terminal(sys.stdout):
        _print_rich(sections, color_enabled(no_color, sys.stdout))
    else:
        sys.stdout.write(render_plain(sections))
    sys.stdout.flush()


def info_sections(data: dict[str, Any]) -> list[Section]:
    """Turn ``collect_info()`` data into the tables people read; missing parts are skipped."""
    sections = [_versions_section(data), _backends_section(data), _routes_section(data)]
    encoders: dict[str, dict[str, Any]] = data.get("encoders") or {}
    containers: dict[str, dict[str, Any]] = data.get("containers") or {}
    if containers:
        sections.append(_containers_section(containers, encoders))
    if containers:
        sections.append(_audio_section(containers))
    if encoders:
        sections.append(_encoders_section(containers, encoders))
    nvenc = (data.get("backends") or {}).get("nvenc") or {}
    if nvenc.get("options"):
        rows = [(f"-x {key}=…", str(text)) for key, text in sorted(nvenc["options"].items())]
        presets = ", ".join(sorted({str(v).lower() for v in (nvenc.get("presets") or {}).values()}))
        note = f"--preset for NVENC: {presets} (x264 names map to these)" if presets else ""
        sections.append(Section("NVENC options", ("option", "meaning"), rows, note))
    return [s for s in sections if s.rows]


def _versions_section(data: dict[str, Any]) -> Section:
    rows = [
        (name, "-" if value is None else str(value)) for name, value in (data.get("versions") or {}).items()
    ]
    return Section("Versions", ("component", "version"), rows)


def _routes_section(data: dict[str, Any]) -> Section:
    """Where frames are converted on their way to each encoder (``route`` in ``--json``)."""
    rows = [
        (name, "available" if route.get("available") else "unavailable", str(route.get("when") or ""))
        for name, route in (data.get("routes") or {}).items()
    ]
    return Section("Routes", ("route", "status", "used for"), rows)


def _backends_section(data: dict[str, Any]) -> Section:
    rows = []
    for name, backend in (data.get("backends") or {}).items():
        state = "available" if backend.get("available") else "unavailable"
        detail = str(backend.get("reason") or "")
        if backend.get("gpu"):
            detail = f"{backend['gpu']}: {detail}" if detail else str(backend["gpu"])
        rows.append((name, state, detail))
    return Section("Backends", ("backend", "status", "details"), rows)


def _containers_section(
    containers: dict[str, dict[str, Any]], encoders: dict[str, dict[str, Any]]
) -> Section:
    """Per container and codec, the encoders of each backend; ``*`` marks the default."""
    rows = []
    for muxer, facts in containers.items():
        label = muxer
        exts = " ".join("." + e for e in facts.get("extensions", []))
        default = facts.get("default_codec")
        for family in facts.get("codecs", []):
            names = (facts.get("encoders") or {}).get(family, [])
            cpu = _encoder_cell(names, encoders, "cpu", default)
            rows.append((label, exts, family, cpu, _encoder_cell(names, encoders, "nvenc", default)))
            label, exts = "", ""
    note = "* the container's default codec; -c picks another, --device picks the backend"
    return Section("Containers", ("container", "extensions", "codec", "cpu", "nvenc"), rows, note)


def _audio_section(containers: dict[str, dict[str, Any]]) -> Section:
    """Per container, the audio codecs it carries (a copy keeps those) and its default."""
    rows = [
        (
            muxer,
            str(facts.get("default_audio_codec") or "-"),
            " ".join(facts.get("audio_codecs") or []) or "-",
        )
        for muxer, facts in containers.items()
        if "audio_codecs" in facts
    ]
    note = "audio is copied when the container carries its codec, else encoded with the default"
    return Section("Audio", ("container", "default", "codecs carried (copied as they are)"), rows, note)


def _encoder_cell(names: list[str], encoders: dict[str, dict[str, Any]], backend: str, default: Any) -> str:
    chosen = [n for n in names if (encoders.get(n) or {}).get("backend") == backend]
    return " ".join(n + ("*" if n == default else "") for n in chosen) or "-"


def _encoders_section(containers: dict[str, dict[str, Any]], encoders: dict[str, dict[str, Any]]) -> Section:
    """Pixel formats of the encoders some container can carry (the others cannot be used)."""
    usable = {
        n for facts in containers.values() for names in (facts.get("encoders") or {}).values() for n in names
    }
    names = sorted(usable or encoders, key=lambda n: (encoders[n].get("backend", ""), n))
    rows = [
        (
            encoders[n].get("backend", ""),
            n,
            str(encoders[n].get("codec", "")),
            " ".join(encoders[n].get("pixel_formats") or []) or "-",
        )
        for n in names
        if n in encoders
    ]
    return Section("Encoders", ("backend", "encoder", "codec", "pixel formats"), rows)


def render_plain(sections: list[Section]) -> str:
    """Aligned columns, no colour, no box drawing: for pipes, grep and CI logs."""
    out: list[str] = []
    for section in sections:
        if out:
            out.append("")
        out.append(f"{section.title}:")
        table = [section.headers, *section.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(section.headers) - 1)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            out.append(("  " + "  ".join([*cells, row[-1]])).rstrip())
        if section.note:
            out.append(f"  {section.note}")
    return "\n".join(out) + "\n"


def _print_rich(sections: list[Section], color: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(color_system="auto" if color else None, highlight=False)
    for section in sections:
        table = Table(
            title=section.title,
            title_justify="left",
            caption=section.note or None,
            caption_justify="left",
            header_style="bold" if color else "",
        )
        for header in section.headers:
            table.add_column(header, overflow="fold")
        for row in section.rows:
            table.add_row(*(Text(cell, style=_STATUS_STYLE.get(cell, "") if color else "") for cell in row))
        console.print(table)


_STATUS_STYLE = {"available": "green", "unavailable": "red"}


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
