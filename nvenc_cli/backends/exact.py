"""Exact R'G'B' → Y'CbCr for 16-bit input on the CPU, where swscale is not exact.

swscale converts 8-bit RGB to within ±0.5 of the formula, but its 16-bit RGB input
path is biased: on random uint16 frames its 10-bit luma averages +1.7 codes high and
is off by up to 3.7 (16-bit output: up to 212), which throws away most of what a
10-bit file has over an 8-bit one. This module does the same maths the GPU reference
(``nvenc_cli/color.py``) does — float matrix, 2×2 (or 2×1) chroma mean, one rounding —
with numpy, for planar YUV formats of any depth. Anything else stays with swscale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import av

    from nvenc_cli.plan import EncodePlan

# (Kr, Kb) of each matrix (BT.601-7, BT.709-6, BT.2020-2 non-constant luminance).
_KR_KB = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
    "fcc": (0.30, 0.11),
}

Converter = Callable[[np.ndarray], "av.VideoFrame"]


def exact_converter(plan: EncodePlan) -> Converter | None:
    """A converter for ``plan``'s pixel format, or None where swscale should be used.

    Only planar, little-endian Y'CbCr formats (with or without alpha) whose chroma is
    subsampled by 1 or 2 each way, and gray formats for gray input: everything the CPU
    encoders take for deep input.
    """
    import av

    if plan.color.matrix is None:
        return None
    fmt = av.VideoFormat(plan.pixel_format, plan.width, plan.height)
    if plan.source.channels == 1 and len(fmt.components) == 1 and not fmt.is_big_endian:
        return _gray_converter(plan.pixel_format, fmt.components[0].bits)
    if plan.source.channels < 3:
        return None  # gray input to Y'CbCr: swscale copies it into luma
    comps = fmt.components
    if not fmt.is_planar or fmt.is_big_endian or len(comps) not in (3, 4):
        return None
    if len({c.plane for c in comps}) != len(comps) or not comps[0].is_luma:
        return None
    sub_x, sub_y = plan.width // comps[1].width, plan.height // comps[1].height
    if sub_x not in (1, 2) or sub_y not in (1, 2):
        return None
    bits = comps[0].bits
    full = plan.color.range == "pc"
    matrix = _affine(plan.color.matrix, full, bits)

    def convert(image: np.ndarray) -> av.VideoFrame:
        return _to_frame(image, plan.pixel_format, matrix, bits, (sub_y, sub_x))

    return convert


def _gray_converter(pixel_format: str, bits: int) -> Converter | None:
    """16-bit gray samples to a gray format of fewer bits, rounded once: swscale dithers
    there, which moves 12-bit depth codes scaled to 16 bits off by one (30 of 4096)."""
    if bits >= 16:
        return None
    top = (1 << bits) - 1

    def convert(image: np.ndarray) -> av.VideoFrame:
        import av

        height, width = image.shape[:2]
        gray = image if image.ndim == 2 else image[..., 0]
        values = (gray.astype(np.uint64) * (2 * top) + 65535) // (2 * 65535)
        frame = av.VideoFrame(width, height, pixel_format)
        _write(frame.planes[0], values, bits)
        return frame

    return convert


def _affine(matrix: str, full: bool, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """3×3 weights and offsets taking R'G'B' in [0, 1] to Y'CbCr code values.

    Limited range: Y = (219 E'Y + 16)·2^(n-8), C = (224 E'C + 128)·2^(n-8); full range:
    Y = (2^n - 1) E'Y, C = (2^n - 1) E'C + 2^(n-1) (ITU-T H.273).
    """
    kr, kb = _KR_KB[matrix]
    kg = 1.0 - kr - kb
    rows = np.array(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ],
        dtype=np.float64,
    )
    if full:
        top = float((1 << bits) - 1)
        scale = np.array([top, top, top])
        offset = np.array([0.0, float(1 << (bits - 1)), float(1 << (bits - 1))])
    else:
        unit = float(1 << (bits - 8))
        scale = np.array([219.0, 224.0, 224.0]) * unit
        offset = np.array([16.0, 128.0, 128.0]) * unit
    return rows * scale[:, None], offset


def _to_frame(
    image: np.ndarray,
    pixel_format: str,
    affine: tuple[np.ndarray, np.ndarray],
    bits: int,
    sub: tuple[int, int],
) -> av.VideoFrame:
    """Convert one (H, W, 3|4) uint16 frame and write it into a new frame's planes."""
    import av

    weights, offset = affine
    height, width = image.shape[:2]
    # The 1/65535 is folded into the weights. Chroma is linear in R'G'B', so the mean of
    # each block's chroma is the chroma of the block's mean colour: average first.
    scaled = (weights / 65535.0).astype(np.float32)
    rgb = image[..., :3].astype(np.float32)
    top = (1 << bits) - 1
    planes = [_plane(rgb @ scaled[0] + np.float32(offset[0]), top)]
    block = _block_mean(rgb, sub)
    for index in (1, 2):
        planes.append(_plane(block @ scaled[index] + np.float32(offset[index]), top))
    frame = av.VideoFrame(width, height, pixel_format)
    if len(frame.planes) == 4:
        alpha = image[..., 3] if image.shape[2] == 4 else np.full((height, width), 65535, np.uint16)
        planes.append(_plane(alpha.astype(np.float32) * np.float32(top / 65535.0), top))
    for target, values in zip(frame.planes, planes, strict=True):
        _write(target, values, bits)
    return frame


def _block_mean(rgb: np.ndarray, sub: tuple[int, int]) -> np.ndarray:
    """Mean over each sub[0]×sub[1] block (strided adds: far faster than reshape+mean)."""
    step_y, step_x = sub
    if sub == (1, 1):
        return rgb
    total = np.zeros_like(rgb[::step_y, ::step_x])
    for dy in range(step_y):
        for dx in range(step_x):
            total += rgb[dy::step_y, dx::step_x]
    total *= np.float32(1.0 / (step_y * step_x))
    return total


def _plane(values: np.ndarray, top: int) -> np.ndarray:
    """Round once and clamp to the format's code range."""
    return np.clip(np.rint(values), 0, top)


def _write(target: Any, values: np.ndarray, bits: int) -> None:
    """Copy a plane into a frame, honouring its row padding."""
    dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)
    rows = np.frombuffer(target, dtype=dtype).reshape(target.height, target.line_size // dtype.itemsize)
    rows[:, : target.width] = values.astype(dtype)
