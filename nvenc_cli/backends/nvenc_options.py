"""EncodePlan → ``PyNvVideoCodec.CreateEncoder`` keywords, as a pure, testable function.

PyNvVideoCodec takes its settings as string keywords and silently ignores any it does not
know, and several of its defaults surprise: constant QP rate control, an infinite GOP, and
flags such as ``temporalaq`` that switch on when merely present (``temporalaq=0`` enables
it). ``bf`` is the number of consecutive B-frames: the wheels set NVENC's frame interval
to ``bf + 1`` and document ``GetNumBFrames()`` as "frameIntervalP - 1 (0=I, 1=IPP, 2=IBP,
3=IBBP)" (2.0.5 and 2.2.4), and their own samples send ``bf=0`` for low latency.
So every key a user can pass through ``-x`` is checked here, translated, and everything
that matters (rate control, GOP, B-frames, IDR period) is set explicitly.

User-facing conventions (documented in ``nvenc info`` and the man page):

* ``--preset``: ``p1``…``p7`` (any case), or x264-style names mapped to them:
  ultrafast/superfast → P1, veryfast/faster → P2, fast → P3, medium → P4 (default),
  slow → P5, slower → P6, veryslow/placebo → P7.
* ``--crf N`` → constant quality: ``rc=vbr`` with ``cq=N`` (bitrate uncapped);
  ``--crf 0`` → lossless (``tuning_info=lossless``, ``rc=constqp``, ``constqp=0``).
  Without ``--crf`` or a bitrate the default is constant quality ``cq=23``.
* ``-x bf=N`` is the number of consecutive B-frames (as in FFmpeg and PyNvVideoCodec),
  sent as it is. ``-x gop=N`` sets both the GOP length and the IDR period.
* Bit rates accept SI suffixes: ``-x bitrate=8M`` is 8 000 000 bit/s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from nvenc_cli.errors import UsageError

if TYPE_CHECKING:
    from nvenc_cli.plan import EncodePlan

CODECS = ("h264", "hevc", "av1")
PRESETS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")
PRESET_ALIASES: dict[str, str] = {
    "ultrafast": "P1",
    "superfast": "P1",
    "fastest": "P1",
    "veryfast": "P2",
    "faster": "P2",
    "fast": "P3",
    "medium": "P4",
    "slow": "P5",
    "slower": "P6",
    "veryslow": "P7",
    "placebo": "P7",
    "slowest": "P7",
}
TUNING = ("high_quality", "low_latency", "ultra_low_latency", "lossless", "uhq")
_TUNING_ALIASES = {"hq": "high_quality", "ll": "low_latency", "ull": "ultra_low_latency"}
RATE_CONTROLS = ("vbr", "cbr", "constqp")
MULTIPASS = ("disabled", "qres", "fullres")

DEFAULT_PRESET = "P4"
DEFAULT_CQ = 23
DEFAULT_GOP = 250
DEFAULT_BFRAMES = 2
MAX_BFRAMES = 7


@dataclass(frozen=True)
class Surface:
    """How frames reach NVENC for one output pixel format."""

    nvenc_format: str  # CreateEncoder's fmt
    stream_pix_fmt: str  # what a decoder of the result produces
    bits: int
    chroma: str  # "420" or "444"


SURFACES: dict[str, Surface] = {
    "yuv420p": Surface("NV12", "yuv420p", 8, "420"),
    "nv12": Surface("NV12", "yuv420p", 8, "420"),
    "p010le": Surface("P010", "yuv420p10le", 10, "420"),
    "p016le": Surface("P010", "yuv420p10le", 10, "420"),
    "yuv444p": Surface("YUV444", "yuv444p", 8, "444"),
    "yuv444p16le": Surface("YUV444_10BIT", "yuv444p10le", 10, "444"),
    "yuv444p10msble": Surface("YUV444_10BIT", "yuv444p10le", 10, "444"),
}


@dataclass(frozen=True)
class NvencSettings:
    """Everything the NVENC session needs besides the frames."""

    codec: str
    surface: Surface
    kwargs: dict[str, str]
    gop: int
    bframes: int
    gpu_id: int


# --- -x keys --------------------------------------------------------------------------

Checker = Callable[[str, str, str], str | None]


def _int_in(low: int, high: int | None = None) -> Checker:
    def check(key: str, value: str, codec: str) -> str:
        number = _parse_int(key, value)
        if number < low or (high is not None and number > high):
            bound = f"{low}–{high}" if high is not None else f"≥ {low}"
            raise UsageError(f"invalid -x {key}={value}: use a whole number {bound}")
        return str(number)

    return check


def _choice(options: tuple[str, ...], aliases: dict[str, str] | None = None) -> Checker:
    def check(key: str, value: str, codec: str) -> str:
        name = value.strip().lower()
        name = (aliases or {}).get(name, name)
        if name not in options:
            raise UsageError(f"invalid -x {key}={value}: choose {', '.join(options)}")
        return name

    return check


def _switch(key: str, value: str, codec: str) -> str | None:
    """Presence-activated flags: PyNvVideoCodec turns them on whatever the value."""
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return "1"
    if text in ("0", "false", "no", "off"):
        return None
    raise UsageError(f"invalid -x {key}={value}: use 1 or 0")


def _aq(key: str, value: str, codec: str) -> str | None:
    """Spatial AQ: 0 off, 1–15 strength (present = on in PyNvVideoCodec)."""
    strength = _parse_int(key, value)
    if not 0 <= strength <= 15:
        raise UsageError(f"invalid -x {key}={value}: use 0 (off) or a strength 1–15")
    return str(strength) if strength else None


def _qp_max(codec: str) -> int:
    return 255 if codec == "av1" else 51


def _qp(key: str, value: str, codec: str) -> str:
    """One QP or three (P,B,I), within the codec's QP range."""
    parts = value.replace(" ", "").split(",")
    if len(parts) not in (1, 3):
        raise UsageError(f"invalid -x {key}={value}: give one QP or three as P,B,I")
    top = _qp_max(codec)
    numbers = [_parse_int(key, part) for part in parts]
    if any(not 0 <= n <= top for n in numbers):
        raise UsageError(f"invalid -x {key}={value}: QP must be 0–{top} for {codec}")
    return ",".join(str(n) for n in numbers)


