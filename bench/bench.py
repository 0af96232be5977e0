#!/usr/bin/env python3
"""CPU encode benchmark: ``nvenc encode`` vs the ffmpeg CLI, naive PyAV and torchcodec.

Every contender encodes the same frames (FFmpeg's ``testsrc2`` pattern, stored as one
``.npy``) with libx264 at the same preset and crf, each in its own process, so wall
time, CPU time and peak RSS (``ru_maxrss`` from ``os.wait4``) belong to that contender
alone.  Runs are interleaved across contenders and the median of ``--repeat`` runs is
reported, so a noisy neighbour or a warm-up effect does not favour any one of them.

Contenders ("peers"):

* ``nvenc``       the real CLI: ``nvenc encode frames.npy -o out.mp4 -c libx264 ...``
* ``ffmpeg``      ``ffmpeg -f rawvideo -pix_fmt rgb24 ... -i - ...``, with this script
                  writing the raw RGB bytes to its stdin, as a Python program would.
* ``ffmpeg-static`` the same with the newest FFmpeg the package registries offer: the
                  static build in the ``imageio-ffmpeg`` wheel (``make bench`` installs it).
* ``pyav``        the loop most people write first: ``np.load``, then ``from_ndarray``
                  -> ``encode`` -> ``mux`` per frame (``bench.py --peer pyav``).
* ``torchcodec``  ``torchcodec.encoders.VideoEncoder(...).to_file(...)``, if installed
                  (``bench.py --peer torchcodec``).

Besides end-to-end fps (frames / process wall time) the table shows a "steady" fps:
each peer also encodes a one-frame clip, and ``(N - 1) / (wall_N - wall_1)`` removes
the fixed cost of start-up, imports and encoder set-up, which otherwise dominates short
clips for the Python-based peers.

``--many`` times many short clips instead (the case where per-process start-up adds up):
24 clips of 48 frames at 640x360 (and 6 at 1080p) through one ``nvenc encode CLIPS -o
TEMPLATE -j 2`` against ``xargs -P2 ffmpeg`` on raw rgb24 files, a shell loop of ``nvenc
encode`` and of ffmpeg, ``xargs -P2 nvenc``, ``-j 1`` (no parallelism, start-up paid once)
and ``-j 2`` with every job's encoder threads sized for all the cores (``NVENC_CORES``), each
contender one shell command timed as a whole, interleaved, median of ``--repeat``.

``--cases`` instead runs five fixed cases against both FFmpeg builds (the system's and
the wheel's) and against encoder-only floors (ready yuv420p planes through each ffmpeg,
PyAV's ``encode`` alone, torchcodec's ``to_file`` alone), with per-round nvenc/peer
ratios, and the transcodes of a ``.y4m`` (60 and 600 frames) with PSNR; see ``bench/cases.py``.

``--memory`` instead encodes large inputs (a ~3 GB 1080p ``.npy`` written frame by
frame through ``open_memmap``, ``.pt`` files from ``torch.save`` and a PNG sequence)
with ``nvenc encode`` at several lengths, to show whether peak RSS stays flat.

Usage::

    python bench/bench.py                   # 1080p + 720p, ultrafast + medium, 3 runs
    python bench/bench.py --quick           # smoke run, well under a minute
    python bench/bench.py --sizes 1080p --presets ultrafast --repeat 5
    python bench/bench.py --memory          # nvenc peak RSS vs input length
    python bench/bench.py --many            # many short clips: -j 2 vs xargs ffmpeg, loops
    python bench/bench.py --cases           # cases (a)-(e) vs both ffmpegs and the floors
    python bench/bench.py --cases --quick   # the same cases, shorter clips, 2 rounds

Only numpy and PyAV (to render the test pattern) are required; a missing peer is
skipped with a note, and a failing one is reported with the tail of its stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import itertools
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PEERS = ("nvenc", "ffmpeg", "ffmpeg-static", "pyav", "torchcodec")
NAMED_SIZES = {
    "2160p": (3840, 2160),
    "1440p": (2560, 1440),
    "1080p": (1920, 1080),
    "720p": (1280, 720),
    "480p": (854, 480),
    "360p": (640, 360),
}
FRAMES_1080P = 120
"""Default clip length at 1080p; other sizes get the same pixel count (similar time)."""
MEMORY_FRAMES = 480
"""480 RGB 1080p frames are 2.99 GB: enough that loading them whole cannot hide."""
RATE = 30
MB = 1e6

# Argument templates; each whitespace-separated token is formatted on its own, so paths
# containing spaces stay one argument.
NVENC_ARGS = "encode {src} -o {dst} -c libx264 --preset {preset} --crf {crf} -y -q"
FFMPEG_ARGS = (
    "-hide_banner -loglevel error -f rawvideo -pix_fmt rgb24 -s {size} -r {rate} -i - "
    "-c:v libx264 -preset {preset} -crf {crf} -pix_fmt yuv420p -y {dst}"
)
PEER_ARGS = "--peer {name} --input {src} --output {dst} --peer-preset {preset} --crf {crf}"


# ------------------------------------------------------------------------------------
# Peers that run as ``bench.py --peer NAME`` in their own process (own RSS, own CPU).
# ------------------------------------------------------------------------------------


def peer_pyav(src: Path, dst: Path, preset: str, crf: int) -> None:
    """Encode the way a first PyAV script does: load everything, then loop per frame.

    Nothing is tuned on purpose (no thread settings, no batching, a whole-array
    ``np.load``): this is the baseline a dedicated tool has to beat.
    """
    import av

    frames = np.load(src)
    with av.open(str(dst), mode="w") as container:
        stream = container.add_stream("libx264", rate=RATE)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def peer_torchcodec(src: Path, dst: Path, preset: str, crf: int) -> None:
    """Encode with torchcodec's one-call API, which takes the whole clip as NCHW uint8.

    The NHWC array goes in as a permuted view, as a user holding NHWC frames would pass
    it; whatever copy torchcodec makes of it is part of what is measured.
    """
    import torch
    from torchcodec.encoders import VideoEncoder

    frames = torch.from_numpy(np.load(src)).permute(0, 3, 1, 2)
    encoder = VideoEncoder(frames, frame_rate=RATE)
    encoder.to_file(str(dst), codec="libx264", crf=crf, preset=preset)


PEER_FUNCTIONS: dict[str, Callable[[Path, Path, str, int], None]] = {
    "pyav": peer_pyav,
    "torchcodec": peer_torchcodec,
}


# ------------------------------------------------------------------------------------
# Test frames
# ------------------------------------------------------------------------------------


def testsrc2_frames(width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """Yield ``count`` RGB frames of FFmpeg's testsrc2 pattern.

    testsrc2 has gradients, text and motion, so encoders do realistic work; noise
    would instead make every encoder spend its time on incompressible residuals.
    """
    import av

    spec = f"testsrc2=size={width}x{height}:rate={RATE}"
    with av.open(spec, format="lavfi") as source:
        for frame in itertools.islice(source.decode(video=0), count):
            yield frame.to_ndarray(format="rgb24")


def write_npy(path: Path, width: int, height: int, count: int) -> Path:
    """Write a (count, H, W, 3) uint8 ``.npy`` one frame at a time.

    ``open_memmap`` lets a multi-gigabyte file be produced without holding it in RAM,
    so building the input does not itself need the memory being measured.
    """
    shape = (count, height, width, 3)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    for index, frame in enumerate(testsrc2_frames(width, height, count)):
        out[index] = frame
    out.flush()
    del out
    return path


def copy_npy_prefix(src: Path, dst: Path, count: int) -> Path:
    """Write the first ``count`` frames of ``src`` to ``dst``, frame by frame."""
    source = np.load(src, mmap_mode="r")
    shape = (count, *source.shape[1:])
    out = np.lib.format.open_memmap(dst, mode="w+", dtype=source.dtype, shape=shape)
    for index in range(count):
        out[index] = source[index]
    out.flush()
    del out, source
    return dst


# ------------------------------------------------------------------------------------
# Running one process
# ------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one process did: wall/CPU seconds, peak RSS, exit status and its output."""

    wall_s: float
    cpu_s: float = 0.0
    maxrss_mb: float = 0.0
    error: str = ""
    out_bytes: int = 0
    out_pix_fmt: str = ""

    @property
    def ok(self) -> bool:
        """True when the process exited 0 and wrote every frame."""
        return not self.error


