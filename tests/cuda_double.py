"""An emulation of PyAV's CUDA frame import, for machines without a GPU.

It follows the installed wheel (PyAV 18.1.1), ``av/video/frame.py``:

* ``CudaContext.__cinit__(device_id=0, primary_ctx=True, current_ctx=False,
  cuda_stream=None)``: ``primary_ctx`` and ``current_ctx`` are exclusive; the stream is a
  non-negative int; a nonzero stream only on device 0.
* ``VideoFrame.from_dlpack(planes, format="nv12", width=0, height=0, stream=None,
  device_id=None, primary_ctx=None, cuda_context=None, current_ctx=None)``, its 2-plane
  branch (nv12/p010le/p016le), check by check and with the same messages: two planes;
  the same device type, CPU or CUDA; the same device id, and ``device_id`` equal to it
  for CUDA; unsigned samples of 8 bits (nv12) or 16 (p010le/p016le), one lane; plane 0
  2-D; width and height both given or neither, matching plane 0, even; plane 0
  contiguous in its last dimension; plane 1 (H/2, W) 2-D or (H/2, W/2, 2) 3-D with
  strides (…, 2, 1); ``cuda_context`` a CudaContext of the same device id.
  ``_consume_dlpack`` calls ``obj.__dlpack__()``, or ``obj.__dlpack__(stream=stream)``
  when a stream is given.

The one emulated fact: CPU tensors are taken as CUDA tensors of device 0 (their DLPack
device type is read as kDLCUDA). The frame returned is the real wheel's, built from the
same planes on the CPU, so an encode goes on with the pictures the GPU would have sent.
"""

from __future__ import annotations

from typing import Any, ClassVar

import av
import torch

K_CPU, K_CUDA = 1, 2
_TWO_PLANE = {"nv12": 8, "p010le": 16, "p016le": 16}


class CudaContext:
    """av/video/frame.py ``CudaContext``: its constructor's checks, nothing more."""

    def __init__(
        self, device_id: int = 0, primary_ctx: bool = True, current_ctx: bool = False, cuda_stream: Any = None
    ) -> None:
        self.device_id, self.primary_ctx, self.current_ctx = device_id, primary_ctx, current_ctx
        self.cuda_stream = 0
        if primary_ctx and current_ctx:
            raise ValueError("primary_ctx and current_ctx are mutually exclusive")
        if cuda_stream is not None:
            if not isinstance(cuda_stream, int):
                raise TypeError("cuda_stream must be an integer or None")
            if cuda_stream < 0:
                raise ValueError("cuda_stream must be non-negative")
            self.cuda_stream = cuda_stream
        if self.cuda_stream and self.device_id != 0:
            raise ValueError(
                "cuda_stream currently requires device_id 0; expose the desired "
                "physical GPU as logical device 0 via CUDA_VISIBLE_DEVICES"
            )


def _device(plane: torch.Tensor, stream: Any) -> tuple[int, int]:
    """``_consume_dlpack``'s call, then the capsule's device as a GPU would give it."""
    if stream is None:
        plane.__dlpack__()
    else:
        plane.__dlpack__(stream=stream)
    kind, index = plane.__dlpack_device__()
    return (K_CUDA, 0) if int(kind) == K_CPU else (int(kind), int(index))


def _check_dtype(plane: torch.Tensor, bits: int, which: int) -> None:
    unsigned = plane.dtype in (torch.uint8, torch.uint16)
    if not unsigned or plane.element_size() * 8 != bits:
        raise TypeError(f"unexpected dtype for plane {which}")


class VideoFrame:
    """av/video/frame.py ``VideoFrame.from_dlpack``, its CUDA (2-plane) checks."""

    calls: ClassVar[list[dict[str, Any]]] = []

    @staticmethod
    def from_dlpack(
        planes: Any,
        format: str = "nv12",
        width: int = 0,
        height: int = 0,
        stream: Any = None,
        device_id: int | None = None,
        primary_ctx: bool | None = None,
        cuda_context: Any = None,
        current_ctx: bool | None = None,
    ) -> av.VideoFrame:
        if not isinstance(planes, tuple | list):
            planes = (planes,)
        if format not in _TWO_PLANE:
            raise NotImplementedError("only CPU DLPack tensors are supported for this format")
        if len(planes) != 2:
            raise ValueError("from_dlpack currently supports 2-plane formats only (nv12/p010le/p016le)")
        bits = _TWO_PLANE[format]
        (type0, dev0), (type1, dev1) = _device(planes[0], stream), _device(planes[1], stream)
        if type0 != type1:
            raise ValueError("plane tensors must have the same device_type")
        if type0 not in (K_CUDA, K_CPU):
            raise NotImplementedError("only CPU and CUDA DLPack tensors are supported")
        if dev0 != dev1:
            raise ValueError("plane tensors must be on the same CUDA device")
        if device_id is None:
            device_id = dev0
        elif device_id != dev0:
            raise ValueError("device_id does not match the DLPack tensor device_id")
        _check_dtype(planes[0], bits, 0)
        _check_dtype(planes[1], bits, 1)
        y, uv = planes
        if y.dim() != 2:
            raise ValueError("plane 0 must be 2D (H, W)")
        if width == 0 and height == 0:
            height, width = int(y.shape[0]), int(y.shape[1])
        elif width == 0 or height == 0:
            raise ValueError("either specify both width/height or neither")
        elif tuple(y.shape) != (height, width):
            raise ValueError("plane 0 shape does not match width/height")
        if width % 2 or height % 2:
            raise ValueError("width/height must be even for nv12/p010le/p016le")
        if y.stride(1) != 1:
            raise ValueError("plane 0 must be contiguous in the last dimension")
        if uv.dim() == 2:
            if tuple(uv.shape) != (height // 2, width):
                raise ValueError("plane 1 must have shape (H/2, W) for 2D UV")
            if uv.stride(1) != 1:
                raise ValueError("plane 1 must be contiguous in the last dimension")
        elif uv.dim() == 3:
            if tuple(uv.shape) != (height // 2, width // 2, 2):
                raise ValueError("plane 1 must have shape (H/2, W/2, 2) for 3D UV")
            if uv.stride(2) != 1 or uv.stride(1) != 2:
                raise ValueError("unexpected UV plane strides for (H/2, W/2, 2)")
        else:
            raise ValueError("plane 1 must be 2D or 3D")
        if cuda_context is not None:
            if not isinstance(cuda_context, CudaContext):
                raise TypeError("cuda_context must be a CudaContext")
            if int(cuda_context.device_id) != int(device_id):
                raise ValueError("cuda_context.device_id does not match the DLPack tensor device_id")
            if primary_ctx is not None and bool(cuda_context.primary_ctx) != bool(primary_ctx):
                raise ValueError("cuda_context.primary_ctx does not match primary_ctx")
            if current_ctx is not None and bool(cuda_context.current_ctx) != bool(current_ctx):
                raise ValueError("cuda_context.current_ctx does not match current_ctx")
        VideoFrame.calls.append(
            {"format": format, "device_id": device_id, "context": cuda_context, "stream": stream}
        )
        return av.VideoFrame.from_dlpack(tuple(p.contiguous() for p in planes), format=format)


class _Video:
    frame = type("frame", (), {"CudaContext": CudaContext})


class AvDouble:
    """What ``devconvert.CudaFrames`` reads of the ``av`` module."""

    VideoFrame = VideoFrame
    video = _Video
