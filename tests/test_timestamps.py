"""Per-frame timestamps in, the same timestamps out: every container, every door.

Each output is decoded (PyAV, and ffprobe where installed) and every frame's time compared
with the one given, within one tick of the stream's time base.
"""

from __future__ import annotations

import json
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import nvenc_cli
from nvenc_cli import testsrc
from tests.conftest import ffprobe, run_cli

# Irregular on purpose: gaps from 10 ms to 750 ms, and a 0.5 ms detail (0.1335).
TIMES = [0.0, 0.033, 0.1, 0.1335, 0.5, 0.51, 0.52, 1.0, 1.25, 2.0]


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return testsrc.batch(64, 48, len(TIMES))


def frame_times(path: Path) -> tuple[list[Fraction], Fraction, Fraction]:
    """Every decoded frame's time in seconds, the stream's time base and start time."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        start = Fraction(stream.start_time or 0) * base
        times = [Fraction(frame.pts) * frame.time_base for frame in container.decode(stream)]
    return times, base, start


def assert_times(
    path: Path, expected: list[float], tick: Fraction | None = None, relative: bool = False
) -> None:
    times, base, start = frame_times(path)
    assert len(times) == len(expected)
    tolerance = tick if tick is not None else base
    for got, want in zip(times, expected, strict=True):
        if relative:  # MPEG-TS/NUT: the muxer shifts the stream so no decode time is negative
            got = got - start + Fraction(repr(expected[0]))
        assert abs(got - Fraction(repr(want))) <= tolerance / 2 + Fraction(1, 10**9), (path.name, times)


def probe_times(path: Path) -> list[float]:
    """Every frame's presentation time as Debian's ffprobe reads it (skips without it)."""
    import shutil
    import subprocess

    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    values = (line.strip().strip(",") for line in out.split())
    return sorted(float(v) for v in values if v not in ("", "N/A"))


@pytest.mark.parametrize(
    ("ext", "tick", "relative"),
    [
        ("mp4", None, False),
        ("mov", None, False),
        ("mkv", Fraction(1, 1000), False),
        ("webm", Fraction(1, 1000), False),
        ("ts", Fraction(1, 90000), True),
        ("nut", None, True),
        ("gif", Fraction(1, 100), False),
    ],
)
def test_every_container_keeps_the_times(
    tmp_path: Path, frames: np.ndarray, ext: str, tick: Fraction | None, relative: bool
) -> None:
    np.save(tmp_path / "f.npy", frames)
    np.save(tmp_path / "t.npy", np.array(TIMES))
    out = tmp_path / f"o.{ext}"
    done = run_cli("encode", tmp_path / "f.npy", "-o", out, "--timestamps", tmp_path / "t.npy", "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert_times(out, TIMES, tick, relative)
    if ext != "gif":  # Debian's ffprobe reads GIF delays under 2/100 s as 1/10 s (announced)
        probed = probe_times(out)
        shift = probed[0] if relative else 0.0
        want = tick if tick is not None else Fraction(1, 1_000_000)
        assert all(
            abs(p - shift - t) <= float(want) / 2 + 1e-6 for p, t in zip(probed, TIMES, strict=True)
        ), probed
    report = json.loads(done.stdout)
    assert report["timestamps"]["largest_gap"] == pytest.approx(0.75)
    assert report["timestamps"]["mean_rate"] == pytest.approx(4.5)
    rounded = [n for n in report["notices"] if n.startswith("timestamps rounded")]
    assert bool(rounded) == (ext in ("mkv", "webm", "gif")), report["notices"]


def test_mp4_times_read_the_same_by_ffprobe(tmp_path: Path, frames: np.ndarray) -> None:
    np.save(tmp_path / "f.npy", frames)
    np.save(tmp_path / "t.npy", np.array(TIMES))
    out = tmp_path / "o.mp4"
    assert (
        run_cli("encode", tmp_path / "f.npy", "-o", out, "--timestamps", tmp_path / "t.npy").returncode == 0
    )
    probe = ffprobe(out)
    assert Fraction(probe["stream"]["time_base"]) == Fraction(1, 2000)  # the timestamps' own tick
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
    assert [Fraction(p, 2000) for p in pts] == [Fraction(repr(t)) for t in TIMES]


def test_avi_is_refused_at_plan_time(tmp_path: Path, frames: np.ndarray) -> None:
    np.save(tmp_path / "f.npy", frames)
    np.save(tmp_path / "t.npy", np.array(TIMES))
    done = run_cli("encode", tmp_path / "f.npy", "-o", tmp_path / "o.avi", "--timestamps", tmp_path / "t.npy")
    assert done.returncode == 2 and "mp4, mov, mkv" in done.stderr.decode()
    assert not (tmp_path / "o.avi").exists()


@pytest.mark.parametrize(
    ("times", "words"),
    [
        ([0, 0.1, 0.1, *range(1, 8)], "timestamp 2 (0.1 s) is not after timestamp 1"),
        ([0, 0.2, 0.1, *range(1, 8)], "timestamp 2 (0.1 s) is not after"),
        ([0, float("nan"), *range(1, 9)], "timestamp 1 is nan"),
        ([0, float("inf"), *range(1, 9)], "timestamp 1 is inf"),
        (TIMES[:5], "10 frames but 5 timestamps"),
    ],
)
def test_bad_timestamps_are_refused_naming_the_first(
    tmp_path: Path, frames: np.ndarray, times: list[float], words: str
) -> None:
    np.save(tmp_path / "f.npy", frames)
    np.save(tmp_path / "t.npy", np.array(times, dtype=np.float64))
    done = run_cli("encode", tmp_path / "f.npy", "-o", tmp_path / "o.mp4", "--timestamps", tmp_path / "t.npy")
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 65 and len(lines) == 1 and words in lines[0], lines
    assert not (tmp_path / "o.mp4").exists()
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        nvenc_cli.VideoEncoder(frames, frame_rate=30, timestamps=times).to_file(tmp_path / "a.mp4")


def test_text_csv_npz_and_pt_doors(tmp_path: Path, frames: np.ndarray) -> None:
    import torch

    np.save(tmp_path / "f.npy", frames)
    (tmp_path / "t.txt").write_text("# seconds\n" + "\n".join(map(str, TIMES)) + "\n")
    (tmp_path / "t.csv").write_text("frame,t\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TIMES)))
    (tmp_path / "bad.csv").write_text("frame,when\n0,0\n")
    np.savez(tmp_path / "e.npz", frames=frames, timestamps=np.array(TIMES))
    torch.save(
        {"video": torch.from_numpy(frames), "pts": torch.tensor(TIMES, dtype=torch.float64)},
        tmp_path / "e.pt",
    )
    for source, extra in (
        ("f.npy", ("--timestamps", tmp_path / "t.txt")),
        ("f.npy", ("--timestamps", tmp_path / "t.csv")),
        ("e.npz", ()),
        ("e.pt", ()),
    ):
        out = tmp_path / f"{source}.mp4"
        done = run_cli("encode", tmp_path / source, "-o", out, "-y", *extra)
        assert done.returncode == 0, done.stderr.decode()
        assert_times(out, TIMES)
        if not extra:
            assert "per-frame timestamps from the file's" in done.stderr.decode()
    bad = run_cli(
        "encode", tmp_path / "f.npy", "-o", tmp_path / "b.mp4", "--timestamps", tmp_path / "bad.csv"
    )
    assert bad.returncode == 65 and "timestamps column" in bad.stderr.decode()
    missing = run_cli(
        "encode", tmp_path / "f.npy", "-o", tmp_path / "b.mp4", "--timestamps", tmp_path / "no.npy"
    )
    assert missing.returncode == 66


def test_start_and_frames_keep_the_real_times(tmp_path: Path, frames: np.ndarray) -> None:
    np.save(tmp_path / "f.npy", frames)
    np.save(tmp_path / "t.npy", np.array(TIMES))
    out = tmp_path / "cut.mp4"
    done = run_cli(
        "encode",
        tmp_path / "f.npy",
        "-o",
        out,
        "--timestamps",
        tmp_path / "t.npy",
        "--start",
        "3",
        "--frames",
        "4",
    )
    assert done.returncode == 0, done.stderr.decode()
    assert_times(out, TIMES[3:7])
    decoded = np.stack([f.to_ndarray(format="rgb24") for f in av.open(str(out)).decode(video=0)])
    assert np.abs(decoded.astype(int) - frames[3:7]).mean() < 8


def test_variable_rate_transcode_keeps_its_times(tmp_path: Path) -> None:
    source = tmp_path / "vfr.mkv"
    times_ms = [0, 40, 80, 200, 210, 500, 533, 1000, 1017, 1500]
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    for ext in ("mp4", "mkv"):
        out = tmp_path / f"o.{ext}"
        done = run_cli("encode", source, "-o", out)
        assert done.returncode == 0, done.stderr.decode()
        assert "variable frame rate" in done.stderr.decode()
        assert_times(out, [t / 1000 for t in times_ms])
    retimed = tmp_path / "r.mp4"
    done = run_cli("encode", source, "-o", retimed, "-r", "10")
    assert done.returncode == 0
    assert_times(retimed, [i / 10 for i in range(10)])


def test_audio_follows_the_real_clock(tmp_path: Path) -> None:
    """A flash at 1.25 s (frame 8 of the irregular times) and a click at 1.25 s in the
    sound: in the output both happen at the same moment."""
    images = np.zeros((len(TIMES), 48, 64, 3), np.uint8)
    images[8] = 255
    np.save(tmp_path / "f.npy", images)
    np.save(tmp_path / "t.npy", np.array(TIMES))
    rate = 48000
    samples = np.zeros(int(2.5 * rate), np.int16)
    samples[int(1.25 * rate) : int(1.25 * rate) + 48] = 30000
    with wave.open(str(tmp_path / "click.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    out = tmp_path / "sync.mp4"
    done = run_cli(
        "encode",
        tmp_path / "f.npy",
        "-o",
        out,
        "--timestamps",
        tmp_path / "t.npy",
        "--audio",
        tmp_path / "click.wav",
    )
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(out)) as container:
        flash = next(
            float(f.pts * f.time_base)
            for f in container.decode(video=0)
            if f.to_ndarray(format="gray").mean() > 128
        )
    with av.open(str(out)) as container:
        chunks, first = [], None
        for frame in container.decode(audio=0):
            if first is None:
                first = float(frame.pts * frame.time_base)
            chunks.append(frame.to_ndarray()[0])
        sound = np.concatenate(chunks)
        sound_rate = container.streams.audio[0].rate
    click = first + int(np.argmax(np.abs(sound) > 0.3)) / sound_rate
    assert flash == pytest.approx(1.25, abs=1e-6)
    assert abs(click - flash) < 0.03  # within an AAC frame's priming accuracy


def test_api_doors(tmp_path: Path, frames: np.ndarray) -> None:
    import torch

    nvenc_cli.VideoEncoder(frames, timestamps=torch.tensor(TIMES, dtype=torch.float64)).to_file(
        tmp_path / "a.mp4"
    )
    assert_times(tmp_path / "a.mp4", TIMES)
    exact = [Fraction(i, 7) for i in range(len(TIMES))]  # sevenths: no decimal clock holds them
    nvenc_cli.VideoEncoder(frames, frame_rate=7, timestamps=exact).to_file(tmp_path / "s.mov")
    got, base, _ = frame_times(tmp_path / "s.mov")
    assert got == exact and base.denominator % 7 == 0
    result = nvenc_cli.encode(list(frames), tmp_path / "e.mkv", timestamps=np.array(TIMES))
    assert result.plan.timeline["largest_gap"] == pytest.approx(0.75)
    assert_times(tmp_path / "e.mkv", TIMES, Fraction(1, 1000))
    with nvenc_cli.open_writer(tmp_path / "w.mp4", frame_rate=30) as writer:
        for frame, t in zip(frames, TIMES, strict=True):
            writer.write(frame, pts=t)
    assert_times(tmp_path / "w.mp4", TIMES, Fraction(1, 1_000_000))
    with (
        pytest.warns(UserWarning, match="rounded"),
        nvenc_cli.open_writer(tmp_path / "w.mkv", frame_rate=30) as writer,
    ):
        writer.write(frames[:3], pts=[0, 0.0104, 0.0207])
    with (
        pytest.raises(ValueError, match="not after"),
        nvenc_cli.open_writer(tmp_path / "x.mp4", frame_rate=30) as w,
    ):
        w.write(frames[0], pts=0.5)
        w.write(frames[1], pts=0.4)
    assert not (tmp_path / "x.mp4").exists()
    with (
        pytest.raises(ValueError, match="every write"),
        nvenc_cli.open_writer(tmp_path / "y.mp4", frame_rate=30) as w,
    ):
        w.write(frames[0], pts=0.0)
        w.write(frames[1])


def test_many_clips_take_a_timestamps_file_each(tmp_path: Path, frames: np.ndarray) -> None:
    for name, scale in (("a", 1), ("b", 2)):
        np.save(tmp_path / f"{name}.npy", frames)
        np.save(tmp_path / f"{name}.times.npy", np.array(TIMES) * scale)
    done = run_cli(
        "encode",
        tmp_path / "a.npy",
        tmp_path / "b.npy",
        "-o",
        tmp_path / "out" / "{stem}.mp4",
        "--timestamps",
        str(tmp_path / "{stem}.times.npy"),
    )
    assert done.returncode == 0, done.stderr.decode()
    assert_times(tmp_path / "out" / "a.mp4", TIMES)
    assert_times(tmp_path / "out" / "b.mp4", [t * 2 for t in TIMES])
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(
        json.dumps(
            {
                "input": str(tmp_path / "b.npy"),
                "output": str(tmp_path / "m.mkv"),
                "timestamps": str(tmp_path / "b.times.npy"),
            }
        )
        + "\n"
    )
    assert run_cli("batch", manifest).returncode == 0
    assert_times(tmp_path / "m.mkv", [t * 2 for t in TIMES], Fraction(1, 1000))


def test_gif_delays_under_two_centiseconds_are_announced(tmp_path: Path, frames: np.ndarray) -> None:
    np.save(tmp_path / "f.npy", frames)
    np.save(tmp_path / "t.npy", np.array(TIMES))
    done = run_cli("encode", tmp_path / "f.npy", "-o", tmp_path / "o.gif", "--timestamps", tmp_path / "t.npy")
    assert done.returncode == 0
    assert "under 2/100 s" in done.stderr.decode() and "moved by up to 3.5 ms" in done.stderr.decode()
    close = [0.0, 0.001, 0.002, *TIMES[3:]]
    np.save(tmp_path / "c.npy", np.array(close))
    clash = run_cli(
        "encode", tmp_path / "f.npy", "-o", tmp_path / "c.gif", "--timestamps", tmp_path / "c.npy"
    )
    assert clash.returncode == 65 and "fall in one tick" in clash.stderr.decode()
    assert not (tmp_path / "c.gif").exists()


def test_encoder_streams_take_timestamps(tmp_path: Path, frames: np.ndarray) -> None:
    import torch

    chw = torch.from_numpy(frames).permute(0, 3, 1, 2)
    encoder = nvenc_cli.Encoder()
    stream = encoder.add_video(height=48, width=64, frame_rate=30, timestamps=True)
    encoder.open_file(str(tmp_path / "e.mp4"))
    stream.add_frames(chw[:4], pts=TIMES[:4])
    stream.add_frames(chw[4:], pts=TIMES[4:])
    with pytest.raises(RuntimeError, match="timestamps=True"):
        stream.add_frames(chw[:1])
    with pytest.raises(RuntimeError, match="not after"):
        stream.add_frames(chw[:1], pts=[1.0])
    encoder.close()
    assert_times(tmp_path / "e.mp4", TIMES, Fraction(1, 1_000_000))
    plain = nvenc_cli.Encoder()
    untimed = plain.add_video(height=48, width=64, frame_rate=30)
    plain.open_file(str(tmp_path / "p.mp4"))
    with pytest.raises(RuntimeError, match="timestamps=True"):
        untimed.add_frames(chw[:2], pts=[0.0, 0.5])
    untimed.add_frames(chw[:2])
    plain.close()
    assert_times(tmp_path / "p.mp4", [0, 1 / 30])
