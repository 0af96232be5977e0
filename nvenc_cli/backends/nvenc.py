"""NVENC backend: CV-CUDA (or torch) colour conversion + PyNvVideoCodec encoding on the GPU.

Data flow for one window of frames::

    host NHWC (numpy) ──pinned upload──┐
    CUDA NHWC tensor ──────────────────┴─> RGB→NV12/P010/YUV444 (one CUDA stream)
        ──> Encode() per frame ──> bytes ──> access units (annexb.py) ──> colour-tag
        filter (h264/hevc/av1_metadata) ──> av.Packet(pts, dts, keyframe) ──> mux.py

Nothing here imports torch, PyNvVideoCodec or CV-CUDA at module level: PyNvVideoCodec
fails to import without an NVIDIA driver, and ``--device auto`` on a CPU-only machine must
decide in microseconds. The encoder sits behind :func:`_create_encoder` and the compute
device behind :func:`_compute_device`, the two seams tests replace to run the whole path
on the CPU with a double that returns real H.264/HEVC/AV1 bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import io
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvenc_cli.backends.annexb import AccessUnit, TimedUnit, Timestamper, make_splitter
from nvenc_cli.backends.base import Availability
from nvenc_cli.backends.nvenc_options import NvencSettings, settings_for
from nvenc_cli.errors import EncoderError, UnavailableError, UsageError, brief

if TYPE_CHECKING:
    import av
    import torch

    from nvenc_cli.frames import FrameBatch
    from nvenc_cli.mux import Muxer
    from nvenc_cli.options import ColorSpec
    from nvenc_cli.plan import EncodePlan

ENCODERS = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")
# Data-centre GPUs built without an NVENC engine (NVIDIA's encode/decode support matrix).
GPUS_WITHOUT_NVENC = ("A100", "A800", "A30", "H100", "H800", "H200", "H20", "GH200")
_NO_NVENC = re.compile(r"\b(" + "|".join(GPUS_WITHOUT_NVENC) + r")\b", re.IGNORECASE)
_SESSION_LIMIT = re.compile(r"OUT_OF_MEMORY|INCOMPATIBLE_CLIENT_KEY|session", re.IGNORECASE)
_NO_ENGINE = re.compile(r"NO_ENCODE_DEVICE|UNSUPPORTED_DEVICE|not.*(nvenc|encode).*capable", re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# Probe
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """Why NVENC can or cannot run here; ``code`` is stable for scripts and tests.

    Codes: ``ok``, ``no-driver``, ``no-torch-cuda``, ``no-nvenc-engine``,
    ``no-nvenc-library``, ``no-pynvvideocodec``, ``session-limit``, ``encoder-failed``.
    """

    ok: bool
    code: str
    reason: str
    gpu: str | None = None
    driver: str | None = None
    colour: str = "torch"

    def availability(self) -> Availability:
        return Availability(self.ok, self.reason)


def _load_library(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def driver_version() -> str | None:
    """The kernel driver's version from /proc, without touching CUDA."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"Kernel Module(?: for [\w-]+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def _has_module(name: str) -> bool:
    """Whether a package is installed, without importing it."""
    return importlib.util.find_spec(name) is not None


def cvcuda_available() -> bool:
    """True when CV-CUDA is installed and imports (used for the colour conversion)."""
    if not _has_module("cvcuda"):
        return False
    try:
        import cvcuda  # noqa: F401
    except Exception:  # a broken install means: use torch
        return False
    return True


