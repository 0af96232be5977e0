"""swscale's own integer arithmetic for 8-bit R'G'B' → Y'CbCr, in torch.

The CPU path converts 8-bit RGB with swscale (``backends/cpu.py``: AREA, full-resolution
chroma input, one thread). Its fixed-point pipeline rounds a little differently from the
float formula in ``color.py`` — about 2 % of 8-bit codes land one code away — so frames
converted on a GPU with ``color.py`` would not be the CPU path's pictures. This module
repeats swscale's steps exactly, with integer tensor operations that give the same
results on any torch device:

1. per pixel, 15-bit fixed-point matrix → 14-bit intermediates (``libswscale/input.c``,
   ``rgb24ToY_c``/``rgb24ToUV_c``; coefficients from ``fill_rgb2yuv_table`` in
   ``libswscale/utils.c``, which always builds limited-range coefficients and, for
   BT.601, uses its rounded textbook constants);
2. horizontal filter to 15 bits: ×2, or for 4:2:0 the sum of each pixel pair
   (``hScale16To15_c`` with AREA's two taps of 1/2);
3. full range only: swscale's range conversion of the 15-bit values
   (``solve_range_convert`` and ``lum/chrRangeToJpeg_c`` in ``libswscale/swscale.c``);
4. vertical output: one tap rounds (``yuv2plane1``); 4:2:0's two chroma rows are
   summed and rounded (``yuv2planeX_c``) — except that on x86 the SIMD ``yuv2yuvX``
   truncates each row's term before adding, on every chroma row but the last, which
   swscale always writes with its C functions.

Builds differ (an FFmpeg release may retune a constant, another CPU has other SIMD), so
the first use for each output format is checked against the installed swscale on a small
fixed frame (:func:`variant_for`): the vertical rounding that reproduces it is used, and
where neither does, callers fall back to ``color.py`` (within one code). The constants
were confirmed on PyAV 18.1's FFmpeg 8 on x86-64 against every one of the 16.7 million
RGB colours, for each matrix and range.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from nvenc_cli.color import YuvSpec
    from nvenc_cli.plan import EncodePlan

#: swscale's YCbCr→RGB coefficients {crv, cbu, cgu, cgv} per matrix (``ff_yuv2rgb_coeffs``
#: in libswscale/yuv2rgb.c, indexed there by the SWS_CS_* constant PyAV passes).
_YUV2RGB_COEFFS: dict[str, tuple[int, int, int, int]] = {
    "bt709": (117489, 138438, 13975, 34925),
    "bt601": (104597, 132201, 25675, 53279),
    "fcc": (104448, 132798, 24759, 53109),
    "bt2020": (110013, 140363, 12277, 42626),
}
_SHIFT = 15  # RGB2YUV_SHIFT


@dataclass(frozen=True)
class Coefficients:
    """One row of swscale's 15-bit fixed-point RGB→YCbCr table: (r, g, b) weights."""

    y: tuple[int, int, int]
    cb: tuple[int, int, int]
    cr: tuple[int, int, int]


