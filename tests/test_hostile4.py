"""Hostile inputs, fourth round: memory a small file can claim, streams cut short, rates
and values changed without a word, and codes that differ by container.

Every case runs the real CLI and checks the exit code, the one ``nvenc: error:`` line or
the notice, and, where an encode succeeds, what the output decodes to. Memory is the CLI's
own peak RSS, measured by ``wait4`` in a small launcher.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import LAUNCHER, ROOT, run_cli
from tests.test_hostile import one_line_error

FAST = ("--preset", "ultrafast")


def measured(*args: str, cwd: Path, stdin: bytes | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """``nvenc ARGS`` and its peak RSS in MB (stdout holds only the launcher's figure)."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    peak_mb = int(proc.stdout.decode().split()[-1]) / 1024
    proc.stdout = b""
    return proc, peak_mb


def npy_bytes(header_length: int, frames: int = 3) -> bytes:
    """A version 2.0 ``.npy`` of grey 64x48 frames whose header is padded with spaces to
    ``header_length`` bytes: a length NumPy would read whole before refusing it."""
    text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({frames}, 48, 64, 3), }}"
    body = text.encode() + b" " * (header_length - len(text) - 1) + b"\n"
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(body)) + body + bytes([90]) * (frames * 48 * 64 * 3)


# --- class 5: memory from small files ------------------------------------------------------


def test_npz_member_header_length_is_checked_before_it_is_read(tmp_path: Path) -> None:
    """A 600 MB header of deflated spaces: ~0.6 MB on disk, 1.2 GB of RSS when trusted."""
    path = tmp_path / "h.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("frames.npy", npy_bytes(600_000_000))
    assert path.stat().st_size < 2_000_000
    proc, peak = measured("encode", "h.npz", "-o", "h.mp4", cwd=tmp_path)
    one_line_error(proc, 65, "header claims 600000000 bytes")
    assert peak < 200, peak
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.npz"]


def test_piped_npy_header_length_is_checked_before_it_is_read(tmp_path: Path) -> None:
    proc, peak = measured("encode", "-", "-o", "p.mp4", cwd=tmp_path, stdin=npy_bytes(50_000_000))
    one_line_error(proc, 65, "header claims 50000000 bytes")
    assert peak < 200, peak
    assert not (tmp_path / "p.mp4").exists()


def test_ordinary_header_still_reads(tmp_path: Path) -> None:
    """The check refuses only lengths NumPy itself would refuse: a padded 4 kB header reads."""
    path = tmp_path / "ok.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("frames.npy", npy_bytes(4096))
    proc = run_cli("encode", "ok.npz", "-o", "ok.mp4", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "ok.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 3 and abs(float(np.mean(frames)) - 90) < 2


def test_deflated_audio_in_npz_is_streamed(tmp_path: Path) -> None:
    """Ten minutes of deflated stereo silence (~0.2 MB, 230 MB inflated) beside 3 frames:
    it used to be inflated whole (285 MB peak); now it is read by windows."""
    np.savez_compressed(
        tmp_path / "a.npz",
        frames=np.full((3, 48, 64, 3), 90, np.uint8),
        audio=np.zeros((2, 48000 * 600), np.float32),
        sample_rate=np.int64(48000),
    )
    assert (tmp_path / "a.npz").stat().st_size < 1_000_000
    proc, peak = measured(
        "encode", "a.npz", "--key", "frames", "--audio", "a.npz", "-o", "a.mp4", *FAST, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert peak < 180, peak
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert container.streams.audio[0].channels == 2
        assert len([f for f in container.decode(video=0)]) == 3


TONE = np.stack([np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000), np.sin(np.arange(48000) * 0.07)])


@pytest.mark.parametrize(
    "audio",
    [
        pytest.param((TONE * 0.5).astype(np.float32), id="stereo"),
        pytest.param((TONE[0] * 0.5).astype(np.float32), id="mono-1d"),
        pytest.param(np.asfortranarray(TONE * 0.5).astype(np.float32, order="F"), id="fortran"),
        pytest.param((TONE * 12000).astype(np.int16), id="int16"),
    ],
)
@pytest.mark.parametrize("compressed", [False, True])
def test_npz_audio_windows_decode_to_the_samples(tmp_path: Path, audio: np.ndarray, compressed: bool) -> None:
    """Samples read by windows (stored or deflated, any layout) decode back exactly (FLAC)."""
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "s.npz", frames=np.zeros((30, 48, 64, 3), np.uint8), audio=audio, sr=np.int64(48000))
    proc = run_cli(
        "encode", "s.npz", "--key", "frames", "--audio", "s.npz", "--audio-codec", "flac",
        "-o", "s.mkv", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "s.mkv")) as container:
        channels = container.streams.audio[0].channels
        pieces = [f.to_ndarray().reshape(-1, channels).T for f in container.decode(audio=0)]
    got = np.concatenate(pieces, axis=1)
    want = np.atleast_2d(audio).astype(np.float64)
    if audio.dtype == np.int16:
        want = want / 32768
    assert got.shape == want.shape
    scale = 32768 if got.dtype == np.int16 else 2**31
    assert np.abs(got / scale - want).max() < 1e-4


