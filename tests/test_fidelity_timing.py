"""Timing: every frame, once, in order, at exact rational timestamps from pts 0.

The CV-CUDA sample dropped its last frames and shifted the rest; float frame rates drift
over an hour. These tests read the files back with ffprobe and PyAV and compare every
timestamp with Fractions, for B-frame and lookahead encoders alike.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from fidelity_refs import decode_frames, marked_frames, rational, read_marks, stream_facts

from nvenc_cli.frames import FrameInfo
from nvenc_cli.options import EncodeOptions, parse_fps
from nvenc_cli.pipeline import Job
from nvenc_cli.plan import make_plan

COUNT = 13  # odd, and more than one GOP's worth of B-frames and lookahead at 64x48
HOUR_AT_NTSC = 107892  # frames in one hour at 30000/1001, rounded up
MATROSKA_TICK = Fraction(1, 1000)  # FFmpeg's Matroska muxer: 1 ms timestamps


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("timing") / "marked.npy"
    np.save(path, marked_frames(COUNT))
    return path


def encode(src: Path, out: Path, *args: str) -> None:
    proc = run_cli("encode", src, "-o", out, "-q", *args)
    assert proc.returncode == 0, proc.stderr.decode()


def matroska_ms(index: int, fps: Fraction) -> int:
    """Where FFmpeg puts frame ``index`` in a 1 ms time base (round half away from zero)."""
    return floor(Fraction(index * 1000) / fps + Fraction(1, 2))


def check_timing(path: Path, count: int, fps: Fraction) -> None:
    """Frame count, order, rate and every timestamp, exact for the container's time base.

    MP4/MOV/AVI take a time base that holds 1/fps exactly, so pts k must be k/fps to
    the tick and the stream lasts count/fps. Matroska/WebM store 1 ms ticks, so pts k
    must be k/fps rounded to the nearest millisecond (never accumulated, so never
    drifting).
    """
    facts = stream_facts(path)
    stream, fmt = facts["stream"], facts["format"]
    assert int(stream["nb_read_frames"]) == count
    assert rational(stream["r_frame_rate"]) == fps
    tb = rational(stream["time_base"])
    pts = sorted(int(p["pts"]) for p in facts["packets"])
    frames = decode_frames(path)
    assert read_marks(frames, count) == list(range(count)), "frames dropped, repeated or reordered"
    assert [f.pts for f in frames] == pts
    if tb == MATROSKA_TICK:
        assert pts == [matroska_ms(k, fps) for k in range(count)]
        return
    assert pts == [Fraction(k) / fps / tb for k in range(count)]
    assert int(stream["duration_ts"]) * tb == count / fps
    assert {int(p["duration"]) * tb for p in facts["packets"]} == {1 / fps}
    assert abs(rational(fmt["duration"]) - count / fps) <= Fraction(1, 2_000_000)
    assert rational(fmt["start_time"]) == 0


@pytest.mark.parametrize("text", ["29.97", "30000/1001"])
def test_plan_time_base_is_exactly_1001_over_30000(text: str) -> None:
    plan = make_plan(EncodeOptions(fps=parse_fps(text), device="cpu"), FrameInfo(64, 48), "mp4")
    assert plan.time_base == Fraction(1001, 30000)
    assert int(plan.format_options["movie_timescale"]) % 30000 == 0


@pytest.mark.parametrize(
    ("text", "fps"),
    [("23.976", Fraction(24000, 1001)), ("59.94", Fraction(60000, 1001)), ("25", Fraction(25))],
)
def test_decimal_rates_are_read_as_exact_fractions(text: str, fps: Fraction) -> None:
    assert parse_fps(text) == fps


def test_an_hour_at_30000_over_1001_is_whole_ticks() -> None:
    """An hour of frames lands on integer ticks of both MP4 timescales: no drift, ever.

    Each timestamp is frame × (1001/30000) computed exactly, not a sum of float
    durations, and 29.97 itself is read as 30000/1001 (taken literally it would drift
    3.6 ms an hour against what players assume).
    """
    plan = make_plan(EncodeOptions(fps=parse_fps("29.97"), device="cpu"), FrameInfo(64, 48), "mp4")
    track = Fraction(1, 30000)
    movie = Fraction(1, int(plan.format_options["movie_timescale"]))
    for frame in (1, 1799, 53946, HOUR_AT_NTSC):
        at = frame * plan.time_base
        assert (at / track).denominator == 1 and (at / movie).denominator == 1
    assert HOUR_AT_NTSC * plan.time_base == Fraction(HOUR_AT_NTSC * 1001, 30000)
    assert abs(HOUR_AT_NTSC * plan.time_base - HOUR_AT_NTSC / Fraction("29.97")) > Fraction(3, 1000)


@pytest.mark.parametrize("container", ["mp4", "matroska"])
def test_timestamps_an_hour_in_are_exact(tmp_path: Path, container: str) -> None:
    """The pipeline's own session and muxer, started an hour in at 30000/1001."""
    fps = Fraction(30000, 1001)
    options = EncodeOptions(fps=fps, codec="libx264", preset="ultrafast", device="cpu")
    plan = make_plan(options, FrameInfo(64, 48), container)
    out = tmp_path / ("hour.mp4" if container == "mp4" else "hour.mkv")
    job = Job(plan, out)
    frames = marked_frames(5)
    start = HOUR_AT_NTSC - 2
    job.encode(job.convert(frames, start), len(frames))
    job.finish()
    facts = stream_facts(out)
    tb = rational(facts["stream"]["time_base"])
    pts = sorted(int(p["pts"]) for p in facts["packets"])
    if container == "mp4":
        assert pts == [Fraction(start + k) / fps / tb for k in range(5)]
    else:
        assert pts == [matroska_ms(start + k, fps) for k in range(5)]


