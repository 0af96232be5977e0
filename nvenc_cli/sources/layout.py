"""Shape and dtype policy shared by every array-like source.

Decided from the header alone (shape + dtype), before any pixel is read, so a wrong
input fails fast; then applied window by window to the raw data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvenc_cli.errors import InputDataError, UsageError
from nvenc_cli.frames import FrameInfo

CHANNELS = (1, 3, 4)
_MAX_PIXELS = (2**31 - 1) // 8  # (width + 128) * (height + 128) must stay below this


@dataclass(frozen=True)
class Layout:
    """How raw frames are laid out: ``kind`` names the axes of the stored array.

    ``nhwc``/``nchw`` are batches, ``nhw`` a batch of gray frames, ``hwc``/``chw``/``hw``
    a single frame. ``frames`` is the number of frames the array holds.
    """

    kind: str
    frames: int
    height: int
    width: int
    channels: int

    @property
    def single(self) -> bool:
        return self.kind in ("hwc", "chw", "hw")


def detect_layout(shape: tuple[int, ...], forced: str | None = None) -> Layout:
    """Name the axes of ``shape``; ``forced`` (``--layout``) settles ambiguous cases."""
    if forced is not None and forced not in ("nhwc", "nchw"):
        raise UsageError(f"invalid --layout {forced!r}: choose nhwc or nchw")
    dims = tuple(int(d) for d in shape)
    if len(dims) == 2:
        return Layout("hw", 1, dims[0], dims[1], 1)
    if len(dims) == 3:
        if forced == "nchw":
            return _checked(Layout("chw", 1, dims[1], dims[2], dims[0]))
        if forced == "nhwc" or dims[2] in CHANNELS:
            return _checked(Layout("hwc", 1, dims[0], dims[1], dims[2]))
        if dims[0] in CHANNELS:
            # One (C, H, W) frame, as the Python API (and torchcodec) reads it; a stack of
            # 1, 3 or 4 gray frames is (N, H, W, 1).
            return Layout("chw", 1, dims[1], dims[2], dims[0])
        return Layout("nhw", dims[0], dims[1], dims[2], 1)
    if len(dims) == 4:
        last, second = dims[3] in CHANNELS, dims[1] in CHANNELS
        kind = forced
        if kind is None:
            if last and second:
                raise InputDataError(
                    f"ambiguous frame shape {dims}: could be (N,H,W,C) or (N,C,H,W); "
                    "say which with --layout nhwc or --layout nchw"
                )
            kind = "nchw" if second else "nhwc"
        if kind == "nhwc":
            return _checked(Layout("nhwc", dims[0], dims[1], dims[2], dims[3]))
        return _checked(Layout("nchw", dims[0], dims[2], dims[3], dims[1]))
    raise InputDataError(
        f"frames must have 2 to 4 dimensions, (N,H,W,C), (N,C,H,W), (N,H,W) or (H,W,C); got shape {dims}"
    )


def _checked(layout: Layout) -> Layout:
    if layout.channels not in CHANNELS:
        raise InputDataError(
            f"frames have {layout.channels} channels: nvenc takes 1 (gray), 3 (RGB) or 4 (RGBA)"
        )
    return layout


def dtype_depth(dtype: np.dtype | str) -> int:
    """Bits per sample the source will deliver: 8 (uint8), 16 (uint16) or 0 for floats.

    Floats are in [0, 1] and get scaled to the output's depth later; anything else is
    refused by name, since guessing the range of int32 or bool frames would be a lie.
    """
    name = str(dtype)
    kind = getattr(dtype, "kind", None)
    if name in ("uint8", "|u1", "u1"):
        return 8
    if name in ("uint16", "<u2", ">u2", "u2") or (kind == "u" and getattr(dtype, "itemsize", 0) == 2):
        return 16
    if name in ("float16", "float32", "float64", "bfloat16") or kind == "f":
        return 0
    raise InputDataError(f"unsupported dtype {name}: use uint8 (0–255), uint16 (0–65535) or float in [0, 1]")


def frame_info(layout: Layout, depth: int) -> FrameInfo:
    if layout.frames < 1:
        raise InputDataError("the input holds 0 frames: nothing to encode")
    if layout.width < 1 or layout.height < 1:
        raise InputDataError(f"frames are {layout.width}x{layout.height}: width and height must be ≥ 1")
    if (layout.width + 128) * (layout.height + 128) >= _MAX_PIXELS:
        # FFmpeg's av_image_check_size limit: no encoder takes larger frames, so refuse
        # from the header instead of reading gigabytes first.
        raise InputDataError(f"frames are {layout.width}x{layout.height}: too large for any video encoder")
    return FrameInfo(layout.width, layout.height, layout.channels, 16 if depth == 16 else 8)


def to_nhwc(
    raw: np.ndarray,
    layout: Layout,
    out_depth: int,
    first_index: int = 0,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Normalise one raw window to contiguous NHWC of uint8/uint16.

    ``out_depth`` only matters for float input: 8 → uint8, 16 → uint16. Float samples
    must lie in ``value_range`` (default [0, 1], ``--value-range``), which maps linearly
    onto the output's codes.
    """
    if layout.single:
        raw = raw[np.newaxis]
    if layout.kind in ("nchw", "chw"):
        raw = raw.transpose(0, 2, 3, 1)
    elif layout.kind in ("nhw", "hw"):
        raw = raw[..., np.newaxis]
    if raw.dtype.kind == "f":
        return _from_float(raw, out_depth, first_index, value_range)
    if not raw.dtype.isnative:
        raw = raw.astype(raw.dtype.newbyteorder("="))
    return np.ascontiguousarray(raw)


# How far float samples may stray outside their range, as a share of its span, before
# they count as another range: rounding noise of a model's output (1.0000001, -0.001)
# is clipped; a [-1, 1] or 0-255 image is refused instead of turning half black or white.
RANGE_TOLERANCE = 1 / 64


def parse_value_range(text: str | tuple[float, float] | list[float] | None) -> tuple[float, float] | None:
    """``"-1,1"`` or ``(-1, 1)`` as ``(lo, hi)`` with finite ``lo < hi``; None stays None."""
    if text is None:
        return None
    try:
        parts = text.split(",") if isinstance(text, str) else list(text)
        lo, hi = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise UsageError(f"invalid --value-range {text!r}: use MIN,MAX, e.g. -1,1 or 0,255") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise UsageError(f"invalid --value-range {text!r}: MIN must be below MAX, both finite")
    return lo, hi


def _span(lo: float, hi: float) -> str:
    return f"[{lo:g}, {hi:g}]"


def range_hint(low: float, high: float) -> str:
    """The likely range of frames seen spanning ``low``..``high``, as the fix to type."""
    slack = 2 * RANGE_TOLERANCE
    if low < 0 and low >= -1 - slack and high <= 1 + slack:
        return "they look like [-1, 1] (e.g. a diffusion model's output): pass --value-range -1,1"
    if low >= -255 * slack and 1 < high <= 255 * (1 + slack):
        return "they look like 0–255: pass --value-range 0,255 (or convert them to uint8)"
    if low >= -65535 * slack and 255 < high <= 65535 * (1 + slack):
        return "they look like 0–65535: pass --value-range 0,65535 (or convert them to uint16)"
    return "pass --value-range MIN,MAX with the range they are in, or clamp them"


def check_float_range(
    low: float, high: float, value_range: tuple[float, float] | None, first: int, count: int
) -> None:
    """Refuse a window whose samples leave the declared range by more than the tolerance.

    Checked window by window as frames are normalised (the min and max come from the
    same pass that checks for NaN), so no extra pass over the input is needed.
    """
    lo, hi = value_range or (0.0, 1.0)
    slack = (hi - lo) * RANGE_TOLERANCE
    if lo - slack <= low and high <= hi + slack:
        return
    where = f"frame {first} holds" if count == 1 else f"frames {first}–{first + count - 1} hold"
    fix = (
        range_hint(low, high)
        if value_range is None
        else "pass the --value-range they are really in, or clamp them"
    )
    raise InputDataError(f"{where} float values from {low:.4g} to {high:.4g}, outside {_span(lo, hi)}: {fix}")


def _from_float(
    raw: np.ndarray, out_depth: int, first_index: int, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    # Checked in the input's own precision: a float64 1e300 is refused by its range, and
    # casting it first would overflow to inf with a stderr warning.
    finite = np.isfinite(raw)
    if not finite.all():
        bad = int(np.argwhere(~finite)[0][0]) + first_index
        raise InputDataError(f"frame {bad} holds NaN or infinite values")
    check_float_range(float(raw.min()), float(raw.max()), value_range, first_index, len(raw))
    values = raw.astype(np.float32, copy=False)
    if value_range is not None:
        lo, hi = value_range
        values = (values - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    values = np.clip(values, 0.0, 1.0)
    scale = 65535.0 if out_depth > 8 else 255.0
    out = values * np.float32(scale)
    np.rint(out, out=out)
    return np.ascontiguousarray(out.astype(np.uint16 if out_depth > 8 else np.uint8))
