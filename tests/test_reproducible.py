"""Reproducible bytes: the same input and options give the same file on every run, in
every container, from the CLI and from the API whatever the process encoded before, at
the default (full-speed) thread counts."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli

CONTAINERS = ["mp4", "mov", "mkv", "webm", "avi", "ts", "nut", "gif"]


@pytest.fixture(scope="module")
def frames_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nvenc_cli import testsrc

    path = tmp_path_factory.mktemp("repro") / "frames.npy"
    np.save(path, testsrc.batch(320, 240, 12))
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("ext", CONTAINERS)
def test_two_cli_runs_give_the_same_bytes(tmp_path: Path, frames_file: Path, ext: str) -> None:
    digests = set()
    for run in range(2):
        out = tmp_path / f"run{run}.{ext}"
        done = run_cli("encode", frames_file, "-o", out)
        assert done.returncode == 0, done.stderr
        digests.add(_digest(out))
    assert len(digests) == 1


def test_api_after_other_encodes_gives_the_cli_bytes(tmp_path: Path, frames_file: Path) -> None:
    """One interpreter encodes other clips first (other sizes, codecs, a writer), as a
    batch worker or a notebook would, then each container: bytes equal the CLI's."""
    script = (
        "import hashlib, io, sys\n"
        "import numpy as np\n"
        "from nvenc_cli import VideoEncoder, open_writer\n"
        "frames = np.load(sys.argv[1])\n"
        "noise = np.random.default_rng(0).integers(0, 255, (9, 96, 128, 3), dtype=np.uint8)\n"
        "for fmt in ('mkv', 'mp4'):\n"
        "    VideoEncoder(noise, frame_rate=24).to_file_like(io.BytesIO(), fmt, crf=30)\n"
        "with open_writer(io.BytesIO(), frame_rate=30, format='mkv', codec='libx265') as w:\n"
        "    w.write(noise)\n"
        "for ext in sys.argv[3:]:\n"
        "    path = f'{sys.argv[2]}/api.{ext}'\n"
        "    VideoEncoder(frames, frame_rate=30).to_file(path)\n"
        "    print(ext, hashlib.sha256(open(path, 'rb').read()).hexdigest())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(frames_file), str(tmp_path), *CONTAINERS],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    api = dict(line.split() for line in done.stdout.splitlines())
    for ext in CONTAINERS:
        out = tmp_path / f"cli.{ext}"
        assert run_cli("encode", frames_file, "-o", out).returncode == 0
        assert api[ext] == _digest(out), ext


def test_in_process_repeats_under_threads(frames_file: Path) -> None:
    from nvenc_cli import VideoEncoder

    frames = np.load(frames_file)
    seen = set()
    for _ in range(3):
        buffer = io.BytesIO()
        VideoEncoder(frames, frame_rate=30).to_file_like(buffer, "mkv", codec="libx265")
        seen.add(hashlib.sha256(buffer.getvalue()).hexdigest())
    assert len(seen) == 1