def _cq(key: str, value: str, codec: str) -> str:
    top = 63 if codec == "av1" else 51
    number = _parse_int(key, value)
    if not 1 <= number <= top:
        raise UsageError(f"invalid -x {key}={value}: constant quality is 1–{top} (lower is better)")
    return str(number)


_SI = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_bitrate(key: str, value: str) -> int:
    """``8M`` → 8 000 000; plain numbers are bit/s. Limited to NVENC's 32-bit field."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", value)
    if not match:
        raise UsageError(f"invalid -x {key}={value}: use bit/s such as 8000000, 8000k or 8M")
    bits = round(float(match.group(1)) * _SI[match.group(2).lower()])
    if not 1 <= bits <= 0xFFFFFFFF:
        raise UsageError(f"invalid -x {key}={value}: out of range (1 bit/s to 4.29 Gbit/s)")
    return bits


def _bitrate(key: str, value: str, codec: str) -> str:
    return str(parse_bitrate(key, value))


def _parse_int(key: str, value: str) -> int:
    try:
        return int(value.strip(), 10)
    except ValueError:
        raise UsageError(f"invalid -x {key}={value}: expected a whole number") from None


# key -> (checker, short description). These are the documented PyNvVideoCodec encoder
# keys that make sense for a file encode; anything else is refused.
NVENC_KEYS: dict[str, tuple[Checker, str]] = {
    "bitrate": (_bitrate, "average bit rate (bit/s, k/M/G suffixes); implies rc=vbr"),
    "maxbitrate": (_bitrate, "peak bit rate for vbr"),
    "vbvbufsize": (_bitrate, "VBV buffer size (bits)"),
    "vbvinit": (_bitrate, "initial VBV delay (bits)"),
    "rc": (_choice(RATE_CONTROLS), "rate control: vbr, cbr or constqp"),
    "cq": (_cq, "constant quality target for rc=vbr (same as --crf)"),
    "constqp": (_qp, "QP for rc=constqp: one value or P,B,I"),
    "initqp": (_qp, "initial QP: one value or P,B,I"),
    "qmin": (_qp, "minimum QP: one value or P,B,I"),
    "qmax": (_qp, "maximum QP: one value or P,B,I"),
    "gop": (_int_in(1), "GOP length and IDR period in frames (default 250)"),
    "idrperiod": (_int_in(1), "IDR period in frames (default: the GOP length)"),
    "bf": (_int_in(0, MAX_BFRAMES), "consecutive B-frames (default 2; 0 = none)"),
    "tuning_info": (_choice(TUNING, _TUNING_ALIASES), "tuning: " + ", ".join(TUNING)),
    "multipass": (_choice(MULTIPASS), "multi-pass: disabled, qres or fullres"),
    "lookahead": (_int_in(0, 255), "look-ahead depth in frames"),
    "aq": (_aq, "spatial adaptive quantisation strength 1–15 (0 = off)"),
    "temporalaq": (_switch, "temporal adaptive quantisation (1 = on)"),
    "ldkfs": (_switch, "low-delay key frame scale (1 = on)"),
    "repeatspspps": (_int_in(0, 1), "repeat SPS/PPS before every IDR (default: 1 for MPEG-TS)"),
    "slice_mode": (_int_in(0, 3), "slice mode (H.264/HEVC)"),
    "slice_data": (_int_in(0), "slice mode parameter (H.264/HEVC)"),
    "gpu_id": (_int_in(0), "CUDA device index to encode on (default 0)"),
}
# FFmpeg-style spellings people bring from the command line.
KEY_ALIASES = {
    "b": "bitrate",
    "maxrate": "maxbitrate",
    "bufsize": "vbvbufsize",
    "g": "gop",
    "tune": "tuning_info",
    "rc-lookahead": "lookahead",
    "spatial-aq": "aq",
    "temporal-aq": "temporalaq",
    "qp": "constqp",
    "gpu": "gpu_id",
}
# Keys PyNvVideoCodec knows but nvenc sets itself, with where the user should go instead.
RESERVED_KEYS = {
    "codec": "use --codec",
    "preset": "use --preset",
    "fps": "use --fps",
    "fmt": "use --pixel-format",
    "colorspace": "use --color-matrix (nvenc converts colour itself)",
    "crf": "use --crf",
    "cudacontext": "nvenc manages the CUDA context",
    "cudastream": "nvenc manages the CUDA stream",
    "use_ivf_container": "nvenc muxes AV1 itself",
    "max_res": "the frame size is fixed for a file",
    "maxwidth": "the frame size is fixed for a file",
    "maxheight": "the frame size is fixed for a file",
}


def normalize_preset(preset: str | None) -> str:
    """``p4``/``P4``/``medium`` → ``P4``; anything else is a usage error."""
    if preset is None:
        return DEFAULT_PRESET
    name = str(preset).strip()
    if name.upper() in PRESETS:
        return name.upper()
    if name.lower() in PRESET_ALIASES:
        return PRESET_ALIASES[name.lower()]
    raise UsageError(
        f"unknown --preset {preset!r} for NVENC: use p1 (fastest) … p7 (best), or "
        f"{', '.join(sorted(PRESET_ALIASES))}"
    )


def check_extra(options: dict[str, str], codec: str) -> dict[str, str]:
    """Validate ``-x`` keys for NVENC and return them canonical (dropped flags removed)."""
    out: dict[str, str] = {}
    for raw_key, value in options.items():
        key = KEY_ALIASES.get(raw_key.strip().lower(), raw_key.strip().lower())
        if key in RESERVED_KEYS:
            raise UsageError(f"-x {raw_key} is not accepted for NVENC: {RESERVED_KEYS[key]}")
        if key not in NVENC_KEYS:
            raise UsageError(
                f"unknown NVENC option -x {raw_key}: valid keys are {', '.join(sorted(NVENC_KEYS))}"
            )
        if codec == "av1" and key in ("slice_mode", "slice_data"):
            raise UsageError(f"-x {raw_key} does not apply to AV1")
        checked = NVENC_KEYS[key][0](key, str(value), codec)
        if key in out:
            raise UsageError(f"-x {key} given twice")
        if checked is not None:
            out[key] = checked
    return out


def surface_for(pixel_format: str, codec: str) -> Surface:
    """The NVENC input surface for an output pixel format; RGB and 4:2:2 are refused."""
    surface = SURFACES.get(pixel_format)
    if surface is None:
        raise UsageError(
            f"pixel format {pixel_format} is not available on the NVENC path: use yuv420p, "
            "p010le (10-bit), yuv444p or yuv444p16le (10-bit 4:4:4); nvenc converts RGB "
            "itself with the chosen --color-matrix"
        )
    if codec == "av1" and surface.chroma == "444":
        raise UsageError("NVENC encodes AV1 in 4:2:0 only: use yuv420p or p010le")
    return surface


def _rate_control(crf: float | None, extra: dict[str, str]) -> dict[str, str]:
    """Resolve --crf and the rate-control keys into one consistent, explicit setting."""
    rc = extra.get("rc")
    has_bitrate = "bitrate" in extra or "maxbitrate" in extra
    if crf is not None:
        if crf != int(crf):
            raise UsageError(f"--crf {crf:g}: NVENC takes whole-number quality levels")
        if has_bitrate:
            raise UsageError("--crf (constant quality) and -x bitrate/maxbitrate exclude each other")
        if "cq" in extra or "constqp" in extra:
            raise UsageError("--crf and -x cq/constqp set the same thing: give one")
        if int(crf) == 0:
            if rc not in (None, "constqp"):
                raise UsageError(f"--crf 0 (lossless) needs rc=constqp, not rc={rc}")
            if extra.get("tuning_info", "lossless") != "lossless":
                raise UsageError("--crf 0 is lossless: it cannot be combined with -x tuning_info")
            return {"tuning_info": "lossless", "rc": "constqp", "constqp": "0"}
        if rc not in (None, "vbr"):
            raise UsageError(f"--crf is constant quality (rc=vbr); it cannot be used with rc={rc}")
        return {"rc": "vbr", "cq": str(int(crf))}
    if rc == "constqp":
        if has_bitrate or "cq" in extra:
            raise UsageError("rc=constqp ignores bitrate and cq: drop them or pick rc=vbr/cbr")
        return {"rc": "constqp", "constqp": extra.get("constqp", str(DEFAULT_CQ))}
    if "constqp" in extra:
        raise UsageError("-x constqp needs -x rc=constqp")
    if rc == "cbr" and "bitrate" not in extra:
        raise UsageError("rc=cbr needs -x bitrate=…")
    if "cq" in extra and has_bitrate:
        raise UsageError("-x cq (constant quality) and -x bitrate/maxbitrate exclude each other")
    if has_bitrate:
        return {"rc": rc or "vbr"}
    return {"rc": rc or "vbr", "cq": extra.get("cq", str(DEFAULT_CQ))}


def _fps_text(fps: Fraction) -> str:
    """PyNvVideoCodec reads fps as a decimal (two places); it only steers rate control."""
    return str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.2f}"


def settings_for(plan: EncodePlan, global_header: bool = True) -> NvencSettings:
    """Map a plan to CreateEncoder keywords; raises UsageError before any GPU work."""
    codec = plan.family
    if codec not in CODECS:
        raise UsageError(f"NVENC encodes {', '.join(CODECS)}, not {codec}")
    surface = surface_for(plan.pixel_format, codec)
    extra = check_extra(dict(plan.codec_options), codec)
    preset = normalize_preset(plan.preset)
    kwargs: dict[str, str] = {"codec": codec, "preset": preset, "tuning_info": "high_quality"}
    for key in ("tuning_info", "multipass", "lookahead", "aq", "temporalaq", "ldkfs"):
        if key in extra:
            kwargs[key] = extra[key]
    for key in ("maxbitrate", "bitrate", "vbvbufsize", "vbvinit", "initqp", "qmin", "qmax"):
        if key in extra:
            kwargs[key] = extra[key]
    kwargs.update(_rate_control(plan.crf, extra))
    gop = int(extra.get("gop", DEFAULT_GOP))
    default_bf = 0 if gop == 1 else min(DEFAULT_BFRAMES, gop - 1)
    bframes = int(extra.get("bf", default_bf))
    if bframes and bframes >= gop:
        raise UsageError(f"-x bf={bframes} needs a GOP longer than {bframes} frames (gop={gop})")
    if kwargs.get("tuning_info") in ("low_latency", "ultra_low_latency") and "bf" not in extra:
        bframes = 0
    kwargs["gop"] = str(gop)
    kwargs["idrperiod"] = extra.get("idrperiod", str(gop))
    kwargs["bf"] = str(bframes)  # a B-frame count: PyNvVideoCodec adds the 1 itself
    kwargs["fps"] = _fps_text(plan.fps)
    if codec != "av1":
        kwargs["repeatspspps"] = extra.get("repeatspspps", "0" if global_header else "1")
        for key in ("slice_mode", "slice_data"):
            if key in extra:
                kwargs[key] = extra[key]
    else:
        kwargs["use_ivf_container"] = "0"
    gpu_id = int(extra.get("gpu_id", "0"))
    kwargs["gpu_id"] = str(gpu_id)
    return NvencSettings(codec, surface, kwargs, gop, bframes, gpu_id)


def lossless_notice(surface: Surface) -> str:
    """What ``--crf 0`` on NVENC keeps exactly, and what it does not.

    PyNvVideoCodec maps ``tuning_info=lossless`` to NV_ENC_TUNING_INFO_LOSSLESS and the
    driver's preset for that tuning, and ``rc=constqp``/``constqp=0`` keep its QP at 0: the
    Y'CbCr planes NVENC is handed come back bit for bit (where the GPU reports
    ``support_lossless_encode``; the session refuses otherwise). The RGB → Y'CbCr step before
    them rounds, and 4:2:0 halves the chroma, so the RGB input is not recovered exactly.
    """
    chroma = " and 4:2:0 chroma subsampling" if surface.chroma == "420" else ""
    return (
        "--crf 0 on NVENC is lossless in Y'CbCr only: the RGB to Y'CbCr conversion"
        f"{chroma} before it is not reversible (for exact RGB: --device cpu -c ffv1 or libx264rgb)"
    )


def describe_keys() -> list[tuple[str, str]]:
    """(key, description) rows for help and ``nvenc info``."""
    return sorted((key, text) for key, (_, text) in NVENC_KEYS.items())
