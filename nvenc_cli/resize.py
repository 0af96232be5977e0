"""``--resize WxH``: scale RGB frames before the colour conversion.

Scaling happens on the RGB samples, as its own step, so the colour rules stay exactly what
they are without it (the matrix follows the output height, 4:2:0 chroma is still the mean
of each 2x2 block). Shrinking averages the source pixels each output pixel covers (area),
so fine detail does not alias; growing uses Lanczos, which keeps edges sharp. CPU frames
are scaled by swscale (through PyAV), frames already on the GPU by torch.
"""

from __future__ import annotations

from typing import Any

from nvenc_cli.errors import UsageError

_FORMATS = {  # (channels, bytes per sample) -> the PyAV format of an HWC frame
    (1, 1): "gray",
    (3, 1): "rgb24",
    (4, 1): "rgba",
    (1, 2): "gray16le",
    (3, 2): "rgb48le",
    (4, 2): "rgba64le",
}


def parse_resize(text: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """``"640x360"``, ``"640x-2"``, ``"-1:480"`` or ``(640, -2)``: -1 keeps the aspect
    ratio, -2 keeps it and rounds to an even number (as ffmpeg's scale filter does)."""
    if text is None:
        return None
    try:
        parts = text.lower().replace(":", "x").split("x") if isinstance(text, str) else list(text)
        width, height = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise UsageError(f"invalid --resize {text!r}: use WIDTHxHEIGHT, e.g. 640x360 or 640x-2") from None
    for value in (width, height):
        if value == 0 or value < -2:
            raise UsageError(
                f"invalid --resize {text!r}: each side is a size ≥ 1, -1 (keep the aspect ratio) "
                "or -2 (keep it, rounded to even)"
            )
    if width < 0 and height < 0:
        raise UsageError(f"invalid --resize {text!r}: give at least one side")
    return width, height


def target_size(request: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """The size ``request`` (from :func:`parse_resize`) means for ``width`` x ``height`` frames."""
    out_w, out_h = request
    if out_w < 0:
        out_w = _keep_aspect(out_h * width, height, -out_w)
    if out_h < 0:
        out_h = _keep_aspect(out_w * height, width, -out_h)
    return out_w, out_h


def _keep_aspect(numerator: int, denominator: int, multiple: int) -> int:
    """``numerator / denominator`` rounded to the nearest multiple of ``multiple`` (≥ it)."""
    units = (2 * numerator + denominator * multiple) // (2 * denominator * multiple)
    return max(units, 1) * multiple


def filter_name(source: tuple[int, int], target: tuple[int, int]) -> str:
    """``area`` when no side grows, else ``lanczos``."""
    return "area" if target[0] <= source[0] and target[1] <= source[1] else "lanczos"


class Resizer:
    """Scales NHWC windows to one size; one swscale context for the whole run."""

    def __init__(self, width: int, height: int, method: str) -> None:
        self.width, self.height, self.method = width, height, method
        self._reformatter: Any = None

    def __call__(self, data: Any) -> Any:
        from nvenc_cli.sources.memory import is_torch

        if is_torch(data):
            return self._torch(data)
        return self._numpy(data)

    def _numpy(self, data: Any) -> Any:
        import av
        import numpy as np
        from av.video.reformatter import Interpolation, VideoReformatter

        if self._reformatter is None:
            self._reformatter = VideoReformatter()
        flags = Interpolation.AREA if self.method == "area" else Interpolation.LANCZOS
        fmt = _FORMATS[(int(data.shape[3]), data.dtype.itemsize)]
        out = np.empty((data.shape[0], self.height, self.width, data.shape[3]), dtype=data.dtype)
        for index in range(data.shape[0]):
            image = data[index, :, :, 0] if data.shape[3] == 1 else data[index]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
            scaled = self._reformatter.reformat(
                frame, width=self.width, height=self.height, interpolation=flags | Interpolation.ACCURATE_RND,
                threads=1,
            )  # fmt: skip
            pixels = scaled.to_ndarray()
            out[index] = pixels[..., np.newaxis] if pixels.ndim == 2 else pixels
        return out

    def _torch(self, data: Any) -> Any:
        import torch
        import torch.nn.functional as F

        peak = 65535.0 if data.dtype == torch.uint16 else 255.0
        values = data.permute(0, 3, 1, 2).float()
        if self.method == "area":
            scaled = F.interpolate(values, size=(self.height, self.width), mode="area")
        else:
            scaled = F.interpolate(
                values, size=(self.height, self.width), mode="bicubic", align_corners=False
            )
        scaled = scaled.round_().clamp_(0, peak).to(data.dtype)
        return scaled.permute(0, 2, 3, 1).contiguous()
