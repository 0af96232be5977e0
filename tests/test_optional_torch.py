"""torch is an extra: without it every common input still encodes; torch-only paths say
which extra to install (exit 69), in one line.

"Without torch" is a real interpreter in which ``import torch`` fails (as in a plain
``pip install``): a ``sys.modules`` entry of None makes every import of it raise
ImportError, which is exactly what a missing package does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, decode, psnr
from PIL import Image

NO_TORCH = (
    "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['nvenc'] + sys.argv[1:]; "
    "runpy.run_module('nvenc_cli', run_name='__main__')"
)


def _nvenc_without_torch(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *map(str, args)],
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


def test_torch_is_an_extra_not_a_dependency() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.split(">")[0].split("=")[0].strip() == "torch" for dep in project["dependencies"])
    extras = project["optional-dependencies"]
    assert any(dep.startswith("torch") for dep in extras["torch"])
    assert any(dep.startswith("torch") for dep in extras["gpu"])


@pytest.fixture()
def inputs(tmp_path: Path, pattern: np.ndarray) -> dict[str, Path]:
    import torch

    frames = pattern[:5]
    np.save(tmp_path / "f.npy", frames)
    np.savez(tmp_path / "f.npz", frames=frames)
    torch.save(torch.from_numpy(frames), tmp_path / "f.pt")
    (tmp_path / "imgs").mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / "imgs" / f"{i:03d}.png")
    torch.save(torch.from_numpy(frames), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    return {
        "npy": tmp_path / "f.npy",
        "npz": tmp_path / "f.npz",
        "pt": tmp_path / "f.pt",
        "images": tmp_path / "imgs",
        "legacy": tmp_path / "legacy.pt",
    }


def test_common_inputs_encode_without_torch(tmp_path: Path, pattern: np.ndarray, inputs: dict) -> None:
    for kind in ("npy", "npz", "pt", "images"):
        out = tmp_path / f"{kind}.mp4"
        done = _nvenc_without_torch("encode", inputs[kind], "-o", out, cwd=tmp_path)
        assert done.returncode == 0, (kind, done.stderr)
        decoded, _ = decode(out)
        assert len(decoded) == 5 and psnr(decoded, pattern[:5]) > 35, kind
    video = _nvenc_without_torch("encode", tmp_path / "npy.mp4", "-o", tmp_path / "again.mkv", cwd=tmp_path)
    assert video.returncode == 0, video.stderr
    assert len(decode(tmp_path / "again.mkv")[0]) == 5
    info = _nvenc_without_torch("info", "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stderr


def test_torch_only_paths_name_the_extra(tmp_path: Path, inputs: dict) -> None:
    out = tmp_path / "legacy.mp4"
    legacy = _nvenc_without_torch("encode", inputs["legacy"], "-o", out, cwd=tmp_path)
    assert legacy.returncode == 69
    message = legacy.stderr.decode()
    assert message.count("\n") == 1 and "Traceback" not in message
    assert f"pip install '{ROOT}[torch]'" in message  # a command that works from the checkout
    assert not out.exists()
    sample = _nvenc_without_torch("testsrc", tmp_path / "s.pt", "--frames", "2", cwd=tmp_path)
    assert sample.returncode == 69 and f"pip install '{ROOT}[torch]'" in sample.stderr.decode()


def test_api_to_tensor_without_torch_names_the_extra(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, nvenc_cli\n"
        "enc = nvenc_cli.VideoEncoder(np.zeros((2, 16, 16, 3), np.uint8), frame_rate=30)\n"
        "enc.to_file('ok.mp4')\n"
        "try:\n    enc.to_tensor('mp4')\n"
        "except RuntimeError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"pip install '{ROOT}[torch]'" in done.stdout
    assert len(decode(tmp_path / "ok.mp4")[0]) == 2
