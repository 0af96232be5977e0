"""Shape and dtype policy shared by every array-like source.

Decided from the header alone (shape + dtype), before any pixel is read, so a wrong
input fails fast; then applied window by window to the raw data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nvenc_cli.errors import InputDataError, UsageError
from nvenc_cli.frames import FrameInfo

if TYPE_CHECKING:  # numpy is imported where windows are normalised, not for the policy
    import numpy as np

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


@dataclass
class ValueMap:
    """How sample values become codes: the range they are in and whether strays are clamped.

    ``range`` is ``--value-range`` (floats: default [0, 1]; integers: default their dtype's
    full range). With ``clamp`` samples outside it are clamped and counted here, so the
    run can say how many and by how much (``notice``); without it they are refused.
    """

    range: tuple[float, float] | None = None
    clamp: bool = False
    clamped: int = 0
    samples: int = 0
    overshoot: float = 0.0

    def record(self, outside: int, total: int, low: float, high: float) -> None:
        """Count one window's clamped samples and how far the worst one strayed."""
        lo, hi = self.range or (0.0, 1.0)
        self.samples += total
        if outside:
            self.clamped += outside
            self.overshoot = max(self.overshoot, lo - low, high - hi)

    def notice(self) -> str | None:
        """The line that says what clamping changed, or None when it changed nothing."""
        if not self.clamped:
            return None
        lo, hi = self.range or (0.0, 1.0)
        share = 100 * self.clamped / max(self.samples, 1)
        return (
            f"clamped {self.clamped} samples ({share:.3g} %) to {_span(lo, hi)}, "
            f"the farthest by {self.overshoot:.4g}"
        )


def as_value_map(values: ValueMap | tuple[float, float] | None) -> ValueMap:
    """A ``ValueMap`` from what callers hold: one already, a bare ``(lo, hi)`` or None."""
    if isinstance(values, ValueMap):
        return values
    return ValueMap(values)


def to_nhwc(
    raw: np.ndarray,
    layout: Layout,
    out_depth: int,
    first_index: int = 0,
    value_range: ValueMap | tuple[float, float] | None = None,
) -> np.ndarray:
    """Normalise one raw window to contiguous NHWC of uint8/uint16.

    ``out_depth`` matters for mapped input (floats, integers with a value range): 8 →
    uint8, 16 → uint16. Float samples must lie in the value range (default [0, 1],
    ``--value-range``), which maps linearly onto the output's codes; integers keep their
    codes unless a range is given.
    """
    import numpy as np

    if layout.single:
        raw = raw[np.newaxis]
    if layout.kind in ("nchw", "chw"):
        raw = raw.transpose(0, 2, 3, 1)
    elif layout.kind in ("nhw", "hw"):
        raw = raw[..., np.newaxis]
    values = as_value_map(value_range)
    if raw.dtype.kind == "f":
        return _from_float(raw, out_depth, first_index, values)
    if values.range is not None:
        return _from_codes(raw, out_depth, first_index, values)
    if not raw.dtype.isnative:
        raw = raw.astype(raw.dtype.newbyteorder("="))
    return contiguous(raw)


def contiguous(frames: np.ndarray) -> np.ndarray:
    """``frames`` as C-contiguous NHWC.

    A channels-first window (a transposed view, or a result that kept that memory order)
    is gathered one channel at a time: numpy's general transposing copy steps through
    memory a sample at a time (~16 ms per 1080p RGB frame on one core), a copy per
    channel moves whole strided rows (~4 ms) — the same values either way.
    """
    import numpy as np

    if frames.flags.c_contiguous:
        return frames
    if frames.ndim == 4 and frames.shape[-1] > 1 and frames.strides[-1] > frames.strides[-2]:
        out = np.empty(frames.shape, frames.dtype)
        for channel in range(frames.shape[-1]):
            out[..., channel] = frames[..., channel]
        return out
    return np.ascontiguousarray(frames)


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
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise UsageError(f"invalid --value-range {text!r}: MIN must be below MAX, both finite")
    return lo, hi


def check_code_range(value_range: tuple[float, float], code_max: int | None, name: str) -> None:
    """An integer input's ``--value-range`` names whole codes its dtype can hold."""
    lo, hi = value_range
    if code_max is None:
        raise UsageError(f"--value-range does not apply to {name}: its samples have a fixed range")
    if not (float(lo).is_integer() and float(hi).is_integer()) or lo < 0 or hi > code_max:
        raise UsageError(
            f"invalid --value-range {lo:g},{hi:g} for {name}: its samples are integer codes "
            f"0–{code_max}, so MIN and MAX must be whole codes in that range"
        )


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
    raise InputDataError(outside_message(low, high, value_range, first, count, "float values"))


