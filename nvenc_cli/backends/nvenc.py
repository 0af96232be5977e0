"""NVENC backend: CV-CUDA (or torch) colour conversion + PyNvVideoCodec encoding on the GPU.

Data flow for one window of frames::

    host NHWC (numpy) ──pinned upload──┐
    CUDA NHWC tensor ──────────────────┴─> RGB→NV12/P010/YUV444 (one CUDA stream)
        ──> Encode() per frame ──> bytes ──> access units (annexb.py) ──> colour-tag
        filter (h264/hevc/av1_metadata) ──> av.Packet(pts, dts, keyframe) ──> mux.py

Nothing here imports torch, PyNvVideoCodec or CV-CUDA at module level: PyNvVideoCodec
fails to import without an NVIDIA driver, and ``--device auto`` on a CPU-only machine must
decide in microseconds. Every call into PyNvVideoCodec goes through the module
:func:`_library` imports (``CreateEncoder``, ``GetEncoderCaps``, the encoder's ``Encode`` and
``EndEncode``), so tests put an emulation of that module in its place; the compute device
and its CUDA handles sit behind :func:`_compute_device` and :func:`_cuda_handles`.
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

from nvenc_cli.backends.base import Availability
from nvenc_cli.errors import EncoderError, UnavailableError, UsageError, brief
from nvenc_cli.extras import install_hint

if TYPE_CHECKING:
    import av
    import torch

    from nvenc_cli.backends.annexb import AccessUnit, TimedUnit
    from nvenc_cli.backends.nvenc_options import NvencSettings
    from nvenc_cli.frames import FrameBatch
    from nvenc_cli.mux import Muxer
    from nvenc_cli.options import ColorSpec
    from nvenc_cli.plan import EncodePlan

ENCODERS = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")
# Data-centre GPUs built without an NVENC engine (NVIDIA's Video Encode and Decode GPU
# Support Matrix lists 0 NVENC for them; they keep NVDEC/NVJPG). A name here only words the
# answer: the probe's real test encode decides.
GPUS_WITHOUT_NVENC = (
    "A100",
    "A800",
    "A30",
    "H100",
    "H800",
    "H200",
    "H20",
    "GH200",
    "B100",
    "B200",
    "B300",
    "GB200",
    "GB300",
)
_NO_NVENC = re.compile(r"\b(" + "|".join(GPUS_WITHOUT_NVENC) + r")\b", re.IGNORECASE)

# NVENCSTATUS (nvEncodeAPI.h). PyNvVideoCodec reports a failed call as
# "<call> returned error <number>" (2.0.5, 2.2.4: the ``returned error`` string next to
# ``m_nvenc.nvEncOpenEncodeSessionEx(...)`` in the extension); FFmpeg as
# "OpenEncodeSessionEx failed: unsupported device (2)". Only the number is reliable.
NVENC_STATUS = {
    1: "NV_ENC_ERR_NO_ENCODE_DEVICE",
    2: "NV_ENC_ERR_UNSUPPORTED_DEVICE",
    3: "NV_ENC_ERR_INVALID_ENCODERDEVICE",
    4: "NV_ENC_ERR_INVALID_DEVICE",
    5: "NV_ENC_ERR_DEVICE_NOT_EXIST",
    6: "NV_ENC_ERR_INVALID_PTR",
    7: "NV_ENC_ERR_INVALID_EVENT",
    8: "NV_ENC_ERR_INVALID_PARAM",
    9: "NV_ENC_ERR_INVALID_CALL",
    10: "NV_ENC_ERR_OUT_OF_MEMORY",
    11: "NV_ENC_ERR_ENCODER_NOT_INITIALIZED",
    12: "NV_ENC_ERR_UNSUPPORTED_PARAM",
    13: "NV_ENC_ERR_LOCK_BUSY",
    14: "NV_ENC_ERR_NOT_ENOUGH_BUFFER",
    15: "NV_ENC_ERR_INVALID_VERSION",
    16: "NV_ENC_ERR_MAP_FAILED",
    17: "NV_ENC_ERR_NEED_MORE_INPUT",
    18: "NV_ENC_ERR_ENCODER_BUSY",
    19: "NV_ENC_ERR_EVENT_NOT_REGISTERD",
    20: "NV_ENC_ERR_GENERIC",
    21: "NV_ENC_ERR_INCOMPATIBLE_CLIENT_KEY",
    22: "NV_ENC_ERR_UNIMPLEMENTED",
    23: "NV_ENC_ERR_RESOURCE_REGISTER_FAILED",
    24: "NV_ENC_ERR_RESOURCE_NOT_REGISTERED",
    25: "NV_ENC_ERR_RESOURCE_NOT_MAPPED",
    26: "NV_ENC_ERR_NEED_MORE_OUTPUT",
}
_STATUS = (
    re.compile(r"returned error (\d+)"),  # PyNvVideoCodec / Video Codec SDK helper classes
    re.compile(r"failed: [A-Za-z ]+ \((\d+)\)"),  # FFmpeg's nvenc.c
)
# Failures that are about this machine, not these frames (exit 69, and --device auto
# falls back); anything else is the encoder failing (exit 74).
UNAVAILABLE_CODES = frozenset(
    {
        "no-driver",
        "no-gpu",
        "no-nvenc-engine",
        "no-nvenc-library",
        "driver-too-old",
        "session-limit",
        "unsupported",
    }
)
# ---------------------------------------------------------------------------------------
# Probe
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """Why NVENC can or cannot run here; ``code`` is stable for scripts and tests.

    Codes: ``ok``, ``no-driver``, ``no-gpu``, ``no-torch-cuda``, ``no-nvenc-engine``,
    ``no-nvenc-library``, ``no-pynvvideocodec``, ``driver-too-old``, ``session-limit``,
    ``unsupported``, ``encoder-failed`` (README "Troubleshooting" lists each with its fix).
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


def no_driver_reason(driver: str | None) -> str:
    where = f" (kernel module {driver} is loaded)" if driver else ""
    return f"no NVIDIA driver: libcuda.so.1 cannot be loaded{where}"


@functools.cache
def probe_details() -> ProbeResult:
    """Run the checks cheapest first and stop at the first that fails (cached per process).

    1. an NVIDIA driver (libcuda.so.1) — decides CPU-only machines without importing torch;
    2. torch with CUDA; 3. a GPU not known to lack an NVENC engine (A100, H100, H200, the
    B-series…); 4. the driver's NVENC library and PyNvVideoCodec; 5. a real one-frame
    encode through the same calls an encode makes, whose failure is classified by its
    NVENCSTATUS number (no engine, session cap, driver too old, …).
    """
    driver = driver_version()
    if not _load_library("libcuda.so.1"):
        return ProbeResult(False, "no-driver", no_driver_reason(driver))
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
        return ProbeResult(False, "no-nvenc-engine", no_engine_reason(gpu), gpu, driver)
    colour = "cvcuda" if cvcuda_available() else "torch"
    base = ProbeResult(False, "", "", gpu, driver, colour)
    if not _load_library("libnvidia-encode.so.1"):
        return replace(base, code="no-nvenc-library", reason=_NO_LIBRARY)
    if not _has_module("PyNvVideoCodec"):
        return replace(
            base,
            code="no-pynvvideocodec",
            reason=f"PyNvVideoCodec is not installed ({install_hint('gpu')}, or pip install PyNvVideoCodec)",
        )
    try:
        _library()
    except Exception as exc:  # its import runs driver checks
        code, reason = classify_encoder_error(brief(exc, 300), gpu)
        if code == "encoder-failed":
            code, reason = "no-pynvvideocodec", f"PyNvVideoCodec failed to load: {brief(exc)}"
        return replace(base, code=code, reason=reason)
    failure = _try_session(gpu)
    if failure is not None:
        return replace(base, code=failure[0], reason=failure[1])
    conversion = "CV-CUDA" if colour == "cvcuda" else "torch (CV-CUDA not installed)"
    return replace(base, ok=True, code="ok", reason=f"{gpu}, driver {driver or '?'}; colour by {conversion}")


_NO_LIBRARY = (
    "the driver's NVENC library libnvidia-encode.so.1 is missing (in a container, set "
    "NVIDIA_DRIVER_CAPABILITIES to include 'video')"
)


def no_engine_reason(gpu: str | None, detail: str = "") -> str:
    who = gpu or "this GPU"
    tail = f" ({detail})" if detail else ""
    return (
        f"{who} has no NVENC engine{tail}: A100, A30, H100, H200, H20, B200, GB200 and other "
        "data-centre parts have none; use an L4, L40S, T4, A10 or RTX card, or --device cpu"
    )


def nvenc_status(message: str) -> int | None:
    """The NVENCSTATUS number in a PyNvVideoCodec or FFmpeg error message, if any."""
    for pattern in _STATUS:
        match = pattern.search(message)
        if match:
            return int(match.group(1))
    return None


def status_name(status: int) -> str:
    return f"NVENCSTATUS {status}, {NVENC_STATUS.get(status, 'unknown')}"


# Failures that carry no status number: (pattern, code, reason).
_TEXT_RULES = (
    (re.compile(r"Cannot load libcuda|libcuda\.so\.1", re.IGNORECASE), "no-driver", no_driver_reason(None)),
    (
        re.compile(r"Cannot load libnvidia-encode|NVENC library file is not found", re.IGNORECASE),
        "no-nvenc-library",
        _NO_LIBRARY,
    ),
    (
        re.compile(
            r"does not support (this NvEncodeAPI version|the required nvenc API version)|"
            r"minimum required Nvidia driver|Driver version is too old",
            re.IGNORECASE,
        ),
        "driver-too-old",
        "the NVIDIA driver is too old for this NVENC API: upgrade the driver",
    ),
    (
        re.compile(
            r"No CUDA capable devices? found|no CUDA-capable device|GPU ordinal out of range", re.IGNORECASE
        ),
        "no-gpu",
        "the driver sees no usable GPU (check nvidia-smi, CUDA_VISIBLE_DEVICES and -x gpu_id)",
    ),
    (
        re.compile(
            r"isn't supported by|not supported by current encoder|Codec not supported|"
            r"bit encode not supported|doesn't support required NVENC features",
            re.IGNORECASE,
        ),
        "unsupported",
        "this GPU's NVENC cannot encode these settings",
    ),
)


def classify_encoder_error(message: str, gpu: str | None = None) -> tuple[str, str]:
    """Map an NVENC failure to a probe code and a sentence people can act on.

    The number decides (both libraries print it; neither prints the enum's name):
    1/2 no or unsupported encode device, 10 out of memory — in practice the consumer
    drivers' cap on concurrent sessions —, 15 a driver older than the NVENC API.
    """
    status = nvenc_status(message)
    if status in (1, 2):
        return "no-nvenc-engine", no_engine_reason(gpu, f"{status_name(status)}: {message}")
    if status == 10:
        return (
            "session-limit",
            f"NVENC could not open an encode session ({status_name(status)}): consumer drivers "
            "cap concurrent sessions and other programs may hold them all, or GPU memory is "
            f"full; close other encoders and retry ({message})",
        )
    if status == 15:
        return (
            "driver-too-old",
            f"the NVIDIA driver is too old for this NVENC API ({status_name(status)}): upgrade "
            f"the driver ({message})",
        )
    for pattern, code, reason in _TEXT_RULES:
        if pattern.search(message):
            return code, f"{reason} ({message})"
    if status is not None:
        return "encoder-failed", f"NVENC failed ({status_name(status)}): {message}"
    return "encoder-failed", f"NVENC failed: {message}"


def _try_session(gpu: str | None = None) -> tuple[str, str] | None:
    """Encode one 256x256 black frame on device 0 exactly as a session would; None when a
    picture comes back. Opening alone is not enough: the surface hand-off and the first
    ``Encode`` are where a wrong calling convention or a missing engine shows."""
    try:
        import torch

        lib = _library()
        device = _compute_device(0)
        stream = _new_stream(device)
        handles = _cuda_handles(0, device, stream)
        encoder = lib.CreateEncoder(256, 256, "NV12", False, codec="h264", gpu_id="0", bf="0", **handles)
        try:
            surface = torch.zeros((384, 256), dtype=torch.uint8, device=device)
            if stream is not None:
                torch.cuda.current_stream(device).synchronize()
            data = _as_bytes(encoder.Encode(DlpackSurface(surface))) + _as_bytes(encoder.EndEncode())
        finally:
            del encoder
    except Exception as exc:  # every failure is a probe answer
        return classify_encoder_error(brief(exc, 300), gpu)
    if not data:
        return "encoder-failed", "NVENC accepted a test frame but returned no picture for it"
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


def _library() -> Any:
    """PyNvVideoCodec itself: the one place it is imported (tests install an emulation)."""
    import PyNvVideoCodec

    return PyNvVideoCodec


