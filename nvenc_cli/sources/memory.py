"""Frames already in memory (a torch tensor or a numpy array), for the Python API.

The file sources read raw windows and normalise them with ``layout.to_nhwc``; this one
does the same to slices of an array the caller holds, so the API and the CLI share one
shape/dtype policy. Windows of CUDA tensors stay on their GPU when the NVENC backend
will consume them and come to the host only for the CPU backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nvenc_cli.errors import (
    FrameFormatError,
    InputDataError,
    UsageError,
    tc_channels,
    tc_frames_rank,
    tc_frames_type,
)
from nvenc_cli.frames import FrameInfo, is_torch
from nvenc_cli.sources.base import Source
from nvenc_cli.sources.layout import (
    CHANNELS,
    Layout,
    ValueMap,
    as_value_map,
    check_values,
    dtype_depth,
    frame_info,
    outside_message,
    to_nhwc,
)
from nvenc_cli.sources.sequence import FrameList

if TYPE_CHECKING:
    from nvenc_cli.plan import EncodePlan

_FIRST = {"nchw": "nchw", "chw": "nchw", "nhwc": "nhwc", "hwc": "nhwc"}


@dataclass(frozen=True)
class MemoryFrames:
    """What an in-memory array of frames is: its axes, sample type and device.

    ``dtype`` and ``device`` are plain strings (``"uint8"``, ``"cpu"``, ``"cuda:0"``) so a
    numpy array and a CPU tensor of the same dtype compare equal.
    """

    layout: Layout
    dtype: str
    device: str
    depth: int

    @property
    def size(self) -> tuple[int, int, int]:
        """(height, width, channels) of one frame, whatever the axis order."""
        return self.layout.height, self.layout.width, self.layout.channels

    @property
    def info(self) -> FrameInfo:
        """The plan's view of one frame; refuses empty batches and impossible sizes."""
        return frame_info(self.layout, self.depth)


def describe(frames: Any, layout: str | None = None, prefer: str | None = None) -> MemoryFrames:
    """Check ``frames`` and name its axes; raises ValueError subclasses naming the bad value.

    4-D arrays are batches, 3-D arrays one frame. The channel axis (1 gray, 3 RGB, 4 RGBA)
    is found at dim 1 (channels first, torchcodec's layout) or last. ``layout``
    (``"nchw"``/``"nhwc"``) forces it; when both could be it, ``prefer`` decides, else
    tensors are read channels first (torchcodec) and numpy arrays channels last (images).
    """
    listed = isinstance(frames, FrameList)
    if not (is_torch(frames) or isinstance(frames, np.ndarray) or listed):
        raise InputDataError(
            f"frames must be a torch.Tensor, a numpy array or a list of frames, got {type(frames).__name__}",
            torchcodec=tc_frames_type(frames),
        )
    if layout is not None and layout not in ("nchw", "nhwc"):
        raise UsageError(f"invalid layout {layout!r}: choose 'nchw' or 'nhwc'")
    shape = tuple(int(d) for d in frames.shape)
    if len(shape) not in (3, 4):
        raise InputDataError(
            f"frames must be 4-D, (N, C, H, W) or (N, H, W, C), or 3-D for one frame; "
            f"got {len(shape)}-D shape {shape}",
            torchcodec=tc_frames_rank(frames.shape),
        )
    torch_like = frames.torch if listed else is_torch(frames)
    if listed and frames.pil:
        layout = "nhwc"  # a PIL image is (H, W, C) whatever its size
    prefer_first = prefer == "nchw" if prefer is not None else torch_like
    first = _channels_first(shape, layout, prefer_first)
    if len(shape) == 4:
        n, (h, w, c) = shape[0], ((shape[2], shape[3], shape[1]) if first else shape[1:])
        kind = "nchw" if first else "nhwc"
    else:
        n, (h, w, c) = 1, ((shape[1], shape[2], shape[0]) if first else shape)
        kind = "chw" if first else "hwc"
    dtype = str(frames.dtype).removeprefix("torch.")
    depth = dtype_depth(frames.dtype if isinstance(frames.dtype, np.dtype) else dtype)
    device = str(frames.device) if torch_like else "cpu"
    return MemoryFrames(Layout(kind, n, h, w, c), dtype, device, depth)


