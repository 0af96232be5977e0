"""The unit that travels between stages: a window of frames plus where it starts.

Kept free of torch/av imports so every stage (and ``nvenc --help``) can import it cheaply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def is_torch(obj: Any) -> bool:
    """True for torch tensors, checked without importing torch (or numpy)."""
    return type(obj).__module__.startswith("torch") and hasattr(obj, "device")


@dataclass(frozen=True)
class FrameInfo:
    """What every frame of a source looks like once its layout is normalised.

    ``channels`` is 1 (gray), 3 (RGB) or 4 (RGBA); ``depth`` is 8 for uint8 samples and
    16 for uint16 samples (float inputs are scaled to one of those by the source).
    """

    width: int
    height: int
    channels: int = 3
    depth: int = 8

    @property
    def has_alpha(self) -> bool:
        return self.channels == 4

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * self.channels * (2 if self.depth > 8 else 1)


class PlaneWindow:
    """Decoded video frames that go to the encoder as they are: their pixel format,
    matrix, range and size are the output's, so converting them to RGB and back would
    only cost CPU and a generation of chroma and rounding loss. Sliced and measured like
    an NHWC window (``shape[0]`` is the frame count)."""

    def __init__(self, frames: list[Any], width: int, height: int) -> None:
        self.frames, self.width, self.height = frames, width, height

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.frames), self.height, self.width, 3)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, window: slice) -> PlaneWindow:
        return PlaneWindow(self.frames[window], self.width, self.height)


class ReadyPlanes:
    """Frames converted on their device into the encoder's planes: one tuple of 2-D plane
    tensors per frame, in ``pixel_format``'s plane order, each frame's its own (an
    encoder may keep a frame after ``encode`` returns). In host memory, or still on the
    GPU when ``wrap`` (planes -> FFmpeg CUDA frame) is given. Measured like an NHWC
    window (``shape[0]`` is the frame count)."""

    def __init__(
        self,
        frames: list[tuple[Any, ...]],
        pixel_format: str,
        width: int,
        height: int,
        wrap: Callable[[tuple[Any, ...]], Any] | None = None,
    ) -> None:
        self.frames, self.pixel_format = frames, pixel_format
        self.width, self.height = width, height
        self.wrap = wrap

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.frames), self.height, self.width, 3)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class FrameBatch:
    """``data`` is NHWC (N, H, W, C), C-contiguous, uint8 or uint16.

    It is a numpy array for host frames or a torch tensor (possibly on CUDA) for frames
    that come from the Python API; ``start`` is the index of the first frame in the
    output, which is also its pts in the 1/fps time base.
    """

    data: Any
    start: int
    #: each frame's time in the plan's time base, for per-frame timestamps (None: the
    #: frame's index is its time, at the constant rate)
    pts: tuple[int, ...] | None = None
    #: the time of the frame after this window (None: one nominal frame after the last)
    next_pts: int | None = None

    def pts_of(self, offset: int) -> int:
        """The time of frame ``offset`` of this window, in the plan's time base."""
        return self.start + offset if self.pts is None else self.pts[offset]

    def duration_of(self, offset: int, nominal: int) -> int:
        """How long frame ``offset`` is shown, in the plan's time base: until the next
        frame, or ``nominal`` ticks (one frame at the nominal rate) after the last."""
        if self.pts is None:
            return 1
        if offset + 1 < len(self.pts):
            return self.pts[offset + 1] - self.pts[offset]
        return nominal if self.next_pts is None else self.next_pts - self.pts[offset]

    def __len__(self) -> int:
        return int(self.data.shape[0])
