"""Backend registry and the one place that decides CPU vs NVENC for a request.

NVENC has two routes, tried in this order: ``nvenc`` (PyNvVideoCodec, fed by CV-CUDA or
torch on the GPU) and ``ffmpeg_nvenc`` (FFmpeg's own nvenc encoders in PyAV's wheels, fed by
the CPU path's conversion, or CUDA frames that ``devconvert`` made). Each is probed with a
real one-frame encode. Kept import-light: probing must not import torch, CUDA or PyAV unless
a driver exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from nvenc_cli.backends.base import Availability, Backend, Session
from nvenc_cli.errors import UnavailableError, UsageError
from nvenc_cli.options import CPU_ENCODER_FOR, NVENC_ENCODERS

__all__ = [
    "NVENC_ROUTES",
    "Availability",
    "Backend",
    "Choice",
    "Session",
    "get_backend",
    "probe_nvenc",
    "probe_routes",
    "select",
]

# NVENC routes in the order --device auto/cuda try them, with the name reports use.
NVENC_ROUTES = {"nvenc": "PyNvVideoCodec", "ffmpeg_nvenc": "FFmpeg nvenc"}


@dataclass(frozen=True)
class Choice:
    """Which backend and encoder a request resolved to, and why NVENC was not used."""

    backend: str
    encoder: str
    notices: tuple[str, ...] = ()
    fallback_reason: str | None = None
    may_fall_back: bool = False  # --device auto chose NVENC: the CPU may still take over


def probe_nvenc() -> Availability:
    """Ask the PyNvVideoCodec route whether it can run here (never raises)."""
    try:
        from nvenc_cli.backends import nvenc
    except Exception as exc:  # the backend module itself failed to import
        return Availability(False, f"NVENC backend failed to load: {exc}")
    return nvenc.probe()


def probe_ffmpeg_nvenc() -> Availability:
    """Ask the FFmpeg-nvenc route whether it can run here (never raises)."""
    try:
        from nvenc_cli.backends import ffmpeg_nvenc

        return ffmpeg_nvenc.probe()
    except Exception as exc:
        return Availability(False, f"FFmpeg nvenc route failed to load: {exc}")


def probe_routes() -> dict[str, Availability]:
    """Every NVENC route's answer, in the order they are tried."""
    return {"nvenc": probe_nvenc(), "ffmpeg_nvenc": probe_ffmpeg_nvenc()}


def _route() -> tuple[str | None, str]:
    """The first NVENC route that works, else None and why none does.

    Both routes stop at the same first check on most machines (no driver): then the
    reason is said once; otherwise each route's reason is named.
    """
    reasons: dict[str, str] = {}
    for name, probe in (("nvenc", probe_nvenc), ("ffmpeg_nvenc", probe_ffmpeg_nvenc)):
        status = probe()
        if status.ok:
            return name, ""
        reasons[name] = status.reason
    if len(set(reasons.values())) == 1:
        return None, next(iter(reasons.values()))
    return None, "; ".join(f"{NVENC_ROUTES[name]}: {reason}" for name, reason in reasons.items())


def get_backend(name: str) -> Backend:
    if name == "cpu":
        from nvenc_cli.backends.cpu import CpuBackend

        return CpuBackend()
    if name == "nvenc":
        from nvenc_cli.backends.nvenc import NvencBackend

        return NvencBackend()
    if name == "ffmpeg_nvenc":
        from nvenc_cli.backends.ffmpeg_nvenc import FfmpegNvencBackend

        return FfmpegNvencBackend()
    raise UsageError(f"unknown backend {name!r}")


_NVENC_NAMES = {v: k for k, v in NVENC_ENCODERS.items()}
# Concrete CPU encoders whose family NVENC can also produce (used for --device auto when
# the codec came from the container default, not from the user).
_CPU_FAMILY = {"libx264": "h264", "libx265": "hevc", "libsvtav1": "av1"}


def select(device: str, codec: str, explicit: bool) -> Choice:
    """Map (--device, --codec) to a backend and encoder.

    ``auto`` takes the first NVENC route that probes fine when the codec is one NVENC
    has, else the CPU with the probes' reason kept for the report; it may still fall back
    to the CPU if that route fails before its first packet. ``cuda`` or an explicit
    ``*_nvenc`` codec never falls back: exit 69 with the probes' reason.
    """
    name = codec.strip().lower()
    if name in _NVENC_NAMES:
        if device == "cpu":
            raise UsageError(f"codec {name} is an NVENC (GPU) encoder: drop --device cpu")
        return Choice(_require(), name)
    family = _family_of_alias(name) or (None if explicit else _CPU_FAMILY.get(name))
    nvenc_encoder = NVENC_ENCODERS.get(family or "")
    cpu_encoder = CPU_ENCODER_FOR.get(name, name)
    if device == "cuda":
        if nvenc_encoder is None:
            raise UnavailableError(f"--device cuda encodes h264, hevc or av1 only; {name} is a CPU codec")
        return Choice(_require(), nvenc_encoder)
    if device == "auto" and nvenc_encoder is not None:
        route, reason = _route()
        if route is not None:
            return Choice(route, nvenc_encoder, may_fall_back=True)
        return Choice("cpu", cpu_encoder, fallback_reason=reason)
    return Choice("cpu", cpu_encoder)


def _family_of_alias(name: str) -> str | None:
    if name not in CPU_ENCODER_FOR:
        return None
    return {"avc": "h264", "h265": "hevc"}.get(name, name)


def _require() -> str:
    route, reason = _route()
    if route is None:
        raise UnavailableError(f"NVENC is not available: {reason}")
    return route
