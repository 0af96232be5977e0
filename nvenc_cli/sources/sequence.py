"""Frames held as a list: what rollout loops, diffusers and Gymnasium hand over.

A list (or tuple) of frames — numpy arrays, torch tensors or PIL images, each one frame
by the same shape rules as a single frame — is seen as one array of frames whose windows
are stacked only when they are read. Stacking the whole list first would copy every
frame at once (360 MB for 501 CartPole frames); here peak memory is one window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nvenc_cli.errors import InputDataError, tc_frames_type

# PIL modes read as they are, and modes whose pixels mean the same once expanded (a
# palette, 1-bit, gray with alpha). Anything else would need a colour conversion.
_PIL_DIRECT = frozenset({"RGB", "RGBA", "L", "I;16", "I;16L", "F"})
_PIL_EXPAND = {"1": "L", "LA": "RGBA", "PA": "RGBA"}
_PIL_CHANNELS = {"RGB": 3, "RGBA": 4, "L": 1, "I;16": 1, "I;16L": 1, "F": 1, "1": 1, "LA": 4, "PA": 4}


def is_pil(obj: Any) -> bool:
    """True for PIL images, checked without importing Pillow."""
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "getbands")


def pil_array(image: Any, where: str = "the image") -> np.ndarray:
    """A PIL image's pixels as an (H, W) or (H, W, C) array, without changing a value."""
    mode = image.mode
    if mode == "P":
        mode = "RGBA" if "transparency" in image.info else "RGB"
        image = image.convert(mode)
    elif mode in _PIL_EXPAND:
        image = image.convert(_PIL_EXPAND[mode])
    elif mode not in _PIL_DIRECT:
        raise InputDataError(
            f"{where} is a PIL image in mode {mode}: nvenc takes RGB, RGBA, L, I;16 or F "
            f"(convert it: image.convert('RGB'))"
        )
    return np.asarray(image)


def as_frames(frames: Any) -> Any:
    """What the API's doors accept, as an array-like: a list or tuple becomes a
    ``FrameList``, a PIL image an array; tensors and arrays pass as they are."""
    if isinstance(frames, list | tuple):
        return FrameList(frames)
    if is_pil(frames):
        return pil_array(frames)
    return frames


def _is_torch(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "device")


def _facts(item: Any, index: int) -> tuple[tuple[int, ...], str, str]:
    """(shape, dtype, device) of one listed frame, read without touching its pixels."""
    if is_pil(item):
        mode = item.mode
        channels = (4 if "transparency" in item.info else 3) if mode == "P" else _PIL_CHANNELS.get(mode)
        if channels is None:
            pil_array(item, f"frames[{index}]")  # refused, naming the mode
        width, height = item.size
        shape = (height, width) if channels == 1 else (height, width, channels)
        dtype = {"I;16": "uint16", "I;16L": "uint16", "F": "float32"}.get(mode, "uint8")
        return shape, dtype, "cpu"
    if _is_torch(item):
        return tuple(int(d) for d in item.shape), str(item.dtype).removeprefix("torch."), str(item.device)
    if isinstance(item, np.ndarray):
        return tuple(item.shape), str(item.dtype), "cpu"
    raise InputDataError(
        f"frames[{index}] is a {type(item).__name__}: a list of frames holds numpy arrays, torch "
        "tensors or PIL images",
        torchcodec=tc_frames_type(item),
    )


class FrameList:
    """A list of frames seen as an array of shape ``(N, *frame)``: ``frames[a:b]``
    stacks just those frames (on the frames' own device, for CUDA tensors).

    Every frame is checked up front from its header facts alone (shape, dtype, device):
    frames unlike the first are refused naming the first odd index.
    """

    def __init__(self, items: Sequence[Any]) -> None:
        if len(items) == 0:
            raise InputDataError("the list of frames is empty: nothing to encode")
        facts = _facts(items[0], 0)
        for index in range(1, len(items)):
            other = _facts(items[index], index)
            if other != facts:
                raise InputDataError(
                    f"frames[{index}] is {_describe(other)}, unlike frames[0] ({_describe(facts)}): "
                    "every frame of a list needs the same size, channels, dtype and device"
                )
        shape, dtype, device = facts
        if len(shape) not in (2, 3):
            raise InputDataError(
                f"frames[0] has shape {shape}: each item of a list of frames is one frame, "
                "(H, W), (H, W, C) or (C, H, W)"
            )
        self.items = items
        self.torch = _is_torch(items[0])
        self.pil = is_pil(items[0])
        self._gray = len(shape) == 2
        self.shape = (len(items), *shape, *((1,) if self._gray else ()))
        self.dtype: Any = items[0].dtype if not self.pil else np.dtype(dtype)
        self.device = device

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, window: slice) -> Any:
        if not isinstance(window, slice):
            raise TypeError("a FrameList is read a window (slice) at a time")
        chosen = self.items[window]
        if self.torch:
            import torch

            stacked = torch.stack([item.detach() for item in chosen])
            return stacked.unsqueeze(-1) if self._gray else stacked
        arrays = [pil_array(item) for item in chosen] if self.pil else list(chosen)
        stacked = np.stack(arrays)
        return stacked[..., np.newaxis] if self._gray else stacked


def _describe(facts: tuple[tuple[int, ...], str, str]) -> str:
    shape, dtype, device = facts
    where = "" if device == "cpu" else f" on {device}"
    return f"{dtype} {shape}{where}"
