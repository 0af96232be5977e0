"""Standard input and FIFOs: raw frames, a .npy stream, containers FFmpeg demuxes from a pipe.

Each output is decoded and compared with the frames that went into the pipe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SERIAL, decode, psnr, run_cli

THREADS = ["-x", f"threads={SERIAL['threads']}"]


@pytest.fixture()
def frames(pattern: np.ndarray) -> np.ndarray:
    return pattern[:8]


def _pipe(*args: str, data: bytes) -> subprocess.CompletedProcess:
    """Run the CLI with ``data`` on its standard input (a pipe)."""
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "nvenc_cli", *map(str, args)],
        input=data,
        capture_output=True,
        env=env,
        timeout=120,
    )


def _reference(tmp_path: Path, frames: np.ndarray) -> bytes:
    src = tmp_path / "ref.npy"
    np.save(src, frames)
    out = tmp_path / "ref.mp4"
    done = run_cli("encode", src, "-o", out, *THREADS)
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def test_raw_rgb24_from_stdin_matches_the_file_encode(tmp_path: Path, frames: np.ndarray) -> None:
    out = tmp_path / "out.mp4"
    done = _pipe("encode", "-", "--input-size", "320x240", "-o", out, *THREADS, data=frames.tobytes())
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == _reference(tmp_path, frames)
    decoded, facts = decode(out)
    assert len(decoded) == 8 and (facts["width"], facts["height"]) == (320, 240)


@pytest.mark.parametrize(
    ("fmt", "convert"),
    [
        ("bgr24", lambda f: f[..., ::-1]),
        ("rgba", lambda f: np.concatenate([f, np.full((*f.shape[:3], 1), 255, np.uint8)], axis=3)),
        ("argb", lambda f: np.concatenate([np.full((*f.shape[:3], 1), 255, np.uint8), f], axis=3)),
        ("rgb48le", lambda f: f.astype("<u2") * 257),
        ("rgb48be", lambda f: (f.astype(np.uint16) * 257).astype(">u2")),
        ("rgbf32le", lambda f: (f / 255).astype("<f4")),
    ],
)
def test_raw_pixel_formats_decode_to_the_same_picture(
    tmp_path: Path, frames: np.ndarray, fmt: str, convert
) -> None:
    out = tmp_path / "out.mkv"
    data = np.ascontiguousarray(convert(frames)).tobytes()
    args = ["encode", "-", "--input-size", "320x240", "--input-pixel-format", fmt, "-o", out, "-c", "ffv1"]
    done = _pipe(*args, data=data)
    assert done.returncode == 0, done.stderr
    decoded, _ = decode(out)
    assert len(decoded) == 8
    assert psnr(decoded, frames) > 50  # ffv1 is lossless: only the 16-bit rounding differs


def test_gray_raw_frames(tmp_path: Path, frames: np.ndarray) -> None:
    gray = frames[..., 1].copy()
    out = tmp_path / "out.mkv"
    done = _pipe(
        "encode", "-", "--input-size", "320x240", "--input-pixel-format", "gray", "-o", out, "-c", "ffv1",
        data=gray.tobytes(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    decoded, _ = decode(out, fmt="gray")
    assert np.array_equal(decoded, gray)


def test_trailing_partial_frame_is_refused(tmp_path: Path, frames: np.ndarray) -> None:
    out = tmp_path / "out.mp4"
    done = _pipe("encode", "-", "--input-size", "320x240", "-o", out, data=frames.tobytes() + b"\0" * 100)
    assert done.returncode == 65
    message = done.stderr.decode()
    assert "partial frame" in message and "100 bytes" in message and message.count("\n") == 1
    assert not out.exists()


def test_raw_options_are_checked(tmp_path: Path, frames: np.ndarray) -> None:
    out = tmp_path / "out.mp4"
    bad_fmt = _pipe(
        "encode", "-", "--input-size", "8x8", "--input-pixel-format", "rgb42", "-o", out, data=b""
    )
    assert bad_fmt.returncode == 2 and "did you mean rgb24" in bad_fmt.stderr.decode()
    bad_size = _pipe("encode", "-", "--input-size", "8by8", "-o", out, data=b"")
    assert bad_size.returncode == 2 and "--input-size" in bad_size.stderr.decode()
    no_size = _pipe("encode", "-", "--input-pixel-format", "rgb24", "-o", out, data=b"x")
    assert no_size.returncode == 2 and "--input-size" in no_size.stderr.decode()
    junk = _pipe("encode", "-", "-o", out, data=b"hello, not a video\n" * 10)
    assert junk.returncode == 65 and "--input-size" in junk.stderr.decode()
    empty = _pipe("encode", "-", "-o", out, data=b"")
    assert empty.returncode == 66 and "nothing was piped in" in empty.stderr.decode()
    assert not out.exists()


def test_npy_stream_from_stdin(tmp_path: Path, frames: np.ndarray) -> None:
    src = tmp_path / "f.npy"
    np.save(src, frames)
    out = tmp_path / "out.mp4"
    done = _pipe("encode", "-", "-o", out, *THREADS, "--start", "2", "--frames", "4", data=src.read_bytes())
    assert done.returncode == 0, done.stderr
    decoded, _ = decode(out)
    assert len(decoded) == 4 and psnr(decoded, frames[2:6]) > 35
    cut = _pipe("encode", "-", "-o", tmp_path / "cut.mp4", data=src.read_bytes()[:-5000])
    assert cut.returncode == 65 and "ended early" in cut.stderr.decode()


@pytest.mark.parametrize("muxer", ["yuv4mpegpipe", "nut", "matroska", "mpegts"])
def test_containers_from_a_pipe(tmp_path: Path, muxer: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    codec = {"yuv4mpegpipe": [], "mpegts": ["-c:v", "mpeg2video", "-q:v", "2"]}.get(muxer, ["-c:v", "ffv1"])
    made = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24", "-frames:v", "12",
         "-pix_fmt", "yuv420p", *codec, "-f", muxer, "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    done = _pipe("encode", "-", "-o", out, data=made.stdout)
    assert done.returncode == 0, done.stderr
    decoded, facts = decode(out)
    assert len(decoded) == 12 and (facts["width"], facts["height"]) == (160, 120)
    assert facts["rate"] == 24  # the container's rate carries over


def test_fifo_path_streams_with_flat_memory(tmp_path: Path, pattern_hd: np.ndarray) -> None:
    fifo = tmp_path / "frames.rgb"
    os.mkfifo(fifo)
    count = 300  # 830 MB of 720p frames through the FIFO

    def feed() -> None:
        with open(fifo, "wb") as fh:
            for index in range(count):
                fh.write(pattern_hd[index % len(pattern_hd)].tobytes())

    writer = threading.Thread(target=feed)
    writer.start()
    out = tmp_path / "out.mp4"
    import sys

    # The peak RSS of the nvenc process alone, measured by a parent that runs only it.
    script = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run([sys.executable, '-m', 'nvenc_cli', *sys.argv[1:]]).returncode\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "encode", str(fifo), "--input-size", "1280x720", "-o", str(out),
         "--preset", "ultrafast"],
        capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )  # fmt: skip
    writer.join()
    assert done.returncode == 0, done.stderr
    assert len(decode(out)[0]) == count
    peak_kb = int(done.stderr.decode().strip().splitlines()[-1])
    # ~230 MB here for 100, 300 or 900 frames alike; the bound leaves room for a busy
    # machine and still sits far below the 830 MB the stream would take if held whole.
    assert peak_kb < 600_000