@functools.cache
def probe_details() -> ProbeResult:
    """Run the checks cheapest first and stop at the first that fails (cached per process).

    1. an NVIDIA driver (libcuda.so.1) — decides CPU-only machines without importing torch;
    2. torch with CUDA; 3. a GPU that has an NVENC engine (A100/H100/H200 have none);
    4. the driver's NVENC library and PyNvVideoCodec; 5. a tiny real encoder session,
    which also reports a full session table (consumer drivers cap concurrent sessions).
    """
    driver = driver_version()
    if not _load_library("libcuda.so.1"):
        where = f" (kernel module {driver} is loaded)" if driver else ""
        return ProbeResult(False, "no-driver", f"no NVIDIA driver: libcuda.so.1 cannot be loaded{where}")
    try:
        import torch
    except ImportError:
        return ProbeResult(False, "no-torch-cuda", "torch is not installed", driver=driver)
    if torch.version.cuda is None:
        return ProbeResult(
            False,
            "no-torch-cuda",
            f"torch {torch.__version__} is a CPU-only build: install a CUDA build of torch",
            driver=driver,
        )
    if not torch.cuda.is_available():
        return ProbeResult(
            False,
            "no-torch-cuda",
            f"torch (CUDA {torch.version.cuda}) sees no usable GPU; driver {driver or 'unknown'}",
            driver=driver,
        )
    gpu = torch.cuda.get_device_name(0)
    if _NO_NVENC.search(gpu):
        return ProbeResult(
            False,
            "no-nvenc-engine",
            f"{gpu} has no NVENC engine (A100, A30, H100, H200 and H20 have none)",
            gpu,
            driver,
        )
    colour = "cvcuda" if cvcuda_available() else "torch"
    base = ProbeResult(False, "", "", gpu, driver, colour)
    if not _load_library("libnvidia-encode.so.1"):
        return replace(
            base,
            code="no-nvenc-library",
            reason="the driver's NVENC library libnvidia-encode.so.1 is missing (in a container, "
            "set NVIDIA_DRIVER_CAPABILITIES to include 'video')",
        )
    if not _has_module("PyNvVideoCodec"):
        return replace(
            base,
            code="no-pynvvideocodec",
            reason="PyNvVideoCodec is not installed (pip install PyNvVideoCodec)",
        )
    try:
        import PyNvVideoCodec  # noqa: F401
    except Exception as exc:  # its import runs driver checks
        return replace(base, code="no-pynvvideocodec", reason=f"PyNvVideoCodec failed to load: {brief(exc)}")
    failure = _try_session()
    if failure is not None:
        return replace(base, code=failure[0], reason=failure[1])
    conversion = "CV-CUDA" if colour == "cvcuda" else "torch (CV-CUDA not installed)"
    return replace(base, ok=True, code="ok", reason=f"{gpu}, driver {driver or '?'}; colour by {conversion}")


def classify_encoder_error(message: str) -> tuple[str, str]:
    """Map a CreateEncoder failure to a probe code and a sentence people can act on."""
    if _NO_ENGINE.search(message):
        return "no-nvenc-engine", f"this GPU has no usable NVENC engine ({message})"
    if _SESSION_LIMIT.search(message):
        return (
            "session-limit",
            "NVENC session limit reached: other programs hold every encode session this GPU "
            f"and driver allow; close some and retry ({message})",
        )
    return "encoder-failed", f"NVENC could not open an encoder: {message}"


def _try_session() -> tuple[str, str] | None:
    """Open and close a 256x256 H.264 session; None when that works."""
    try:
        import torch

        device = torch.device("cuda", 0)
        stream = torch.cuda.Stream(device)
        encoder = _create_encoder(
            256,
            256,
            "NV12",
            False,
            codec="h264",
            gpu_id="0",
            cudacontext=_current_context(device),
            cudastream=stream.cuda_stream,
        )
        encoder.EndEncode()
        del encoder
    except Exception as exc:  # every failure is a probe answer
        return classify_encoder_error(brief(exc, 300))
    return None


def probe() -> Availability:
    """Whether NVENC can encode here, with the reason (used by backends.probe_nvenc)."""
    return probe_details().availability()


def reset_probe() -> None:
    """Forget the cached probe (tests, or after the environment changed)."""
    probe_details.cache_clear()


# ---------------------------------------------------------------------------------------
# Seams
# ---------------------------------------------------------------------------------------


def _create_encoder(width: int, height: int, fmt: str, cpu_input: bool, **kwargs: Any) -> Any:
    """The one call into PyNvVideoCodec (tests replace this with a double)."""
    import PyNvVideoCodec

    return PyNvVideoCodec.CreateEncoder(width, height, fmt, cpu_input, **kwargs)


def _compute_device(gpu_id: int) -> torch.device:
    """Where conversion runs (tests replace this with the CPU)."""
    import torch

    return torch.device("cuda", gpu_id)


