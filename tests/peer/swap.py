"""A pytest plugin that runs torchcodec's own encoder tests against nvenc's classes.

torchcodec's ``test/test_encoders.py`` (any release from 0.13 on) imports its encoders from
``torchcodec.encoders``; loaded with ``-p tests.peer.swap`` before that file is collected,
this plugin puts nvenc's ``VideoEncoder``, ``AudioEncoder``, ``Encoder``, ``JpegEncoder`` and
``PngEncoder`` in their place when ``NVENC_SWAP=1``, and leaves torchcodec's own in place
otherwise, so one command line counts both. The installed torchcodec (0.13 on the CPU) stays
the decoder the tests read outputs back with.

Newer suites also import names the installed torchcodec may lack (the image decoders of
0.16); those are filled with Pillow-backed stand-ins, so the suite can be collected at all.
Encoder classes the installed torchcodec lacks are stand-ins that raise, so torchcodec's own
count shows them as failures rather than hiding them. See docs/torchcodec.md for how to run.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import torch


def _read_image(source: Any, mode: Any = "UNCHANGED") -> torch.Tensor:
    """Decode a PNG or JPEG (path or uint8 tensor of its bytes) to (C, H, W) with Pillow."""
    from PIL import Image

    if isinstance(source, torch.Tensor):
        source = io.BytesIO(source.cpu().numpy().tobytes())
    elif isinstance(source, bytes):
        source = io.BytesIO(source)
    name = getattr(mode, "name", str(mode)).upper()
    with Image.open(source) as image:
        if name == "RGB":
            image = image.convert("RGB")
        elif name == "GRAY":
            image = image.convert("L")
        elif name == "RGB_ALPHA":
            image = image.convert("RGBA")
        elif name == "GRAY_ALPHA":
            image = image.convert("LA")
        array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _unavailable(name: str) -> Any:
    def decode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{name}: not in the installed torchcodec (libjpeg/libpng absent)")

    return decode


def _absent_encoder(name: str) -> type:
    class Absent:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError(f"the installed torchcodec has no {name}")

    Absent.__name__ = name
    return Absent


def _fill_decoders() -> None:
    import torchcodec.decoders as decoders

    stand_ins = {"decode_png": _read_image, "decode_jpeg": _read_image}
    for name in ("decode_avif", "decode_heic", "decode_webp", "decode_gif"):
        stand_ins[name] = _unavailable(name)
    for name, value in stand_ins.items():
        if not hasattr(decoders, name):
            setattr(decoders, name, value)


def _swap_encoders() -> None:
    import torchcodec.encoders as encoders

    names = ("VideoEncoder", "AudioEncoder", "Encoder", "JpegEncoder", "PngEncoder")
    if os.environ.get("NVENC_SWAP") == "1":
        import nvenc_cli.api as api
        from nvenc_cli.api import image

        for name in names:
            setattr(encoders, name, getattr(api, name, None) or getattr(image, name))
        return
    for name in names:
        if not hasattr(encoders, name):
            setattr(encoders, name, _absent_encoder(name))


# At import: ``-p`` plugins are imported before the suite's conftest, which imports its
# utilities (and through them torchcodec's names) before any pytest hook would run.
_fill_decoders()
_swap_encoders()
