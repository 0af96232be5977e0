"""Quality: nvenc's decoded PSNR is at least the ffmpeg CLI's on the same frames and settings.

The referee decodes every file with PyAV (which honours the colour tags; an untagged
file, as the ffmpeg CLI writes from RGB, is read as BT.601 limited range, which is what
that CLI converted with) and compares the RGB result with the source frames.

Two opponents per case, both fed the same raw rgb24 frames through a pipe:
* the system ffmpeg CLI end to end (``ffmpeg -f rawvideo -pix_fmt rgb24 ... -c:v CODEC``);
* the ffmpeg CLI's own RGB→YUV conversion, encoded by the very encoder build nvenc uses
  (PyAV's), so that only the conversion differs. This is the only fair opponent for
  SVT-AV1: Debian's ffmpeg links SVT-AV1 1.4, whose presets and CRF scale differ from
  the 2.x/3.x build PyAV bundles by whole decibels either way.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import psnr, run_cli
from fidelity_refs import decode_frames

from nvenc_cli import testsrc

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg CLI is not installed")


@dataclass(frozen=True)
class Case:
    """One codec/preset comparison: nvenc's flags and the equivalent ffmpeg flags."""

    name: str
    codec: str
    ext: str
    pixel_format: str
    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    options: dict[str, str]  # the same settings as AVCodecContext options (same-build run)
    end_to_end: bool = True
    size: tuple[int, int] = (320, 240)


VP9_GOOD = {"crf": "32", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
VP9_FAST = {**VP9_GOOD, "deadline": "realtime", "cpu-used": "8"}
CASES = [
    Case("x264-ultrafast", "libx264", "mp4", "yuv420p", ("--crf", "23", "--preset", "ultrafast"),
         ("-crf", "23", "-preset", "ultrafast"), {"crf": "23", "preset": "ultrafast"}),
    Case("x264-medium", "libx264", "mp4", "yuv420p", ("--crf", "23", "--preset", "medium"),
         ("-crf", "23", "-preset", "medium"), {"crf": "23", "preset": "medium"}),
    Case("x264-ultrafast-720p", "libx264", "mp4", "yuv420p", ("--crf", "23", "--preset", "ultrafast"),
         ("-crf", "23", "-preset", "ultrafast"), {"crf": "23", "preset": "ultrafast"}, size=(1280, 720)),
    Case("x265-ultrafast", "libx265", "mp4", "yuv420p", ("--crf", "28", "--preset", "ultrafast"),
         ("-crf", "28", "-preset", "ultrafast"), {"crf": "28", "preset": "ultrafast"}),
    Case("x265-fast", "libx265", "mp4", "yuv420p", ("--crf", "28", "--preset", "fast"),
         ("-crf", "28", "-preset", "fast"), {"crf": "28", "preset": "fast"}),
    Case("vp9-good", "libvpx-vp9", "webm", "yuv420p", ("--crf", "32"),
         ("-crf", "32", "-b:v", "0", "-row-mt", "1", "-deadline", "good", "-cpu-used", "4"), VP9_GOOD),
    Case("vp9-realtime", "libvpx-vp9", "webm", "yuv420p",
         ("--crf", "32", "-x", "deadline=realtime", "-x", "cpu-used=8"),
         ("-crf", "32", "-b:v", "0", "-row-mt", "1", "-deadline", "realtime", "-cpu-used", "8"), VP9_FAST),
    Case("prores-422", "prores_ks", "mov", "yuv422p10le", (), (), {}),
    Case("svtav1-preset12", "libsvtav1", "mp4", "yuv420p", ("--crf", "35", "--preset", "12"),
         ("-crf", "35", "-preset", "12"), {"crf": "35", "preset": "12"}, end_to_end=False),
    Case("svtav1-preset8", "libsvtav1", "mp4", "yuv420p", ("--crf", "35", "--preset", "8"),
         ("-crf", "35", "-preset", "8"), {"crf": "35", "preset": "8"}, end_to_end=False),
]  # fmt: skip

FRAMES = 8


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], tuple[Path, np.ndarray]]:
    """testsrc2 frames per size, as .npy for nvenc and as an array for the raw pipe."""
    folder = tmp_path_factory.mktemp("psnr")
    out = {}
    for width, height in {case.size for case in CASES}:
        count = FRAMES if width <= 320 else 3
        frames = testsrc.batch(width, height, count)
        path = folder / f"clip_{width}x{height}.npy"
        np.save(path, frames)
        out[(width, height)] = (path, frames)
    return out


def ffmpeg(frames: np.ndarray, *args: str) -> bytes:
    """Pipe raw rgb24 frames into the ffmpeg CLI at 30 fps; returns its stdout."""
    height, width = frames.shape[1:3]
    head = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    cmd = [*head, "-s", f"{width}x{height}", "-r", "30", "-i", "-", *args]
    proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def raw_to_frame(data: bytes, pixel_format: str, width: int, height: int) -> av.VideoFrame:
    """One frame of planar raw video (as ``-f rawvideo`` writes it) as a PyAV frame."""
    frame = av.VideoFrame(width, height, pixel_format)
    wide = max(c.bits for c in frame.format.components) > 8
    dtype = np.dtype("<u2") if wide else np.dtype(np.uint8)
    offset = 0
    for target in frame.planes:
        count = target.width * target.height
        values = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        offset += count * dtype.itemsize
        rows = np.frombuffer(target, dtype=dtype).reshape(target.height, target.line_size // dtype.itemsize)
        rows[:, : target.width] = values.reshape(target.height, target.width)
    return frame


def same_build(frames: np.ndarray, case: Case, out: Path) -> None:
    """The ffmpeg CLI's RGB→YUV conversion, encoded by PyAV's build of the same encoder."""
    height, width = frames.shape[1:3]
    raw = ffmpeg(frames, "-pix_fmt", case.pixel_format, "-f", "rawvideo", "-")
    size = len(raw) // len(frames)
    with av.open(str(out), "w") as container:
        stream = container.add_stream(case.codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, case.pixel_format
        stream.codec_context.time_base = Fraction(1, 30)
        stream.codec_context.options = dict(case.options)
        for index in range(len(frames)):
            frame = raw_to_frame(raw[index * size : (index + 1) * size], case.pixel_format, width, height)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def decoded_psnr(path: Path, source: np.ndarray) -> float:
    frames = np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(path)])
    assert frames.shape == source.shape, "frame count or size changed"
    return psnr(frames, source)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_psnr_at_least_the_ffmpeg_cli(
    tmp_path: Path, clips: dict[tuple[int, int], tuple[Path, np.ndarray]], case: Case
) -> None:
    src, frames = clips[case.size]
    ours_path = tmp_path / f"ours.{case.ext}"
    proc = run_cli("encode", src, "-o", ours_path, "-c", case.codec, "--pixel-format", case.pixel_format,
                   *case.ours)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    ours = decoded_psnr(ours_path, frames)
    ref_path = tmp_path / f"same_build.{case.ext}"
    same_build(frames, case, ref_path)
    reference = decoded_psnr(ref_path, frames)
    assert ours >= reference, f"{case.name}: nvenc {ours:.3f} dB < ffmpeg conversion {reference:.3f} dB"
    if case.end_to_end:
        cli_path = tmp_path / f"ffmpeg.{case.ext}"
        ffmpeg(frames, "-c:v", case.codec, "-pix_fmt", case.pixel_format, *case.theirs, str(cli_path))
        cli = decoded_psnr(cli_path, frames)
        assert ours >= cli, f"{case.name}: nvenc {ours:.3f} dB < ffmpeg CLI {cli:.3f} dB"
