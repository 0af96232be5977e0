"""Fixed cases against two FFmpeg builds and encoder-only floors (``bench.py --cases``).

Every case is run by each contender once per round, the order rotated from round to
round, so load from other users of the machine falls on every contender alike; the
tables show, per contender, the median over rounds of ``peer time / nvenc time`` in the
same round (>1: nvenc is faster), not a ratio of medians.

Contenders (each in its own process, started through ``bench.run_process``):

* ``nvenc``            the CLI on the case's input (RGB ``.npy``, or the ``.y4m``).
* ``ffmpeg X.Y pipe``  raw rgb24 piped to each ffmpeg build (Debian's ``/usr/bin/ffmpeg``
                       and the static build in the ``imageio-ffmpeg`` wheel, the newest
                       FFmpeg the package registries offer): the same job as nvenc's.
* ``ffmpeg X.Y floor`` each ffmpeg reading ready yuv420p planes from a file: no colour
                       conversion, so this is the encoder plus process start-up only.
* ``pyav floor``       PyAV frames made from the yuv420p planes before timing, then only
                       the ``encode``/``mux`` loop timed, in process.
* ``torchcodec``       ``VideoEncoder(...).to_file`` timed in process, on an RGB tensor
                       made before timing (torchcodec converts to yuv420p itself).

The transcode cases (d: 60 frames, e: 600) run ``nvenc encode in.y4m -o out.mp4 --preset ultrafast``
against ``ffmpeg -i in.y4m -c:v libx264 -preset ultrafast out.mp4`` of both builds, and
measures each output's PSNR against the source planes (decoded with PyAV).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import bench

RATE = bench.RATE


@dataclass(frozen=True)
class Case:
    """One encode job: its input, encoder and settings."""

    key: str
    width: int
    height: int
    frames: int
    codec: str
    preset: str
    crf: int
    options: tuple[tuple[str, str], ...] = ()
    transcode: bool = False

    @property
    def size(self) -> str:
        """``WxH`` as ffmpeg's ``-s`` spells it."""
        return f"{self.width}x{self.height}"

    def title(self) -> str:
        """One line naming what the case encodes."""
        extra = "".join(f" {k}={v}" for k, v in self.options)
        source = "1080p yuv420p .y4m transcode" if self.transcode else f"{self.size} RGB frames"
        return (
            f"({self.key}) {source}, {self.frames} frames, {self.codec} preset {self.preset} "
            f"crf {self.crf}{extra}"
        )


def default_cases(quick: bool) -> list[Case]:
    """The cases of the benchmark; ``quick`` shortens the slow ones, keeping every case."""
    return [
        Case("a", 1920, 1080, 60 if quick else 120, "libx264", "ultrafast", 23),
        Case("b", 1920, 1080, 30 if quick else 120, "libx264", "medium", 23),
        Case("c", 640, 480, 60 if quick else 300, "libsvtav1", "8", 30, (("g", "2"),)),
        Case("d", 1920, 1080, 60, "libx264", "ultrafast", 23, transcode=True),
        # the same transcode on a 20 s clip, where a process's fixed start-up weighs less
        Case("e", 1920, 1080, 120 if quick else 600, "libx264", "ultrafast", 23, transcode=True),
    ]


# ------------------------------------------------------------------------------------
# FFmpeg builds
# ------------------------------------------------------------------------------------


def ffmpeg_version(exe: str) -> str:
    """The version an ffmpeg binary reports, e.g. ``5.1.9-0+deb12u1``."""
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stdout
    first = out.split("\n", 1)[0]
    return first.removeprefix("ffmpeg version ").split(" Copyright")[0] or "?"