def _encoder_caps(codec: str, gpu_id: int) -> dict[str, int]:
    """NVENC capabilities for ``codec`` when this PyNvVideoCodec can report them."""
    try:
        import PyNvVideoCodec

        caps = PyNvVideoCodec.GetEncoderCaps(gpuid=gpu_id, codec=codec)
    except Exception:  # older versions have no caps query
        return {}
    return dict(caps) if isinstance(caps, dict) else {}


def _current_context(device: torch.device) -> int:
    """The CUDA driver context torch uses on ``device`` (PyNvVideoCodec must share it)."""
    import torch

    torch.zeros(1, device=device)  # makes torch create and bind its primary context
    libcuda = ctypes.CDLL("libcuda.so.1")
    handle = ctypes.c_void_p()
    if libcuda.cuCtxGetCurrent(ctypes.byref(handle)) != 0 or not handle.value:
        raise UnavailableError("cannot find torch's CUDA context for NVENC")
    return int(handle.value)


# ---------------------------------------------------------------------------------------
# Backend and session
# ---------------------------------------------------------------------------------------


class NvencBackend:
    """PyNvVideoCodec's NVENC encoders, fed by CV-CUDA or torch on the GPU."""

    name = "nvenc"

    def probe(self) -> Availability:
        return probe()

    def encoders(self) -> list[str]:
        return list(ENCODERS)

    def open(self, plan: EncodePlan, muxer: Muxer) -> NvencSession:
        return NvencSession(plan, muxer)


@dataclass
class Converted:
    """One window ready for NVENC: ``surfaces[i]`` is frame ``start + i``'s surface."""

    surfaces: Any
    start: int
    ready: Any = None  # CUDA event recorded after the conversion kernels


