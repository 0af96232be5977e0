"""NVENC backend (CV-CUDA + PyNvVideoCodec). Placeholder until the GPU path lands."""

from __future__ import annotations

from nvenc_cli.backends.base import Availability


def probe() -> Availability:
    return Availability(False, "the NVENC backend is not built yet")
