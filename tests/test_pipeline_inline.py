"""Small clips are encoded on the calling thread; the bytes must be the threaded path's."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest

from nvenc_cli import VideoEncoder, pipeline, testsrc
from nvenc_cli.encoding import encode_path, options_from
from nvenc_cli.errors import EncoderError
from tests.conftest import decode, psnr

CASES = {  # name: (frames, to_file arguments)
    "x264 default threads": (testsrc.batch(256, 256, 16), {}),
    "13 frames, partial window": (testsrc.batch(96, 64, 13), {"crf": 18}),
    "yuv444p medium": (testsrc.batch(128, 72, 9), {"pixel_format": "yuv444p", "preset": "medium"}),
    "x265": (testsrc.batch(64, 64, 10), {"codec": "libx265", "crf": 18}),
}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_inline_and_threaded_paths_write_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    frames, kwargs = CASES[name]
    assert frames.shape[0] * frames.shape[1] * frames.shape[2] <= pipeline.INLINE_PIXELS
    VideoEncoder(frames, frame_rate=30).to_file(tmp_path / "inline.mp4", **kwargs)
    monkeypatch.setattr(pipeline, "INLINE_PIXELS", 0)
    VideoEncoder(frames, frame_rate=30).to_file(tmp_path / "threaded.mp4", **kwargs)
    assert _md5(tmp_path / "inline.mp4") == _md5(tmp_path / "threaded.mp4")
    decoded, _ = decode(tmp_path / "inline.mp4")
    assert decoded.shape == frames.shape
    assert psnr(decoded, frames) > 28


def test_small_clips_start_no_threads_and_large_ones_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    small = testsrc.batch(64, 48, 8)
    VideoEncoder(small, frame_rate=30).to_file(tmp_path / "small.mp4")
    assert started == []
    monkeypatch.setattr(pipeline, "INLINE_PIXELS", small[:4].shape[0] * 64 * 48)
    VideoEncoder(small, frame_rate=30).to_file(tmp_path / "large.mp4")
    assert len(started) == 2  # reader and converter
    assert _md5(tmp_path / "small.mp4") == _md5(tmp_path / "large.mp4")


def test_an_npy_file_through_encode_path_is_inline_and_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = testsrc.batch(160, 90, 20)
    np.save(tmp_path / "in.npy", frames)
    options, inputs = options_from({"overwrite": True, "preset": "fast"})
    first = encode_path(str(tmp_path / "in.npy"), str(tmp_path / "inline.mp4"), options, inputs)
    monkeypatch.setattr(pipeline, "INLINE_PIXELS", 0)
    second = encode_path(str(tmp_path / "in.npy"), str(tmp_path / "threaded.mp4"), options, inputs)
    assert first.frames == second.frames == 20
    assert _md5(tmp_path / "inline.mp4") == _md5(tmp_path / "threaded.mp4")


@pytest.mark.usefixtures("broken_encoder")
def test_an_inline_failure_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="encoder on fire"):
        VideoEncoder(testsrc.batch(64, 48, 4), frame_rate=30).to_file(tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []
