"""What the user asked for (``EncodeOptions``) and the pure rules that turn it into a plan.

Nothing here imports torch or av at module level: the CLI builds ``EncodeOptions`` before
it knows whether it will ever touch a frame, and ``nvenc --help`` must stay fast.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from nvenc_cli.errors import SettingError, UsageError, tc_bad_extension, tc_bad_format

if TYPE_CHECKING:
    from nvenc_cli.audio import AudioOptions

DEFAULT_FPS = Fraction(30)
DEFAULT_BATCH = 8

# Extension -> FFmpeg muxer name. The extension is the user's only way to name a container
# unless --format is given, so every common spelling is listed.
CONTAINERS: dict[str, str] = {
    "mp4": "mp4",
    "m4v": "mp4",
    "mov": "mov",
    "mkv": "matroska",
    "webm": "webm",
    "avi": "avi",
    "ts": "mpegts",
    "m2ts": "mpegts",
    "mts": "mpegts",
    "nut": "nut",
    "gif": "gif",
    "flv": "flv",
}
# --format accepts these muxer names (and the extensions above).
FORMAT_ALIASES: dict[str, str] = {**CONTAINERS, "matroska": "matroska", "mpegts": "mpegts"}

# Codec families each container can carry. nut and matroska take nearly anything. The
# exceptions are what PyAV's muxer check (FFmpeg's strict-compliance codec query) refuses:
# PNG in Matroska, ProRes in NUT, FFV1 in MOV — listing them would fail mid-setup.
_ANY = frozenset({"h264", "hevc", "av1", "vp9", "vp8", "ffv1", "png", "prores", "mjpeg", "mpeg4"})
CONTAINER_CODECS: dict[str, frozenset[str]] = {
    "mp4": frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mjpeg"}),
    "mov": frozenset({"h264", "hevc", "prores", "png", "mjpeg", "mpeg4"}),
    "matroska": _ANY - {"png"},
    "nut": _ANY - {"prores"},
    "webm": frozenset({"vp8", "vp9", "av1"}),
    "avi": frozenset({"h264", "mpeg4", "mjpeg", "ffv1", "png"}),
    "mpegts": frozenset({"h264", "hevc"}),
    "gif": frozenset({"gif"}),
    "flv": frozenset({"flv1", "h264"}),
}
# The container's own default where it is FFmpeg's and torchcodec's too, else libx264
# (FFmpeg's mpeg2video for .ts and mpeg4 for .nut would be a poor default). AVI keeps
# FFmpeg's mpeg4: H.264 with B-frames in AVI (no timestamps of its own) is not read back
# in full by every decoder.
DEFAULT_CODEC: dict[str, str] = {"webm": "libvpx-vp9", "gif": "gif", "avi": "mpeg4", "flv": "flv"}

# The highest frame rate a container can hold, and why: above it frames would share
# timestamps (a broken file), or the muxer refuses the first packet.
MAX_FPS: dict[str, tuple[int, str]] = {
    "matroska": (1000, "its timestamps count milliseconds"),
    "webm": (1000, "its timestamps count milliseconds"),
    "flv": (1000, "its timestamps count milliseconds"),
    "gif": (100, "its frame delays count centiseconds"),
    "avi": (1000, "FFmpeg's AVI muxer refuses faster streams"),
}

# Family name (what users type) -> the CPU encoder PyAV bundles for it.
CPU_ENCODER_FOR: dict[str, str] = {
    "h264": "libx264",
    "avc": "libx264",
    "hevc": "libx265",
    "h265": "libx265",
    "av1": "libsvtav1",
    "vp9": "libvpx-vp9",
    "vp8": "libvpx",
    "prores": "prores_ks",
}
NVENC_ENCODERS: dict[str, str] = {"h264": "h264_nvenc", "hevc": "hevc_nvenc", "av1": "av1_nvenc"}

# Families whose users expect broadly playable 4:2:0 output by default (plain ffmpeg picks
# yuv444p for RGB input, which many players refuse).
_YUV420_FAMILIES = frozenset({"h264", "hevc", "vp9", "vp8", "av1", "mpeg4"})

# crf each encoder takes. FFmpeg's own declared ranges are wider (libx264's ends at
# FLT_MAX) and are intersected with these; -1 is x264's "unset" and takes fractions.
CRF_RANGE: dict[str, tuple[float, float]] = {
    "libx264": (-1, 51),
    "libx264rgb": (-1, 51),
    "libx265": (0, 51),
    "libvpx-vp9": (0, 63),
    "libvpx": (4, 63),
    "libsvtav1": (0, 63),
    "h264_nvenc": (0, 51),
    "hevc_nvenc": (0, 51),
    "av1_nvenc": (0, 51),
}
X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)

# One preset vocabulary for every encoder: x264's names (or their index 0-9, as x264
# itself takes them) mean the same trade-off everywhere, mapped to each encoder's knob.
# VP8/VP9: (deadline, cpu-used); "medium" is nvenc's default for VP9 (good, 4).
VPX_PRESETS: dict[str, tuple[str, int]] = {
    "placebo": ("good", 0),
    "veryslow": ("good", 1),
    "slower": ("good", 2),
    "slow": ("good", 3),
    "medium": ("good", 4),
    "fast": ("good", 5),
    "faster": ("good", 6),
    "veryfast": ("realtime", 6),
    "superfast": ("realtime", 7),
    "ultrafast": ("realtime", 8),
}
# SVT-AV1 presets run 0 (slowest) to 13 (fastest).
SVT_PRESETS: dict[str, int] = {
    "placebo": 2,
    "veryslow": 3,
    "slower": 4,
    "slow": 5,
    "medium": 6,
    "fast": 8,
    "faster": 10,
    "veryfast": 11,
    "superfast": 12,
    "ultrafast": 13,
}
X26X_ENCODERS = ("libx264", "libx264rgb", "libx265")
VPX_ENCODERS = ("libvpx-vp9", "libvpx")

COLOR_MATRICES = ("bt601", "bt709", "bt2020", "fcc")
# FFmpeg's names for the codec options ``colorspace`` and ``color_range`` (torchcodec's
# users set the tags that way) -> the matrix/range nvenc converts with, so the maths
# follows the tag instead of the tag lying about the maths.
FFMPEG_COLORSPACES = {
    "bt709": "bt709",
    "bt470bg": "bt601",  # the same matrix as smpte170m; tagged as asked (code 5)
    "smpte170m": "bt601",
    "bt2020nc": "bt2020",
    "bt2020_ncl": "bt2020",
    "fcc": "fcc",
}
BT470BG_SPACE = 5
FFMPEG_RANGES = {"tv": "tv", "mpeg": "tv", "limited": "tv", "pc": "pc", "jpeg": "pc", "full": "pc"}
COLOR_RANGES = ("tv", "pc")
DEVICES = ("auto", "cpu", "cuda")
LAYOUTS = ("nhwc", "nchw")

# NTSC-style rates people type as decimals; they mean n*1000/1001 exactly.
_NTSC = {"23.976": 24, "23.98": 24, "29.97": 30, "47.952": 48, "59.94": 60, "119.88": 120}


_EXPONENT = re.compile(r"[eE]\s*([+-]?\d{1,12})")


def parse_fps(text: str | float | int | Fraction) -> Fraction:
    """Parse ``30``, ``29.97`` or ``30000/1001`` into an exact rational rate.

    Decimal NTSC rates map to their exact n*1000/1001 value so an hour of frames at
    ``29.97`` does not drift from what players expect.
    """
    if isinstance(text, Fraction):
        rate = text
    elif isinstance(text, int):
        rate = Fraction(text)
    elif isinstance(text, float):
        if not math.isfinite(text):
            raise UsageError(f"invalid frame rate {text!r}: it must be a finite number greater than 0")
        if Fraction(repr(text)).denominator <= 1_000_000:
            return parse_fps(repr(text))  # as typed: 29.97 is NTSC's 30000/1001 there too
        # A computed float such as a decoder's average_fps (30000/1001 is
        # 29.97002997002997): the nearest small fraction is the rate it stands for.
        rate = Fraction(text).limit_denominator(1_000_000)
    else:
        raw = str(text).strip()
        exponent = _EXPONENT.search(raw)
        if exponent is not None and abs(int(exponent.group(1))) > 30:
            # Fraction would build 10**exponent exactly: minutes of CPU for 1e999999999.
            raise UsageError(f"invalid frame rate {raw[:40]!r}: out of range (its exponent is too large)")
        try:
            if raw in _NTSC:
                rate = Fraction(_NTSC[raw] * 1000, 1001)
            elif "/" in raw:
                num, den = raw.split("/", 1)
                rate = Fraction(int(num), int(den))
            else:
                rate = Fraction(raw)
        except (ValueError, ZeroDivisionError):
            raise UsageError(f"invalid frame rate {raw!r}: use 30, 29.97 or 30000/1001") from None
    if rate <= 0:
        raise UsageError(f"invalid frame rate {text!s}: it must be greater than 0")
    if rate > 1_000_000:
        raise UsageError(f"invalid frame rate {text!s}: out of range (at most 1000000 fps)")
    if rate.denominator > 1_000_000:
        raise UsageError(f"invalid frame rate {text!s}: its denominator is over 1000000 (round it)")
    return rate


def parse_extra(pairs: list[str] | tuple[str, ...] | dict | None) -> tuple[tuple[str, str], ...]:
    """Turn ``-x key=value`` strings (or an API dict) into ordered pairs, refusing junk."""
    if not pairs:
        return ()
    items = pairs.items() if isinstance(pairs, dict) else (_split_pair(p) for p in pairs)
    out: list[tuple[str, str]] = []
    for key, value in items:
        key = str(key).strip().lstrip("-")
        if not key:
            raise UsageError("invalid -x option: empty key")
        out.append((key, str(value)))
    return tuple(out)


def _is_pair(item: object) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and all(isinstance(v, str) for v in item)


def _extra_items(extra: object) -> list[str] | dict:
    """``extra`` as ``parse_extra`` takes it: a dict, ``KEY=VALUE`` strings or pairs."""
    if extra is None:
        return []
    if isinstance(extra, dict):
        return extra
    if isinstance(extra, str) or not isinstance(extra, list | tuple):
        raise UsageError(f"invalid extra options {extra!r}: a dict such as {{'g': 2}}")
    pairs: dict = {}
    texts: list[str] = []
    for item in extra:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, list | tuple) and len(item) == 2:
            pairs[item[0]] = item[1]
        else:
            raise UsageError(f"invalid extra option {item!r}: KEY=VALUE or a (key, value) pair")
    return [*texts, *(f"{k}={v}" for k, v in pairs.items())]


def _number_or_none(name: str, value: object) -> float | None:
    """A finite float from an int, float or numeric text; bools and junk are refused."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise UsageError(f"invalid {name} {value!r}: it must be a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"invalid {name} {value!r}: it must be a number") from None
    if not math.isfinite(number):
        raise UsageError(f"invalid {name} {value!r}: it must be a finite number")
    return number