def _rounded_div(a: int, b: int) -> int:
    """C's ROUNDED_DIV: halves away from zero, truncating division."""
    q = (abs(a) + b // 2) // b
    return q if a >= 0 else -q


@functools.cache
def coefficients(matrix: str) -> Coefficients:
    """swscale's table for ``matrix`` (always its limited-range form: full range is a
    separate step)."""
    if matrix == "bt601":
        # the fixed constants swscale substitutes for its default (BT.601) matrix
        def fixed(value: float, gain: int) -> int:
            return int(value * gain / 255 * (1 << _SHIFT) + 0.5)

        return Coefficients(
            (fixed(0.299, 219), fixed(0.587, 219), fixed(0.114, 219)),
            (-fixed(0.169, 224), -fixed(0.331, 224), fixed(0.500, 224)),
            (fixed(0.500, 224), -fixed(0.419, 224), -fixed(0.081, 224)),
        )
    vr, ub, ug, vg = _YUV2RGB_COEFFS[matrix]
    one = 1 << 16
    ug, vg = -ug, -vg
    w = _rounded_div(one * one * ug, ub)
    v = _rounded_div(one * one * vg, vr)
    z = one * one - w - v
    cy = _rounded_div(one * 255 // 219 * z, one)
    cu, cv = _rounded_div(ub * z, one), _rounded_div(vr * z, one)
    s = 1 << _SHIFT
    return Coefficients(
        (-_rounded_div(s * v, cy), _rounded_div(s * one * one, cy), -_rounded_div(s * w, cy)),
        (_rounded_div(s * v, cu), -_rounded_div(s * one * one, cu), _rounded_div(s * (z + w), cu)),
        (_rounded_div(s * (v + z), cv), -_rounded_div(s * one * one, cv), _rounded_div(s * w, cv)),
    )


def range_to_full(bits: int, chroma: bool) -> tuple[int, int]:
    """(coefficient, offset) of swscale's limited→full conversion of 15-bit values for a
    ``bits``-bit output. The offset carries a rounding term of 2^13 that FFmpeg 8 adds
    (found by fitting: without it 53 of the 13,898 luma levels of full-range 8-bit
    output came out one code low)."""
    src_shift, mult_shift = 15 - bits, 14
    total = mult_shift + src_shift
    top = (1 << bits) - 1
    low, high = 16 << (bits - 8), (240 if chroma else 235) << (bits - 8)
    coeff = -(-((top << total) // (high - low)) >> src_shift)  # AV_CEIL_RSHIFT
    offset = (top << total) - (high << src_shift) * coeff + (1 << (mult_shift - 1))
    return coeff, offset


#: vertical rounding of 4:2:0 chroma: "simd" (x86 ``yuv2yuvX``: each row's term
#: truncated, C rounding on the last row) or "c" (one rounding of the sum everywhere)
VARIANTS = ("simd", "c")


def planes(frames: torch.Tensor, spec: YuvSpec, variant: str) -> tuple[torch.Tensor, ...]:
    """NHWC uint8 RGB(A) frames → Y, Cb, Cr code values (N×H×W; chroma halved each way for
    4:2:0) exactly as swscale makes them for ``spec``'s matrix, range and depth: uint8 for
    8-bit output, int32 otherwise, as ``color.rgb_to_planes`` gives them."""
    import torch

    matrix, full_range, bits, chroma = spec.matrix, spec.full_range, spec.out_bits, spec.chroma

    rgb = frames[..., :3].to(torch.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    table = coefficients(matrix)

    def weigh(row: tuple[int, int, int], bias: int) -> torch.Tensor:
        return (row[0] * r + row[1] * g + row[2] * b + (bias << 14) + (1 << 8)) >> 9

    luma = weigh(table.y, 32) * 2
    cb, cr = weigh(table.cb, 256), weigh(table.cr, 256)
    if chroma == "420":
        cb, cr = cb[..., 0::2] + cb[..., 1::2], cr[..., 0::2] + cr[..., 1::2]
    else:
        cb, cr = cb * 2, cr * 2
    if full_range:
        luma = _to_full(luma, *range_to_full(bits, chroma=False))
        cb, cr = (_to_full(c, *range_to_full(bits, chroma=True)) for c in (cb, cr))
    shift, top = 15 - bits, (1 << bits) - 1
    luma = ((luma + (1 << (shift - 1))) >> shift).clamp_(0, top)
    if chroma == "420":
        cb, cr = (_rows_420(c, bits, variant).clamp_(0, top) for c in (cb, cr))
    else:
        cb, cr = (((c + (1 << (shift - 1))) >> shift).clamp_(0, top) for c in (cb, cr))
    if bits == 8:
        return luma.to(torch.uint8), cb.to(torch.uint8), cr.to(torch.uint8)
    return luma, cb, cr


def _to_full(values: torch.Tensor, coeff: int, offset: int) -> torch.Tensor:
    return ((values * coeff + offset) >> 14).clamp_(max=(1 << 15) - 1)


def _rows_420(chroma: torch.Tensor, bits: int, variant: str) -> torch.Tensor:
    """Two-tap vertical chroma filter (taps of 2048/4096) with swscale's rounding."""
    top_rows, bottom_rows = chroma[:, 0::2], chroma[:, 1::2]
    if bits != 8:
        shift = 11 + 16 - bits  # yuv2planeX_10_c: exact C rounding on every build
        return ((1 << (shift - 1)) + 2048 * (top_rows + bottom_rows)) >> shift
    rounded = (128 + top_rows + bottom_rows) >> 8
    if variant == "c":
        return rounded
    # pmulhw by 2048 keeps each row's value >> 5; the dither (64) enters as 64 >> 4
    truncated = (4 + (top_rows >> 5) + (bottom_rows >> 5)) >> 3
    truncated[:, -1] = rounded[:, -1]
    return truncated


def _probe_frame(channels: int) -> Any:
    """A fixed 12×64 frame of pseudo-random samples with black and white rows, so that
    every rounding step and clamp shows up."""
    import numpy as np

    rng = np.random.default_rng(20261208)
    image = rng.integers(0, 256, (12, 64, channels), dtype=np.uint8)
    image[0], image[-1] = 0, 255
    image[1, :32], image[1, 32:] = 255, 0
    return image


@functools.cache
def variant_for(pixel_format: str, spec: YuvSpec, channels: int) -> str | None:
    """The rounding variant with which :func:`planes` reproduces the installed swscale
    converting to ``pixel_format`` (whose planes ``spec`` describes), or None where
    neither does (then ``color.py`` is used)."""
    import numpy as np
    import torch

    from nvenc_cli.backends.cpu import swscale_planes

    image = _probe_frame(channels)
    reference = swscale_planes(image, pixel_format, spec.matrix, spec.full_range)
    if reference is None:
        return None
    frames = torch.from_numpy(image[None])
    for variant in VARIANTS:
        mine = planes(frames, spec, variant)
        if all(np.array_equal(m[0].numpy(), ref) for m, ref in zip(mine, reference, strict=True)):
            return variant
    return None


def usable(plan: EncodePlan, spec: YuvSpec, frames: torch.Tensor) -> str | None:
    """The variant to convert ``frames`` into ``spec``'s planes for ``plan`` with, or None
    (not 8-bit RGB, a 4:2:0 picture 2 pixels wide or high, or this swscale is not
    reproduced)."""
    import torch

    if frames.dtype != torch.uint8 or plan.color.matrix is None or frames.shape[-1] not in (3, 4):
        return None
    if spec.chroma == "420" and min(int(frames.shape[1]), int(frames.shape[2])) < 4:
        return None  # one chroma row or column: swscale's filter has another shape there
    return variant_for(plan.pixel_format, spec, int(frames.shape[-1]))