def check_readable(frames: Any) -> None:
    """Refuse tensors whose pixels cannot be read as a dense array (meta, sparse)."""
    if isinstance(frames, FrameList) and frames.torch:
        for item in frames.items:
            check_readable(item)
        return
    if not is_torch(frames):
        return
    if frames.device.type == "meta":
        raise InputDataError("frames are on the meta device: they hold no pixel data")
    if str(frames.layout) != "torch.strided":
        raise InputDataError(
            f"frames are a {str(frames.layout).removeprefix('torch.')} tensor: "
            "pass a dense one (frames.to_dense())"
        )


def _channels_first(shape: tuple[int, ...], forced: str | None, prefer_first: bool) -> bool:
    """Where the channel axis is; a shape with no 1/3/4-sized candidate is refused."""
    first_dim = shape[-3]
    last_dim = shape[-1]
    if forced is not None:
        first = forced == "nchw"
        channels = first_dim if first else last_dim
        if channels not in CHANNELS:
            raise FrameFormatError(
                f"frames of shape {shape} read as {forced} have {channels} channels: "
                "expected 3 (RGB), 1 (gray) or 4 (RGBA)",
                torchcodec=tc_channels(channels),
            )
        return first
    if first_dim in CHANNELS and last_dim in CHANNELS:
        return prefer_first
    if first_dim in CHANNELS or last_dim in CHANNELS:
        return first_dim in CHANNELS
    axis = "dim 1" if len(shape) == 4 else "dim 0"
    raise FrameFormatError(
        f"frames of shape {shape} have no channel axis: expected 3 channels (RGB; 1 gray or "
        f"4 RGBA also work) at {axis} (channels first) or last (channels last)",
        torchcodec=tc_channels(first_dim if prefer_first else last_dim),
    )


def same_family(kind: str) -> str:
    """``nchw`` for channels-first layouts, ``nhwc`` for channels-last ones."""
    return _FIRST[kind]


def to_backend(
    raw: Any,
    layout: Layout,
    out_depth: int,
    first_index: int,
    backend: str,
    value_range: ValueMap | tuple[float, float] | None = None,
) -> Any:
    """One raw window as contiguous NHWC where ``backend`` wants it.

    The CPU backend takes numpy arrays; NVENC takes torch tensors on the GPU, so a CUDA
    window is normalised in place on its device and a host window is uploaded.
    """
    if is_torch(raw) and raw.device.type == "cuda" and backend == "nvenc":
        return _on_device(raw, layout, out_depth, first_index, value_range)
    if is_torch(raw) and backend != "nvenc":
        from nvenc_cli.devconvert import keeps_tensor

        if keeps_tensor(raw, backend):  # converted on its device, planes cross (devconvert)
            return _on_device(raw, layout, out_depth, first_index, value_range)
    out = to_nhwc(_host(raw), layout, out_depth, first_index, value_range)
    if backend == "nvenc":
        import torch

        return torch.from_numpy(out).to("cuda")
    return out


def _on_device(
    raw: Any, layout: Layout, out_depth: int, first_index: int, value_range: ValueMap | tuple | None
) -> Any:
    """``_torch_to_nhwc`` where the window lies; a GPU out of memory is one line (69)."""
    from nvenc_cli.devconvert import is_out_of_memory, out_of_memory_message
    from nvenc_cli.errors import UnavailableError

    try:
        return _torch_to_nhwc(_plain(raw), layout, out_depth, first_index, value_range)
    except RuntimeError as exc:
        if isinstance(exc, InputDataError) or not is_out_of_memory(exc):
            raise
        raise UnavailableError(out_of_memory_message(raw.device, exc)) from None


def _host(raw: Any) -> np.ndarray:
    if not is_torch(raw):
        return raw
    import torch

    raw = _plain(raw)
    if raw.dtype == torch.bfloat16:  # numpy has no bfloat16
        raw = raw.float()
    return raw.cpu().numpy()


