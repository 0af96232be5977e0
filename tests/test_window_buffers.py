"""Readers reuse window memory, but never under a window that something still reads."""

from __future__ import annotations

import gc
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nvenc_cli.sources import open_source
from nvenc_cli.sources.buffers import WindowBuffers


def test_a_released_block_is_lent_again_and_a_held_one_is_not() -> None:
    pool = WindowBuffers(keep=2)
    first = pool.empty((4, 8, 3), np.uint8)
    address = first.ctypes.data
    del first
    again = pool.empty((4, 8, 3), np.uint8)
    assert again.ctypes.data == address  # released: the same memory comes back
    other = pool.empty((4, 8, 3), np.uint8)
    assert other.ctypes.data != address  # `again` is alive: never the same memory
    extra = pool.empty((4, 8, 3), np.uint8)  # both blocks busy: a plain array
    assert len({again.ctypes.data, other.ctypes.data, extra.ctypes.data}) == 3
    del other
    smaller = pool.empty((2, 8, 3), np.uint16)  # a freed block big enough serves any dtype
    assert smaller.shape == (2, 8, 3) and smaller.dtype == np.uint16 and smaller.flags.writeable


@pytest.mark.parametrize(
    "holder",
    [
        lambda w: w[1:, :, :, 1:],  # a NumPy view
        lambda w: w[0],  # one frame, as the converter takes it
        lambda w: torch.from_numpy(w),  # a tensor sharing the memory
        lambda w: av.VideoFrame.from_numpy_buffer(w[0], format="rgb24"),  # a wrapped frame
    ],
    ids=["view", "frame", "tensor", "av-frame"],
)
def test_windows_held_anywhere_keep_their_pixels(tmp_path: Path, holder) -> None:
    frames = np.random.default_rng(3).integers(0, 256, (24, 16, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "f.npy", frames)
    source = open_source(str(tmp_path / "f.npy"))
    kept, starts, start = [], [], 0
    for window in source.batches(2):
        kept.append(holder(window))
        starts.append(start)
        start += len(window)
        del window
        gc.collect()
    source.close()
    assert start == 24
    for obj, first in zip(kept, starts, strict=True):
        if isinstance(obj, av.VideoFrame):
            assert np.array_equal(obj.to_ndarray(format="rgb24"), frames[first])
        elif isinstance(obj, torch.Tensor):
            assert np.array_equal(obj.numpy(), frames[first : first + 2])
        elif obj.ndim == 3:
            assert np.array_equal(obj, frames[first])
        else:
            assert np.array_equal(obj, frames[first : first + 2][1:, :, :, 1:])


def test_a_reader_that_drops_its_windows_reuses_a_few_blocks(tmp_path: Path) -> None:
    frames = np.random.default_rng(4).integers(0, 256, (40, 16, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "f.npy", frames)
    addresses, got = set(), []
    with open_source(str(tmp_path / "f.npy")) as source:
        for window in source.batches(4):
            addresses.add(window.ctypes.data)
            got.append(window.copy())
    assert np.array_equal(np.concatenate(got), frames)
    assert len(addresses) <= 2