# Each peer is started through this tiny launcher (``python -S``, ~8 MB); it is the
# subreaper of everything the peer starts, so CPU time and the largest process's peak RSS
# cover worker processes too (the peak is that of one process, not a sum).  On Linux a
# child's ru_maxrss also covers the address space it had before exec, and children
# spawned straight from this script (vfork/posix_spawn) share this script's address
# space up to that exec, so every peer would inherit this process's peak RSS (frames
# that were mapped, PyAV, ...).  The launcher forks from its own small address space,
# times fork -> exit, and reports the grandchild's rusage on stdout.
LAUNCHER = """
import os, sys, time
cmd = sys.argv[1:]
try:  # adopt orphaned descendants (a pool's forkserver and workers) to count their usage
    import ctypes
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        os.write(2, f"cannot start {cmd[0]}: {exc}\\n".encode())
    os._exit(127)
os.close(0)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
import resource
usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the peer and every descendant
cpu = usage.ru_utime + usage.ru_stime
print(wall, cpu, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def feed_stdin(proc: subprocess.Popen[bytes], path: Path) -> None:
    """Stream the frames of an ``.npy`` file to the child's stdin as raw bytes.

    The data is read with plain file reads into one reusable frame-sized buffer, so
    feeding costs this process neither memory nor much CPU; a child that exits early
    shows up as a broken pipe, and its exit status and stderr then say why.
    """
    assert proc.stdin is not None
    frames = np.load(path, mmap_mode="r")
    offset, frame_bytes = frames.offset, frames[0].nbytes
    del frames
    buffer = memoryview(bytearray(frame_bytes))
    try:
        with path.open("rb", buffering=0) as source:
            source.seek(offset)
            while count := source.readinto(buffer):
                proc.stdin.write(buffer[:count])
        proc.stdin.close()
    except BrokenPipeError:
        pass


def run_process(cmd: Sequence[str], feed: Path | None = None, timeout_s: float = 900.0) -> Run:
    """Run ``cmd`` to completion under the launcher and collect its own rusage.

    The numbers are those of exactly that process (not of this script or of other
    peers), which is what makes the peak RSS and CPU columns comparable.  ``feed``,
    an ``.npy`` file, is piped to the child's stdin as raw frames.
    """
    launcher = [sys.executable, "-S", "-c", LAUNCHER, *cmd]
    with tempfile.TemporaryFile() as stderr_file:
        proc = subprocess.Popen(
            launcher,
            bufsize=0,  # unbuffered stdin: a dead reader fails the write, not close
            stdin=subprocess.DEVNULL if feed is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            start_new_session=True,  # so a timeout can stop launcher and peer together
        )
        killer = threading.Timer(timeout_s, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            if feed is not None:
                feed_stdin(proc, feed)
            assert proc.stdout is not None
            report = proc.stdout.read().decode().split()
            proc.wait()
        finally:
            killer.cancel()
        stderr_file.seek(0)
        stderr = stderr_file.read().decode(errors="replace")
    if killer.finished.is_set() and proc.returncode == -signal.SIGKILL:
        return Run(0.0, error=f"killed after the {timeout_s:.0f} s timeout")
    if len(report) != 4:
        return Run(0.0, error=f"launcher failed (exit {proc.returncode}): {stderr}")
    wall, cpu, maxrss_kib, returncode = map(float, report)
    run = Run(wall_s=wall, cpu_s=cpu, maxrss_mb=maxrss_kib * 1024 / MB)
    if returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        tail = " | ".join(lines[-4:]) or "(no stderr)"
        run.error = f"exit {int(returncode)}: {tail}"
    return run


def check_output(path: Path, run: Run, expected_frames: int) -> None:
    """Confirm the peer's file holds every frame; record its size and pixel format.

    A contender that silently drops frames would otherwise look fast, so such a run
    is turned into an error; size and pix_fmt show that settings really match.
    """
    if not run.ok:
        return
    if not path.is_file():
        run.error = "no output file written"
        return
    import av

    run.out_bytes = path.stat().st_size
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            run.out_pix_fmt = stream.codec_context.pix_fmt or "?"
            frames = sum(1 for packet in container.demux(stream) if packet.size)
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        run.error = f"output unreadable: {exc}"
        return
    if frames != expected_frames:
        run.error = f"wrote {frames} frames, expected {expected_frames}"


# ------------------------------------------------------------------------------------
# Contenders
# ------------------------------------------------------------------------------------


@dataclass
class Contender:
    """How to start one peer (program + argument template), or why it cannot run."""

    name: str
    program: list[str] = field(default_factory=list)
    template: str = ""
    feeds_stdin: bool = False
    skip_reason: str = ""

    def command(self, src: Path, dst: Path, preset: str, crf: int, size: str = "") -> list[str]:
        """Build the argv that encodes ``src`` (frames of ``size``, WxH) to ``dst``."""
        values = {"src": src, "dst": dst, "preset": preset, "crf": crf}
        values |= {"rate": RATE, "size": size, "name": self.name}
        return [*self.program, *(t.format(**values) for t in self.template.split())]


def nvenc_program(override: str | None) -> list[str]:
    """Locate the CLI the way a user's shell would, with an explicit override.

    Order: ``--nvenc``, the console script beside this interpreter, one on PATH, else
    ``python -m nvenc_cli`` (which fails loudly, and is reported, if it is absent).
    """
    if override:
        return shlex.split(override)
    beside = Path(sys.executable).parent / "nvenc"
    if beside.is_file():
        return [str(beside)]
    on_path = shutil.which("nvenc")
    return [on_path] if on_path else [sys.executable, "-m", "nvenc_cli"]


def static_ffmpeg() -> str | None:
    """The static ffmpeg of the ``imageio-ffmpeg`` wheel, or None where it is not installed.

    That wheel ships the newest FFmpeg release of any package registry, so the peers are
    compared against a current FFmpeg and not only the distribution's older one.
    """
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        return None
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def build_contenders(names: Sequence[str], nvenc: str | None) -> list[Contender]:
    """Describe each requested peer; a missing tool becomes a skip with a reason."""
    contenders: list[Contender] = []
    for name in names:
        if name == "nvenc":
            contenders.append(Contender(name, nvenc_program(nvenc), NVENC_ARGS))
        elif name in ("ffmpeg", "ffmpeg-static"):
            exe = shutil.which("ffmpeg") if name == "ffmpeg" else static_ffmpeg()
            if exe is None:
                reason = "ffmpeg not on PATH" if name == "ffmpeg" else "imageio-ffmpeg not installed"
                contenders.append(Contender(name, skip_reason=reason))
            else:
                contenders.append(Contender(name, [exe], FFMPEG_ARGS, feeds_stdin=True))
        else:
            module = "av" if name == "pyav" else name
            if importlib.util.find_spec(module) is None:
                reason = f"python module {module} not installed"
                contenders.append(Contender(name, skip_reason=reason))
            else:
                script = [sys.executable, str(Path(__file__).resolve())]
                contenders.append(Contender(name, script, PEER_ARGS))
    return contenders


# ------------------------------------------------------------------------------------
# Throughput mode
# ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """All runs of one peer for one (size, preset): the clip and the one-frame clip."""

    runs: list[Run] = field(default_factory=list)
    short_runs: list[Run] = field(default_factory=list)
    error: str = ""


def parse_size(text: str) -> tuple[str, int, int]:
    """Accept ``1080p``-style names or ``WxH``; return (label, width, height)."""
    key = text.strip().lower()
    if key in NAMED_SIZES:
        return (key, *NAMED_SIZES[key])
    try:
        width, height = (int(part) for part in key.split("x"))
    except ValueError:
        raise SystemExit(f"bench: bad size {text!r} (e.g. 1080p or 1920x1080)") from None
    if width % 2 or height % 2:
        raise SystemExit(f"bench: {text}: yuv420p needs an even width and height")
    return key, width, height


def default_frames(width: int, height: int) -> int:
    """Scale the 1080p clip length so every size pushes about as many pixels."""
    return max(2, round(FRAMES_1080P * 1920 * 1080 / (width * height)))


def timed_run(contender: Contender, src: Path, dst: Path, preset: str, crf: int, timeout_s: float) -> Run:
    """One timed process for one peer; its output is checked, then deleted."""
    dst.unlink(missing_ok=True)
    count, height, width = np.load(src, mmap_mode="r").shape[:3]
    cmd = contender.command(src, dst, preset, crf, f"{width}x{height}")
    run = run_process(cmd, src if contender.feeds_stdin else None, timeout_s)
    check_output(dst, run, count)
    dst.unlink(missing_ok=True)
    return run


def median(values: Sequence[float]) -> float | None:
    """Median, or None for no values (a peer whose runs all failed)."""
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    """Format a table cell, with '-' where there is nothing to show."""
    return "-" if value is None else format(value, spec) + suffix


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Plain fixed-width table: readable in a terminal, a log or a pasted issue."""
    table = [list(headers), *map(list, rows)]
    widths = [max(len(cell) for cell in column) for column in zip(*table, strict=True)]
    for number, row in enumerate(table):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
        if number == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