def _plain(raw: Any) -> Any:
    """The tensor's values as ordinary memory: detached from autograd, with lazy negation
    and conjugation (``x.conj().imag`` is a negative view) applied, which ``numpy()``
    and DLPack refuse to export. Both are no-ops, without a copy, when no bit is set."""
    return raw.detach().resolve_neg().resolve_conj()


def _torch_to_nhwc(
    raw: Any, layout: Layout, out_depth: int, first_index: int, value_range: ValueMap | tuple | None
) -> Any:
    """``layout.to_nhwc`` in torch, for windows that stay on the GPU (same maths)."""
    import torch

    if layout.single:
        raw = raw.unsqueeze(0)
    if layout.kind in ("nchw", "chw"):
        raw = raw.permute(0, 2, 3, 1)
    values = as_value_map(value_range)
    out_dtype = torch.uint16 if out_depth > 8 else torch.uint8
    if not raw.is_floating_point():
        if values.range is None:
            return raw.contiguous()
        return _torch_codes(raw, out_depth, first_index, values).to(out_dtype).contiguous()
    floats = raw.float()
    finite = torch.isfinite(floats)
    if not bool(finite.all()):
        bad = int(torch.nonzero(~finite)[0][0]) + first_index
        raise InputDataError(f"frame {bad} holds NaN or infinite values")
    low, high = (float(v) for v in torch.aminmax(floats))
    lo, hi = values.range or (0.0, 1.0)
    window = (first_index, int(floats.shape[0]), floats.numel())
    check_values(low, high, values, window, lambda: int(((floats < lo) | (floats > hi)).sum()))
    if values.range is not None:
        floats = (floats - lo) * (1.0 / (hi - lo))
    scale = 65535.0 if out_depth > 8 else 255.0
    return torch.round(floats.clamp(0.0, 1.0) * scale).to(out_dtype).contiguous()


def _torch_codes(raw: Any, out_depth: int, first_index: int, values: ValueMap) -> Any:
    """``layout._from_codes`` in torch: exact integer scaling of codes in the value range."""
    assert values.range is not None
    lo, hi = int(values.range[0]), int(values.range[1])
    codes = raw.long()
    low, high = int(codes.min()), int(codes.max())
    if low < lo or high > hi:
        if not values.clamp:
            count = int(codes.shape[0])
            raise InputDataError(outside_message(low, high, values.range, first_index, count, "codes"))
        values.record(int(((codes < lo) | (codes > hi)).sum()), codes.numel(), low, high)
    else:
        values.record(0, codes.numel(), low, high)
    top, span = (65535 if out_depth > 8 else 255), hi - lo
    return ((codes.clamp(lo, hi) - lo) * (2 * top) + span) // (2 * span)


class MemorySource(Source):
    """Windows of an array the caller holds; nothing is copied until a window is read.

    ``backend`` is set from the plan (like ``float_depth``) before iteration starts.
    """

    def __init__(self, frames: Any, described: MemoryFrames, name: str = "frames") -> None:
        super().__init__()
        self.frames = frames
        self.described = described
        self.layout = described.layout
        self.info = described.info
        self.name = name
        self.backend = "cpu"

    def adopt(self, plan: EncodePlan) -> EncodePlan:
        """``plan`` for these frames' device (``devconvert.adopt``: FFmpeg's nvenc may take
        CUDA frames as they are), and the backend whose form each window is read in."""
        from nvenc_cli import devconvert

        plan = devconvert.adopt(plan, self.described.device)
        self.backend = plan.backend
        return plan

    @property
    def total(self) -> int:
        return self.layout.frames

    @property
    def is_float(self) -> bool:
        return self.described.depth == 0

    @property
    def depth(self) -> int:
        return self.described.depth

    def _windows(self, start: int, size: int) -> Iterator[Any]:
        for index in range(start, self.layout.frames, size):
            raw = self.frames if self.layout.single else self.frames[index : index + size]
            yield to_backend(raw, self.layout, self.float_depth, index, self.backend, self.value_range)