def _compute_device(gpu_id: int) -> torch.device:
    """Where conversion runs: device ``gpu_id``, the one NVENC encodes on (tests: the CPU)."""
    import torch

    return torch.device("cuda", gpu_id)


def _cuda_handles(gpu_id: int, device: torch.device, stream: Any) -> dict[str, int]:
    """``cudacontext``/``cudastream`` for CreateEncoder: the primary context of ``device``
    (torch's, so surfaces need no copy) and a stream of that context.

    PyNvVideoCodec checks the context against ``gpu_id`` ("Gpu id … doesnt match with cuda
    context device") and the stream against the context ("cudastream input argument does
    not correspond to cudacontext argument"), so both must come from the device in
    ``gpu_id``, not from whichever device happens to be current.
    """
    if device.type != "cuda":
        return {}
    import torch

    if device.index != gpu_id:
        raise UnavailableError(f"NVENC on GPU {gpu_id} was handed {device}")
    with torch.cuda.device(device):
        torch.zeros(1, device=device)  # makes torch create and bind its primary context
        libcuda = ctypes.CDLL("libcuda.so.1")
        handle = ctypes.c_void_p()
        if libcuda.cuCtxGetCurrent(ctypes.byref(handle)) != 0 or not handle.value:
            raise UnavailableError(f"cannot find torch's CUDA context on {device} for NVENC")
    return {"cudacontext": int(handle.value), "cudastream": int(stream.cuda_stream)}


def _encoder_caps(lib: Any, codec: str, gpu_id: int) -> dict[str, int]:
    """NVENC's capabilities for ``codec`` on device ``gpu_id``.

    ``GetEncoderCaps(gpuid=, codec=)`` returns a dict (2.0.5, 2.2.4) and raises for a codec
    the GPU cannot encode (AV1 on a T4 or A10): that is a 69, not something to skip.
    Versions without the call answer nothing.
    """
    query = getattr(lib, "GetEncoderCaps", None)
    if query is None:
        return {}
    try:
        caps = query(gpuid=gpu_id, codec=codec)
    except Exception as exc:
        raise UnavailableError(f"this GPU's NVENC cannot encode {codec}: {brief(exc)}") from None
    return dict(caps) if isinstance(caps, dict) else {}


