"""x264 threading that nvenc chooses, read back from the SEI x264 writes into the stream."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from nvenc_cli import testsrc
from tests.conftest import run_cli

CORES = os.cpu_count() or 1


def _x264_settings(path: Path) -> dict[str, str]:
    """x264's own record of its settings ("options: cabac=1 ref=3 ..."), as a dict."""
    match = re.search(rb"options: ([ -~]+)", path.read_bytes())
    assert match, "no x264 settings SEI in the stream"
    return dict(item.split("=", 1) for item in match.group(1).decode().split() if "=" in item)


@pytest.fixture(scope="module")
def frames_npy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("threads") / "frames.npy"
    np.save(path, testsrc.batch(320, 240, 12))
    return path


@pytest.mark.parametrize(
    ("extra", "threads", "lookahead"),
    [
        ([], str(min(2 * CORES, 16)), str(max(1, (3 * CORES // 2) // 6))),
        (["-x", "threads=1"], "1", "1"),
        (["-x", "x264-params=lookahead-threads=1"], str(min(2 * CORES, 16)), "1"),
    ],
    ids=["chosen", "user-threads", "user-lookahead"],
)
def test_x264_threads(
    tmp_path: Path, frames_npy: Path, extra: list[str], threads: str, lookahead: str
) -> None:
    out = tmp_path / "out.mp4"
    done = run_cli("encode", frames_npy, "-o", out, "--preset", "medium", "-q", *extra)
    assert done.returncode == 0, done.stderr.decode()
    settings = _x264_settings(out)
    assert (settings["threads"], settings["lookahead_threads"]) == (threads, lookahead)
    assert settings["rc_lookahead"] == "40"  # medium's lookahead is untouched
