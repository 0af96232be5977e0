"""Backend registry and the one place that decides CPU vs NVENC for a request.

Kept import-light: probing NVENC must not import torch/CUDA unless a driver exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from nvenc_cli.backends.base import Availability, Backend, Session
from nvenc_cli.errors import UnavailableError, UsageError
from nvenc_cli.options import CPU_ENCODER_FOR, NVENC_ENCODERS

__all__ = ["Availability", "Backend", "Choice", "Session", "get_backend", "probe_nvenc", "select"]


@dataclass(frozen=True)
class Choice:
    """Which backend and encoder a request resolved to, and why NVENC was not used."""

    backend: str
    encoder: str
    notices: tuple[str, ...] = ()
    fallback_reason: str | None = None


def probe_nvenc() -> Availability:
    """Ask the NVENC backend whether it can run here (never raises)."""
    try:
        from nvenc_cli.backends import nvenc
    except Exception as exc:  # the backend module itself failed to import
        return Availability(False, f"NVENC backend failed to load: {exc}")
    return nvenc.probe()


def get_backend(name: str) -> Backend:
    if name == "cpu":
        from nvenc_cli.backends.cpu import CpuBackend

        return CpuBackend()
    if name == "nvenc":
        from nvenc_cli.backends.nvenc import NvencBackend

        return NvencBackend()
    raise UsageError(f"unknown backend {name!r}")


_NVENC_NAMES = {v: k for k, v in NVENC_ENCODERS.items()}
# Concrete CPU encoders whose family NVENC can also produce (used for --device auto when
# the codec came from the container default, not from the user).
_CPU_FAMILY = {"libx264": "h264", "libx265": "hevc", "libsvtav1": "av1"}


def select(device: str, codec: str, explicit: bool) -> Choice:
    """Map (--device, --codec) to a backend and encoder.

    ``auto`` takes NVENC when it probes fine and the codec is one NVENC has, else the
    CPU with the probe's reason kept for the report. ``cuda`` or an explicit ``*_nvenc``
    codec never falls back: exit 69 with the probe's reason.
    """
    name = codec.strip().lower()
    if name in _NVENC_NAMES:
        if device == "cpu":
            raise UsageError(f"codec {name} is an NVENC (GPU) encoder: drop --device cpu")
        _require()
        return Choice("nvenc", name)
    family = _family_of_alias(name) or (None if explicit else _CPU_FAMILY.get(name))
    nvenc_encoder = NVENC_ENCODERS.get(family or "")
    cpu_encoder = CPU_ENCODER_FOR.get(name, name)
    if device == "cuda":
        if nvenc_encoder is None:
            raise UnavailableError(f"--device cuda encodes h264, hevc or av1 only; {name} is a CPU codec")
        _require()
        return Choice("nvenc", nvenc_encoder)
    if device == "auto" and nvenc_encoder is not None:
        status = probe_nvenc()
        if status.ok:
            return Choice("nvenc", nvenc_encoder)
        return Choice("cpu", cpu_encoder, fallback_reason=status.reason)
    return Choice("cpu", cpu_encoder)


def _family_of_alias(name: str) -> str | None:
    if name not in CPU_ENCODER_FOR:
        return None
    return {"avc": "h264", "h265": "hevc"}.get(name, name)


def _require() -> None:
    status = probe_nvenc()
    if not status.ok:
        raise UnavailableError(f"NVENC is not available: {status.reason}")
