"""nvenc: frame tensors in, video files out — on NVENC when it is there, on the CPU when not.

The Python API (``VideoEncoder``, ``open_writer``, ``VideoWriter``, ``Encoder``,
``AudioEncoder``, ``encode``/``encode_batch`` for one clip or a batch's clips in process,
and ``encode_many`` for many clips on worker processes) is loaded on first use,
so ``import nvenc_cli`` and ``nvenc --help`` import neither torch nor PyAV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AudioEncoder",
    "AudioStream",
    "Encoder",
    "JobSpec",
    "JpegEncoder",
    "PngEncoder",
    "VideoEncoder",
    "VideoStream",
    "VideoWriter",
    "__version__",
    "encode",
    "encode_batch",
    "encode_many",
    "iter_encode_many",
    "open_writer",
    "write_image_sequence",
]

_LAZY = {
    "VideoEncoder": "nvenc_cli.api",
    "VideoWriter": "nvenc_cli.api",
    "open_writer": "nvenc_cli.api",
    "Encoder": "nvenc_cli.api",
    "VideoStream": "nvenc_cli.api",
    "AudioStream": "nvenc_cli.api",
    "AudioEncoder": "nvenc_cli.api",
    "encode": "nvenc_cli.api",
    "encode_batch": "nvenc_cli.api",
    "encode_many": "nvenc_cli.api",
    "iter_encode_many": "nvenc_cli.api",
    "JobSpec": "nvenc_cli.api",
    "JpegEncoder": "nvenc_cli.api",
    "PngEncoder": "nvenc_cli.api",
    "write_image_sequence": "nvenc_cli.api",
}

if TYPE_CHECKING:
    from nvenc_cli.api import (
        AudioEncoder,
        AudioStream,
        Encoder,
        JpegEncoder,
        PngEncoder,
        VideoEncoder,
        VideoStream,
        VideoWriter,
        encode,
        encode_batch,
        open_writer,
        write_image_sequence,
    )
    from nvenc_cli.batch import JobSpec, encode_many, iter_encode_many


def __getattr__(name: str) -> Any:
    """Import the API module only when one of its names is first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nvenc_cli' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