def test_npz_audio_with_a_lying_header_is_refused(tmp_path: Path) -> None:
    """Samples whose header promises more than the member holds: refused before reading."""
    path = tmp_path / "t.npz"
    np.savez(path, frames=np.zeros((3, 48, 64, 3), np.uint8), sr=np.int64(48000))
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 100000000), }"
    body = text.encode() + b" " * (118 - len(text)) + b"\n"
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("audio.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body + bytes(64))
    before = path.read_bytes()
    args = ("encode", "t.npz", "--key", "frames", "--audio", "t.npz", "-o", "t.mp4")
    proc, peak = measured(*args, cwd=tmp_path)
    one_line_error(proc, 65, "truncated")
    assert peak < 200, peak
    assert path.read_bytes() == before and not (tmp_path / "t.mp4").exists()


def test_legacy_pt_loaded_whole_is_announced(tmp_path: Path) -> None:
    """A legacy (pre-zip) .pt cannot be streamed: the documented limit is said, in --json too."""
    torch = pytest.importorskip("torch")
    frames = torch.full((4, 48, 64, 3), 90, dtype=torch.uint8)
    torch.save(frames, tmp_path / "l.pt", _use_new_zipfile_serialization=False)
    proc = run_cli("encode", "l.pt", "-o", "l.mp4", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "loaded into memory whole" in proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert any("loaded into memory whole" in note for note in report["notices"]), report
    assert report["frames"] == 4
    torch.save(frames, tmp_path / "z.pt")
    proc = run_cli("encode", "z.pt", "-o", "z.mp4", *FAST, cwd=tmp_path)
    assert proc.returncode == 0 and b"whole" not in proc.stderr, proc.stderr


# --- class 6: a stream cut short is announced ----------------------------------------------

LEVELS = [16 + 20 * i for i in range(10)]


def y4m_bytes() -> bytes:
    """Ten 64x48 4:4:4 frames of flat grey levels (Y = LEVELS[i], neutral chroma)."""
    head = b"YUV4MPEG2 W64 H48 F30:1 Ip A1:1 C444\n"
    planes = [bytes([level]) * (64 * 48) + bytes([128]) * (2 * 64 * 48) for level in LEVELS]
    return head + b"".join(b"FRAME\n" + plane for plane in planes)


def luma_levels(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]


def run_fed(*args: str, cwd: Path, feed: Path | None) -> subprocess.CompletedProcess:
    """``nvenc ARGS`` with ``feed`` (a file) on standard input, or nothing there."""
    if feed is None:
        return run_cli(*args, cwd=cwd)
    with open(feed, "rb") as stdin:
        return run_cli(*args, cwd=cwd, stdin=stdin)


def notices(proc: subprocess.CompletedProcess) -> list[str]:
    return json.loads(proc.stdout)["notices"]


@pytest.mark.parametrize("piped", [False, True], ids=["file", "stdin"])
def test_y4m_cut_inside_a_frame_is_refused(tmp_path: Path, piped: bool) -> None:
    """As a raw or .npy stream cut inside a frame: exit 65, no output (FFmpeg alone drops
    the partial frame and reports nothing)."""
    (tmp_path / "c.y4m").write_bytes(y4m_bytes()[:-5000])  # frame 9 loses its last 5000 bytes
    args = ("encode", "-" if piped else "c.y4m", "-o", "c.mp4", *FAST)
    proc = run_fed(*args, cwd=tmp_path, feed=tmp_path / "c.y4m" if piped else None)
    one_line_error(proc, 65, "ends inside frame 9 (4216 of its 9216 bytes)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.y4m"]
    proc = run_fed(*args, "--frames", "9", cwd=tmp_path, feed=tmp_path / "c.y4m" if piped else None)
    assert proc.returncode == 0, proc.stderr  # the whole frames, asked for: encoded
    want = [(level - 16) * 255 / 219 for level in LEVELS[:9]]  # limited-range Y read as full grey
    levels = luma_levels(tmp_path / "c.mp4")
    assert len(levels) == 9 and all(abs(g - w) < 2 for g, w in zip(levels, want, strict=True)), levels


@pytest.mark.parametrize("piped", [False, True], ids=["file", "stdin"])
def test_whole_y4m_has_no_cut_notice(tmp_path: Path, piped: bool) -> None:
    data = y4m_bytes()
    (tmp_path / "w.y4m").write_bytes(data)
    args = ("encode", "-" if piped else "w.y4m", "-o", "w.mp4", "--json", *FAST)
    proc = run_fed(*args, cwd=tmp_path, feed=tmp_path / "w.y4m" if piped else None)
    assert proc.returncode == 0, proc.stderr
    assert not [n for n in notices(proc) if "ends inside" in n or "cut short" in n]
    assert len(luma_levels(tmp_path / "w.mp4")) == 10


def write_levels(
    path: Path, codec: str = "ffv1", pix_fmt: str = "yuv444p", rate: int = 30, **fmt: str
) -> None:
    """A 64x48 video of the flat grey ``LEVELS``, one frame each."""
    with av.open(str(path), "w", **fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for level in LEVELS:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.parametrize("piped", [False, True], ids=["file", "stdin"])
def test_mkv_cut_short_is_announced(tmp_path: Path, piped: bool) -> None:
    write_levels(tmp_path / "full.mkv")
    whole = (tmp_path / "full.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: int(len(whole) * 0.85)])
    args = ("encode", "-" if piped else "cut.mkv", "-o", "c.mp4", "--json", "--crf", "0", *FAST)
    proc = run_fed(*args, cwd=tmp_path, feed=tmp_path / "cut.mkv" if piped else None)
    assert proc.returncode == 0, proc.stderr
    levels = luma_levels(tmp_path / "c.mp4")
    assert 0 < len(levels) < 10
    said = [n for n in notices(proc) if "looks cut short" in n]
    assert len(said) == 1 and f"({len(levels)} frames could be decoded" in said[0], notices(proc)
    assert "header says 0.333 s" in said[0]
    want = [float(np.full((1, 1, 3), v, np.uint8).mean()) for v in LEVELS]  # grey: Y tracks RGB
    assert all(abs(g - w) < 3 for g, w in zip(levels, want, strict=False)), levels
    proc = run_cli("encode", "full.mkv", "-o", "f.mp4", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0 and not [n for n in notices(proc) if "cut short" in n]


# --- class 7: rates nobody gave ------------------------------------------------------------


def test_raw_h264_keeps_the_rate_its_sps_gives(tmp_path: Path) -> None:
    """FFmpeg's raw H.264 demuxer says 25 fps; the stream's SPS timing says 60."""
    write_levels(tmp_path / "r.h264", "libx264", "yuv420p", 60, format="h264")
    proc = run_cli("encode", "r.h264", "-o", "r.mp4", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["fps"] == "60/1", report
    assert any("60 fps from the stream's own timing" in n for n in report["notices"]), report
    with av.open(str(tmp_path / "r.mp4")) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream)]
    assert len(times) == 10 and abs(times[-1] - times[0] - 9 / 60) < 1e-3, times


@pytest.mark.parametrize("piped", [False, True], ids=["file", "stdin"])
def test_y4m_without_a_rate_says_which_is_used(tmp_path: Path, piped: bool) -> None:
    """``F0:0``: FFmpeg would say 25; the documented default (30) is used, and said."""
    (tmp_path / "z.y4m").write_bytes(y4m_bytes().replace(b"F30:1", b"F0:0", 1))
    args = ("encode", "-" if piped else "z.y4m", "-o", "z.mp4", "--json", *FAST)
    proc = run_fed(*args, cwd=tmp_path, feed=tmp_path / "z.y4m" if piped else None)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["fps"] == "30/1", report
    said = [n for n in report["notices"] if "gives no frame rate (F0:0): 30 fps used" in n]
    assert len(said) == 1, report["notices"]
    assert not [n for n in report["notices"] if "variable frame rate" in n], report["notices"]
    proc = run_fed(*args, "-r", "12", "-y", cwd=tmp_path, feed=tmp_path / "z.y4m" if piped else None)
    report = json.loads(proc.stdout)
    assert report["fps"] == "12/1" and not [n for n in report["notices"] if "no frame rate" in n]
    with av.open(str(tmp_path / "z.mp4")) as container:
        assert container.streams.video[0].average_rate == 12
        assert len(list(container.decode(video=0))) == 10


# --- class 7: sound cut and clipped as the frames are --------------------------------------


def flac_samples(path: Path) -> np.ndarray:
    """Mono FLAC samples as floats in [-1, 1]."""
    with av.open(str(path)) as container:
        pieces = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    return np.concatenate(pieces).astype(np.float64) / 2**31


def test_start_cuts_array_input_audio_like_the_frames(tmp_path: Path) -> None:
    """--start 15 at 30 fps starts the video at 0.5 s; the samples stored beside the frames
    start there too (they used to start at 0: half a second of silence, then the tone)."""
    t = np.arange(48000) / 48000
    tone = np.where(t < 0.5, 0.0, 0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    frames = np.stack([np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)])
    np.savez(tmp_path / "s.npz", frames=frames, audio=tone, sample_rate=np.int64(48000))
    proc = run_cli(
        "encode", "s.npz", "--key", "frames", "--audio-key", "audio", "--start", "15",
        "--audio-codec", "flac", "-o", "s.mkv", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = flac_samples(tmp_path / "s.mkv")
    assert abs(len(got) - 24000) <= 1024, len(got)
    assert np.abs(got[:2400]).max() > 0.45  # the tone from the first sample on
    assert np.abs(got[:24000] - tone[24000 : 24000 + len(got[:24000])]).max() < 1e-4
    with av.open(str(tmp_path / "s.mkv")) as container:
        levels = [float(f.to_ndarray(format="rgb24").mean()) for f in container.decode(video=0)]
    assert len(levels) == 15 and abs(levels[0] - 8 * 15) < 3, levels


def write_float_wav(path: Path, samples: np.ndarray) -> None:
    """A mono 32-bit float WAV of ``samples`` at 48 kHz."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_f32le", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = 48000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.parametrize("output", ["n.mp4", "n.webm", "n.mkv", "n.mov"])
def test_nan_in_float_audio_is_65_in_every_container(tmp_path: Path, output: str) -> None:
    """AAC failed (74), Opus encoded it (0), a PCM copy kept it (0): now one rule, 65."""
    samples = 0.5 * np.sin(np.arange(48000) / 7.0)
    samples[1000] = np.nan
    write_float_wav(tmp_path / "nan.wav", samples)
    np.save(tmp_path / "f.npy", np.zeros((30, 48, 64, 3), np.uint8))
    proc = run_cli("encode", "f.npy", "--audio", "nan.wav", "-o", output, *FAST, cwd=tmp_path)
    one_line_error(proc, 65, "audio sample 1000 is not a number")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy", "nan.wav"]


def test_loud_float_wav_clipped_by_an_integer_codec_is_counted(tmp_path: Path) -> None:
    samples = 1.8 * np.sin(np.arange(48000) / 7.0)
    loud = int(np.count_nonzero(np.abs(samples.astype(np.float32)) > 1.0))
    write_float_wav(tmp_path / "loud.wav", samples)
    np.save(tmp_path / "f.npy", np.zeros((30, 48, 64, 3), np.uint8))
    args = ("encode", "f.npy", "--audio", "loud.wav", "--json", *FAST)
    proc = run_cli(*args, "--audio-codec", "flac", "-o", "l.mkv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = [n for n in notices(proc) if "outside [-1, 1] were clipped" in n]
    assert len(said) == 1 and f"{loud} samples of loud.wav" in said[0], notices(proc)
    got = flac_samples(tmp_path / "l.mkv")
    assert len(got) == 48000 and np.abs(got).max() <= 1.0
    inside = np.abs(samples) < 0.99
    assert np.abs(got[inside] - samples[inside]).max() < 1e-4  # the rest as given
    assert np.all(np.abs(got[np.abs(samples) > 1.01]) > 0.999)  # the loud ones at full scale
    for output in ("l.mp4", "l.webm"):  # AAC and Opus take floats as they are: nothing to say
        proc = run_cli(*args, "-o", output, cwd=tmp_path)
        assert proc.returncode == 0 and not [n for n in notices(proc) if "clipped" in n], proc.stderr


# --- class 8: codes -------------------------------------------------------------------------


def test_too_few_file_descriptors_is_69_in_one_line(tmp_path: Path) -> None:
    """``ulimit -n 16`` under a two-input run: the worker pool cannot make its pipes. That
    is the system's limit (69), said in one line, not an internal error (70)."""
    np.save(tmp_path / "a.npy", np.zeros((3, 48, 64, 3), np.uint8))
    np.save(tmp_path / "b.npy", np.zeros((3, 48, 64, 3), np.uint8))
    command = f"ulimit -n 16 && exec {sys.executable} -m nvenc_cli encode a.npy b.npy -o 'out/{{stem}}.mp4'"
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    one_line_error(proc, 69, "too many open files")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b.npy"]


@pytest.mark.parametrize("output", ["s.mp4", "s.mov"])
def test_a_frame_every_100000_seconds_writes_mp4(tmp_path: Path, output: str) -> None:
    """-r 1/100000 used to fail at the first write (74, "Not yet implemented"): the track
    clock now counts the rate's own ticks, and every frame keeps its time."""
    frames = np.stack([np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)])
    np.save(tmp_path / "f.npy", frames)
    proc = run_cli("encode", "f.npy", "-r", "1/100000", "-o", output, cwd=tmp_path)  # B-frames on
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / output)) as container:
        decoded = [
            (float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)
        ]
    assert [t for t, _ in decoded] == [100000.0 * i for i in range(30)]
    for (_, got), want in zip(decoded, frames, strict=True):
        assert np.abs(got.astype(int) - want).max() <= 3


# --- class 7: GIF delays -------------------------------------------------------------------


def gif_delays(path: Path) -> list[int]:
    """Each frame's delay in centiseconds, from the packets' times (GIF's 1/100 s clock)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        pts = [p.pts for p in container.demux(stream) if p.size]
    return [round((b - a) * base * 100) for a, b in itertools.pairwise(pts)]


def test_gif_delay_beyond_16_bits_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((3, 48, 64, 3), np.uint8))
    proc = run_cli("encode", "f.npy", "-r", "1/700", "-o", "g.gif", cwd=tmp_path)
    one_line_error(proc, 2, "at most 655.35 s")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy"]
    proc = run_cli("encode", "f.npy", "-r", "100/65535", "-o", "g.gif", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert gif_delays(tmp_path / "g.gif") == [65535, 65535]


@pytest.mark.parametrize(("rate", "delay", "said"), [("100", 1, True), ("50", 2, False), ("25", 4, False)])
def test_gif_delays_players_stretch_are_announced(tmp_path: Path, rate: str, delay: int, said: bool) -> None:
    frames = np.stack([np.full((48, 64, 3), 60 * i, np.uint8) for i in range(4)])
    np.save(tmp_path / "f.npy", frames)
    proc = run_cli("encode", "f.npy", "-r", rate, "-o", "g.gif", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert bool([n for n in notices(proc) if "shown for 10 cs" in n]) == said, notices(proc)
    assert gif_delays(tmp_path / "g.gif") == [delay] * 3
    with av.open(str(tmp_path / "g.gif")) as container:
        levels = [float(f.to_ndarray(format="rgb24").mean()) for f in container.decode(video=0)]
    assert len(levels) == 4 and all(abs(g - 60 * i) < 3 for i, g in enumerate(levels)), levels


# --- class 7: --resize at 16 bits ----------------------------------------------------------


@pytest.mark.parametrize("size", ["32x24", "100x76"])
def test_resize_at_16_bits_says_its_precision(tmp_path: Path, size: str) -> None:
    """swscale's 16-bit scaling moves even flat colours by a few codes: said, and bounded."""
    levels = np.array([300, 12345, 30000, 40000, 65535])
    frames = np.stack([np.full((48, 64, 3), v, np.uint16) for v in levels])
    np.save(tmp_path / "d.npy", frames)
    args = ("encode", "d.npy", "--resize", size, "--codec", "ffv1", "--pixel-format", "gbrp16le")
    proc = run_cli(*args, "-o", "d.mkv", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [n for n in notices(proc) if "resized at swscale's precision" in n], notices(proc)
    with av.open(str(tmp_path / "d.mkv")) as container:
        got = np.stack([f.to_ndarray(format="rgb48le") for f in container.decode(video=0)]).astype(int)
    assert got.shape[1:3] == tuple(int(n) for n in size.split("x"))[::-1]
    assert np.abs(got - levels[:, None, None, None]).max() <= 8  # a few codes of 65535
    np.save(tmp_path / "e.npy", (frames >> 8).astype(np.uint8))  # 8 bits: exact, nothing to say
    proc = run_cli("encode", "e.npy", "--resize", size, "-o", "e.mp4", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0 and not [n for n in notices(proc) if "precision" in n]


# --- class 4: a signal that lands where Python drops exceptions ----------------------------

LANDS_IN = """
import os, signal, sys, weakref
from nvenc_cli import signals
from nvenc_cli.errors import Interrupted

signals.install()

class Target:
    pass

def callback(_):
    os.kill(os.getpid(), signal.SIGTERM)  # the signal is handled inside this callback
    for _ in range(1000):
        pass

class Finalized:
    def __del__(self):
        callback(None)

try:
    if sys.argv[1] == "weakref":
        target = Target()
        ref = weakref.ref(target, callback)
        del target
    else:
        Finalized()
    for _ in range(10**6):
        pass
    print("ran on")
except Interrupted as exc:
    print("interrupted", exc.exit_code)
"""


@pytest.mark.parametrize("where", ["weakref", "finalizer"])
def test_signal_landing_in_a_callback_still_interrupts(tmp_path: Path, where: str) -> None:
    """SIGTERM handled inside a weak reference's callback or a finalizer (as import locks'
    callbacks at start-up are): Python printed "Exception ignored" and the run went on to
    exit 0. Now the signal is acted on once the callback returns."""
    proc = subprocess.run(
        [sys.executable, "-c", LANDS_IN, where],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=60,
    )
    assert proc.stdout.decode().split() == ["interrupted", "143"], proc
    assert b"Traceback" not in proc.stderr and b"ignored" not in proc.stderr, proc.stderr


# --- class 4: a failed batch leaves no folders of its own behind ---------------------------


def test_batch_removes_the_template_folders_it_made_and_left_empty(tmp_path: Path) -> None:
    (tmp_path / "bad1.npy").write_bytes(b"garbage")
    (tmp_path / "bad2.npy").write_bytes(b"garbage")
    (tmp_path / "kept").mkdir()  # there before the run: never removed, even empty
    proc = run_cli("encode", "bad1.npy", "bad2.npy", "-o", "nd/a/{stem}/x.mp4", cwd=tmp_path)
    assert proc.returncode == 65, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad1.npy", "bad2.npy", "kept"]
    frames = np.stack([np.full((48, 64, 3), 30 * i, np.uint8) for i in range(5)])
    np.save(tmp_path / "good.npy", frames)
    proc = run_cli("encode", "bad1.npy", "good.npy", "-o", "kept/{stem}/x.mp4", *FAST, cwd=tmp_path)
    assert proc.returncode == 65, proc.stderr
    assert sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "kept").rglob("*")) == [
        "kept/good",
        "kept/good/x.mp4",
    ]
    with av.open(str(tmp_path / "kept/good/x.mp4")) as container:
        levels = [float(f.to_ndarray(format="rgb24").mean()) for f in container.decode(video=0)]
    assert len(levels) == 5 and all(abs(g - 30 * i) < 3 for i, g in enumerate(levels)), levels


def test_a_job_is_not_failed_for_another_jobs_dying_worker(tmp_path: Path) -> None:
    """Job 0's worker is killed every time it starts, while job 1 runs beside it: job 0
    fails after its tries (70), job 1, whose worker only the pool stopped, is retried
    free and encodes (it used to be charged each time and failed with job 0)."""
    from nvenc_cli.batch.run import iter_encode_many
    from nvenc_cli.options import EncodeOptions

    rng = np.random.default_rng(4)
    victim = rng.integers(0, 256, (40, 240, 320, 3), dtype=np.uint8)
    innocent = rng.integers(0, 256, (90, 240, 320, 3), dtype=np.uint8)
    np.save(tmp_path / "victim.npy", victim)
    np.save(tmp_path / "innocent.npy", innocent)
    pids: dict[int, int] = {}
    running: set[int] = set()  # jobs that reported progress since they last started
    killed: list[int] = []

    def on_event(kind: str, *values: object) -> None:
        index = values[0]
        if kind == "start":
            pids[index] = values[1]  # type: ignore[index]
            running.discard(index)  # type: ignore[arg-type]
        elif kind == "progress":
            running.add(index)  # type: ignore[arg-type]
            # Job 0's worker dies only while job 1 is under way in the same pool.
            if running >= {0, 1} and pids[0] not in killed and len(killed) < 3:
                killed.append(pids[0])
                running.clear()
                os.kill(pids[0], signal.SIGKILL)

    results = {
        r.index: r
        for r in iter_encode_many(
            inputs=[str(tmp_path / "victim.npy"), str(tmp_path / "innocent.npy")],
            output=str(tmp_path / "out" / "{stem}.mp4"),
            options=EncodeOptions(preset="medium", batch_size=2),
            workers=2,
            on_event=on_event,
        )
    }
    assert len(killed) == 3, killed
    assert results[0].status == "failed" and results[0].exit_code == 70, results[0]
    assert results[1].status == "ok", results[1].error
    with av.open(str(tmp_path / "out" / "innocent.mp4")) as container:
        assert len(list(container.decode(video=0))) == 90
    assert not (tmp_path / "out" / "victim.mp4").exists()
