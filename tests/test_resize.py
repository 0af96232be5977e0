"""--resize / resize=: the size rules (-1, -2), the filters, and colour rules unchanged.

Referees: the mean of each 2x2 block for a 2x shrink (what area filtering means), the
ffmpeg CLI's own ``scale=…:flags=lanczos`` for growing, and ffprobe for sizes and tags.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import decode, ffprobe, psnr, run_cli

from nvenc_cli.resize import Resizer, parse_resize, target_size


@pytest.fixture()
def vga(tmp_path: Path) -> tuple[np.ndarray, Path]:
    from nvenc_cli import testsrc

    frames = testsrc.batch(640, 480, 4)
    path = tmp_path / "vga.npy"
    np.save(path, frames)
    return frames, path


def _box_half(frames: np.ndarray) -> np.ndarray:
    n, h, w, c = frames.shape
    return frames.reshape(n, h // 2, 2, w // 2, 2, c).astype(np.float64).mean(axis=(2, 4))


def test_size_rules() -> None:
    assert target_size(parse_resize("640x-1"), 1920, 1080) == (640, 360)
    assert target_size(parse_resize("-1x480"), 1920, 1080) == (853, 480)
    assert target_size(parse_resize("-2x480"), 1920, 1080) == (854, 480)
    assert target_size(parse_resize("-2:481"), 1280, 720) == (856, 481)
    assert target_size(parse_resize((100, -2)), 333, 250) == (100, 76)
    for bad in ("0x10", "-3x10", "-1x-1", "axb", "640"):
        with pytest.raises(ValueError, match="--resize"):
            parse_resize(bad)


def test_shrinking_averages_each_block(tmp_path: Path, vga: tuple[np.ndarray, Path]) -> None:
    frames, path = vga
    out = tmp_path / "half.mkv"
    done = run_cli("encode", path, "-o", out, "-c", "ffv1", "--resize", "320x-2")
    assert done.returncode == 0, done.stderr
    assert "resized from 640x480 to 320x240 (area)" in done.stderr.decode()
    decoded, facts = decode(out)
    assert (facts["width"], facts["height"]) == (320, 240) and len(decoded) == 4
    assert np.abs(decoded - _box_half(frames)).max() <= 0.5  # the mean, rounded


def test_growing_matches_ffmpeg_lanczos(tmp_path: Path, vga: tuple[np.ndarray, Path]) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    frames, _ = vga
    small = np.rint(_box_half(frames)).astype(np.uint8)
    np.save(tmp_path / "small.npy", small)
    out = tmp_path / "big.mkv"
    done = run_cli("encode", tmp_path / "small.npy", "-o", out, "-c", "ffv1", "--resize", "640x480")
    assert done.returncode == 0, done.stderr
    assert "(lanczos)" in done.stderr.decode()
    ours, _ = decode(out)
    theirs = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "320x240", "-i", "-",
         "-vf", "scale=640:480:flags=lanczos+accurate_rnd", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        input=small.tobytes(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    reference = np.frombuffer(theirs, np.uint8).reshape(ours.shape)
    assert psnr(ours, reference) > 45
    nearest = small.repeat(2, axis=1).repeat(2, axis=2)
    assert psnr(ours, reference) > psnr(nearest, reference) + 5


def test_colour_rules_follow_the_output_size(tmp_path: Path, pattern_hd: np.ndarray) -> None:
    np.save(tmp_path / "hd.npy", pattern_hd)
    out = tmp_path / "small.mp4"
    done = run_cli("encode", tmp_path / "hd.npy", "-o", out, "--resize", "320x-2", "--crf", "10")
    assert done.returncode == 0, done.stderr
    stream = ffprobe(out)["stream"]
    assert (stream["width"], stream["height"]) == (320, 180)
    assert stream["color_space"] == "smpte170m"  # below 720 lines: BT.601, as without --resize
    assert stream["pix_fmt"] == "yuv420p"
    decoded, _ = decode(out)
    box = pattern_hd.reshape(6, 180, 4, 320, 4, 3).astype(np.float64).mean(axis=(2, 4))
    np.save(tmp_path / "box.npy", np.rint(box).astype(np.uint8))  # shrunk beforehand
    ref = run_cli("encode", tmp_path / "box.npy", "-o", tmp_path / "ref.mp4", "--crf", "10")
    assert ref.returncode == 0, ref.stderr
    assert psnr(decoded, decode(tmp_path / "ref.mp4")[0]) > 40


def test_odd_target_is_refused_with_the_fix(tmp_path: Path, vga: tuple[np.ndarray, Path]) -> None:
    _, path = vga
    done = run_cli("encode", path, "-o", tmp_path / "o.mp4", "--resize", "-1x241")
    assert done.returncode == 65 and "-2" in done.stderr.decode()
    padded = run_cli("encode", path, "-o", tmp_path / "p.mp4", "--resize", "-1x241", "--pad")
    assert padded.returncode == 0, padded.stderr
    stream = ffprobe(tmp_path / "p.mp4")["stream"]
    assert (stream["width"], stream["height"]) == (322, 242)


def test_api_resize_gives_the_cli_bytes(tmp_path: Path, vga: tuple[np.ndarray, Path]) -> None:
    from nvenc_cli import VideoEncoder, open_writer

    frames, path = vga
    cli_out = tmp_path / "cli.mkv"
    done = run_cli("encode", path, "-o", cli_out, "-c", "ffv1", "--resize", "160x-2")
    assert done.returncode == 0, done.stderr
    api_out = tmp_path / "api.mkv"
    VideoEncoder(frames, frame_rate=30).to_file(api_out, codec="ffv1", resize=(160, -2))
    assert np.array_equal(decode(api_out)[0], decode(cli_out)[0])
    writer_out = tmp_path / "writer.mkv"
    with open_writer(writer_out, frame_rate=30, codec="ffv1", resize="160x120") as writer:
        for frame in frames:
            writer.write(frame)
    assert np.array_equal(decode(writer_out)[0], decode(cli_out)[0])
    with pytest.raises(ValueError, match="resize"):
        VideoEncoder(frames, frame_rate=30).to_file(tmp_path / "x.mkv", resize=(0, 10))


def test_gpu_side_filters_agree_with_swscale(vga: tuple[np.ndarray, Path]) -> None:
    """Frames already on the GPU are scaled by torch; checked here on CPU tensors."""
    import torch

    frames, _ = vga
    down = Resizer(320, 240, "area")(torch.from_numpy(frames)).numpy()
    assert np.abs(down - _box_half(frames)).max() <= 0.5
    small = np.rint(_box_half(frames)).astype(np.uint8)
    up_torch = Resizer(640, 480, "lanczos")(torch.from_numpy(small)).numpy()
    up_sws = Resizer(640, 480, "lanczos")(small)
    assert up_torch.shape == up_sws.shape == (4, 480, 640, 3)
    assert psnr(up_torch, up_sws) > 35