def outside_message(
    low: float, high: float, value_range: tuple[float, float] | None, first: int, count: int, what: str
) -> str:
    lo, hi = value_range or (0.0, 1.0)
    where = f"frame {first} holds" if count == 1 else f"frames {first}–{first + count - 1} hold"
    fix = (
        range_hint(low, high) + " (or --clamp)"
        if value_range is None
        else "pass the --value-range they are really in, or --clamp to clamp them"
    )
    return f"{where} {what} from {low:.4g} to {high:.4g}, outside {_span(lo, hi)}: {fix}"


def check_values(
    low: float, high: float, values: ValueMap, window: tuple[int, int, int], outside: Callable[[], int]
) -> None:
    """The range rule for one window (first frame, frames, samples): refuse strays (floats
    beyond rounding noise), or with ``--clamp`` count them (``outside`` counts, called only
    when some stray)."""
    first, count, samples = window
    lo, hi = values.range or (0.0, 1.0)
    if not values.clamp:
        check_float_range(low, high, values.range, first, count)
    values.record(outside() if values.clamp and (low < lo or high > hi) else 0, samples, low, high)


def _check_finite(raw: np.ndarray, first_index: int) -> None:
    import numpy as np

    finite = np.isfinite(raw)
    if not finite.all():
        bad = int(np.argwhere(~finite)[0][0]) + first_index
        raise InputDataError(f"frame {bad} holds NaN or infinite values")


def _from_float(raw: np.ndarray, out_depth: int, first_index: int, values: ValueMap) -> np.ndarray:
    # Checked in the input's own precision: a float64 1e300 is refused by its range, and
    # casting it first would overflow to inf with a stderr warning. NaN is refused even
    # with --clamp: it is no value to clamp.
    import numpy as np

    _check_finite(raw, first_index)
    low, high = float(raw.min()), float(raw.max())
    lo, hi = values.range or (0.0, 1.0)
    window = (first_index, len(raw), raw.size)
    check_values(low, high, values, window, lambda: int(np.count_nonzero((raw < lo) | (raw > hi))))
    return _scaled(raw.astype(np.float32, copy=False), values.range, out_depth)


def _from_codes(raw: np.ndarray, out_depth: int, first_index: int, values: ValueMap) -> np.ndarray:
    """Integer codes in ``values.range`` (depth codes 0–4095 in uint16) mapped linearly onto
    the output's codes; every code outside is refused (or clamped with ``--clamp``): an
    integer range is exact, there is no rounding noise to forgive."""
    import numpy as np

    assert values.range is not None
    lo, hi = values.range
    low, high = int(raw.min()), int(raw.max())
    if low < lo or high > hi:
        if not values.clamp:
            raise InputDataError(outside_message(low, high, values.range, first_index, len(raw), "codes"))
        values.record(int(np.count_nonzero((raw < lo) | (raw > hi))), raw.size, low, high)
    else:
        values.record(0, raw.size, low, high)
    # Exact integer arithmetic, rounding half up: 12-bit codes scaled to 16 bits and
    # shifted back down by a 12-bit encoder come back as the very same codes.
    first, span = int(np.ceil(lo)), int(np.floor(hi)) - int(np.ceil(lo))
    top = 65535 if out_depth > 8 else 255
    codes = np.clip(raw.astype(np.int64), first, first + span) - first
    out = (codes * (2 * top) + span) // (2 * span)
    return contiguous(out.astype(np.uint16 if out_depth > 8 else np.uint8))


def _scaled(values: np.ndarray, value_range: tuple[float, float] | None, out_depth: int) -> np.ndarray:
    """Map ``value_range`` linearly onto black…white of the output's depth, rounded."""
    import numpy as np

    if value_range is not None:
        lo, hi = value_range
        values = (values - values.dtype.type(lo)) * values.dtype.type(1.0 / (hi - lo))
    values = np.clip(values, 0.0, 1.0)
    scale = 65535.0 if out_depth > 8 else 255.0
    out = values * values.dtype.type(scale)
    np.rint(out, out=out)
    return contiguous(out.astype(np.uint16 if out_depth > 8 else np.uint8))