def report_config(title: str, count: int, contenders: Sequence[Contender], tallies: dict[str, Tally]) -> None:
    """Print the medians for one (size, preset), then notes on skipped/failed peers."""
    print(f"\n== {title} ==")
    walls = {
        name: statistics.median(r.wall_s for r in tally.runs)
        for name, tally in tallies.items()
        if tally.runs and not tally.error
    }
    reference = walls.get("ffmpeg")
    rows: list[list[str]] = []
    notes: list[str] = []
    for contender in contenders:
        name = contender.name
        if contender.skip_reason:
            notes.append(f"{name}: skipped ({contender.skip_reason})")
            continue
        tally = tallies[name]
        if name not in walls:
            notes.append(f"{name}: error: {tally.error}")
            rows.append([name, "error", *["-"] * 7])
            continue
        wall = walls[name]
        startup = median([r.wall_s for r in tally.short_runs])
        steady = (count - 1) / (wall - startup) if startup and wall > startup else None
        runs = tally.runs
        rows.append([
            name,
            fmt(count / wall, ".1f"),
            fmt(reference / wall if reference else None, ".2f", "x"),
            fmt(steady, ".1f"),
            fmt(startup, ".2f"),
            fmt(max(r.maxrss_mb for r in runs), ".0f"),
            fmt(median([r.cpu_s for r in runs]), ".1f"),
            fmt(median([r.out_bytes / MB for r in runs]), ".2f"),
            ",".join(sorted({r.out_pix_fmt for r in runs})),
        ])  # fmt: skip
    headers = ["peer", "fps", "vs ffmpeg", "steady fps", "startup s", "peak RSS MB",
               "CPU s", "out MB", "pix_fmt"]  # fmt: skip
    if rows:
        print_table(headers, rows)
    for note in notes:
        print(f"  note: {note}")


