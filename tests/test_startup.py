"""A process imports only what its path needs: start-up is most of a short encode's time.

Each case runs the real entry point (``nvenc_cli.__main__.main``, what the ``nvenc``
console script calls) in a fresh interpreter through a small launcher that writes the
names in ``sys.modules`` as the process leaves (``main`` ends with ``os._exit``, so the
launcher wraps that), then checks the command's real output as well. No timing is
asserted: which modules load is what decides the fixed cost, and it does not flake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nvenc_cli import __version__, testsrc
from tests.conftest import ROOT, decode, psnr
from tests.test_planes import write_video

LAUNCHER = """
import os, sys
leave = os._exit
def record(code):
    with open(os.environ["NVENC_MODULES_OUT"], "w") as fh:
        fh.write("\\n".join(sorted(sys.modules)))
    leave(code)
os._exit = record
sys.argv = ["nvenc"] + sys.argv[1:]
from nvenc_cli.__main__ import main
main()
"""


def run_recorded(tmp_path: Path, *args: object) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``nvenc ARGS``; returns the finished process and the top-level packages it loaded."""
    listing = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *map(str, args)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NVENC_MODULES_OUT": str(listing)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    loaded = set(listing.read_text().split()) if listing.exists() else set()
    return proc, loaded


def packages(loaded: set[str]) -> set[str]:
    return {name.split(".")[0] for name in loaded}


def test_version_loads_neither_the_parser_nor_the_media_stack(tmp_path: Path) -> None:
    proc, loaded = run_recorded(tmp_path, "--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"nvenc {__version__}\n".encode(), b"")
    assert loaded, "the launcher saw no exit"
    assert not packages(loaded) & {"numpy", "av", "torch", "typer", "click", "rich", "PIL"}


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_version_to_a_full_device_is_one_line_and_exit_74() -> None:
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "nvenc_cli", "--version"], stdout=full, stderr=subprocess.PIPE, cwd=ROOT
        )
    assert proc.returncode == 74
    assert proc.stderr.decode().splitlines() == [
        "nvenc: error: cannot write to standard output: No space left on device"
    ]


def test_help_loads_no_media_stack(tmp_path: Path) -> None:
    proc, loaded = run_recorded(tmp_path, "encode", "--help")
    assert proc.returncode == 0 and b"--output" in proc.stdout
    assert not packages(loaded) & {"numpy", "av", "torch", "PIL"}


@pytest.mark.parametrize("quiet", [True, False])
def test_an_npy_encode_loads_no_torch_and_no_progress_display(tmp_path: Path, quiet: bool) -> None:
    frames = testsrc.batch(64, 48, 6)
    np.save(tmp_path / "in.npy", frames)
    proc, loaded = run_recorded(tmp_path, "encode", "in.npy", "-o", "out.mp4", *(["-q"] if quiet else []))
    assert proc.returncode == 0, proc.stderr.decode()
    got, facts = decode(tmp_path / "out.mp4")
    assert got.shape == frames.shape
    assert [pts * facts["time_base"] for pts in facts["pts"]] == [Fraction(i, 30) for i in range(6)]
    assert psnr(got, frames) > 30
    assert "torch" not in packages(loaded)
    # stderr is no terminal here: the summary line is plain text, no rich console
    assert not {name for name in loaded if name == "rich" or name.startswith("rich.")}
    assert not {name for name in loaded if name.startswith("nvenc_cli.api")}


def test_a_y4m_transcode_passes_planes_without_numpy(tmp_path: Path) -> None:
    frames = testsrc.batch(96, 64, 8)
    write_video(tmp_path / "in.y4m", frames, "rawvideo", {}, None)
    proc, loaded = run_recorded(tmp_path, "encode", "in.y4m", "-o", "out.mp4", "--crf", "0", "-q", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b'"route": "planes-passthrough"' in proc.stdout
    want, _ = decode(tmp_path / "in.y4m", "yuv420p")
    got, facts = decode(tmp_path / "out.mp4", "yuv420p")
    assert got.shape == want.shape and np.array_equal(got, want)  # lossless: every sample kept
    assert facts["codec"] == "h264"
    assert not packages(loaded) & {"numpy", "torch", "PIL", "rich"}
    # --device auto probes NVENC; on a machine without a driver it stops at the first
    # check, and must not have loaded the GPU route's stream splitter and option tables
    if not _has_driver():
        assert not {"nvenc_cli.backends.annexb", "nvenc_cli.backends.nvenc_options"} & loaded


def _has_driver() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True
