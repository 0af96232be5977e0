"""Window memory that file readers hand out again once every user of a window is gone."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np


class WindowBuffers:
    """A few reusable blocks for the windows one reader fills.

    Reading each window into a fresh array made the kernel fault in and zero its pages
    every time (glibc returns blocks of this size to the kernel when they are freed):
    ~9 % of the CPU time of a 1080p encode. A block is lent as a *root* array over it,
    and every view, queued window, tensor or FFmpeg frame made from the window keeps that
    root alive (NumPy views point at it; PyAV's frames hold a reference to their array).
    A block is lent again only once a weak reference says the root is gone, so no
    reader can overwrite frames that something still reads.
    """

    def __init__(self, keep: int = 6) -> None:
        self._keep = keep
        self._blocks: list[tuple[np.ndarray, Callable[[], np.ndarray | None]]] = []

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised, writable, C-contiguous array of ``shape`` and ``dtype``."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        for index, (block, lease) in enumerate(self._blocks):
            if block.nbytes >= nbytes and lease() is None:
                return self._lend(index, nbytes, shape, dtype)
        if len(self._blocks) == self._keep:  # every block is busy: a plain array
            return np.empty(shape, dtype=dtype)
        self._blocks.append((np.empty(max(nbytes, 1), dtype=np.uint8), _never_lent))
        return self._lend(len(self._blocks) - 1, nbytes, shape, dtype)

    def _lend(self, index: int, nbytes: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        # Through a memoryview, so the root's base is not the block itself: views of the
        # root then stop at the root, and the root's lifetime is the window's.
        block = self._blocks[index][0]
        root = np.frombuffer(memoryview(block)[:nbytes], dtype=dtype)
        self._blocks[index] = (block, weakref.ref(root))
        return root.reshape(shape)


def _never_lent() -> None:
    """The lease of a block not lent yet: nothing holds it."""
    return None