def throughput_mode(args: argparse.Namespace, workdir: Path) -> None:
    """Time every peer at every (size, preset), interleaving repeats across peers."""
    contenders = build_contenders(args.peers, args.nvenc)
    runnable = [c for c in contenders if not c.skip_reason]
    for size in args.sizes:
        label, width, height = parse_size(size)
        count = args.frames or default_frames(width, height)
        clip = workdir / f"frames_{width}x{height}_{count}.npy"
        one = workdir / f"frames_{width}x{height}_1.npy"
        print(f"\nwriting {count} testsrc2 frames {width}x{height} -> {clip}", flush=True)
        write_npy(clip, width, height, count)
        copy_npy_prefix(clip, one, 1)
        for preset in args.presets:
            tallies = {c.name: Tally() for c in runnable}
            for rep in range(1, args.repeat + 1):
                for contender in runnable:
                    tally = tallies[contender.name]
                    if tally.error:
                        continue  # a peer that failed once is not retried
                    dst = workdir / f"out_{contender.name}.mp4"
                    run = timed_run(contender, clip, dst, preset, args.crf, args.timeout)
                    if not run.ok:
                        tally.error = run.error
                        print(f"  {contender.name}: {run.error}", flush=True)
                        continue
                    tally.runs.append(run)
                    short = timed_run(contender, one, dst, preset, args.crf, args.timeout)
                    if short.ok:
                        tally.short_runs.append(short)
                    print(
                        f"  {label} {preset} {rep}/{args.repeat} {contender.name:<10} "
                        f"{run.wall_s:6.2f}s {count / run.wall_s:6.1f} fps  "
                        f"(1 frame: {short.wall_s:.2f}s)",
                        flush=True,
                    )
            title = (
                f"{label} {width}x{height}, {count} frames, libx264 preset {preset}, "
                f"crf {args.crf}, median of {args.repeat}"
            )
            report_config(title, count, contenders, tallies)
    print(
        "\nfps: frames / wall time of the whole process (start-up, input, encode, mux,"
        "\n  exit); vs ffmpeg: that fps over the ffmpeg CLI pipe's; steady fps:"
        "\n  (N-1) / (wall - startup s), startup s = the same peer on a 1-frame clip;"
        "\n  peak RSS: ru_maxrss of the peer's own process, max over runs;"
        "\n  CPU s: user+sys of that process (>wall means it used both cores)."
    )


# ------------------------------------------------------------------------------------
# Many clips mode
# ------------------------------------------------------------------------------------

MANY_CLIPS = {"360p": 24, "1080p": 6}
"""Clips per size: 24 short clips at 640x360, as in the issue; fewer at 1080p, whose clips
take long enough that start-up matters less and a run must still fit a coffee break."""
MANY_FRAMES = 48

