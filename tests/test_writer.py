"""The streaming writer: frames that arrive over time, one output, all-or-nothing."""

from __future__ import annotations

import gc
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nvenc_cli import VideoEncoder, VideoWriter, open_writer, testsrc
from tests.conftest import SERIAL, PipeSink, decode


@pytest.fixture(scope="module")
def nhwc() -> np.ndarray:
    """8 frames of testsrc2 at 64x48, channels last."""
    return testsrc.batch(64, 48, 8)


def _files(folder: Path) -> list[str]:
    """Everything in ``folder``, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir())


def test_frames_one_by_one_or_in_batches_give_the_video_encoders_bytes(
    tmp_path: Path, nhwc: np.ndarray
) -> None:
    VideoEncoder(nhwc, frame_rate=24).to_file(tmp_path / "whole.mp4", extra_options=SERIAL)
    chw = torch.from_numpy(nhwc).permute(0, 3, 1, 2)
    with open_writer(tmp_path / "streamed.mp4", frame_rate=24, extra_options=SERIAL) as writer:
        writer.write(chw[0])  # one (3, H, W) frame
        writer.write(chw[1:5])  # a batch
        for frame in chw[5:]:
            writer.write(frame.permute(1, 2, 0))  # (H, W, 3): channels last works too
        assert writer.frames_written == 8
    assert writer.closed
    assert (tmp_path / "streamed.mp4").read_bytes() == (tmp_path / "whole.mp4").read_bytes()


def test_ambiguous_later_frames_are_read_like_the_first(tmp_path: Path) -> None:
    first = torch.zeros(3, 4, 4, dtype=torch.uint8)  # (C, H, W) or (H, W, C): torch reads C first
    with open_writer(tmp_path / "tiny.mkv", frame_rate=30, codec="ffv1") as writer:
        writer.write(first)
        writer.write(np.full((3, 4, 4), 255, np.uint8))  # numpy alone would read it (H, W, C)
    frames, _ = decode(tmp_path / "tiny.mkv")
    assert frames.shape == (2, 4, 4, 3) and frames[1].min() == 255


def test_numpy_frames_and_a_small_batch_size(tmp_path: Path, nhwc: np.ndarray) -> None:
    with open_writer(tmp_path / "np.mkv", frame_rate=30, batch_size=3, codec="ffv1") as writer:
        writer.write(nhwc)
    frames, _ = decode(tmp_path / "np.mkv")
    np.testing.assert_array_equal(frames, nhwc)


def test_first_frame_size_is_validated_and_the_writer_stays_usable(tmp_path: Path, nhwc: np.ndarray) -> None:
    with open_writer(tmp_path / "out.mp4", frame_rate=30) as writer:
        with pytest.raises(ValueError, match="63x47"):
            writer.write(nhwc[0, :47, :63])
        assert not writer.closed and _files(tmp_path) == []
        writer.write(nhwc[0])
    assert decode(tmp_path / "out.mp4")[0].shape == (1, 48, 64, 3)


@pytest.mark.parametrize(
    ("later", "named"),
    [
        (lambda f: f[:, :32], r"\(32, 64, 3\).*\(48, 64, 3\)"),
        (lambda f: np.concatenate([f, f[..., :1]], axis=-1), r"\(48, 64, 4\)"),
        (lambda f: f.astype(np.uint16), "uint16.*uint8"),
        (lambda f: f.astype(np.float32) / 255, "float32.*uint8"),
        (lambda f: torch.empty(f.shape, dtype=torch.uint8, device="meta"), "meta.*cpu"),
    ],
    ids=["size", "channels", "dtype-uint16", "dtype-float", "device"],
)
def test_later_frames_must_match_the_first(tmp_path: Path, nhwc: np.ndarray, later: Any, named: str) -> None:
    with open_writer(tmp_path / "out.mp4", frame_rate=30) as writer:
        writer.write(nhwc[:2])
        with pytest.raises(ValueError, match=named):
            writer.write(later(nhwc[2:4]))
        writer.write(nhwc[2:4])
    assert decode(tmp_path / "out.mp4")[0].shape[0] == 4


def test_close_twice_is_harmless_and_writing_after_close_raises(tmp_path: Path, nhwc: np.ndarray) -> None:
    writer = open_writer(tmp_path / "out.mp4", frame_rate=30)
    writer.write(nhwc)
    writer.close()
    size = (tmp_path / "out.mp4").stat().st_size
    writer.close()
    with writer:  # entering and leaving a closed writer is harmless too
        pass
    with pytest.raises(ValueError, match="closed"):
        writer.write(nhwc[0])
    assert (tmp_path / "out.mp4").stat().st_size == size
    writer.abort()  # abort after close leaves the finished file alone
    assert (tmp_path / "out.mp4").stat().st_size == size


def test_leaving_with_through_an_exception_removes_the_partial_file(tmp_path: Path, nhwc: np.ndarray) -> None:
    with pytest.raises(KeyError), open_writer(tmp_path / "out.mp4", frame_rate=30) as writer:
        writer.write(nhwc)
        assert len(_files(tmp_path)) == 1  # the hidden temporary file
        raise KeyError("simulation diverged")
    assert _files(tmp_path) == []
    assert writer.closed


def test_an_exception_keeps_the_previous_file(tmp_path: Path, nhwc: np.ndarray) -> None:
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"previous run")
    with pytest.raises(RuntimeError), open_writer(dest, frame_rate=30) as writer:
        writer.write(nhwc)
        raise RuntimeError("stop")
    assert dest.read_bytes() == b"previous run" and _files(tmp_path) == ["out.mp4"]


def test_closing_without_frames_raises_and_creates_nothing(tmp_path: Path) -> None:
    writer = open_writer(tmp_path / "out.mp4", frame_rate=30)
    with pytest.raises(ValueError, match="no frames"):
        writer.close()
    writer.close()
    assert _files(tmp_path) == []


@pytest.mark.usefixtures("broken_encoder")
def test_encoder_failure_closes_the_writer(tmp_path: Path, nhwc: np.ndarray) -> None:
    writer = open_writer(tmp_path / "out.mp4", frame_rate=30)
    with pytest.raises(RuntimeError, match="encoder on fire"):
        writer.write(nhwc)
    assert writer.closed and _files(tmp_path) == []
    with pytest.raises(ValueError, match="earlier error"):
        writer.write(nhwc)


def test_float_frames_with_nan_abort_the_output(tmp_path: Path, nhwc: np.ndarray) -> None:
    frames = nhwc.astype(np.float32) / 255
    frames[5, 0, 0, 0] = np.nan
    with open_writer(tmp_path / "out.mp4", frame_rate=30) as writer:
        writer.write(frames[:4])
        with pytest.raises(ValueError, match="frame 5"):
            writer.write(frames[4:])
    assert _files(tmp_path) == []


def test_file_like_and_non_seekable_destinations(nhwc: np.ndarray, tmp_path: Path) -> None:
    sink = io.BytesIO()
    with open_writer(sink, frame_rate=30, format="mp4") as writer:
        writer.write(nhwc)
    (tmp_path / "sink.mp4").write_bytes(sink.getvalue())
    assert decode(tmp_path / "sink.mp4")[0].shape[0] == len(nhwc)

    pipe = PipeSink()
    with open_writer(pipe, frame_rate=30, format="mp4") as writer:
        writer.write(nhwc)
    (tmp_path / "pipe.mp4").write_bytes(bytes(pipe.data))
    assert decode(tmp_path / "pipe.mp4")[0].shape[0] == len(nhwc)


@pytest.mark.parametrize(
    ("dest", "kwargs", "error", "named"),
    [
        ("out.mp4", {"frame_rate": 0}, ValueError, "frame rate 0"),
        ("out.xyz", {"frame_rate": 30}, ValueError, "xyz"),
        ("out", {"frame_rate": 30}, ValueError, "out"),
        (io.BytesIO(), {"frame_rate": 30}, ValueError, "format is required"),
        ("-", {"frame_rate": 30}, ValueError, "format is required"),
        (object(), {"frame_rate": 30, "format": "mp4"}, ValueError, r"write\(\) and seek\(\)"),
        ("missing/out.mp4", {"frame_rate": 30}, OSError, "does not exist"),
        ("out.mp4", {"frame_rate": 30, "device": "cpu", "crf": 99}, ValueError, "crf 99"),
        ("out.mp4", {"frame_rate": 30, "device": "cpu", "preset": "warp"}, ValueError, "warp"),
        ("out.mp4", {"frame_rate": 30, "device": "tpu"}, ValueError, "tpu"),
    ],
)
def test_open_refuses_what_can_never_work(
    tmp_path: Path, dest: Any, kwargs: dict[str, Any], error: type, named: str
) -> None:
    target = tmp_path / dest if isinstance(dest, str) and dest != "-" else dest
    with pytest.raises(error, match=named):
        open_writer(target, **kwargs)
    assert _files(tmp_path) == []


def test_existing_file_is_refused_at_open_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "out.mp4").write_bytes(b"keep")
    with pytest.raises(OSError, match="overwrite=True"):
        open_writer(tmp_path / "out.mp4", frame_rate=30, overwrite=False)


def test_options_without_device_are_checked_at_the_first_write(tmp_path: Path, nhwc: np.ndarray) -> None:
    writer = open_writer(tmp_path / "out.mp4", frame_rate=30, crf=99)
    with pytest.raises(ValueError, match="crf 99"):
        writer.write(nhwc[0])
    writer.abort()
    assert _files(tmp_path) == []


def test_an_unclosed_writer_warns_and_leaves_nothing(tmp_path: Path, nhwc: np.ndarray) -> None:
    writer: VideoWriter | None = open_writer(tmp_path / "out.mp4", frame_rate=30)
    assert writer is not None
    writer.write(nhwc)
    with pytest.warns(ResourceWarning, match="never closed"):
        writer = None
        gc.collect()
    assert _files(tmp_path) == []