def _count(name: str, value: object, least: int) -> int:
    """A whole number ≥ ``least``: ``2.7`` or ``True`` is not a count (refused, not cut)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and value.strip().lstrip("+").isdigit()
        ):
            value = int(value)
        else:
            raise UsageError(f"invalid {name} {value!r}: it must be a whole number")
    if value < least:
        raise UsageError(f"invalid {name} {value}: it must be at least {least}")
    return value


def _split_pair(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UsageError(f"invalid -x option {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    return key, value


@dataclass(frozen=True)
class EncodeOptions:
    """Everything that shapes an encode, as the user gave it (None = choose for me).

    Mirrors torchcodec's ``to_file`` arguments (codec, pixel_format, crf, preset,
    extra_options) plus what a CLI and a GPU path need.
    """

    fps: Fraction | None = None
    codec: str | None = None
    pixel_format: str | None = None
    crf: float | None = None
    preset: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    device: str = "auto"
    color_matrix: str | None = None
    color_range: str | None = None
    pad: bool = False
    crop: bool = False
    format: str | None = None
    batch_size: int = DEFAULT_BATCH
    overwrite: bool = False
    lenient: bool = False
    """The Python API's rule: a crf or preset that means nothing to the codec (mpeg4 has
    no crf, gif no preset) is dropped with a warning, as torchcodec hands it to FFmpeg,
    which ignores it. The CLI refuses it, with a hint."""
    #: what happens to sound (None: keep a video input's first audio stream)
    audio: AudioOptions | None = None
    #: ``--resize``: (width, height), either side -1 (keep the aspect) or -2 (and even).
    resize: tuple[int, int] | None = None
    #: ``--gop``: frames from one keyframe to the next, at most (every encoder's keyint).
    gop: int | None = None
    #: ``--fast-decode``: the encoder's decoder-friendly tuning (x264/x265, SVT-AV1).
    fast_decode: bool = False

    def __post_init__(self) -> None:
        self._normalise()
        if self.device not in DEVICES:
            raise UsageError(f"invalid --device {self.device!r}: choose auto, cpu or cuda")
        if self.color_matrix is not None and self.color_matrix not in COLOR_MATRICES:
            raise UsageError(
                f"invalid --color-matrix {self.color_matrix!r}: choose {', '.join(COLOR_MATRICES)}"
            )
        if self.color_range is not None and self.color_range not in COLOR_RANGES:
            raise UsageError(f"invalid --color-range {self.color_range!r}: choose tv or pc")
        if self.pad and self.crop:
            raise UsageError("--pad and --crop exclude each other: pick one")

    def _normalise(self) -> None:
        """Take plain Python values (``fps=30``, ``preset=12``, ``extra={"g": 2}``) as the
        CLI's parsed ones, so every door (CLI, ``encode()``, manifests, jobs built by hand)
        builds the same options; a value of the wrong kind is refused by name, never
        coerced (``"false"`` is not a bool, ``2.7`` frames is not a count)."""
        fix = object.__setattr__  # frozen: normalised once, here
        if self.fps is not None and not isinstance(self.fps, Fraction):
            if isinstance(self.fps, bool):
                raise UsageError(f"invalid frame rate {self.fps!r}: it must be a number greater than 0")
            fix(self, "fps", parse_fps(self.fps))
        fix(self, "crf", _number_or_none("--crf", self.crf))
        if self.preset is not None:
            if isinstance(self.preset, bool) or not isinstance(self.preset, str | int):
                raise UsageError(f"invalid --preset {self.preset!r}: a name (medium) or a number (8)")
            fix(self, "preset", str(self.preset))
        if not (isinstance(self.extra, tuple) and all(_is_pair(item) for item in self.extra)):
            fix(self, "extra", parse_extra(_extra_items(self.extra)))
        for name in ("pad", "crop", "overwrite", "lenient", "fast_decode"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"invalid --{name.replace('_', '-')} {getattr(self, name)!r}: true or false")
        fix(self, "batch_size", _count("--batch-size", self.batch_size, 1))
        if self.gop is not None:
            fix(self, "gop", _count("--gop", self.gop, 1))
        if isinstance(self.device, str):
            fix(self, "device", self.device.lower())
        if self.resize is not None and not (
            isinstance(self.resize, tuple) and all(type(v) is int for v in self.resize)
        ):
            from nvenc_cli.resize import parse_resize

            fix(self, "resize", parse_resize(self.resize))


def container_for(dest: str | Path | None, fmt: str | None) -> str:
    """The FFmpeg muxer for an output: ``--format`` wins, else the file extension."""
    if fmt:
        name = fmt.lower().lstrip(".")
        if name not in FORMAT_ALIASES:
            raise SettingError(
                f"unknown --format {fmt!r}: choose one of {', '.join(sorted(CONTAINERS))}",
                torchcodec=tc_bad_format(fmt),
            )
        return FORMAT_ALIASES[name]
    if dest is None or str(dest) == "-":
        raise UsageError("writing to standard output needs --format (e.g. --format mp4)")
    ext = Path(str(dest)).suffix.lower().lstrip(".")
    if not ext:
        raise SettingError(
            f"cannot tell the container of {str(dest)!r}: give it an extension "
            f"({', '.join(sorted(CONTAINERS))}) or --format",
            torchcodec=tc_bad_extension(str(dest)),
        )
    if ext not in CONTAINERS:
        raise SettingError(
            f"unknown output extension .{ext}: use one of "
            f"{', '.join('.' + e for e in sorted(CONTAINERS))} or --format",
            torchcodec=tc_bad_extension(str(dest)),
        )
    return CONTAINERS[ext]


@dataclass(frozen=True)
class ColorSpec:
    """The colour maths applied to the pixels and the tags that describe it.

    ``matrix`` is None for RGB-family pixel formats (no RGB->YUV conversion happens).
    The integer codes are the ISO/IEC 23091-2 values FFmpeg uses for tagging.
    """

    matrix: str | None
    range: str
    primaries: int
    transfer: int
    space: int

    @property
    def range_code(self) -> int:
        return 2 if self.range == "pc" else 1


# matrix -> (primaries, transfer, colorspace) codes written into the stream.
_TAGS = {
    "bt601": (6, 6, 6),  # smpte170m
    "bt709": (1, 1, 1),
    "bt2020": (9, 14, 9),  # bt2020 primaries, bt2020-10 transfer, bt2020nc matrix
    "fcc": (4, 4, 4),  # BT.470 System M primaries and gamma 2.2, the FCC matrix
}


def resolve_color(matrix: str | None, color_range: str | None, height: int, pixel_format: str) -> ColorSpec:
    """Pick matrix and range per the colour rules: BT.709 from 720 lines up, else BT.601.

    RGB pixel formats carry the samples untouched and are tagged as such (GBR matrix,
    full range); ``yuvj*`` formats are full range by definition. Gray formats are full
    range too: swscale copies gray samples as they are and derives gray from RGB with
    full-range BT.601 luma whatever it is told, so that is what the tags must say.
    """
    if is_rgb_format(pixel_format):
        return ColorSpec(None, "pc", 1, 13, 0)  # bt709 primaries, sRGB transfer, GBR
    if is_gray_format(pixel_format):
        if color_range == "tv":
            raise UsageError(
                f"pixel format {pixel_format} is written full range: drop --color-range tv "
                "or pick a YUV format (e.g. yuv420p)"
            )
        chosen, rng = matrix or "bt601", "pc"
    else:
        chosen = matrix or ("bt709" if height >= 720 else "bt601")
        rng = color_range or ("pc" if pixel_format.startswith("yuvj") else "tv")
    if pixel_format.startswith("yuvj") and rng != "pc":
        raise UsageError(f"pixel format {pixel_format} is full range: use --color-range pc")
    primaries, transfer, space = _TAGS[chosen]
    return ColorSpec(chosen, rng, primaries, transfer, space)


def is_rgb_format(pixel_format: str) -> bool:
    """True for packed/planar RGB formats, where no colour matrix applies."""
    return bool(re.match(r"^(gbr|rgb|bgr|argb|abgr|0rgb|0bgr|pal8|rgb8|bgr8)", pixel_format))


def is_gray_format(pixel_format: str) -> bool:
    """True for luma-only formats (with or without alpha)."""
    return bool(re.match(r"^(gray|ya8|ya16)", pixel_format))


def has_alpha_format(pixel_format: str) -> bool:
    return bool(re.match(r"^(yuva|gbrap|rgba|bgra|argb|abgr|ya8|ya16)", pixel_format))