# Each contender is one shell command over the whole folder, so its wall time covers every
# process it starts. {x264} is "-c libx264 --preset P --crf C" in nvenc's spelling, {ffx264}
# ffmpeg's; clips are clips/NAME.npy for nvenc and clips/NAME.rgb (raw rgb24) for ffmpeg.
_NVENC_ONE = '{nvenc} encode "$1" -o "{out}/$(basename "$1" .npy).mp4" {x264} -y -q'
_FFMPEG_ONE = (
    "{ffmpeg} -nostdin -hide_banner -loglevel error -f rawvideo -pix_fmt rgb24 -s {size} -r 30 "
    '-i "$1" {ffx264} -pix_fmt yuv420p -y "{out}/$(basename "$1" .rgb).mp4"'
)
MANY_CONTENDERS = {
    "nvenc -j 2": "{nvenc} encode {clips}/*.npy -o '{out}/{{stem}}.mp4' -j 2 {x264} -y -q",
    "nvenc -j 2 all threads": (
        "NVENC_CORES={cores} {nvenc} encode {clips}/*.npy -o '{out}/{{stem}}.mp4' -j 2 {x264} -y -q"
    ),
    "nvenc -j 1": "{nvenc} encode {clips}/*.npy -o '{out}/{{stem}}.mp4' -j 1 {x264} -y -q",
    "xargs -P2 ffmpeg": f"printf '%s\\0' {{clips}}/*.rgb | xargs -0 -n1 -P2 sh -c '{_FFMPEG_ONE}' _",
    "xargs -P2 ffmpeg-static": (
        f"printf '%s\\0' {{clips}}/*.rgb | xargs -0 -n1 -P2 sh -c "
        f"'{_FFMPEG_ONE.replace('{ffmpeg}', '{ffmpeg_static}')}' _"
    ),
    "xargs -P2 nvenc": f"printf '%s\\0' {{clips}}/*.npy | xargs -0 -n1 -P2 sh -c '{_NVENC_ONE}' _",
    "ffmpeg loop": f'for f in {{clips}}/*.rgb; do set -- "$f"; {_FFMPEG_ONE} || exit 1; done',
    "nvenc loop": f'for f in {{clips}}/*.npy; do set -- "$f"; {_NVENC_ONE} || exit 1; done',
}


LARGE_CONTENDERS = (
    "nvenc -j 2",
    "nvenc -j 2 all threads",
    "nvenc -j 1",
    "xargs -P2 ffmpeg",
    "xargs -P2 ffmpeg-static",
    "nvenc loop",
)
"""At 1080p and above: the commands the ratios need (each clip takes seconds there, so a
process start matters less and the other loops only lengthen the run)."""


def write_clips(folder: Path, width: int, height: int, clips: int, frames: int) -> None:
    """``clips`` different clips (consecutive stretches of testsrc2), each as ``.npy`` for
    nvenc and as raw rgb24 for ffmpeg: the same pixels, read straight from disk by both."""
    folder.mkdir(parents=True, exist_ok=True)
    source = testsrc2_frames(width, height, clips * frames)
    for index in range(clips):
        chunk = np.stack([next(source) for _ in range(frames)])
        np.save(folder / f"clip{index:03d}.npy", chunk)
        (folder / f"clip{index:03d}.rgb").write_bytes(chunk.tobytes())


def many_ffmpeg(name: str) -> str:
    """Which ffmpeg a --many command runs: ``ffmpeg-static`` or the system's ``ffmpeg``."""
    return "ffmpeg-static" if "ffmpeg-static" in name else "ffmpeg"


def many_command(
    name: str, nvenc: list[str], clips: Path, out: Path, preset: str, crf: int, size: str
) -> str:
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    values = {
        "nvenc": shlex.join(nvenc),
        "ffmpeg": shlex.quote(ffmpeg),
        "ffmpeg_static": shlex.quote(static_ffmpeg() or "ffmpeg-static-missing"),
        "clips": shlex.quote(str(clips)),
        "out": str(out),
        "x264": f"-c libx264 --preset {preset} --crf {crf}",
        "ffx264": f"-c:v libx264 -preset {preset} -crf {crf}",
        "size": size,
        "cores": os.cpu_count() or 1,
    }
    return MANY_CONTENDERS[name].format(**values)


def check_many(out: Path, run: Run, clips: int, frames: int) -> None:
    """Every clip written with every frame, or the run counts as an error."""
    if not run.ok:
        return
    names = sorted(out.glob("*.mp4"))
    if len(names) != clips:
        run.error = f"wrote {len(names)} files, expected {clips}"
        return
    total = 0
    for name in names:
        check_output(name, run, frames)
        total += run.out_bytes
        if not run.ok:
            return
    run.out_bytes = total


def many_mode(args: argparse.Namespace, workdir: Path) -> None:
    """Many short clips: every contender encodes the same folder, interleaved, N times."""
    nvenc = nvenc_program(args.nvenc)
    wanted = [n for n in MANY_CONTENDERS if not args.commands or n in args.commands]
    have = {"ffmpeg": shutil.which("ffmpeg") is not None, "ffmpeg-static": static_ffmpeg() is not None}
    everything = [n for n in wanted if "ffmpeg" not in n or have[many_ffmpeg(n)]]
    skipped = [n for n in wanted if n not in everything]
    for size in args.sizes:
        label, width, height = parse_size(size)
        large = width * height > 1280 * 720
        names = [n for n in everything if not large or n in LARGE_CONTENDERS]
        clips = MANY_CLIPS.get(label, 24)
        frames = args.frames or MANY_FRAMES
        folder = workdir / f"clips_{width}x{height}"
        print(f"\nwriting {clips} clips of {frames} testsrc2 frames {width}x{height} -> {folder}", flush=True)
        write_clips(folder, width, height, clips, frames)
        for preset in args.presets:
            tallies: dict[str, list[Run]] = {n: [] for n in names}
            errors: dict[str, str] = {}
            loads: list[float] = []
            for rep in range(1, args.repeat + 1):
                for name in names:
                    if name in errors:
                        continue
                    out = workdir / "many_out"
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir()
                    cmd = many_command(name, nvenc, folder, out, preset, args.crf, f"{width}x{height}")
                    loads.append(os.getloadavg()[0])
                    run = run_process(["bash", "-c", cmd], None, args.timeout)
                    check_many(out, run, clips, frames)
                    if not run.ok:
                        errors[name] = run.error
                        print(f"  {name}: {run.error}", flush=True)
                        continue
                    tallies[name].append(run)
                    print(f"  {label} {preset} {rep}/{args.repeat} {name:<24} {run.wall_s:6.2f}s", flush=True)
            title = (
                f"{clips} clips x {frames} frames {width}x{height}, libx264 preset {preset}, crf {args.crf}, "
                f"median of {args.repeat}, load average {min(loads):.1f}-{max(loads):.1f} during the runs"
            )
            report_many(title, clips, frames, names, tallies, errors)
            for name in skipped:
                system = many_ffmpeg(name) == "ffmpeg"
                why = "ffmpeg not on PATH" if system else "imageio-ffmpeg not installed"
                print(f"  note: {name}: skipped ({why})")
    print(
        "\nwall s: the whole command (every process it starts); s/clip: wall / clips; vs: that"
        "\n  command's wall over this one's (>1 = this one is faster); 'all threads': each of the 2"
        "\n  jobs sizes x264's threads for every core instead of its share; peak RSS: the largest"
        "\n  single process; CPU s: user+sys of every process."
    )


def report_many(
    title: str,
    clips: int,
    frames: int,
    names: list[str],
    tallies: dict[str, list[Run]],
    errors: dict[str, str],
) -> None:
    """The table for one (size, preset), with ratios to xargs ffmpeg and the nvenc loop."""
    print(f"\n== {title} ==")
    walls = {
        name: statistics.median(r.wall_s for r in runs)
        for name, runs in tallies.items()
        if runs and name not in errors
    }
    rows = []
    for name in names:
        if name not in walls:
            rows.append([name, "error", *["-"] * 6])
            continue
        wall, runs = walls[name], tallies[name]
        ratios = [walls[ref] / wall if ref in walls else None for ref in ("xargs -P2 ffmpeg", "nvenc loop")]
        rows.append([
            name,
            fmt(wall, ".2f"),
            fmt(wall / clips, ".3f"),
            fmt(clips * frames / wall, ".1f"),
            fmt(ratios[0], ".2f", "x"),
            fmt(ratios[1], ".2f", "x"),
            fmt(max(r.maxrss_mb for r in runs), ".0f"),
            fmt(median([r.cpu_s for r in runs]), ".1f"),
        ])  # fmt: skip
    headers = ["command", "wall s", "s/clip", "fps", "vs xargs ffmpeg", "vs nvenc loop",
               "peak RSS MB", "CPU s"]  # fmt: skip
    print_table(headers, rows)
    if "nvenc loop" in walls and "nvenc -j 1" in walls:
        overhead = (walls["nvenc loop"] - walls["nvenc -j 1"]) / clips
        print(
            f"  per-clip overhead of a process per clip (nvenc loop - nvenc -j 1) / clips: {overhead:.3f} s"
        )
    for name, error in errors.items():
        print(f"  note: {name}: error: {error}")


# ------------------------------------------------------------------------------------
# Memory mode
# ------------------------------------------------------------------------------------


def write_pt(src_npy: Path, dst: Path, count: int) -> Path:
    """``torch.save`` the first ``count`` frames as one uint8 NHWC tensor.

    The tensor views the memory-mapped ``.npy`` (copy-on-write), so saving a
    multi-gigabyte tensor does not need that much private RAM in this process.
    """
    import torch

    frames = np.load(src_npy, mmap_mode="c")[:count]
    torch.save(torch.from_numpy(frames), dst)
    del frames
    return dst


def write_pngs(src_npy: Path, folder: Path) -> list[Path]:
    """Write every frame as a PNG; zlib level 1, as these are inputs, not results."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    frames = np.load(src_npy, mmap_mode="r")
    paths = [folder / f"frame_{index:05d}.png" for index in range(len(frames))]
    for frame, path in zip(frames, paths, strict=True):
        Image.fromarray(np.asarray(frame)).save(path, compress_level=1)
    return paths


def link_prefix(paths: Sequence[Path], folder: Path) -> Path:
    """Make a folder of symlinks to the given frames: shorter sequences cost no disk."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        (folder / path.name).symlink_to(path)
    return folder


def disk_mb(path: Path) -> float:
    """Size on disk of an input: the file, or the PNGs a folder's links point at."""
    if path.is_dir():
        return sum(p.resolve().stat().st_size for p in path.iterdir()) / MB
    return path.stat().st_size / MB