def short_version(version: str) -> str:
    """``major.minor`` of a version string (``5.1.9-0+deb12u1`` -> ``5.1``), for labels."""
    match = re.match(r"n?(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else version


def ffmpeg_builds() -> list[tuple[str, str, str]]:
    """(label, executable, full version) of the system ffmpeg and the wheel's static one.

    The static build comes from ``imageio_ffmpeg.get_ffmpeg_exe()``; either may be
    missing, and a build whose version equals one already listed is not run twice.
    """
    found: list[tuple[str, str, str]] = []
    candidates = [shutil.which("ffmpeg")]
    static = bench.static_ffmpeg()
    candidates.append(static)
    for exe in candidates:
        if not exe:
            continue
        version = ffmpeg_version(exe)
        if any(version == v for _, _, v in found):
            continue
        found.append((f"ffmpeg {short_version(version)}", exe, version))
    return found


X264_CORE = re.compile(rb"x264 - core (\d+)")
SVT_VERSION = re.compile(r"SVT \[version\]:\s*(?:SVT-AV1 Encoder Lib )?(\S+)")

PYAV_ENCODERS = """
import io, av
for codec, fmt in (("libx264", "h264"), ("libsvtav1", "ivf")):
    sink = io.BytesIO()
    with av.open(sink, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=30)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        out.mux(stream.encode(av.VideoFrame(64, 64, "yuv420p")))
        out.mux(stream.encode(None))
    if codec == "libx264":
        import sys
        sys.stdout.buffer.write(sink.getvalue()[:4096])
"""


def encoder_versions(stdout: bytes, stderr: str) -> str:
    """``x264 core N, SVT-AV1 vX`` from a one-frame x264 stream and an SVT-AV1 log."""
    x264 = X264_CORE.search(stdout)
    svt = SVT_VERSION.search(stderr)
    return f"x264 core {x264[1].decode() if x264 else '?'}, SVT-AV1 {svt[1] if svt else '?'}"


def ffmpeg_encoders(exe: str) -> str:
    """The x264 and SVT-AV1 an ffmpeg build links: a one-frame encode with each, read back.

    x264 writes its version into the stream it makes; SVT-AV1 logs its own at start.
    """
    base = [exe, "-nostdin", "-hide_banner", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1"]
    x264 = subprocess.run([*base, "-c:v", "libx264", "-f", "h264", "-"], capture_output=True, check=False)
    svt = subprocess.run([*base, "-c:v", "libsvtav1", "-f", "null", "-"], capture_output=True, check=False)
    return encoder_versions(x264.stdout, svt.stderr.decode(errors="replace"))


def pyav_encoders() -> str:
    """The x264 and SVT-AV1 inside PyAV's wheel, found the same way as for ffmpeg."""
    env = {**bench.os.environ, "SVT_LOG": "3"}
    done = subprocess.run([sys.executable, "-c", PYAV_ENCODERS], capture_output=True, env=env, check=False)
    return encoder_versions(done.stdout, done.stderr.decode(errors="replace"))


def print_encoder_versions(builds: Sequence[tuple[str, str, str]]) -> None:
    """One line per encoding library: each ffmpeg build's and PyAV's x264 and SVT-AV1."""
    for label, exe, version in builds:
        print(f"{label} ({version}): {ffmpeg_encoders(exe)}")
    print(f"PyAV {bench.importlib.metadata.version('av')}: {pyav_encoders()}")


# ------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------


def write_yuv_from_npy(npy: Path, dst: Path) -> Path:
    """Convert RGB frames to raw yuv420p planes once, with PyAV (FFmpeg's swscale).

    The floors then read pictures already in the encoder's format, so what they time is
    the encoder, not a colour conversion.
    """
    import av

    frames = np.load(npy, mmap_mode="r")
    with dst.open("wb") as out:
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            out.write(frame.reformat(format="yuv420p").to_ndarray().tobytes())
    return dst


def write_y4m(ffmpeg: str, case: Case, dst: Path) -> Path:
    """Render testsrc2 as a yuv420p ``.y4m`` with ffmpeg (the transcode case's source)."""
    spec = f"testsrc2=size={case.size}:rate={RATE}"
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", spec]
    cmd += ["-frames:v", str(case.frames), "-pix_fmt", "yuv420p", "-y", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


def y4m_to_yuv(ffmpeg: str, y4m: Path, dst: Path) -> Path:
    """Strip a ``.y4m`` to its raw planes (no conversion: the same pixels)."""
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(y4m)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-y", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


# ------------------------------------------------------------------------------------
# In-process floors (``bench.py --floor NAME``): only the encode is timed
# ------------------------------------------------------------------------------------


def parse_options(text: str) -> dict[str, str]:
    """``g=2,x=y`` -> ``{"g": "2", "x": "y"}``; empty text gives no options."""
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    return {key: value for key, value in pairs}


def floor_pyav(args: argparse.Namespace) -> float:
    """Encode ready yuv420p frames with PyAV; return the seconds of the encode alone."""
    import av

    width, height = (int(v) for v in args.size.split("x"))
    planes = np.fromfile(args.input, dtype=np.uint8).reshape(-1, height * 3 // 2, width)
    frames = [av.VideoFrame.from_ndarray(p, format="yuv420p") for p in planes]
    options = {"crf": str(args.crf), "preset": args.peer_preset, **parse_options(args.options)}
    start = time.perf_counter()
    with av.open(str(args.output), mode="w") as container:
        stream = container.add_stream(args.codec, rate=RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        for frame in frames:
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return time.perf_counter() - start


def floor_torchcodec(args: argparse.Namespace) -> float:
    """Encode an RGB tensor with torchcodec; return the seconds of the encode call alone."""
    import torch
    from torchcodec.encoders import VideoEncoder

    frames = torch.from_numpy(np.load(args.input)).permute(0, 3, 1, 2).contiguous()
    preset: str | int = int(args.peer_preset) if args.peer_preset.isdigit() else args.peer_preset
    extra = {k: int(v) if v.isdigit() else v for k, v in parse_options(args.options).items()}
    start = time.perf_counter()
    encoder = VideoEncoder(frames, frame_rate=RATE)
    encoder.to_file(
        str(args.output),
        codec=args.codec,
        pixel_format="yuv420p",
        crf=args.crf,
        preset=preset,
        extra_options=extra or None,
    )
    return time.perf_counter() - start


FLOORS = {"pyav": floor_pyav, "torchcodec": floor_torchcodec}


def run_floor(args: argparse.Namespace) -> int:
    """The ``--floor`` entry point: encode, then write the timed seconds to ``--report``."""
    seconds = FLOORS[args.floor](args)
    Path(args.report).write_text(f"{seconds!r}\n")
    return 0


# ------------------------------------------------------------------------------------
# Contenders of a case
# ------------------------------------------------------------------------------------


@dataclass
class Entrant:
    """One contender of a case: its argv, what it reads, and how its time is taken."""

    name: str
    what: str
    argv: list[str]
    feed: Path | None = None
    report: Path | None = None  # in-process timing written here; else process wall


@dataclass
class Inputs:
    """The files of one case: RGB ``.npy`` (or ``.y4m``) and the same pixels as yuv420p."""

    source: Path
    yuv: Path


def entrants(case: Case, inputs: Inputs, nvenc: list[str], workdir: Path) -> list[Entrant]:
    """Every contender of ``case`` whose tool is present, writing into ``workdir``."""
    out = {"crf": str(case.crf), "preset": case.preset}
    ff_extra = [item for (k, v) in case.options for item in (f"-{k}", v)]
    quiet = ["-nostdin", "-hide_banner", "-loglevel", "error"]
    found: list[Entrant] = []

    def dst(name: str) -> str:
        return str(workdir / f"out_{case.key}_{re.sub(r'[^a-z0-9]+', '_', name)}.mp4")

    if case.transcode:
        found.append(
            Entrant(
                "nvenc",
                "y4m -> CLI",
                [
                    *nvenc,
                    "encode",
                    str(inputs.source),
                    "-o",
                    dst("nvenc"),
                    "--preset",
                    case.preset,
                    "-y",
                    "-q",
                ],
            )
        )
        for label, exe, _ in ffmpeg_builds():
            argv = [exe, *quiet, "-i", str(inputs.source), "-c:v", case.codec, "-preset", case.preset]
            found.append(Entrant(label, "y4m -> CLI", [*argv, "-y", dst(label)]))
    else:
        argv = [*nvenc, "encode", str(inputs.source), "-o", dst("nvenc"), "-c", case.codec]
        argv += ["--preset", case.preset, "--crf", out["crf"]]
        argv += [item for k, v in case.options for item in ("-x", f"{k}={v}")]
        found.append(Entrant("nvenc", ".npy RGB -> CLI", [*argv, "-y", "-q"]))
        encode = ["-c:v", case.codec, "-preset", case.preset, "-crf", out["crf"], *ff_extra]
        for label, exe, _ in ffmpeg_builds():
            pipe = [exe, *quiet, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", case.size, "-r", str(RATE)]
            pipe += ["-i", "-", *encode, "-pix_fmt", "yuv420p", "-y", dst(label + " pipe")]
            found.append(Entrant(f"{label} pipe", "rgb24 stdin", pipe, feed=inputs.source))
    for label, exe, _ in ffmpeg_builds():
        floor = [exe, *quiet, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", case.size, "-r", str(RATE)]
        floor += ["-i", str(inputs.yuv), "-c:v", case.codec, "-preset", case.preset, "-crf", out["crf"]]
        floor += [*ff_extra, "-y", dst(label + " floor")]
        found.append(Entrant(f"{label} floor", "yuv420p file", floor))
    script = [sys.executable, str(Path(bench.__file__).resolve())]
    common = ["--codec", case.codec, "--peer-preset", case.preset, "--crf", out["crf"]]
    common += ["--size", case.size, "--options", ",".join(f"{k}={v}" for k, v in case.options)]
    if importlib.util.find_spec("av") is not None:
        report = workdir / f"time_{case.key}_pyav"
        argv = [*script, "--floor", "pyav", "--input", str(inputs.yuv), "--output", dst("pyav floor")]
        found.append(
            Entrant(
                "pyav floor",
                "yuv420p frames, encode()",
                [*argv, *common, "--report", str(report)],
                report=report,
            )
        )
    if importlib.util.find_spec("torchcodec") is not None and not case.transcode:
        report = workdir / f"time_{case.key}_torchcodec"
        argv = [*script, "--floor", "torchcodec", "--input", str(inputs.source), "--output"]
        argv += [dst("torchcodec"), *common, "--report", str(report)]
        found.append(Entrant("torchcodec", "RGB tensor, to_file()", argv, report=report))
    return found


def output_path(entrant: Entrant) -> Path:
    """The output file an entrant writes (the argv entry after ``-o``/``--output``/``-y``)."""
    argv = entrant.argv
    for flag in ("-o", "--output"):
        if flag in argv:
            return Path(argv[argv.index(flag) + 1])
    return Path(argv[-1])


# ------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------


def plane_psnr(squared_error: float, samples: int) -> float:
    """PSNR in dB of 8-bit samples from their summed squared error (inf when identical)."""
    if squared_error == 0:
        return float("inf")
    return float(10 * np.log10(255.0**2 * samples / squared_error))


def yuv420p_planes(frame: object) -> list[np.ndarray]:
    """The Y, Cb and Cr planes of a decoded yuv420p frame, as stored (no conversion)."""
    packed = frame.to_ndarray()  # type: ignore[attr-defined]  # (H * 3 / 2, W) for yuv420p
    height, width = frame.height, frame.width  # type: ignore[attr-defined]
    chroma = packed[height:].reshape(2, height // 2, width // 2)
    return [packed[:height], chroma[0], chroma[1]]


def psnr(encoded: Path, reference: Path) -> tuple[float, float, float] | None:
    """PSNR (Y, Cb, Cr) of ``encoded`` against ``reference``, frame by frame in order.

    Computed on the decoded planes with PyAV rather than with the ffmpeg ``psnr`` filter:
    FFmpeg 7.1 and later negotiate colour space in filter graphs, so an untagged ``.y4m``
    against a bt709-tagged mp4 would be colour-converted before comparing.  None when the
    files differ in frame count, size or pixel format.
    """
    import av

    errors = [0.0, 0.0, 0.0]
    samples = [0, 0, 0]
    count = 0
    with av.open(str(encoded)) as out, av.open(str(reference)) as ref:
        for got, want in itertools.zip_longest(out.decode(video=0), ref.decode(video=0)):
            if got is None or want is None:
                return None  # one file has more frames than the other
            if (got.format.name, got.width, got.height) != ("yuv420p", want.width, want.height):
                return None
            if want.format.name != "yuv420p":
                return None
            for index, (a, b) in enumerate(zip(yuv420p_planes(got), yuv420p_planes(want), strict=True)):
                diff = a.astype(np.int32) - b.astype(np.int32)
                errors[index] += float(np.square(diff).sum())
                samples[index] += diff.size
            count += 1
    if count == 0:
        return None
    y, cb, cr = (plane_psnr(e, n) for e, n in zip(errors, samples, strict=True))
    return y, cb, cr


@dataclass
class Tally:
    """Per-contender seconds per round (None for a round it failed), and its output size."""

    seconds: list[float | None] = field(default_factory=list)
    out_bytes: int = 0
    error: str = ""


def round_ratios(nvenc: Sequence[float | None], peer: Sequence[float | None]) -> list[float]:
    """``peer / nvenc`` seconds for every round both finished (>1: nvenc faster)."""
    return [p / n for n, p in zip(nvenc, peer, strict=True) if n and p]


def rotated(items: Sequence[Entrant], shift: int) -> list[Entrant]:
    """The contenders in round order: each round starts one place further on."""
    shift %= max(1, len(items))
    return [*items[shift:], *items[:shift]]


def run_case(
    case: Case, inputs: Inputs, nvenc: list[str], workdir: Path, rounds: int, timeout: float
) -> tuple[list[Entrant], dict[str, Tally], list[float]]:
    """Run every contender ``rounds`` times, interleaved; return tallies and load averages."""
    contenders = entrants(case, inputs, nvenc, workdir)
    tallies = {e.name: Tally() for e in contenders}
    loads: list[float] = []
    for number in range(rounds):
        for entrant in rotated(contenders, number):
            tally = tallies[entrant.name]
            if tally.error:
                tally.seconds.append(None)
                continue
            dst = output_path(entrant)
            dst.unlink(missing_ok=True)
            loads.append(bench.os.getloadavg()[0])
            run = bench.run_process(entrant.argv, entrant.feed, timeout)
            bench.check_output(dst, run, case.frames)
            if run.ok and entrant.report is not None:
                run.wall_s = float(entrant.report.read_text())
            if not run.ok:
                tally.error = run.error
                tally.seconds.append(None)
                print(f"  {entrant.name}: {run.error}", flush=True)
                continue
            tally.seconds.append(run.wall_s)
            tally.out_bytes = run.out_bytes
            step = f"({case.key}) round {number + 1}/{rounds}"
            print(f"  {step} {entrant.name:<18} {run.wall_s:6.2f}s", flush=True)
    return contenders, tallies, loads


def report_case(
    case: Case,
    contenders: Sequence[Entrant],
    tallies: dict[str, Tally],
    loads: Sequence[float],
    psnrs: dict[str, tuple[float, float, float] | None],
) -> dict[str, float | None]:
    """Print the case's table; return each contender's median nvenc/peer speed ratio."""
    print(
        f"\n== {case.title()}, {len(tallies['nvenc'].seconds)} rounds, "
        f"load {min(loads):.1f}-{max(loads):.1f} =="
    )
    base = tallies["nvenc"].seconds
    ratios: dict[str, float | None] = {}
    rows = []
    for entrant in contenders:
        tally = tallies[entrant.name]
        done = [s for s in tally.seconds if s]
        per_round = round_ratios(base, tally.seconds) if entrant.name != "nvenc" else []
        ratio = statistics.median(per_round) if per_round else None
        ratios[entrant.name] = ratio
        seconds = statistics.median(done) if done else None
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}" if per_round else "-"
        row = [
            entrant.name,
            entrant.what,
            bench.fmt(seconds, ".2f"),
            bench.fmt(case.frames / seconds if seconds else None, ".1f"),
            "1" if entrant.name == "nvenc" else bench.fmt(ratio, ".2f"),
            spread,
            bench.fmt(tally.out_bytes / bench.MB if done else None, ".2f"),
        ]
        if psnrs:
            values = psnrs.get(entrant.name)
            row.append(" ".join(f"{v:.2f}" for v in values[:3]) if values else "-")
        rows.append(row)
    headers = ["contender", "input, timed", "s", "fps", "nvenc/peer", "per round", "out MB"]
    if psnrs:
        headers.append("PSNR Y Cb Cr dB")
    bench.print_table(headers, rows)
    for name, tally in tallies.items():
        if tally.error:
            print(f"  note: {name}: error: {tally.error}")
    return ratios


def cases_mode(args: argparse.Namespace, workdir: Path) -> None:
    """Run the cases (``--case`` picks some) and print a table each, then a summary."""
    nvenc = bench.nvenc_program(args.nvenc)
    builds = ffmpeg_builds()
    if not builds:
        raise SystemExit(
            "bench: --cases needs an ffmpeg (apt-get install ffmpeg or pip install imageio-ffmpeg)"
        )
    maker = builds[-1][1]
    print_encoder_versions(builds)
    wanted = set(args.case) if args.case else None
    rounds = args.repeat
    summary: list[tuple[Case, dict[str, float | None]]] = []
    for case in default_cases(args.quick):
        if wanted and case.key not in wanted:
            continue
        if case.transcode:
            source = write_y4m(maker, case, workdir / f"in_{case.key}.y4m")
            inputs = Inputs(source, y4m_to_yuv(maker, source, workdir / f"in_{case.key}.yuv"))
        else:
            npy = bench.write_npy(workdir / f"in_{case.key}.npy", case.width, case.height, case.frames)
            inputs = Inputs(npy, write_yuv_from_npy(npy, workdir / f"in_{case.key}.yuv"))
        print(f"\n{case.title()}: {rounds} rounds", flush=True)
        contenders, tallies, loads = run_case(case, inputs, nvenc, workdir, rounds, args.timeout)
        psnrs = {}
        if case.transcode:
            psnrs = {
                e.name: psnr(output_path(e), inputs.source) for e in contenders if not tallies[e.name].error
            }
        summary.append((case, report_case(case, contenders, tallies, loads, psnrs)))
        for entrant in contenders:
            output_path(entrant).unlink(missing_ok=True)
    print_summary(summary)
    print(
        "\ns: median seconds over rounds: the whole process for nvenc, the pipes and the ffmpeg"
        "\n  floors; the encode call alone (frames made beforehand) for pyav floor and torchcodec;"
        "\n  nvenc/peer: median over rounds of (peer s / nvenc s) in the same round, >1 = nvenc"
        "\n  faster; per round: the lowest and highest of those ratios; floor: ready yuv420p planes"
        "\n  in, no colour conversion; PSNR: each output's decoded planes against the .y4m's."
    )


def print_summary(summary: Sequence[tuple[Case, dict[str, float | None]]]) -> None:
    """One row per case, one column per contender: the median nvenc/peer ratios."""
    names: list[str] = []
    for _, ratios in summary:
        names += [n for n in ratios if n != "nvenc" and n not in names]
    # the CLI-against-CLI columns first, then the floors, each in the order first seen
    names.sort(key=lambda n: "floor" in n or n == "torchcodec")
    print("\n== nvenc/peer speed, median of per-round ratios (>1: nvenc faster) ==")
    rows = [
        [f"({case.key}) {case.codec} {case.preset}", *(bench.fmt(r.get(n), ".2f") for n in names)]
        for case, r in summary
    ]
    bench.print_table(["case", *names], rows)
