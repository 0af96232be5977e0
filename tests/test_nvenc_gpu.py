"""Real NVENC encodes. They run only where the probe passes and skip with its reason elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from nvenc_cli.backends import nvenc

STATUS = nvenc.probe_details()
pytestmark = pytest.mark.skipif(not STATUS.ok, reason=f"NVENC unavailable: {STATUS.reason}")


def clip(count: int = 30, width: int = 1280, height: int = 720) -> np.ndarray:
    frames = np.zeros((count, height, width, 3), np.uint8)
    ramp = np.linspace(0, 255, width, dtype=np.float64)
    for i in range(count):
        frames[i, :, :, 0] = (ramp + 4 * i) % 256
        frames[i, :, :, 1] = np.linspace(30, 220, height)[:, None]
        frames[i, :, (i * 9) % width : (i * 9) % width + 40, 2] = 240
    return frames


def decode(path: Path) -> tuple[np.ndarray, av.VideoFrame]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return np.stack([f.to_ndarray(format="rgb24") for f in frames]), frames[0]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, np.ndarray]:
    frames = clip()
    path = tmp_path_factory.mktemp("gpu") / "frames.npy"
    np.save(path, frames)
    return path, frames


@pytest.mark.parametrize(
    ("codec", "ext"), [("h264_nvenc", "mp4"), ("hevc_nvenc", "mkv"), ("av1_nvenc", "mp4")]
)
def test_cli_encode(source, tmp_path, codec, ext):
    from conftest import run_cli

    path, frames = source
    out = tmp_path / f"out.{ext}"
    result = run_cli("encode", path, "-o", out, "-c", codec, "--json")
    if result.returncode == 69 and codec == "av1_nvenc":
        pytest.skip(f"this GPU's NVENC has no AV1: {result.stderr.decode().strip()}")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["backend"] == "nvenc"
    decoded, first = decode(out)
    assert decoded.shape == frames.shape
    assert psnr(decoded, frames) > 35
    assert (first.colorspace, first.color_range, first.color_primaries) == (1, 1, 1)  # 720p: BT.709 tv


def test_cuda_tensor_input_without_host_copy(tmp_path):
    import torch

    from nvenc_cli.frames import FrameInfo
    from nvenc_cli.options import EncodeOptions
    from nvenc_cli.pipeline import run
    from nvenc_cli.plan import make_plan

    frames = torch.from_numpy(clip(16, 640, 360)).cuda()
    plan = make_plan(EncodeOptions(device="cuda", codec="h264"), FrameInfo(640, 360), "mp4")
    result = run((frames[i : i + 8] for i in range(0, 16, 8)), plan, str(tmp_path / "t.mp4"))
    assert result.frames == 16
    decoded, _ = decode(tmp_path / "t.mp4")
    assert decoded.shape[0] == 16 and psnr(decoded, frames.cpu().numpy()) > 35


def test_odd_width_is_not_skewed(tmp_path):
    from conftest import run_cli

    frames = clip(8, 1000, 562)  # not a multiple of 16 in either direction
    path = tmp_path / "odd.npy"
    np.save(path, frames)
    out = tmp_path / "odd.mp4"
    assert run_cli("encode", path, "-o", out, "--device", "cuda").returncode == 0
    decoded, _ = decode(out)
    assert decoded.shape == frames.shape and psnr(decoded, frames) > 35