class NvencSession:
    """One NVENC encode: conversion on the shared CUDA stream, encode, split, timestamp."""

    def __init__(self, plan: EncodePlan, muxer: Muxer) -> None:
        self.plan = plan
        self.muxer = muxer
        self.settings = settings_for(plan, _global_header(plan.container))
        self._encoder: Any = None
        self._ended = False
        self._frames_in = 0
        self._stream_ready = False
        self._splitter = make_splitter(self.settings.codec)
        self._timer = Timestamper()
        self._tagger = _colour_filter(self.settings.codec, plan.color, self.settings.surface.chroma)
        self.device = _compute_device(self.settings.gpu_id)
        self.cuda_stream = _new_stream(self.device)
        self.converter = make_converter(plan, self.settings, self.device, self.cuda_stream)
        self._check_caps()
        self._encoder = self._open_encoder()
        self.description = (
            f"{plan.encoder} (NVENC via PyNvVideoCodec, {self.settings.kwargs['preset']}, "
            f"colour by {self.converter.name})"
        )

    def _check_caps(self) -> None:
        if self.device.type != "cuda":
            return
        caps = _encoder_caps(self.settings.codec, self.settings.gpu_id)
        surface = self.settings.surface
        if caps.get("support_10bit_encode") == 0 and surface.bits > 8:
            raise UnavailableError(f"this GPU's NVENC cannot encode 10-bit {self.settings.codec}")
        if caps.get("support_yuv444_encode") == 0 and surface.chroma == "444":
            raise UnavailableError(f"this GPU's NVENC cannot encode 4:4:4 {self.settings.codec}")
        most = caps.get("num_max_bframes")
        if most is not None and self.settings.bframes > most:
            if "bf" in {k.lower() for k in self.plan.codec_options}:
                raise UsageError(f"-x bf={self.settings.bframes}: this GPU allows at most {most} B-frames")
            kwargs = dict(self.settings.kwargs, bf=str(most + 1))
            self.settings = replace(self.settings, bframes=most, kwargs=kwargs)

    def _open_encoder(self) -> Any:
        kwargs: dict[str, Any] = dict(self.settings.kwargs)
        if self.device.type == "cuda":
            kwargs["cudacontext"] = _current_context(self.device)
            kwargs["cudastream"] = self.cuda_stream.cuda_stream
        try:
            return _create_encoder(
                self.plan.width, self.plan.height, self.settings.surface.nvenc_format, False, **kwargs
            )
        except (UsageError, UnavailableError):
            raise
        except Exception as exc:  # PyNvVideoCodec raises plain RuntimeErrors
            code, reason = classify_encoder_error(brief(exc, 300))
            if code == "encoder-failed":
                raise EncoderError(
                    f"NVENC refused {self.plan.encoder} at {self.plan.width}x{self.plan.height} "
                    f"{self.plan.pixel_format}: {brief(exc)}"
                ) from None
            raise UnavailableError(reason) from None

    # -- stages --------------------------------------------------------------------------
    def convert(self, batch: FrameBatch) -> Converted:
        """Upload (once, pinned) if needed and convert to NVENC surfaces; no encoder state."""
        frames = _to_device(batch.data, self.device, self.cuda_stream)
        surfaces = self.converter(frames)
        ready = None
        if self.cuda_stream is not None:
            import torch

            ready = torch.cuda.Event()
            ready.record(self.cuda_stream)
        return Converted(surfaces, batch.start, ready)

    def encode(self, converted: Converted) -> list[av.Packet]:
        if self._ended or self._encoder is None:
            raise EncoderError("the NVENC session is already finished")
        if converted.start != self._frames_in:
            raise EncoderError(
                f"frames arrived out of order: got {converted.start}, expected {self._frames_in}"
            )
        if converted.ready is not None:
            converted.ready.synchronize()
        chunks = []
        for index in range(int(converted.surfaces.shape[0])):
            try:
                chunks.append(_as_bytes(self._encoder.Encode(converted.surfaces[index])))
            except Exception as exc:  # reported with the frame number
                raise EncoderError(f"NVENC failed on frame {self._frames_in}: {brief(exc)}") from None
            self._frames_in += 1
        return self._packets(b"".join(chunks), final=False)

    def flush(self) -> list[av.Packet]:
        """End the encode (``EndEncode`` exactly once) and return every remaining frame."""
        if self._ended:
            return []
        self._ended = True
        try:
            tail = _as_bytes(self._encoder.EndEncode())
        except Exception as exc:
            raise EncoderError(f"NVENC failed while finishing: {brief(exc)}") from None
        packets = self._packets(tail, final=True)
        if self._timer.count != self._frames_in:
            raise EncoderError(f"NVENC returned {self._timer.count} pictures for {self._frames_in} frames")
        return packets

    def close(self) -> None:
        """Release the encoder; ends the NVENC session even after an error."""
        encoder, self._encoder = self._encoder, None
        if encoder is not None and not self._ended:
            self._ended = True
            with contextlib.suppress(Exception):  # already failing: just free the session
                encoder.EndEncode()
        del encoder

    # -- bytes → packets -----------------------------------------------------------------
    def _packets(self, data: bytes, final: bool) -> list[av.Packet]:
        units = self._splitter.feed(data) if data else []
        if final:
            units += self._splitter.flush()
        timed: list[TimedUnit] = []
        for unit in units:
            timed += self._timer.push(unit, self._reorder())
        if final:
            timed += self._timer.flush()
        return [self._packet(item) for item in timed]

    def _reorder(self) -> int | None:
        """The stream's declared reorder depth; without one (H.264 lacking VUI bitstream
        restrictions), none when no B-frames were configured, else the inferred bound."""
        if not self._splitter.reorder_declared and self.settings.bframes == 0:
            return 0
        return self._splitter.reorder

    def _packet(self, item: TimedUnit) -> av.Packet:
        import av

        packet = av.Packet(item.unit.data)
        tagged = self._tagger.filter(packet) if self._tagger is not None else [packet]
        if len(tagged) != 1:
            raise EncoderError("the colour-tagging filter split an access unit")
        packet = tagged[0]
        if not self._stream_ready:
            self._make_stream(bytes(packet), item.unit)
        packet.pts, packet.dts = item.pts, item.dts
        packet.time_base = self.plan.time_base
        packet.duration = 1
        packet.is_keyframe = item.unit.keyframe
        return packet

    def _make_stream(self, first: bytes, unit: AccessUnit) -> None:
        """Describe the output stream from the first (tagged) access unit itself.

        Demuxing it as a raw elementary stream yields exactly what a player will see:
        codec, size, pixel format, colour tags and the parameter sets as extradata.
        """
        import av

        if not unit.keyframe:
            raise EncoderError("NVENC's first picture is not a keyframe")
        fmt = {"h264": "h264", "hevc": "hevc", "av1": "obu"}[self.settings.codec]
        raw = b"\x12\x00" + first if self.settings.codec == "av1" else first
        with av.open(io.BytesIO(raw), format=fmt) as probe_input:
            template = probe_input.streams.video[0]
            stream = self.muxer.stream_from_template(template, opaque=True)
        stream.time_base = self.plan.time_base
        ctx = stream.codec_context
        ctx.framerate = self.plan.fps
        color = self.plan.color
        ctx.color_range = color.range_code
        ctx.color_primaries = color.primaries
        ctx.color_trc = color.transfer
        ctx.colorspace = color.space
        self._stream_ready = True


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _as_bytes(result: Any) -> bytes:
    """Encode()/EndEncode() give bytes-like objects (1.x) or lists of dicts (2.x)."""
    if result is None:
        return b""
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result)
    if isinstance(result, list):
        return b"".join(_as_bytes(item["data"] if isinstance(item, dict) else item) for item in result)
    try:
        import numpy

        return numpy.asarray(result, dtype=numpy.uint8).tobytes()
    except Exception as exc:
        raise EncoderError(f"unexpected output from PyNvVideoCodec: {type(result).__name__}") from exc


