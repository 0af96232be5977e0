"""The output is a function of the pixels and settings alone.

The CPU path wraps a window's rows for swscale instead of copying them into a fresh
FFmpeg frame, and the CLI keeps freed buffers for reuse, so frames now lie at arbitrary
alignments next to whatever an earlier frame left in memory. Neither may change a byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nvenc_cli import VideoEncoder, testsrc
from tests.conftest import SERIAL, run_cli


def _placed(frames: np.ndarray, offset: int, fill: int) -> np.ndarray:
    """``frames`` copied to ``offset`` bytes past a 64-byte boundary, amid ``fill`` bytes."""
    raw = np.full(frames.nbytes + 256, fill, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    view = raw[start : start + frames.nbytes].view(frames.dtype).reshape(frames.shape)
    view[...] = frames
    assert view.ctypes.data % 64 == offset % 64
    return view


@pytest.mark.parametrize(
    ("width", "height", "channels", "pixel_format"),
    [
        (642, 360, 3, "yuv420p"),
        (66, 38, 3, "yuv444p"),
        (130, 74, 4, "yuv420p"),
        (98, 50, 1, "yuv420p"),
    ],
)
def test_the_bytes_do_not_depend_on_where_the_frames_lie(
    tmp_path: Path, width: int, height: int, channels: int, pixel_format: str
) -> None:
    rgb = testsrc.batch(width, height, 6)
    frames = np.ascontiguousarray(
        {1: rgb[..., :1], 3: rgb, 4: np.concatenate([rgb, rgb[..., :1]], axis=3)}[channels]
    )

    def encode(data: np.ndarray, name: str) -> bytes:
        out = tmp_path / f"{name}.mp4"
        VideoEncoder(data, frame_rate=30).to_file(out, pixel_format=pixel_format, extra_options=SERIAL)
        return out.read_bytes()

    reference = encode(frames.copy(), "reference")
    for offset, fill in ((0, 0), (1, 255), (16, 7), (48, 200)):
        assert encode(_placed(frames, offset, fill), f"at{offset}") == reference, offset


def test_the_cli_writes_the_same_bytes_every_run(tmp_path: Path) -> None:
    np.save(tmp_path / "frames.npy", testsrc.batch(642, 360, 24))
    outputs = []
    for run in range(3):
        out = tmp_path / f"run{run}.mp4"
        done = run_cli("encode", tmp_path / "frames.npy", "-o", out, "-x", "threads=1", "-q")
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
