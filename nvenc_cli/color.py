"""RGB → Y'CbCr maths in torch: the same code on CPU tensors and on CUDA tensors.

This module is the GPU paths' conversion for 16-bit samples (8-bit samples follow
swscale's integer steps in ``swsmatch.py``, to equal the CPU path) and the float
reference every path is tested against. It follows the project's colour rules:

* the matrix is BT.601, BT.709 or BT.2020 (non-constant luminance), chosen by the plan;
* ``tv`` (limited) range puts black at 16·2^(n-8) and white at 235·2^(n-8), chroma in
  16..240 (scaled); ``pc`` (full) range uses 0..2^n-1 with chroma centred at 2^(n-1);
* 4:2:0 chroma is the mean of each 2×2 block (centre-sited), computed in floating point
  and rounded once — never point-sampled;
* 8-bit output packs as NV12 / planar YUV444; 10-bit output packs as P010 / YUV444_10BIT,
  which NVENC reads with the sample in the 10 most significant bits of each 16-bit word.

Inputs are NHWC tensors with 1 (gray), 3 (RGB) or 4 (RGBA, alpha ignored) channels,
uint8 (8-bit) or uint16/int32 samples carrying ``in_bits`` bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# (Kr, Kb) luma weights of each matrix; Kg = 1 - Kr - Kb.
KR_KB: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
    "fcc": (0.30, 0.11),  # FCC 1953 (NTSC System M), as FFmpeg's AVCOL_SPC_FCC
}


@dataclass(frozen=True)
class YuvSpec:
    """What to produce: matrix, range, output bit depth and chroma subsampling."""

    matrix: str = "bt709"
    full_range: bool = False
    out_bits: int = 8
    chroma: str = "420"  # "420" or "444"

    def __post_init__(self) -> None:
        if self.matrix not in KR_KB:
            raise ValueError(f"unknown colour matrix {self.matrix!r}")
        if self.out_bits not in (8, 10, 12, 16):
            raise ValueError(f"unsupported output depth {self.out_bits}")
        if self.chroma not in ("420", "444"):
            raise ValueError(f"unsupported chroma subsampling {self.chroma!r}")


def affine(spec: YuvSpec, in_bits: int = 8) -> tuple[list[list[float]], list[float]]:
    """The 3×3 matrix and offset taking integer R'G'B' samples to Y'CbCr code values.

    Computed in float64 Python arithmetic so every device gets the same coefficients;
    ``out = M @ rgb + offset`` then only needs rounding and clamping.
    """
    kr, kb = KR_KB[spec.matrix]
    kg = 1.0 - kr - kb
    in_max = float((1 << in_bits) - 1)
    scale = float(1 << (spec.out_bits - 8))
    if spec.full_range:
        y_gain = c_gain = float((1 << spec.out_bits) - 1)
        y_off = 0.0
    else:
        y_gain, c_gain = 219.0 * scale, 224.0 * scale
        y_off = 16.0 * scale
    c_off = float(1 << (spec.out_bits - 1))
    cb_den, cr_den = 2.0 * (1.0 - kb), 2.0 * (1.0 - kr)
    rows = [
        [kr, kg, kb],
        [-kr / cb_den, -kg / cb_den, (1.0 - kb) / cb_den],
        [(1.0 - kr) / cr_den, -kg / cr_den, -kb / cr_den],
    ]
    gains = (y_gain, c_gain, c_gain)
    matrix = [[value * gain / in_max for value in row] for row, gain in zip(rows, gains, strict=True)]
    return matrix, [y_off, c_off, c_off]


def _as_rgb_float(frames: torch.Tensor) -> torch.Tensor:
    """NHWC frames → N×3×H×W float32 RGB (gray replicated, alpha dropped)."""
    import torch

    if frames.dim() != 4 or frames.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected NHWC frames with 1, 3 or 4 channels, got {tuple(frames.shape)}")
    rgb = frames[..., :3] if frames.shape[-1] != 1 else frames.expand(-1, -1, -1, 3)
    return rgb.permute(0, 3, 1, 2).to(torch.float32)


_CONSTANTS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _constants(
    matrix: list[list[float]], offset: list[float], rows: slice, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows' coefficients as tensors on ``device``, made once (no per-window upload)."""
    import torch

    key = (tuple(map(tuple, matrix[rows])), tuple(offset[rows]), str(device))
    if key not in _CONSTANTS:
        m = torch.tensor(matrix[rows], dtype=torch.float32, device=device)
        o = torch.tensor(offset[rows], dtype=torch.float32, device=device).view(1, -1, 1, 1)
        _CONSTANTS[key] = (m, o)
    return _CONSTANTS[key]