def _global_header(container: str) -> bool:
    """Whether the container stores parameter sets in its header (else repeat them in-band)."""
    import av

    return bool(av.format.ContainerFormat(container, "w").flags & 0x40)  # AVFMT_GLOBALHEADER


def _new_stream(device: torch.device) -> Any:
    if device.type != "cuda":
        return None
    import torch

    return torch.cuda.Stream(device)


def _to_device(data: Any, device: torch.device, stream: Any) -> torch.Tensor:
    """NHWC frames as a tensor on ``device``: CUDA tensors stay put (no host round trip);
    host frames go up in one pinned, asynchronous copy per window on the shared stream."""
    import numpy
    import torch

    if isinstance(data, numpy.ndarray):
        tensor = torch.from_numpy(numpy.ascontiguousarray(data))
    elif isinstance(data, torch.Tensor):
        tensor = data
    else:
        raise EncoderError(f"frames must be a numpy array or a torch tensor, not {type(data).__name__}")
    if device.type != "cuda":
        return tensor.to(device)
    if tensor.is_cuda:
        stream.wait_stream(torch.cuda.current_stream(tensor.device))
        if tensor.device != device:
            with torch.cuda.stream(stream):
                return tensor.to(device, non_blocking=True)
        tensor.record_stream(stream)
        return tensor
    with torch.cuda.stream(stream):
        return tensor.pin_memory().to(device, non_blocking=True)


def _colour_filter(codec: str, color: ColorSpec, chroma: str) -> Any:
    """A bitstream filter that writes the colour tags into the stream's own headers.

    NVENC leaves the VUI colour fields unspecified, so the SPS (sequence header for AV1)
    is rewritten to state exactly the matrix, range, primaries, transfer and — for 4:2:0
    — the centre chroma siting of the 2×2 average that made the pixels.
    """
    from av.bitstream import BitStreamFilterContext

    if color.matrix is None:
        return None
    full = color.range == "pc"
    if codec == "av1":
        options = (
            f"color_primaries={color.primaries}:transfer_characteristics={color.transfer}:"
            f"matrix_coefficients={color.space}:color_range={'pc' if full else 'tv'}"
        )
        return BitStreamFilterContext(f"av1_metadata={options}", "av1")
    options = (
        f"colour_primaries={color.primaries}:transfer_characteristics={color.transfer}:"
        f"matrix_coefficients={color.space}:video_full_range_flag={int(full)}"
    )
    if chroma == "420":
        options += ":chroma_sample_loc_type=1"  # centre: the mean of each 2x2 block
    return BitStreamFilterContext(f"{codec}_metadata={options}", codec)


# ---------------------------------------------------------------------------------------
# Colour conversion
# ---------------------------------------------------------------------------------------


