"""nvenc: frame tensors in, video files out — on NVENC when it is there, on the CPU when not."""

from __future__ import annotations

__version__ = "0.1.0"
