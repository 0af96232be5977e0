"""Colour conversion on the frames' own device, for encoders that run on the CPU.

A CUDA tensor bound for a CPU encoder used to cross to the host whole — float32 RGB is
12 bytes a pixel — and be converted there, on the cores x264 needs. Here the window is
converted where it lies (``color.py``'s maths: the same matrix, range and 2×2 chroma mean
as every other path), and only the finished planes cross: 1.5 bytes a pixel for 8-bit
4:2:0. They land in a small ring of pinned host buffers through asynchronous copies on
the encode's own CUDA stream; the CPU session wraps a private copy of each frame's planes
as an FFmpeg frame (``VideoFrame.from_dlpack``), so no swscale runs.

Value-range mapping (and its clamp notices) happens before, on the same device, in
``sources.memory``; geometry (``--resize``, ``--pad``, ``--crop``) in ``pipeline.Job``,
which keeps torch windows on their device. Everything here also runs on torch's CPU
device, which is how it is tested without a GPU: the CUDA-only steps (stream, pinned
memory, events) sit behind :class:`DeviceOps`, whose CPU form does the same work
synchronously.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nvenc_cli.errors import UnavailableError
from nvenc_cli.frames import ReadyPlanes

if TYPE_CHECKING:
    import torch

    from nvenc_cli.plan import EncodePlan

#: Internal switch: "1" sends CPU tensors through this route too (tests, gpu_check's CPU
#: mode), so the route's every step runs end to end without a GPU.
SWITCH = "NVENC_DEVICE_CONVERT"

#: Frames converted at once on the device: bounds the float32 intermediates (12 bytes a
#: pixel) to ~100 MB at 1080p whatever the window size.
CHUNK = 4
#: Pinned host buffers in the ring: the one being filled and the one being read.
RING = 2


@dataclass(frozen=True)
class PlaneFormat:
    """How one encoder pixel format is laid out: chroma, bits, and how planes are packed."""

    chroma: str | None  # "420", "444", or None for gray
    bits: int
    packing: str  # "planar" (Y, Cb, Cr), "semi" (Y, interleaved CbCr: NV12/P010), "gray"


PLANE_FORMATS: dict[str, PlaneFormat] = {
    "yuv420p": PlaneFormat("420", 8, "planar"),
    "yuv444p": PlaneFormat("444", 8, "planar"),
    "yuv420p10le": PlaneFormat("420", 10, "planar"),
    "yuv444p10le": PlaneFormat("444", 10, "planar"),
    "nv12": PlaneFormat("420", 8, "semi"),
    "p010le": PlaneFormat("420", 10, "semi"),
    "gray": PlaneFormat(None, 8, "gray"),
}


def switched_on() -> bool:
    """Whether CPU tensors take this route as well (the internal switch)."""
    return os.environ.get(SWITCH, "") == "1"


def keeps_tensor(raw: Any, backend: str) -> bool:
    """Whether a torch window bound for ``backend`` stays a tensor on its device (to be
    converted there) rather than crossing to the host as RGB."""
    if backend not in ("cpu", "ffmpeg_nvenc"):
        return False
    return raw.device.type == "cuda" or (raw.device.type == "cpu" and switched_on())


def supports(plan: EncodePlan) -> bool:
    """Whether this route makes exactly the planes ``plan``'s encoder takes.

    Formats outside :data:`PLANE_FORMATS`, kept alpha, a palette, and gray input to a
    Y'CbCr format (swscale copies it into luma; color.py would apply the matrix) go to
    the host as RGB and take the CPU path's conversion, as before.
    """
    form = PLANE_FORMATS.get(plan.pixel_format)
    if form is None or plan.keep_alpha:
        return False
    if form.packing == "gray":
        return plan.source.channels == 1 and plan.out_depth == 8
    return plan.color.matrix is not None and plan.source.channels in (3, 4)


#: the NVENC surfaces FFmpeg's nvenc takes as CUDA frames (PyAV's 2-plane from_dlpack)
CUDA_FRAME_FORMATS = ("nv12", "p010le")


def adopt(plan: EncodePlan, device: str) -> EncodePlan:
    """``plan`` for frames on ``device``: FFmpeg's nvenc takes CUDA tensors' planes as
    CUDA frames (no host round trip) when the route makes its surface format."""
    from dataclasses import replace

    if (
        device.startswith("cuda")
        and plan.backend == "ffmpeg_nvenc"
        and plan.pixel_format in CUDA_FRAME_FORMATS
        and supports(plan)
    ):
        return replace(plan, cuda_frames=True)
    return plan


def route_name(device: str, plan: EncodePlan) -> str:
    """The route's name in reports: where frames are converted + which encoder follows
    (``+host`` where FFmpeg's nvenc is handed host planes it uploads itself)."""
    where = "cuda" if device.startswith("cuda") else "torch-cpu"
    if plan.backend != "ffmpeg_nvenc":
        return f"{where}-convert+cpu-encode"
    return f"{where}-convert+ffmpeg-nvenc" if plan.cuda_frames else f"{where}-convert+host+ffmpeg-nvenc"


def to_planes(frames: torch.Tensor, plan: EncodePlan) -> tuple[torch.Tensor, ...]:
    """NHWC uint8/uint16 frames → the planes of ``plan.pixel_format``, each N×h×w, on the
    frames' device: uint8 for 8-bit formats, uint16 for deeper ones (P010's samples in
    the top bits, planar 10-bit formats' in the low bits, as FFmpeg lays them out).

    8-bit samples follow swscale's integer arithmetic (``swsmatch``), so the planes are
    the CPU path's to the code; 16-bit samples follow ``color.py``, as the CPU path's
    exact converter does (within float32's last bit)."""
    import torch

    from nvenc_cli import color, swsmatch

    form = PLANE_FORMATS[plan.pixel_format]
    if form.packing == "gray":
        return (frames[..., 0].contiguous(),)
    full = plan.color.range == "pc"
    spec = color.YuvSpec(plan.color.matrix or "bt709", full, form.bits, form.chroma or "444")
    variant = swsmatch.usable(plan, spec, frames)
    if variant is not None:  # 8-bit samples: swscale's own integer steps, as the CPU path
        luma, cb, cr = swsmatch.planes(frames, spec, variant)
    else:
        in_bits = 16 if frames.dtype == torch.uint16 else 8
        luma, cb, cr = color.rgb_to_planes(frames, spec, in_bits)
    if form.packing == "semi":
        packed = color.pack_semiplanar(luma, cb, cr, form.bits)
        height = luma.shape[1]
        return packed[:, :height], packed[:, height:]
    if form.bits == 8:
        return luma.contiguous(), cb.contiguous(), cr.contiguous()
    return tuple(p.to(torch.uint16).contiguous() for p in (luma, cb, cr))


class DeviceOps:
    """The CUDA-only steps, and their CPU forms (same results, done synchronously).

    On CUDA: one stream per encode, page-locked host buffers (so a device→host copy can
    run asynchronously, and overlap whatever the host does meanwhile), and events that
    say when a copy has landed. On the CPU device: the current "stream", ordinary
    memory, and events that are complete as soon as they are recorded.
    """

    def __init__(self, device: torch.device) -> None:
        import torch

        self.device = device
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device=device) if self.cuda else None

    def on_stream(self) -> contextlib.AbstractContextManager[Any]:
        if self.stream is None:
            return contextlib.nullcontext()
        import torch

        return torch.cuda.stream(self.stream)

    def host_buffer(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        import torch

        return torch.empty(shape, dtype=dtype, pin_memory=self.cuda)

    def event(self) -> Any:
        if not self.cuda:
            return _DoneEvent()
        import torch

        return torch.cuda.Event()

    def wait_input(self, tensor: torch.Tensor) -> None:
        """Order this encode's stream after the work that made ``tensor`` (the caller's
        stream), and keep its memory alive until this stream is done with it."""
        if self.stream is not None:
            import torch

            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            tensor.record_stream(self.stream)


class _DoneEvent:
    """An event of the CPU device: work there is done when the call returns."""

    def record(self, stream: Any = None) -> None:
        """Nothing to record: the copy before it has already happened."""

    def synchronize(self) -> None:
        """Nothing to wait for."""


class PlaneRing:
    """A few host buffers the planes are copied into, reused in turn.

    A slot is handed out again only after its previous copy has landed and its frames
    were copied out of it (``DeviceConverter`` does both before returning), so the
    ring bounds pinned memory to :data:`RING` chunks however long the encode.
    """

    def __init__(self, ops: DeviceOps, slots: int = RING) -> None:
        self._ops = ops
        self._slots: list[tuple[torch.Tensor, ...] | None] = [None] * slots
        self._next = 0

    def take(self, planes: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """A slot shaped like ``planes`` (grown when a chunk is larger than any before)."""
        index, self._next = self._next, (self._next + 1) % len(self._slots)
        slot = self._slots[index]
        fits = slot is not None and all(
            s.shape[1:] == p.shape[1:] and s.dtype == p.dtype and s.shape[0] >= p.shape[0]
            for s, p in zip(slot, planes, strict=True)
        )
        if not fits:
            slot = tuple(self._ops.host_buffer(tuple(p.shape), p.dtype) for p in planes)
            self._slots[index] = slot
        assert slot is not None
        return tuple(s[: p.shape[0]] for s, p in zip(slot, planes, strict=True))


class CudaFrames:
    """Wraps planes left on the GPU as FFmpeg CUDA frames for FFmpeg's nvenc.

    ``av.VideoFrame.from_dlpack((y, uv), format="nv12"|"p010le", device_id=…,
    cuda_context=…)`` (av/video/frame.py, ``VideoFrame.from_dlpack``): one
    ``CudaContext`` per encode, on the device's primary context (torch's own) and on the
    encode's stream where PyAV allows one (``CudaContext``: a stream only on device 0),
    so its frames context is made once and NVENC reads the surfaces in stream order.
    """

    def __init__(self, ops: DeviceOps, av_module: Any = None) -> None:
        if av_module is None:
            import av as av_module
        self._av = av_module
        self.device_id = ops.device.index or 0
        handle = ops.stream.cuda_stream if ops.stream is not None and self.device_id == 0 else None
        self.context = av_module.video.frame.CudaContext(
            device_id=self.device_id, primary_ctx=True, cuda_stream=handle
        )

    def __call__(self, planes: tuple[Any, ...], pixel_format: str) -> Any:
        return self._av.VideoFrame.from_dlpack(
            tuple(planes), format=pixel_format, device_id=self.device_id, cuda_context=self.context
        )


class DeviceConverter:
    """One encode's conversion on the frames' device; call it with NHWC windows.

    Planes cross to the host through the ring, unless ``cuda_frames`` is given: then
    they stay on the GPU and go to FFmpeg's nvenc as CUDA frames (``plan.cuda_frames``).
    """

    def __init__(
        self,
        plan: EncodePlan,
        device: torch.device,
        ops: DeviceOps | None = None,
        cuda_frames: CudaFrames | None = None,
    ) -> None:
        self.plan = plan
        self.ops = ops or DeviceOps(device)
        self.ring = PlaneRing(self.ops)
        self.cuda_frames = cuda_frames
        if cuda_frames is None and plan.cuda_frames:
            self.cuda_frames = CudaFrames(self.ops)
        #: bytes copied device→host so far (the planes only), for reports and checks
        self.bytes_to_host = 0

    def __call__(self, window: torch.Tensor) -> ReadyPlanes:
        try:
            starts = range(0, int(window.shape[0]), CHUNK)
            if self.cuda_frames is not None:
                frames = [planes for start in starts for planes in self._on_device(window, start)]
            else:
                frames = self._to_host(window, starts)
        except RuntimeError as exc:
            if is_out_of_memory(exc):
                raise UnavailableError(out_of_memory_message(self.ops.device, exc)) from None
            raise
        wrap = None
        if self.cuda_frames is not None:
            maker, fmt = self.cuda_frames, self.plan.pixel_format

            def wrap(planes: tuple[Any, ...]) -> Any:
                return maker(planes, fmt)

        return ReadyPlanes(frames, self.plan.pixel_format, self.plan.width, self.plan.height, wrap)

    def _on_device(self, window: torch.Tensor, start: int) -> Iterator[tuple[Any, ...]]:
        """Convert frames ``start``.. of a window and keep each frame's planes on the GPU:
        the conversion is waited for here, so the surfaces are whole when NVENC reads
        them on whatever stream FFmpeg uses."""
        part = window[start : start + CHUNK]
        self.ops.wait_input(part)
        with self.ops.on_stream():
            planes = to_planes(part, self.plan)
            done = self.ops.event()
            done.record()
        done.synchronize()
        for index in range(int(part.shape[0])):
            yield tuple(p[index] for p in planes)

    def _to_host(self, window: torch.Tensor, starts: range) -> list[tuple[Any, ...]]:
        """Every frame's planes as private host tensors (an encoder may hold a frame past
        its ``encode`` call, so the ring's memory never goes to FFmpeg). Chunk k+1 is
        converted and its copy started before chunk k is read out of its slot, so on a
        GPU the host's read-out overlaps the device's work."""
        frames: list[tuple[Any, ...]] = []
        pending: tuple[tuple[Any, ...], int, Any] | None = None
        for start in starts:
            issued = self._issue(window[start : start + CHUNK])
            if pending is not None:
                frames.extend(self._collect(*pending))
            pending = issued
        if pending is not None:
            frames.extend(self._collect(*pending))
        return frames

    def _issue(self, part: torch.Tensor) -> tuple[tuple[Any, ...], int, Any]:
        """Convert one chunk on the encode's stream and start copying its planes into the
        next ring slot; returns the slot, the frame count and the copy's event."""
        self.ops.wait_input(part)
        with self.ops.on_stream():
            planes = to_planes(part, self.plan)
            slot = self.ring.take(planes)
            for dst, src in zip(slot, planes, strict=True):
                dst.copy_(src, non_blocking=True)
            done = self.ops.event()
            done.record()
        self.bytes_to_host += sum(p.numel() * p.element_size() for p in planes)
        return slot, int(part.shape[0]), done

    @staticmethod
    def _collect(slot: tuple[Any, ...], count: int, done: Any) -> list[tuple[Any, ...]]:
        """Wait for a chunk's copy (releasing the GIL meanwhile), then copy each frame's
        planes out of the slot, which the ring may hand out again after this."""
        done.synchronize()
        return [tuple(p[index].clone() for p in slot) for index in range(count)]


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's CUDA OOM (``torch.OutOfMemoryError``, a RuntimeError) or the older plain
    RuntimeError that says "CUDA out of memory"."""
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def out_of_memory_message(device: Any, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"{device} ran out of memory converting frames ({first[:200]}); "
        "pass smaller windows (--batch-size) or free memory on that GPU"
    )