class TorchConverter:
    """color.py on the session's device and stream (the reference maths)."""

    name = "torch"

    def __init__(self, spec: Any, stream: Any) -> None:
        self.spec, self.stream = spec, stream

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        from nvenc_cli import color

        bits = 8 * frames.element_size()  # uint8 → 8-bit samples, uint16 → 16-bit
        if self.stream is None:
            return color.convert(frames, self.spec, bits)
        import torch

        with torch.cuda.stream(self.stream):
            return color.convert(frames, self.spec, bits)


class CvcudaConverter:
    """The same maths with CV-CUDA kernels: one affine colour twist in float32, a 2×2
    area average for 4:2:0 chroma, a single rounding, then NV12/P010/YUV444 packing.

    (CV-CUDA's own RGB→NV12 ``cvtcolor`` is BT.601 limited with point-sampled chroma, so
    it is not used.) Any failure on first use falls back to :class:`TorchConverter`.
    """

    name = "CV-CUDA"

    def __init__(self, spec: Any, stream: Any) -> None:
        import cvcuda
        import torch

        from nvenc_cli import color

        self.cvcuda, self.spec, self.stream = cvcuda, spec, stream
        self.fallback = TorchConverter(spec, stream)
        self._failed = False
        self._cv_stream = cvcuda.as_stream(stream.cuda_stream)
        self._twists: dict[int, Any] = {}
        self._color = color
        self._torch = torch

    def _twist(self, bits: int) -> Any:
        if bits not in self._twists:
            matrix, offset = self._color.affine(self.spec, bits)
            rows = [[*row, off] for row, off in zip(matrix, offset, strict=True)]
            tensor = self._torch.tensor(rows, dtype=self._torch.float32, device=self.stream.device)
            self._twists[bits] = self.cvcuda.as_tensor(tensor.contiguous())
        return self._twists[bits]

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if self._failed:
            return self.fallback(frames)
        try:
            return self._convert(frames)
        except Exception:  # CV-CUDA version differences: use the reference
            self._failed = True
            self.name = "torch (CV-CUDA failed)"
            return self.fallback(frames)

    def _convert(self, frames: torch.Tensor) -> torch.Tensor:
        torch, cv, color = self._torch, self.cvcuda, self._color
        bits = 8 * frames.element_size()
        with torch.cuda.stream(self.stream):
            rgb = frames[..., :3] if frames.shape[-1] != 1 else frames.expand(-1, -1, -1, 3)
            rgb = rgb.to(torch.float32).contiguous()
            n, height, width, _ = rgb.shape
            yuv = cv.color_twist(cv.as_tensor(rgb, "NHWC"), self._twist(bits), stream=self._cv_stream)
            full = torch.as_tensor(yuv.cuda(), device=rgb.device)
            luma = color.quantize(full[..., 0], self.spec.out_bits)
            if self.spec.chroma == "420":
                half = cv.resize(yuv, (n, height // 2, width // 2, 3), cv.Interp.AREA, stream=self._cv_stream)
                chroma = torch.as_tensor(half.cuda(), device=rgb.device)
            else:
                chroma = full
            cb = color.quantize(chroma[..., 1], self.spec.out_bits)
            cr = color.quantize(chroma[..., 2], self.spec.out_bits)
            if self.spec.chroma == "420":
                return color.pack_semiplanar(luma, cb, cr, self.spec.out_bits)
            return color.pack_planar(luma, cb, cr, self.spec.out_bits)


def make_converter(plan: EncodePlan, settings: NvencSettings, device: torch.device, stream: Any) -> Any:
    """CV-CUDA on a GPU when it imports, else color.py in torch (same maths, same tags)."""
    from nvenc_cli.color import YuvSpec

    if plan.color.matrix is None:
        raise UsageError("the NVENC path encodes Y'CbCr: choose a YUV --pixel-format")
    surface = settings.surface
    spec = YuvSpec(plan.color.matrix, plan.color.range == "pc", surface.bits, surface.chroma)
    if device.type == "cuda" and cvcuda_available():
        try:
            return CvcudaConverter(spec, stream)
        except Exception:  # an incompatible CV-CUDA: the reference is exact
            pass
    return TorchConverter(spec, stream)