def memory_inputs(workdir: Path, total: int, counts: Sequence[int]) -> list[tuple[str, int, Path]]:
    """Create .npy, .pt and PNG inputs of each length; return (kind, frames, path)."""
    width, height = NAMED_SIZES["1080p"]
    big = workdir / f"mem_{total}.npy"
    gigabytes = total * width * height * 3 / 1e9
    print(f"writing {total} 1080p testsrc2 frames ({gigabytes:.2f} GB) -> {big}")
    write_npy(big, width, height, total)
    inputs: list[tuple[str, int, Path]] = []
    for count in counts:
        npy = workdir / f"mem_{count}.npy"
        inputs.append(("npy", count, big if count == total else copy_npy_prefix(big, npy, count)))
    if importlib.util.find_spec("torch") is None:
        print("  note: pt: skipped (torch not installed)")
    else:
        print("writing .pt inputs (torch.save)", flush=True)
        for count in counts:
            inputs.append(("pt", count, write_pt(big, workdir / f"mem_{count}.pt", count)))
    if importlib.util.find_spec("PIL") is None:
        print("  note: png: skipped (Pillow not installed)")
    else:
        print("writing PNG sequence", flush=True)
        pngs = write_pngs(big, workdir / "png_all")
        for count in counts:
            folder = workdir / f"png_{count}"
            inputs.append(("png", count, link_prefix(pngs[:count], folder)))
    return inputs


