"""The Source contract: header facts up front, frames later in bounded windows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING

from nvenc_cli.errors import InputDataError
from nvenc_cli.frames import FrameInfo
from nvenc_cli.sources.layout import ValueMap, check_code_range
from nvenc_cli.timestamps import Timeline

if TYPE_CHECKING:  # windows are numpy arrays, but a source of decoded planes needs no numpy
    import numpy as np

# Upper bound on one window's frames. Below glibc's largest mmap threshold (32 MiB), so a
# freed window's memory is reused from the heap rather than unmapped and faulted in
# again page by page for the next one (a 1080p window of 8 frames is 50 MB, and those
# page faults cost more CPU than the colour conversion). It also bounds the queues.
WINDOW_BYTES = 24 << 20


class Source(ABC):
    """A stream of frames whose size and kind are known before the first frame is read.

    ``start``/``limit`` (``--start``/``--frames``) are applied here, once, for every input
    family; subclasses only know how to read ``count`` frames from ``index`` on.
    """

    info: FrameInfo
    fps_hint: Fraction | None = None
    #: where ``fps_hint`` came from when it is file metadata worth a notice (``fps`` entry).
    fps_from: str | None = None
    #: why the input has no rate of its own (a y4m ``F0:0``, a raw stream without timing),
    #: said in a notice when ``-r`` does not give one
    rate_missing: str | None = None
    name: str = ""

    def __init__(self) -> None:
        self.start = 0
        self.limit: int | None = None
        #: depth floats are scaled to (8 or 16); the plan sets it from the pixel format.
        self.float_depth = 8
        #: the rate the output is written at (the plan's), for what re-timing says
        self.out_rate: Fraction | None = None
        #: What reading changes that nobody asked for (a dropped frame, a lost tag), in
        #: words: the CLI prints each as a note and lists it in the --json "notices",
        #: beside the plan's. A reader may add one while frames are read.
        self.notices: list[str] = []
        #: the range samples are in (``--value-range``) and ``--clamp``; floats default to
        #: [0, 1], integers to their dtype's codes. It also counts what was clamped.
        self.value_range = ValueMap()
        #: per-frame timestamps (``--timestamps``, an entry beside the frames, or the API's
        #: ``timestamps=``), trimmed by ``select``; None means the constant rate
        self.timeline: Timeline | None = None
        #: where ``timeline`` came from when it is file data worth a notice, and how to undo it
        self.timeline_from: str | None = None
        self.timeline_hint = "--timestamps overrides them"

    @property
    def is_float(self) -> bool:
        """Whether the samples are floats (only those have a value range to map)."""
        return False

    @property
    def code_max(self) -> int | None:
        """The largest code of integer samples (255, 65535); None when not known here."""
        depth = getattr(self, "depth", None)
        return (1 << depth) - 1 if depth in (8, 16) else None

    def set_value_range(self, value_range: tuple[float, float] | None, clamp: bool = False) -> None:
        """Declare the range samples are in, and whether strays are clamped."""
        if value_range is not None and not self.is_float:
            check_code_range(value_range, self.code_max, self.name or "the input")
        self.value_range = ValueMap(value_range, clamp)

    @property
    def total(self) -> int | None:
        """Frames the input holds in all, when the header says."""
        return None

    def __len__(self) -> int:
        count = self.frame_count
        if count is None:
            raise TypeError("this source does not know its length")
        return count

    @property
    def frame_count(self) -> int | None:
        """Frames this run will encode, after --start/--frames, when known up front."""
        total = self.total
        if total is None:
            return self.limit
        left = max(total - self.start, 0)
        return left if self.limit is None else min(left, self.limit)

    def select(self, start: int = 0, limit: int | None = None) -> None:
        """Apply --start/--frames; refuses a start past the end when the end is known."""
        if start < 0:
            raise InputDataError(f"--start {start} is negative")
        if limit is not None and limit < 1:
            raise InputDataError(f"--frames {limit} must be at least 1")
        total = self.total
        if total is not None and start >= total:
            raise InputDataError(f"--start {start} is past the last frame (the input has {total})")
        self.start, self.limit = start, limit

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """Yield NHWC uint8/uint16 windows of at most ``size`` frames (and at most
        ``WINDOW_BYTES``, one frame at least), in order."""
        size = max(1, min(size, WINDOW_BYTES // max(self.info.frame_bytes, 1)))
        remaining = self.limit
        produced = 0
        for window in self._windows(self.start, size):
            if remaining is not None:
                window = window[: remaining - produced]
            if len(window) == 0:
                break
            produced += len(window)
            yield window
            if remaining is not None and produced >= remaining:
                break
        if produced == 0:
            raise InputDataError(f"{self.name or 'the input'} holds no frames to encode")
        clamped = self.value_range.notice()
        if clamped is not None:
            self.notices.append(clamped)

    @abstractmethod
    def _windows(self, start: int, size: int) -> Iterator[np.ndarray]:
        """Yield normalised windows from frame ``start`` to the end."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and maps; safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
