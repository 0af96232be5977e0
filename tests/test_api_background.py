"""``VideoEncoder.to_*(..., wait=False)``: encodes on a bounded background pool, as futures."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import torch

from nvenc_cli import VideoEncoder, testsrc
from nvenc_cli.api import set_background
from nvenc_cli.api.background import Background
from nvenc_cli.errors import NvencError
from tests.conftest import SERIAL, decode, psnr


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """12 frames of testsrc2 at 96x64, channels last."""
    return testsrc.batch(96, 64, 12)


@pytest.fixture
def pool() -> Iterator[None]:
    """A small pool for the test, the default one again afterwards."""
    set_background(workers=2, pending=3)
    yield
    set_background()


def test_to_file_future_writes_the_same_file_as_waiting(tmp_path: Path, clip: np.ndarray, pool: None) -> None:
    encoder = VideoEncoder(clip, frame_rate=24)
    encoder.to_file(tmp_path / "sync.mp4", extra_options=SERIAL)
    future = encoder.to_file(tmp_path / "async.mp4", extra_options=SERIAL, wait=False)
    assert isinstance(future, Future)
    assert future.result(timeout=60) is None
    assert (tmp_path / "async.mp4").read_bytes() == (tmp_path / "sync.mp4").read_bytes()
    frames, _ = decode(tmp_path / "async.mp4")
    assert frames.shape == clip.shape
    assert psnr(frames, clip) > 28


def test_to_tensor_and_to_file_like_futures(clip: np.ndarray, pool: None) -> None:
    encoder = VideoEncoder(torch.from_numpy(clip).permute(0, 3, 1, 2), frame_rate=24)
    expected = encoder.to_tensor("mp4", crf=30, extra_options=SERIAL)
    tensor = encoder.to_tensor("mp4", crf=30, extra_options=SERIAL, wait=False).result(timeout=60)
    assert tensor.dtype == torch.uint8 and tensor.ndim == 1
    assert torch.equal(tensor, expected)
    sink = io.BytesIO()
    future = encoder.to_file_like(sink, "mp4", crf=30, extra_options=SERIAL, wait=False)
    assert future.result(timeout=60) is None
    assert sink.getvalue() == expected.numpy().tobytes()


def test_errors_surface_on_result_and_leave_no_file(tmp_path: Path, clip: np.ndarray, pool: None) -> None:
    encoder = VideoEncoder(clip, frame_rate=24)
    future = encoder.to_file(tmp_path / "bad.mp4", codec="no_such_codec", wait=False)
    with pytest.raises(RuntimeError, match="no_such_codec") as caught:
        future.result(timeout=60)
    assert isinstance(caught.value, NvencError)
    assert not (tmp_path / "bad.mp4").exists()
    assert list(tmp_path.iterdir()) == []
    # A destination of the wrong type is refused through the future as well.
    with pytest.raises(ValueError, match="dest must be a path"):
        encoder.to_file(io.BytesIO(), wait=False).result(timeout=60)  # type: ignore[arg-type]
    # A failed encode does not hold a slot: the pool goes on encoding.
    assert encoder.to_file(tmp_path / "ok.mp4", wait=False).result(timeout=60) is None
    assert decode(tmp_path / "ok.mp4")[0].shape == clip.shape


def test_wait_must_be_a_bool(tmp_path: Path, clip: np.ndarray) -> None:
    with pytest.raises(ValueError, match="wait"):
        VideoEncoder(clip, frame_rate=24).to_file(tmp_path / "x.mp4", wait="no")  # type: ignore[arg-type]
    assert not (tmp_path / "x.mp4").exists()


def test_many_futures_stay_within_the_pending_bound(tmp_path: Path, pool: None) -> None:
    clips = [testsrc.batch(64, 48, 6 + (i % 3)) for i in range(16)]
    futures: list[Future[None]] = []
    unfinished_seen = []
    for index, frames in enumerate(clips):
        futures.append(VideoEncoder(frames, frame_rate=30).to_file(tmp_path / f"{index}.mp4", wait=False))
        unfinished_seen.append(sum(not f.done() for f in futures))
    for future in futures:
        assert future.result(timeout=120) is None
    assert max(unfinished_seen) <= 3
    for index, frames in enumerate(clips):
        decoded, _ = decode(tmp_path / f"{index}.mp4")
        assert decoded.shape == frames.shape, index
        assert psnr(decoded, frames) > 28, index


def test_submit_waits_for_a_slot_when_the_pool_is_full() -> None:
    pool = Background(workers=1, pending=2)
    release = threading.Event()
    first = pool.submit(release.wait, 30)
    second = pool.submit(release.wait, 30)
    third: list[Future[bool]] = []
    caller = threading.Thread(target=lambda: third.append(pool.submit(lambda: True)))
    caller.start()
    caller.join(0.3)
    assert caller.is_alive() and not third  # held back: two are pending
    release.set()
    caller.join(30)
    assert third and third[0].result(timeout=30) is True
    assert first.result() and second.result()
    pool.shutdown()


def test_exceptions_do_not_leak_slots() -> None:
    pool = Background(workers=1, pending=1)

    def fail() -> None:
        raise OSError("disk full")

    for _ in range(5):  # each would wait forever if a failure kept its slot
        with pytest.raises(OSError, match="disk full"):
            pool.submit(fail).result(timeout=10)
    pool.shutdown()


@pytest.mark.parametrize(("workers", "pending"), [(0, None), (2, 1)])
def test_pool_sizes_are_checked(workers: int, pending: int | None) -> None:
    with pytest.raises(ValueError):
        Background(workers, pending)


def test_set_background_lets_handed_over_work_finish(tmp_path: Path, clip: np.ndarray) -> None:
    set_background(workers=1, pending=2)
    try:
        future = VideoEncoder(clip, frame_rate=24).to_file(tmp_path / "a.mp4", wait=False)
        started = time.monotonic()
        set_background(workers=2)  # waits for the old pool's encode
        assert future.done() and future.result() is None
        assert time.monotonic() - started < 60
    finally:
        set_background()
    assert decode(tmp_path / "a.mp4")[0].shape == clip.shape