class DlpackSurface:
    """One NVENC input surface in the form PyNvVideoCodec's ``Encode`` takes.

    ``Encode(frame)`` calls ``frame.cuda()`` and then ``frame.__dlpack__(stream)`` with the
    stream as one positional argument; torch >= 2.8 declares ``Tensor.__dlpack__(self, *,
    stream=...)`` keyword-only, so a bare tensor fails on the first frame with a TypeError.
    The surface is one 2-D plane block — NV12/P010 (1.5·H, W), YUV444/YUV444_10BIT (3·H, W)
    — whose pitch the library reads from ``strides[0]``. DLPack also carries uint16 as it
    is, where torch's ``__cuda_array_interface__`` typestr ``<u2`` is refused (the library
    takes ``|u1``/``|u2`` only). The conversion's CUDA event is waited on before ``Encode``,
    so the export needs no stream hand-shake of its own.
    """

    __slots__ = ("tensor",)

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor

    def cuda(self) -> DlpackSurface:
        return self

    def __dlpack_device__(self) -> Any:
        return self.tensor.__dlpack_device__()

    def __dlpack__(self, stream: Any = None, **_: Any) -> Any:
        return self.tensor.__dlpack__()


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
        # Here, not at the top: every --device auto run imports this module to probe,
        # and on a machine without a driver nothing past the probe's first check runs.
        from nvenc_cli.backends.annexb import Timestamper, make_splitter
        from nvenc_cli.backends.nvenc_options import settings_for

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
        self._lib = _library()
        self._check_caps()
        self.converter = make_converter(plan, self.settings, self.device, self.cuda_stream)
        self._encoder = self._open_encoder()
        self.description = (
            f"{plan.encoder} (NVENC via PyNvVideoCodec, {self.settings.kwargs['preset']}, "
            f"colour by {self.converter.name})"
        )

    def _check_caps(self) -> None:
        """Refuse what this GPU cannot do (69) before opening anything; clamp the default
        B-frame count to the GPU's maximum (an explicit ``-x bf`` above it is refused)."""
        codec, surface = self.settings.codec, self.settings.surface
        caps = _encoder_caps(self._lib, codec, self.settings.gpu_id)
        if caps.get("support_10bit_encode") == 0 and surface.bits > 8:
            raise UnavailableError(f"this GPU's NVENC cannot encode 10-bit {codec}")
        if caps.get("support_yuv444_encode") == 0 and surface.chroma == "444":
            raise UnavailableError(f"this GPU's NVENC cannot encode 4:4:4 {codec}")
        if self.settings.kwargs.get("tuning_info") == "lossless" and caps.get("support_lossless_encode") == 0:
            raise UnavailableError(f"this GPU's NVENC cannot encode {codec} losslessly (--crf 0)")
        most = caps.get("num_max_bframes")
        if most is not None and self.settings.bframes > most:
            if "bf" in {k.lower() for k in self.plan.codec_options}:
                raise UsageError(f"-x bf={self.settings.bframes}: this GPU allows at most {most} B-frames")
            kwargs = dict(self.settings.kwargs, bf=str(most))
            self.settings = replace(self.settings, bframes=most, kwargs=kwargs)

    def _open_encoder(self) -> Any:
        kwargs: dict[str, Any] = dict(self.settings.kwargs)
        kwargs.update(_cuda_handles(self.settings.gpu_id, self.device, self.cuda_stream))
        try:
            return self._lib.CreateEncoder(
                self.plan.width, self.plan.height, self.settings.surface.nvenc_format, False, **kwargs
            )
        except (UsageError, UnavailableError):
            raise
        except Exception as exc:  # PyNvVideoCodec raises plain RuntimeErrors
            code, reason = classify_encoder_error(brief(exc, 300))
            if code not in UNAVAILABLE_CODES:
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
                chunks.append(_as_bytes(self._encoder.Encode(DlpackSurface(converted.surfaces[index]))))
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
        """The reorder depth the stream itself declares, or None; never the configured
        B-frame count, which the library may not honour the way it was meant."""
        return self._splitter.reorder if self._splitter.reorder_declared else None

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
    """Torch on the session's device and stream: for 8-bit samples swscale's own integer
    steps (``swsmatch``), so NVENC is handed the CPU path's pictures to the code; for
    16-bit samples (or a swscale ``swsmatch`` does not reproduce) color.py's maths."""

    name = "torch"

    def __init__(self, spec: Any, stream: Any, plan: EncodePlan | None = None) -> None:
        self.spec, self.stream, self.plan = spec, stream, plan

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if self.stream is None:
            return self._convert(frames)
        import torch

        with torch.cuda.stream(self.stream):
            return self._convert(frames)

    def _convert(self, frames: torch.Tensor) -> torch.Tensor:
        from nvenc_cli import color, swsmatch

        variant = swsmatch.usable(self.plan, self.spec, frames) if self.plan is not None else None
        if variant is None:
            return color.convert(frames, self.spec, 8 * frames.element_size())  # uint8/uint16
        return color.pack(*swsmatch.planes(frames, self.spec, variant), self.spec)

    def takes(self, frames: torch.Tensor) -> bool:
        """Whether these frames get swscale's integer steps here (8-bit samples)."""
        from nvenc_cli import swsmatch

        return self.plan is not None and swsmatch.usable(self.plan, self.spec, frames) is not None


class CvcudaConverter:
    """color.py's maths with CV-CUDA kernels, for 16-bit samples: one affine colour twist
    in float32, a 2×2 area average for 4:2:0 chroma, a single rounding, then
    NV12/P010/YUV444 packing. 8-bit samples go to :class:`TorchConverter`'s integer steps,
    which match the CPU path exactly where float kernels cannot.

    (CV-CUDA's own RGB→NV12 ``cvtcolor`` is BT.601 limited with point-sampled chroma, so
    it is not used.) Any failure on first use falls back to :class:`TorchConverter`.
    """

    name = "CV-CUDA"

    def __init__(self, spec: Any, stream: Any, plan: EncodePlan | None = None) -> None:
        import cvcuda
        import torch

        from nvenc_cli import color

        self.cvcuda, self.spec, self.stream = cvcuda, spec, stream
        self.fallback = TorchConverter(spec, stream, plan)
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
        if self._failed or self.fallback.takes(frames):  # 8-bit: swscale's integer steps
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
            return CvcudaConverter(spec, stream, plan)
        except Exception:  # an incompatible CV-CUDA: the reference is exact
            pass
    return TorchConverter(spec, stream, plan)
