"""The Python API, one module per class family, all thin over plan/pipeline.

``video``: torchcodec's ``VideoEncoder`` and nvenc's streaming ``VideoWriter``/``open_writer``;
``encoder``: torchcodec's multi-stream ``Encoder`` (``VideoStream``, ``AudioStream``);
``audio``: torchcodec's ``AudioEncoder``; ``oneshot``: ``encode()``/``encode_batch()``, the
CLI's encode in process; ``background``: the pool behind ``wait=False``
(``set_background``). All are re-exported here (as is ``encode_many``,
from ``nvenc_cli.batch``), so ``nvenc_cli.api`` stays the one import path.
"""

from __future__ import annotations

from nvenc_cli.api.audio import AudioEncoder
from nvenc_cli.api.background import set_background
from nvenc_cli.api.encoder import AudioStream, Encoder, VideoStream
from nvenc_cli.api.image import JpegEncoder, PngEncoder, write_image_sequence
from nvenc_cli.api.oneshot import encode, encode_batch
from nvenc_cli.api.video import (
    VideoEncoder,
    VideoWriter,
    api_errors,
    open_writer,
    python_spelling,
    warn_ignored,
)
from nvenc_cli.batch import JobResult, JobSpec, encode_many, iter_encode_many

__all__ = [
    "AudioEncoder",
    "AudioStream",
    "Encoder",
    "JobResult",
    "JobSpec",
    "JpegEncoder",
    "PngEncoder",
    "VideoEncoder",
    "VideoStream",
    "VideoWriter",
    "api_errors",
    "encode",
    "encode_batch",
    "encode_many",
    "iter_encode_many",
    "open_writer",
    "python_spelling",
    "set_background",
    "warn_ignored",
    "write_image_sequence",
]