def memory_mode(args: argparse.Namespace, workdir: Path) -> None:
    """Encode growing .npy / .pt / PNG inputs with nvenc and print peak RSS per length.

    A streaming pipeline keeps peak RSS roughly flat as the input grows; one that
    holds the whole input grows by about 6.2 MB per 1080p RGB frame.
    """
    total = args.frames or (96 if args.quick else MEMORY_FRAMES)
    counts = sorted({max(1, total // 8), max(1, total // 2), total})
    nvenc = build_contenders(["nvenc"], args.nvenc)[0]
    rows: list[list[str]] = []
    notes: list[str] = []
    dst = workdir / "out_memory.mp4"
    for kind, count, path in memory_inputs(workdir, total, counts):
        dst.unlink(missing_ok=True)
        cmd = nvenc.command(path, dst, "ultrafast", args.crf)
        run = run_process(cmd, timeout_s=args.timeout)
        check_output(dst, run, count)
        dst.unlink(missing_ok=True)
        status = run.error or "ok"
        print(f"  {kind:<3} {count:4d} frames  {run.wall_s:6.2f}s  "
              f"peak RSS {run.maxrss_mb:6.0f} MB  {status}", flush=True)  # fmt: skip
        if run.error:
            notes.append(f"{kind} {count}: error: {run.error}")
        rows.append([
            kind, str(count), f"{count * 1920 * 1080 * 3 / MB:.0f}",
            f"{disk_mb(path):.0f}", f"{run.maxrss_mb:.0f}" if run.wall_s else "-",
            f"{count / run.wall_s:.1f}" if run.ok else "error", f"{run.cpu_s:.1f}",
        ])  # fmt: skip
    print(f"\n== nvenc encode peak memory, 1080p, libx264 ultrafast crf {args.crf} ==")
    headers = ["input", "frames", "raw MB", "file MB", "peak RSS MB", "fps", "CPU s"]
    print_table(headers, rows)
    for note in notes:
        print(f"  note: {note}")
    print(
        "\nraw MB: decoded RGB size of the clip; peak RSS: ru_maxrss of the nvenc"
        "\n  process, which also counts file pages it maps (e.g. an mmap'ed .npy)."
    )


# ------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------


def split_list(text: str) -> list[str]:
    """Parse comma- or space-separated option values."""
    return text.replace(",", " ").split()


def build_parser() -> argparse.ArgumentParser:
    """Options of the benchmark driver and of the internal ``--peer`` mode."""
    parser = argparse.ArgumentParser(
        description="Benchmark nvenc encode against the ffmpeg CLI, naive PyAV and "
        "torchcodec (libx264, same frames, one process each)."
    )
    add = parser.add_argument
    add(
        "--frames",
        type=int,
        default=None,
        help=f"frames per clip (default {FRAMES_1080P} at 1080p, scaled to the same "
        f"pixel count at other sizes); with --memory the longest clip "
        f"(default {MEMORY_FRAMES}, ~3 GB)",
    )
    add(
        "--sizes",
        type=split_list,
        default=["1080p", "720p"],
        help="comma-separated sizes: 2160p 1440p 1080p 720p 480p 360p or WxH (default 1080p,720p)",
    )
    add(
        "--presets",
        type=split_list,
        default=["ultrafast", "medium"],
        help="comma-separated x264 presets (default ultrafast,medium)",
    )
    add(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per peer and setting; the median is shown (default 3)",
    )
    add("--crf", type=int, default=23, help="x264 crf for every peer (default 23)")
    add(
        "--peers",
        type=split_list,
        default=list(PEERS),
        help=f"comma-separated subset of {','.join(PEERS)} (default all)",
    )
    add(
        "--quick",
        action="store_true",
        help="smoke run: 720p, ultrafast, 30 frames, 1 run; with --cases: every case, shorter "
        "clips (a 60, b 30, c 60 frames), 2 rounds (explicit options win)",
    )
    add(
        "--cases",
        action="store_true",
        help="instead: cases (a) 1080p x264 ultrafast, (b) medium, (c) 480p SVT-AV1, (d)/(e) .y4m "
        "transcode (60/600 frames), against the system ffmpeg, the imageio-ffmpeg static build and "
        "encoder-only floors",
    )
    add("--case", type=split_list, default=None, help="with --cases: a subset, e.g. a,d")
    add(
        "--memory",
        action="store_true",
        help="instead: nvenc peak RSS on growing .npy / .pt / PNG inputs",
    )
    add(
        "--many",
        action="store_true",
        help="instead: many short clips (24 x 48 frames at 360p, 6 at 1080p; sizes 360p,1080p, "
        "presets medium,ultrafast unless given): nvenc -j 2 vs xargs -P2 ffmpeg and shell loops",
    )
    add(
        "--commands",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        default=None,
        help="with --many: a comma-separated subset of the commands, e.g. 'nvenc -j 2,xargs -P2 ffmpeg'",
    )
    add(
        "--nvenc",
        default=None,
        help="command line that runs the CLI (default: the nvenc script beside this "
        "Python, else nvenc on PATH, else 'python -m nvenc_cli')",
    )
    add(
        "--workdir",
        type=Path,
        default=None,
        help="keep inputs here (default: a temporary folder, removed at the end)",
    )
    add(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds before a single run is killed (default 900)",
    )
    add("--peer", choices=sorted(PEER_FUNCTIONS), help=argparse.SUPPRESS)
    add("--input", type=Path, help=argparse.SUPPRESS)
    add("--output", type=Path, help=argparse.SUPPRESS)
    add("--peer-preset", default="ultrafast", help=argparse.SUPPRESS)
    add("--floor", choices=("pyav", "torchcodec"), help=argparse.SUPPRESS)
    add("--codec", default="libx264", help=argparse.SUPPRESS)
    add("--size", default="", help=argparse.SUPPRESS)
    add("--options", default="", help=argparse.SUPPRESS)
    add("--report", default="", help=argparse.SUPPRESS)
    return parser  # fmt: skip


def apply_quick(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Let ``--quick`` shrink only the settings the user did not spell out."""
    given = {arg.split("=")[0] for arg in argv}
    if "--sizes" not in given:
        args.sizes = ["720p"]
    if "--presets" not in given:
        args.presets = ["ultrafast"]
    if "--repeat" not in given:
        args.repeat = 1
    if "--frames" not in given and not args.memory:
        args.frames = 30


def describe_environment(nvenc_override: str | None = None) -> None:
    """Print what the numbers depend on, so a rerun elsewhere can be compared."""

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    def ffmpeg_line(exe: str | None, missing: str) -> str:
        if not exe:
            return missing
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stdout
        text = out.split("\n", 1)[0].removeprefix("ffmpeg version ").split(" Copyright")[0] or "?"
        return f"{text} ({exe})"

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"cpus {os.cpu_count()}, load {load}, python {sys.version.split()[0]}")
    print(f"ffmpeg {ffmpeg_line(shutil.which('ffmpeg'), 'not on PATH')}")
    print(f"ffmpeg-static {ffmpeg_line(static_ffmpeg(), 'not installed (pip install imageio-ffmpeg)')}")
    dists = ("nvenc-cli", "av", "numpy", "torch", "torchcodec", "imageio-ffmpeg")
    print(", ".join(f"{dist} {version(dist)}" for dist in dists))
    print(f"PyAV's FFmpeg {libav_versions()}")
    program = nvenc_program(nvenc_override)
    print(f"nvenc: {shlex.join(program)} (runs {nvenc_location(program)})")
    if os.getloadavg()[0] > 0.5:
        print("warning: the machine is busy; every peer competes for the same cores, so expect noise")


def libav_versions() -> str:
    """The libavcodec/libavformat PyAV is built on, and its x264 / SVT-AV1 builds if known."""
    try:
        import av
    except ImportError:
        return "-"
    versions = getattr(av, "library_versions", {})
    parts = [f"{lib} {'.'.join(map(str, ver))}" for lib, ver in versions.items() if lib in ("libavcodec",)]
    return ", ".join(parts) or "?"


def nvenc_location(program: Sequence[str]) -> str:
    """Where the ``nvenc_cli`` package the benchmark runs comes from (the interpreter's view).

    With an editable install elsewhere and a checkout on PYTHONPATH this shows which of
    the two is measured.
    """
    interpreter = program[0] if program[-2:] == ["-m", "nvenc_cli"] else sys.executable
    if Path(program[0]).is_file() and program[-2:] != ["-m", "nvenc_cli"]:
        first = Path(program[0]).read_bytes()[:200].split(b"\n", 1)[0]
        if first.startswith(b"#!"):
            interpreter = first[2:].decode().strip().split()[0]
    code = "import nvenc_cli, os; print(os.path.dirname(nvenc_cli.__file__))"
    result = subprocess.run([interpreter, "-c", code], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "nvenc_cli not importable"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one peer (``--peer``), the throughput tables, or the memory table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.peer:
        if args.input is None or args.output is None:
            raise SystemExit("bench: --peer needs --input and --output")
        PEER_FUNCTIONS[args.peer](args.input, args.output, args.peer_preset, args.crf)
        return 0
    if args.floor:
        import cases

        return cases.run_floor(args)
    if args.cases:
        given = {arg.split("=")[0] for arg in argv}
        if "--repeat" not in given:
            args.repeat = 2 if args.quick else 3
    elif args.quick:
        apply_quick(args, argv)
    if args.many:
        given = {arg.split("=")[0] for arg in argv}
        if "--sizes" not in given:
            args.sizes = ["360p", "1080p"]
        if "--presets" not in given:
            args.presets = ["medium", "ultrafast"]
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        raise SystemExit(f"bench: unknown peer {unknown[0]}; pick from {PEERS}")
    if args.repeat < 1 or (args.frames is not None and args.frames < 2):
        raise SystemExit("bench: --repeat must be >= 1 and --frames >= 2")
    if importlib.util.find_spec("av") is None:
        raise SystemExit("bench: PyAV is needed to render testsrc2 (pip install av)")

    describe_environment(args.nvenc)
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nvenc-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.memory:
            memory_mode(args, workdir)
        elif args.many:
            many_mode(args, workdir)
        elif args.cases:
            import cases

            cases.cases_mode(args, workdir)
        else:
            throughput_mode(args, workdir)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