@pytest.mark.parametrize("rate", ["24", "25", "30000/1001", "60"])
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_every_frame_at_every_rate(tmp_path: Path, marked: Path, rate: str, ext: str) -> None:
    """libx264 with its default B-frames and lookahead, four rates, two containers."""
    out = tmp_path / f"out.{ext}"
    encode(marked, out, "-c", "libx264", "--preset", "fast", "-r", rate)
    check_timing(out, COUNT, parse_fps(rate))


CODECS = [
    ("libx264", "mp4"),
    ("libx265", "mp4"),
    ("libsvtav1", "mp4"),
    ("libvpx-vp9", "webm"),
    ("ffv1", "mkv"),
    ("prores_ks", "mov"),
    ("png", "mov"),
    ("mpeg4", "avi"),
]


@pytest.mark.parametrize(("codec", "ext"), CODECS, ids=[c for c, _ in CODECS])
def test_every_codec_keeps_every_frame(tmp_path: Path, marked: Path, codec: str, ext: str) -> None:
    out = tmp_path / f"out.{ext}"
    encode(marked, out, "-c", codec, "-r", "30000/1001")
    check_timing(out, COUNT, Fraction(30000, 1001))


@pytest.mark.parametrize(("codec", "ext"), CODECS, ids=[c for c, _ in CODECS])
def test_a_one_frame_video(tmp_path: Path, codec: str, ext: str) -> None:
    """One frame in, one frame out at pts 0, lasting exactly one frame."""
    src = tmp_path / "one.npy"
    np.save(src, marked_frames(1))
    out = tmp_path / f"one.{ext}"
    encode(src, out, "-c", codec, "-r", "30000/1001")
    check_timing(out, 1, Fraction(30000, 1001))


def test_mpegts_timestamps_are_exact_after_the_reorder_delay(tmp_path: Path, marked: Path) -> None:
    """MPEG-TS cannot store a negative dts or an edit list, so the muxer shifts the whole
    stream by the B-frame delay; the frame spacing stays exactly 1001/30000 s."""
    out = tmp_path / "out.ts"
    encode(marked, out, "-c", "libx264", "-r", "30000/1001")
    facts = stream_facts(out)
    tb = rational(facts["stream"]["time_base"])
    pts = sorted(int(p["pts"]) for p in facts["packets"])
    assert len(pts) == COUNT
    assert [(p - pts[0]) * tb for p in pts] == [Fraction(1001 * k, 30000) for k in range(COUNT)]
    assert read_marks(decode_frames(out), COUNT) == list(range(COUNT))


def test_an_impossible_dts_is_repaired_in_decode_order() -> None:
    """libx265 sometimes returns a lone frame with an uninitialised dts; MP4 would then
    refuse the file. Valid reordering (dts a few frames behind pts) is left alone."""
    import av

    from nvenc_cli.backends.cpu import _repair_dts

    def packet(pts: int, dts: int) -> av.Packet:
        made = av.Packet(b"\0")
        made.pts, made.dts = pts, dts
        return made

    garbage = packet(0, -2459565876494606882)
    assert _repair_dts(garbage, None) == 0 and garbage.dts == 0
    reordered = [packet(0, -2), packet(4, -1), packet(2, 0), packet(1, 1), packet(3, 2)]
    last = None
    for made in reordered:
        last = _repair_dts(made, last)
    assert [p.dts for p in reordered] == [-2, -1, 0, 1, 2]
    stray = packet(5, 1 << 40)
    assert _repair_dts(stray, 2) == 3