def _apply(rgb: torch.Tensor, matrix: list[list[float]], offset: list[float], rows: slice) -> torch.Tensor:
    """Apply selected rows of the affine map to N×3×H×W float RGB → N×k×H×W float."""
    import torch

    m, o = _constants(matrix, offset, rows, rgb.device)
    return torch.einsum("kc,nchw->nkhw", m, rgb) + o


def quantize(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Round half up and clamp to the code range, as integers (uint8 or int32)."""
    import torch

    out = torch.floor(values + 0.5).clamp_(0, (1 << bits) - 1)
    return out.to(torch.uint8) if bits == 8 else out.to(torch.int32)


def rgb_to_planes(
    frames: torch.Tensor, spec: YuvSpec, in_bits: int = 8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Convert NHWC RGB frames to Y, Cb, Cr planes (N×H×W, chroma N×H/2×W/2 for 4:2:0).

    Planes are uint8 for 8-bit output, int32 code values otherwise. Chroma for 4:2:0 is
    computed from the 2×2 mean of R'G'B' — the same as averaging full-resolution chroma,
    because the map is affine — and rounded once.
    """
    import torch.nn.functional as F

    _, height, width, _ = frames.shape
    if spec.chroma == "420" and (height % 2 or width % 2):
        raise ValueError(f"4:2:0 needs even width and height, got {width}x{height}")
    rgb = _as_rgb_float(frames)
    matrix, offset = affine(spec, in_bits)
    luma = quantize(_apply(rgb, matrix, offset, slice(0, 1)), spec.out_bits)[:, 0]
    if spec.chroma == "420":
        rgb = F.avg_pool2d(rgb, kernel_size=2, stride=2)
    chroma = quantize(_apply(rgb, matrix, offset, slice(1, 3)), spec.out_bits)
    return luma, chroma[:, 0], chroma[:, 1]


def _msb_words(plane: torch.Tensor, bits: int) -> torch.Tensor:
    """Put ``bits``-bit code values in the top bits of 16-bit words (P010 convention)."""
    import torch

    return (plane.to(torch.int32) << (16 - bits)).to(torch.uint16)


def pack_semiplanar(luma: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack 4:2:0 planes as NV12 (8-bit) or P010 (10-bit): N × (H·3/2) × W.

    The luma rows are followed by H/2 rows of interleaved Cb,Cr pairs, so one contiguous
    tensor per frame is exactly the surface NVENC reads (pitch = width, no padding).
    """
    import torch

    n, height, width = luma.shape
    uv = torch.stack((cb, cr), dim=-1).reshape(n, height // 2, width)
    if bits == 8:
        return torch.cat((luma, uv), dim=1).contiguous()
    return torch.cat((_msb_words(luma, bits), _msb_words(uv, bits)), dim=1).contiguous()


def pack_planar(luma: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack 4:4:4 planes as planar YUV444 (8-bit) or YUV444_10BIT (MSB-aligned): N × 3H × W."""
    import torch

    planes = (luma, cb, cr) if bits == 8 else tuple(_msb_words(p, bits) for p in (luma, cb, cr))
    return torch.cat(planes, dim=1).contiguous()


def convert(frames: torch.Tensor, spec: YuvSpec, in_bits: int = 8) -> torch.Tensor:
    """NHWC RGB → the packed surface NVENC takes for ``spec`` (NV12, P010, YUV444, YUV444_10BIT)."""
    return pack(*rgb_to_planes(frames, spec, in_bits), spec)


def pack(luma: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """Planes as :func:`rgb_to_planes` gives them → the surface NVENC takes for ``spec``."""
    if spec.chroma == "420":
        return pack_semiplanar(luma, cb, cr, spec.out_bits)
    return pack_planar(luma, cb, cr, spec.out_bits)


def unpack(surface: torch.Tensor, spec: YuvSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`convert`'s packing (for tests and test doubles): planes as int32."""
    import torch

    n, rows, width = surface.shape
    data = surface.to(torch.int32)
    if spec.out_bits != 8:
        data = data >> (16 - spec.out_bits)
    if spec.chroma == "444":
        height = rows // 3
        return data[:, :height], data[:, height : 2 * height], data[:, 2 * height :]
    height = rows * 2 // 3
    uv = data[:, height:].reshape(n, height // 2, width // 2, 2)
    return data[:, :height], uv[..., 0], uv[..., 1]
