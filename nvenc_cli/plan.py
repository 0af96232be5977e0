"""Turn options + what the source looks like into one validated ``EncodePlan``.

Every decision that can fail (codec, container, pixel format, crf, preset, -x keys, odd
sizes) is made here, before a single frame is read, so a bad command fails in
milliseconds with one clear line and never leaves a half-written file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from nvenc_cli import ffopts
from nvenc_cli.errors import (
    InputDataError,
    NvencError,
    SettingError,
    UnavailableError,
    UsageError,
    tc_codec_not_found,
    tc_not_numeric,
    tc_open_failed,
    tc_out_of_range,
    tc_pixel_format,
)
from nvenc_cli.frames import FrameInfo
from nvenc_cli.options import (
    BT470BG_SPACE,
    CONTAINER_CODECS,
    CRF_RANGE,
    DEFAULT_CODEC,
    DEFAULT_FPS,
    FFMPEG_COLORSPACES,
    FFMPEG_RANGES,
    MAX_FPS,
    SVT_PRESETS,
    VPX_ENCODERS,
    VPX_PRESETS,
    X26X_ENCODERS,
    X26X_PRESETS,
    ColorSpec,
    EncodeOptions,
    has_alpha_format,
    is_gray_format,
    is_rgb_format,
    resolve_color,
)
from nvenc_cli.suggest import did_you_mean, encoder_names
from nvenc_cli.timestamps import Clock, Timeline

_YUV420_FAMILIES = frozenset({"h264", "hevc", "vp9", "vp8", "av1", "mpeg4"})
_ALPHA_HINT = "ffv1, png, prores_ks (yuva444p10le) or libvpx-vp9 (yuva420p)"


@dataclass(frozen=True)
class EncodePlan:
    """A fully resolved encode: what the backend, the converter and the muxer obey."""

    container: str
    backend: str
    encoder: str
    family: str
    source: FrameInfo
    width: int
    height: int
    geometry: str | None
    pixel_format: str
    color: ColorSpec
    fps: Fraction
    crf: float | None = None
    preset: str | None = None
    codec_options: dict[str, str] = field(default_factory=dict)
    format_options: dict[str, str] = field(default_factory=dict)
    keep_alpha: bool = False
    notices: tuple[str, ...] = ()
    fallback_reason: str | None = None
    ignored: tuple[str, ...] = ()
    """Settings dropped because they mean nothing to the codec (``lenient`` options only);
    the API turns each into a ``UserWarning``."""
    #: ``--resize``: the size frames are scaled to (before --pad/--crop) and the filter.
    resize: tuple[int, int, str] | None = None
    # The same encode on the CPU, when --device auto chose NVENC: run instead if NVENC
    # fails before its first packet (pipeline.Job).
    fallback: EncodePlan | None = field(default=None, repr=False, compare=False)
    #: the input's display rotation (counter-clockwise degrees) and sample aspect ratio,
    #: written to the output's stream (``encode.carry_display``).
    rotation: int = 0
    sample_aspect: Fraction | None = None
    #: per-frame timestamps (``--timestamps``): the tick they are written in, each
    #: frame's tick count, and the timeline's figures for the report
    clock: Fraction | None = None
    ticks: tuple[int, ...] | None = field(default=None, repr=False, compare=False)
    timeline: dict[str, float] | None = None
    #: FFmpeg's nvenc takes the frames as CUDA surfaces converted on their GPU
    #: (``devconvert.adopt``): its context opens on the first frame's CUDA frames context
    cuda_frames: bool = False

    @property
    def time_base(self) -> Fraction:
        return self.clock if self.clock is not None else 1 / self.fps

    @property
    def max_step(self) -> int:
        """The largest gap between two frames, in ticks of ``time_base`` (1 at a constant rate)."""
        if self.clock is not None and self.ticks is None:
            return 1 << 40  # times arrive with the frames: any gap is possible
        if self.ticks is None or len(self.ticks) < 2:
            return 1
        return max(b - a for a, b in itertools.pairwise(self.ticks))

    def seconds_at(self, frames: int) -> Fraction:
        """When frame ``frames`` starts (the time the frames before it reach)."""
        if self.ticks is None:
            return Fraction(frames) / self.fps
        if frames < len(self.ticks):
            return self.ticks[frames] * self.time_base
        return self.ticks[-1] * self.time_base + 1 / self.fps

    @property
    def out_depth(self) -> int:
        import av

        return max(c.bits for c in av.VideoFormat(self.pixel_format, 2, 2).components)


def make_plan(
    options: EncodeOptions,
    info: FrameInfo,
    container: str,
    fps_hint: Fraction | None = None,
    timeline: Timeline | Fraction | None = None,
) -> EncodePlan:
    """Resolve every choice; raises UsageError/UnavailableError/InputDataError.

    With a ``timeline`` (per-frame timestamps) the frames keep their times: the rate is
    the nominal one (stream metadata), derived from the timestamps unless given."""
    from nvenc_cli.backends import select

    if isinstance(timeline, Fraction):  # a streaming writer's tick: times come with the frames
        writer_tick, timeline = timeline, None
    else:
        writer_tick = None
    nominal = timeline.nominal_rate() if timeline is not None else None
    fps = options.fps or fps_hint or nominal or DEFAULT_FPS
    clock = timeline.clock(container) if timeline is not None else None
    if writer_tick is not None:
        clock = Clock(writer_tick, ())
    if clock is None:
        _check_fps(fps, container)
    options, bt470bg = _colour_from_extra(options)
    requested = options.codec or DEFAULT_CODEC.get(container, "libx264")
    choice = select(options.device, requested, explicit=options.codec is not None)
    if clock is not None and choice.backend == "nvenc":
        choice = _timestamps_route(options, requested)
    family = _family(choice.encoder)
    options = _keyframe_extra(options, choice.encoder)
    allowed = CONTAINER_CODECS.get(container)
    if allowed is not None and family not in allowed:
        raise UsageError(
            f"codec {choice.encoder} ({family}) cannot go in a {container} file: "
            f"use one of {', '.join(sorted(allowed))} or another extension"
        )
    pixel_format = options.pixel_format or default_pixel_format(choice.encoder, family, info)
    _check_pixel_format(choice.encoder, pixel_format)
    resize = _resize(options, info)
    scaled = info if resize is None else replace(info, width=resize[0], height=resize[1])
    width, height, geometry = _geometry(scaled, pixel_format, options)
    _check_x265_size(choice.encoder, width, height)
    color = resolve_color(_untagged_matrix(family, options), options.color_range, height, pixel_format)
    if bt470bg and color.matrix == "bt601":
        color = replace(color, space=BT470BG_SPACE)
    _check_gray_matrix(info, pixel_format, color)
    codec_opts, format_opts = _split_extra(choice.encoder, container, options, choice.backend)
    ffopts.check_param_lists(choice.encoder, codec_opts)  # x264-params entries the library rejects
    format_opts = _container_defaults(container, fps, format_opts, clock)
    notices = list(choice.notices)
    if clock is not None and clock.notice:
        notices.append(clock.notice)
    depth_note = _depth_notice(choice.encoder, info, pixel_format)
    if depth_note:
        notices.append(depth_note)
    keep_alpha = info.has_alpha and has_alpha_format(pixel_format)
    if info.has_alpha and not keep_alpha:
        notices.append(
            f"alpha channel dropped: {choice.encoder} with {pixel_format} cannot carry it "
            f"(alpha needs {_ALPHA_HINT})"
        )
    if container == "gif" and fps > _GIF_PLAYED:
        notices.append(
            f"gif at {float(fps):g} fps: frames of under 2 cs (faster than 50 fps) are shown for "
            "10 cs by browsers and most players, so it plays slower than written; -r 50 or less "
            "plays as written"
        )
    if resize is not None:
        notices.append(
            f"frames resized from {info.width}x{info.height} to {resize[0]}x{resize[1]} ({resize[2]})"
        )
        if info.depth > 8 and _format_depth(pixel_format) > 8:
            # A documented limit: swscale scales 16-bit samples at about 14 bits, so even a
            # flat colour may move by a few codes of 65535 (up to 4 measured; none at 8 bits).
            notices.append(
                "16-bit frames are resized at swscale's precision (about 14 bits): samples may "
                "move by a few codes of 65535 (0.01 %), flat colours included"
            )
    if geometry:
        verb = "padded (edge replication)" if geometry == "pad" else "cropped"
        notices.append(f"frame size {scaled.width}x{scaled.height} {verb} to {width}x{height}")
    if family in _UNTAGGED_FAMILIES and not {"b", "global_quality"} & set(codec_opts):
        # These have no crf: without a rate they get FFmpeg's 200 kb/s, as from ffmpeg and
        # torchcodec (parity), which is about 30 dB at 720p; say so rather than let it pass.
        notices.append(
            f"{choice.encoder} has no crf and encodes at FFmpeg's default 200 kb/s, as ffmpeg "
            "does (about 30 dB PSNR at 720p): -x b=8M for a higher quality"
        )
    if choice.backend != "cpu" and options.crf == 0:
        from nvenc_cli.backends.nvenc_options import SURFACES, lossless_notice

        if pixel_format in SURFACES:
            notices.append(lossless_notice(SURFACES[pixel_format]))
    ignored: list[str] = []
    crf = _check_crf(choice.encoder, options.crf, options.lenient, ignored)
    preset, preset_opts = _check_preset(
        choice.encoder, options.preset, choice.backend, options.lenient, ignored
    )
    for key, value in preset_opts.items():
        codec_opts.setdefault(key, value)
    plan = EncodePlan(
        container=container,
        backend=choice.backend,
        encoder=choice.encoder,
        family=family,
        source=info,
        width=width,
        height=height,
        geometry=geometry,
        pixel_format=pixel_format,
        color=color,
        fps=fps,
        crf=crf,
        preset=preset,
        codec_options=codec_opts,
        format_options=format_opts,
        keep_alpha=keep_alpha,
        notices=tuple(notices),
        fallback_reason=choice.fallback_reason,
        ignored=tuple(ignored),
        resize=resize,
        clock=None if clock is None else clock.time_base,
        ticks=None if clock is None or not clock.ticks else clock.ticks,
        timeline=None if timeline is None else timeline.summary(),
    )
    plan = _with_codec_defaults(plan)
    if choice.may_fall_back:
        plan = replace(plan, fallback=_cpu_plan(options, info, container, fps_hint, timeline))
    return plan


# Encoders with a decoder-friendly mode, and the option that asks for it.
_FAST_DECODE = {
    "libx264": ("tune", "fastdecode"),
    "libx264rgb": ("tune", "fastdecode"),
    "libx265": ("tune", "fastdecode"),
    "libsvtav1": ("svtav1-params", "fast-decode=1"),
}


def _keyframe_extra(options: EncodeOptions, encoder: str) -> EncodeOptions:
    """``--gop`` and ``--fast-decode`` as the encoder's own options: ``g`` is FFmpeg's GOP
    size, which libx264/libx265 (keyint), SVT-AV1 (intra period), libvpx (kf-max-dist)
    and the NVENC routes all read. A contradicting ``-x`` is refused, not overridden."""
    if options.gop is None and not options.fast_decode:
        return options
    extra = list(options.extra)
    if options.gop is not None:
        given = [(k, v) for k, v in extra if k in ("g", "gop")]
        for key, value in given:
            if value.strip() != str(options.gop):
                raise UsageError(f"--gop {options.gop} contradicts -x {key}={value}: give one")
        if not given:
            extra.append(("g", str(options.gop)))
    if options.fast_decode:
        if encoder not in _FAST_DECODE:
            have = ", ".join(sorted(_FAST_DECODE))
            raise UsageError(f"--fast-decode: {encoder} has no fast-decode mode (these have: {have})")
        key, value = _FAST_DECODE[encoder]
        extra = _merged(extra, key, value, encoder)
    return replace(options, extra=tuple(extra))


def _merged(extra: list[tuple[str, str]], key: str, value: str, encoder: str) -> list[tuple[str, str]]:
    """Add ``value`` to option ``key``: x264's tune takes a psy tune plus ``fastdecode``
    joined by a comma, ``*-params`` lists join with ``:``; x265 takes one tune only."""
    for i, (k, old) in enumerate(extra):
        if k != key:
            continue
        if value in old:
            return extra
        if key == "tune" and encoder == "libx265":
            raise UsageError(f"--fast-decode is x265's tune=fastdecode, which contradicts -x tune={old}")
        joined = f"{old},{value}" if key == "tune" else f"{old}:{value}"
        return [*extra[:i], (k, joined), *extra[i + 1 :]]
    return [*extra, (key, value)]


def _cpu_plan(
    options: EncodeOptions,
    info: FrameInfo,
    container: str,
    fps_hint: Fraction | None,
    timeline: Timeline | None = None,
) -> EncodePlan | None:
    """The plan ``--device cpu`` would make, or None when the CPU cannot take these options
    (an NVENC-only preset or -x key): then an NVENC failure stays a failure."""
    try:
        return make_plan(replace(options, device="cpu"), info, container, fps_hint, timeline)
    except NvencError:
        return None


def _timestamps_route(options: EncodeOptions, requested: str) -> Any:
    """PyNvVideoCodec's route writes a constant rate: per-frame timestamps take FFmpeg's
    encoders instead (the CPU, or FFmpeg's own ``*_nvenc`` named with ``-c``)."""
    from nvenc_cli.backends import select

    if options.device == "cuda":
        raise UsageError(
            "per-frame timestamps need an FFmpeg encoder: use --device cpu, or -c h264_nvenc "
            "(FFmpeg's NVENC) on an NVENC GPU"
        )
    return select("cpu", requested, explicit=options.codec is not None)


# libx265 (4.x, as PyAV bundles it) corrupts its heap and aborts the whole process
# ("corrupted size vs. prev_size", SIGABRT/SIGSEGV) on frames narrower than 64 pixels:
# measured at 34, 40 and 48 wide in 8-bit, 10-bit and gray alike, never from 64 up.
X265_MIN_WIDTH = 64


def _check_x265_size(encoder: str, width: int, height: int) -> None:
    """Refuse, before anything runs, a size at which libx265 would take the process down."""
    if encoder == "libx265" and width < X265_MIN_WIDTH:
        raise UsageError(
            f"frames {width}x{height} are too narrow for libx265, which crashes below "
            f"{X265_MIN_WIDTH} pixels wide: use --resize {X265_MIN_WIDTH}x-2, or -c libx264"
        )


def _resize(options: EncodeOptions, info: FrameInfo) -> tuple[int, int, str] | None:
    """The size ``--resize`` asks for these frames, and the filter that gets there."""
    if options.resize is None:
        return None
    from nvenc_cli.resize import filter_name, target_size

    width, height = target_size(options.resize, info.width, info.height)
    if (width, height) == (info.width, info.height):
        return None
    return width, height, filter_name((info.width, info.height), (width, height))


def _colour_from_extra(options: EncodeOptions) -> tuple[EncodeOptions, bool]:
    """FFmpeg's ``colorspace``/``color_range`` codec options, as torchcodec's users pass
    them, become nvenc's colour matrix and range: the pixels are converted with what the
    file is tagged with (handed to the encoder, they would only retag pixels converted
    otherwise). A matrix nvenc cannot convert with is refused. Also says whether the
    BT.601 matrix is to be tagged ``bt470bg`` rather than ``smpte170m``."""
    wanted = {"colorspace": options.color_matrix, "color_range": options.color_range}
    table = {"colorspace": FFMPEG_COLORSPACES, "color_range": FFMPEG_RANGES}
    own = {"colorspace": "--color-matrix", "color_range": "--color-range"}
    rest: list[tuple[str, str]] = []
    bt470bg = False
    for key, value in options.extra:
        if key not in table:
            rest.append((key, value))
            continue
        mapped = table[key].get(value.strip().lower())
        if mapped is None:
            raise SettingError(
                f"invalid value {value!r} for -x {key}: nvenc converts with "
                f"{', '.join(sorted(table[key]))} (or use {own[key]})",
                torchcodec=tc_open_failed(),
            )
        if wanted[key] is not None and wanted[key] != mapped:
            raise UsageError(f"-x {key} {value!r} contradicts {own[key]} {wanted[key]}: give one")
        wanted[key] = mapped
        bt470bg = bt470bg or (key == "colorspace" and value.strip().lower() == "bt470bg")
    if len(rest) == len(options.extra):
        return options, False
    changed = replace(
        options, extra=tuple(rest), color_matrix=wanted["colorspace"], color_range=wanted["color_range"]
    )
    return changed, bt470bg


# Codecs whose bitstream has no place for the colour matrix or range (MPEG-4 part 2 and
# FLV1 as FFmpeg writes them; AVI and FLV have none either): every decoder reads them as
# BT.601, limited range, so that is the only maths whose "tag" is true.
_UNTAGGED_FAMILIES = frozenset({"mpeg4", "flv1", "h263", "msmpeg4v3"})


def _untagged_matrix(family: str, options: EncodeOptions) -> str | None:
    """BT.601 for codecs that cannot say otherwise; asking for another matrix or full range
    there is refused (the file would be read back with the wrong colours)."""
    if family not in _UNTAGGED_FAMILIES:
        return options.color_matrix
    if options.color_matrix not in (None, "bt601") or options.color_range == "pc":
        asked = options.color_matrix if options.color_matrix not in (None, "bt601") else "full range"
        raise UsageError(
            f"{family} cannot record its colour matrix or range, so decoders read it as BT.601 "
            f"limited range: drop {asked} or pick a codec that records it (e.g. libx264)"
        )
    return "bt601"


# GIF delays are 16-bit centiseconds; browsers and most players show delays under 2 cs
# as 10 cs, so a GIF faster than 50 fps plays slower than it says.
_GIF_SLOWEST = Fraction(100, 65535)
_GIF_PLAYED = Fraction(50)


def _check_fps(fps: Fraction, container: str) -> None:
    """Refuse rates whose frames the container's clock cannot tell apart (a file whose
    timestamps repeat is broken, not merely odd)."""
    if container == "gif" and fps < _GIF_SLOWEST:
        # A GIF frame's delay is a 16-bit count of centiseconds: longer ones would be
        # clamped (or wrap, in other writers) to another time without a word.
        raise UsageError(
            f"frame rate {fps} fps is too slow for a gif file: a frame's delay is at most "
            "655.35 s (65535 cs), so at least 100/65535 fps; use -r 100/65535 or faster, or "
            "another container"
        )
    limit = MAX_FPS.get(container)
    if limit is not None and fps > limit[0]:
        top, why = limit
        raise UsageError(
            f"frame rate {float(fps):g} is too high for a {container} file: {why}, so at "
            f"most {top} fps (.mp4, .mov and .nut take any rate)"
        )


def _family(encoder: str) -> str:
    import av

    try:
        codec = av.Codec(encoder, "w")
    except Exception:
        raise UnavailableError(
            f"unknown codec {encoder!r}{did_you_mean(encoder, encoder_names())}: this FFmpeg "
            "build has no such encoder (see 'nvenc info' for the list)",
            torchcodec=tc_codec_not_found(encoder),
        ) from None
    if codec.type != "video":
        raise UsageError(f"codec {encoder!r} is not a video encoder")
    return codec.canonical_name


def _codec_formats(encoder: str) -> list[str]:
    import av

    return [f.name for f in (av.Codec(encoder, "w").video_formats or [])]


def default_pixel_format(encoder: str, family: str, info: FrameInfo) -> str:
    """Broadly playable defaults that keep what the input has where the codec can.

    4:2:0 for the delivery codecs (never the yuv444p plain ffmpeg picks for RGB input),
    10-bit when the input carries more than 8 bits, alpha where the codec can keep it,
    and RGB formats for the lossless/intermediate codecs so they stay lossless.
    """
    formats = _codec_formats(encoder)
    deep = info.depth > 8
    if family in _YUV420_FAMILIES:
        if info.has_alpha and "yuva420p" in formats and family in ("vp9", "vp8"):
            return "yuva420p"
        if deep:
            for name in ("yuv420p10le", "p010le"):
                if name in formats:
                    return name
        return "yuv420p" if "yuv420p" in formats or not formats else formats[0]
    table = {
        "ffv1": ("bgr0", "bgra", "gbrp16le", "gbrap16le", "gray", "gray16le"),
        "png": ("rgb24", "rgba", "rgb48be", "rgba64be", "gray", "gray16be"),
        "prores": ("yuv422p10le", "yuva444p10le", "yuv422p10le", "yuva444p10le", None, None),
        "mjpeg": ("yuvj420p",) * 4 + (None, None),
        "gif": ("pal8",) * 4 + ("gray", "gray"),  # a palette from the frames (backends/palette.py)
    }
    choices = table.get(family)
    if choices is None:
        return formats[0] if formats else "yuv420p"
    if info.channels == 1 and choices[4]:
        return choices[5] if deep else choices[4]
    index = (2 if deep else 0) + (1 if info.has_alpha else 0)
    picked = choices[index]
    return picked if picked in formats or not formats else formats[0]


def _check_pixel_format(encoder: str, pixel_format: str) -> None:
    import av

    formats = _codec_formats(encoder)
    try:
        av.VideoFormat(pixel_format)
    except Exception:
        raise SettingError(
            f"unknown --pixel-format {pixel_format!r}{did_you_mean(pixel_format, formats)}",
            torchcodec=tc_pixel_format(pixel_format, encoder, formats, known=False),
        ) from None
    if formats and pixel_format not in formats:
        raise SettingError(
            f"codec {encoder} does not support pixel format {pixel_format}: "
            f"{_alternatives(formats, pixel_format)}",
            torchcodec=tc_pixel_format(pixel_format, encoder, formats, known=True),
        )
    if av.VideoFormat(pixel_format).has_palette and pixel_format != "pal8":
        # pal8 is made by FFmpeg's palette filters (backends/palette.py); other palette
        # formats would go through the scaler, which cannot make them (ENOTSUP).
        # The codec lists it, but FFmpeg's scaler cannot make palette frames (ENOTSUP).
        raise SettingError(
            f"pixel format {pixel_format} (a palette) cannot be made from RGB frames here: "
            f"{_alternatives([f for f in formats if not av.VideoFormat(f).has_palette], pixel_format)}"
        )


def _alternatives(formats: list[str], wanted: str) -> str:
    """Name the codec's formats of the same kind (RGB, gray, YUV) as the refused one.

    A long list of every format hides the one answer people need, e.g. that this
    build's ffv1 has no 8-bit ``gbrp`` but takes ``bgr0`` (the same RGB samples).
    """

    def kind(name: str) -> str:
        return "RGB" if is_rgb_format(name) else "gray" if is_gray_format(name) else "YUV"

    same = [f for f in formats if kind(f) == kind(wanted)]
    if not same:
        return f"choose one of {', '.join(formats)}"
    bits = _format_depth(wanted)
    closest = [f for f in same if _format_depth(f) == bits]
    others = [f for f in same if f not in closest]
    if not closest:
        return f"its {kind(wanted)} formats are {', '.join(same)}"
    text = f"its {bits}-bit {kind(wanted)} formats are {', '.join(closest)}"
    return f"{text} (other depths: {', '.join(others)})" if others else text


def _format_depth(pixel_format: str) -> int:
    import av

    return max(c.bits for c in av.VideoFormat(pixel_format, 2, 2).components)


def _depth_notice(encoder: str, info: FrameInfo, pixel_format: str) -> str | None:
    """Say so when 16-bit input is written at 8 bits (never a silent squash).

    libvpx-vp9 in the bundled FFmpeg has no formats above 8 bits, so 16-bit input
    sent to VP9 always takes this path.
    """
    if info.depth <= 8 or _format_depth(pixel_format) > 8:
        return None
    if not any(_format_depth(f) > 8 for f in _codec_formats(encoder)):
        return f"{info.depth}-bit input written at 8 bits: {encoder} in this build has no deeper format"
    return (
        f"{info.depth}-bit input written at 8 bits by {pixel_format}: pick a 10-bit "
        "--pixel-format (e.g. yuv420p10le) to keep the extra bits"
    )


def _check_gray_matrix(info: FrameInfo, pixel_format: str, color: ColorSpec) -> None:
    """swscale derives gray from RGB with BT.601 luma only; refuse a tag that would lie."""
    if is_gray_format(pixel_format) and info.channels > 1 and color.matrix != "bt601":
        raise UsageError(
            f"gray output from colour input uses BT.601 luma: drop --color-matrix "
            f"{color.matrix} or pick a YUV --pixel-format"
        )


# MP4/MOV store each frame's duration (an stts delta) in 32 bits, read signed by FFmpeg.
_MP4_MAX_DELTA = (1 << 31) - 1


def _container_defaults(
    container: str, fps: Fraction, options: dict[str, str], clock: Clock | None = None
) -> dict[str, str]:
    """MP4/MOV movie timescale on a multiple of the frame rate's numerator; Matroska and
    WebM written bitexact (reproducible bytes).

    The muxer's default (1000) rounds the movie duration to whole milliseconds, so
    ffprobe's format duration of 10 frames at 30000/1001 read 0.334 s instead of
    0.333667 s; any multiple of the numerator makes N/fps an integer tick count.
    """
    if container in ("matroska", "webm") and "fflags" not in options:
        # Matroska writes a random segment UID and the muxing date unless told to be
        # bitexact: the same frames made different files on every run.
        options = {**options, "fflags": "+bitexact"}
    if clock is not None and container in ("mp4", "mov"):
        # The track's clock is the timestamps' own tick: every frame keeps its exact time.
        options = {**options, "video_track_timescale": str(clock.time_base.denominator)}
    elif container in ("mp4", "mov") and fps < 1 and "video_track_timescale" not in options:
        # Slower than a frame a second: the muxer's own track clock (at least 10,000 ticks
        # a second) overflows its 32-bit frame durations and fails at the first write
        # ("Not yet implemented"). The rate's numerator ticks a second count every frame
        # exactly, fps.denominator ticks each.
        if fps.denominator > _MP4_MAX_DELTA:
            raise UsageError(
                f"frame rate {fps} fps is too slow for {container}: a frame would last "
                f"{fps.denominator} ticks of its clock, more than it can store; use -r with a "
                "faster rate or an .mkv output"
            )
        options = {**options, "video_track_timescale": str(fps.numerator)}
    if container not in ("mp4", "mov") or "movie_timescale" in options:
        return options
    scale = fps.numerator if clock is None else clock.time_base.denominator
    while scale < 1000:
        scale *= 2
    return {**options, "movie_timescale": str(scale)}


def chroma_factors(pixel_format: str) -> tuple[int, int]:
    """Horizontal and vertical chroma subsampling factors (1, 2 or 4)."""
    import av

    fmt = av.VideoFormat(pixel_format, 4, 4)
    if fmt.is_rgb or len(fmt.components) < 3:
        return 1, 1
    chroma = fmt.components[1]
    return 4 // max(chroma.width, 1), 4 // max(chroma.height, 1)


def _geometry(info: FrameInfo, pixel_format: str, options: EncodeOptions) -> tuple[int, int, str | None]:
    if info.width < 1 or info.height < 1:
        raise InputDataError(f"frames are {info.width}x{info.height}: width and height must be ≥ 1")
    fw, fh = chroma_factors(pixel_format)
    if info.width % fw == 0 and info.height % fh == 0:
        return info.width, info.height, None
    if options.pad:
        return -(-info.width // fw) * fw, -(-info.height // fh) * fh, "pad"
    if options.crop:
        width, height = info.width // fw * fw, info.height // fh * fh
        if width == 0 or height == 0:
            raise InputDataError(f"frames are {info.width}x{info.height}: too small to crop")
        return width, height, "crop"
    hint = " (or --resize with -2 for a side: even, keeping the aspect ratio)" if options.resize else ""
    raise InputDataError(
        f"frame size {info.width}x{info.height} does not fit {pixel_format}, which needs "
        f"width a multiple of {fw} and height a multiple of {fh}: use --pad (edge "
        f"replication) or --crop{hint}"
    )


def crf_range(encoder: str) -> tuple[float, float] | None:
    """The crf an encoder takes: nvenc's table cut to what FFmpeg declares for the option
    (so a build whose encoder narrows it is obeyed), FFmpeg's range alone for encoders
    the table lacks; None when the encoder has no crf."""
    from nvenc_cli import ffopts

    known = CRF_RANGE.get(encoder)
    declared = ffopts.numeric_option(encoder, "crf")
    if declared is None:
        return known
    if known is None:
        return declared.low, declared.high
    return max(known[0], declared.low), min(known[1], declared.high)


def _check_crf(encoder: str, crf: float | None, lenient: bool, ignored: list[str]) -> float | None:
    if crf is None:
        return None
    bounds = crf_range(encoder)
    if bounds is None:
        hint = "set its quality with -x (e.g. a bitrate: -x b=8M)"
        if lenient:
            ignored.append(f"crf={crf:g} ignored: {encoder} has no crf; {hint}")
            return None
        raise UsageError(f"codec {encoder} has no --crf: {hint}")
    low, high = bounds
    if not low <= crf <= high:
        raise SettingError(
            f"--crf {crf:g} is out of range for {encoder}: use {low:g}–{high:g}",
            torchcodec=tc_out_of_range("crf", crf, low, high, encoder),
        )
    return crf


def _check_preset(
    encoder: str, preset: str | None, backend: str, lenient: bool, ignored: list[str]
) -> tuple[str | None, dict[str, str]]:
    """One vocabulary for every encoder: x264's preset names (or x264's own index, 0 for
    ultrafast to 9 for placebo) map to each encoder's speed knob; an encoder's own
    numbers (SVT-AV1's 0-13, VP9's cpu-used, NVENC's p1-p7) work too.

    Returns the ``preset`` option to hand the encoder and any options it maps to
    (VP8/VP9 have no preset: ``deadline`` and ``cpu-used``).
    """
    if preset is None:
        return None, {}
    name = str(preset).strip()
    number = int(name) if name.lstrip("-").isdigit() else None
    if backend != "cpu":
        return (f"p{number}" if number is not None and 1 <= number <= 7 else name), {}
    names = ", ".join(X26X_PRESETS)
    if encoder in X26X_ENCODERS:
        if name in X26X_PRESETS:
            return name, {}
        if number is not None and 0 <= number < len(X26X_PRESETS):
            return X26X_PRESETS[number], {}
        raise SettingError(
            f"unknown --preset {preset!r} for {encoder}{did_you_mean(name, X26X_PRESETS)}: "
            f"choose {names} (or 0–9)",
            torchcodec=tc_open_failed(),
        )
    if encoder == "libsvtav1":
        if name in SVT_PRESETS:
            return str(SVT_PRESETS[name]), {}
        if number is not None and -1 <= number <= 13:
            return str(number), {}
        raise SettingError(
            f"unknown --preset {preset!r} for libsvtav1: use a number 0–13 or one of {names}",
            torchcodec=tc_open_failed(),
        )
    if encoder in VPX_ENCODERS:
        from nvenc_cli import ffopts

        speed = ffopts.numeric_option(encoder, "cpu-used")
        low, high = (speed.low, speed.high) if speed else (-8, 8)
        if name in VPX_PRESETS:
            deadline, cpu_used = VPX_PRESETS[name]
            return None, {"deadline": deadline, "cpu-used": str(cpu_used)}
        if number is not None and low <= number <= high:
            return None, {"deadline": "good", "cpu-used": str(number)}
        raise SettingError(
            f"unknown --preset {preset!r} for {encoder}: choose {names}, or its cpu-used "
            f"speed {low:g}–{high:g}",
            torchcodec=tc_open_failed(),
        )
    if lenient:
        ignored.append(f"preset={name!r} ignored: {encoder} has no presets")
        return None, {}
    raise UsageError(f"codec {encoder} has no --preset: tune its speed with -x (e.g. -x cpu-used=4 for VP9)")


def _split_extra(
    encoder: str, container: str, options: EncodeOptions, backend: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Route each -x key to the codec or the muxer; a key neither knows is an error.

    For the NVENC backend the codec keys are validated by the backend's own mapping
    (PyNvVideoCodec keys are not FFmpeg options), so only muxer keys are peeled off here.
    """
    keys = [k for k, _ in options.extra]
    if not keys:
        return {}, {}
    muxer = ffopts.muxer_accepts(container, keys) or {}
    codec = ffopts.codec_accepts(encoder, keys) if backend == "cpu" else None
    codec_opts: dict[str, str] = {}
    format_opts: dict[str, str] = {}
    for key, value in options.extra:
        if codec is not None and codec.get(key):
            _check_option_value(encoder, key, value)
            codec_opts[key] = value
        elif muxer.get(key):
            format_opts[key] = value
        elif codec is None:
            codec_opts[key] = value
        else:
            raise UsageError(f"unknown option -x {key}: neither {encoder} nor the {container} muxer has it")
    return codec_opts, format_opts


def _check_option_value(encoder: str, key: str, value: str) -> None:
    """Refuse a value FFmpeg's option parser refuses, naming the option's range: left to
    the encoder it would only fail as "Invalid argument" when the encoder opens."""
    from nvenc_cli import ffopts

    if not ffopts.codec_refuses(encoder, key, value):
        return
    numeric = ffopts.numeric_option(encoder, key)
    try:
        number = float(value)
    except ValueError:
        number = None
    if numeric is not None and number is not None:
        low, high = _bound(numeric.low), _bound(numeric.high)
        raise SettingError(
            f"invalid value {value!r} for -x {key}: {encoder} takes {low} to {high}",
            torchcodec=tc_out_of_range(key, number, numeric.low, numeric.high, encoder),
        )
    expects = "a number (or one of its named values)" if numeric is not None else "another value"
    raise SettingError(
        f"invalid value {value!r} for -x {key}: {encoder} expects {expects}",
        torchcodec=tc_not_numeric(key, value) if numeric is not None else tc_open_failed(),
    )


def _bound(value: float) -> str:
    """An option bound as people read it: whole numbers in full, else as ``%g``."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**63 else f"{value:g}"


_CHROMALOC_PARAMS = {"libx264": "x264-params", "libx265": "x265-params"}


def _add_param(opts: dict[str, str], key: str, name: str, value: str) -> None:
    """Append ``name=value`` to a ``key=a=1:b=2`` list unless the user already set ``name``."""
    params = opts.get(key, "")
    names = {item.split("=", 1)[0].strip().replace("_", "-") for item in params.split(":")}
    if name not in names:
        opts[key] = f"{params}:{name}={value}" if params else f"{name}={value}"


def _with_codec_defaults(plan: EncodePlan) -> EncodePlan:
    """Defaults that make each CPU encoder do what people expect without -x lore.

    For NVENC the backend's own option mapping runs here too, so a bad -x key fails
    before the input is read, as it does on the CPU.
    """
    if plan.backend != "cpu":
        from nvenc_cli.backends.nvenc_options import settings_for

        settings_for(plan)
        return plan
    opts = dict(plan.codec_options)
    if plan.encoder in _CHROMALOC_PARAMS and chroma_factors(plan.pixel_format) == (2, 2):
        # Our 4:2:0 chroma is the mean of each 2x2 block, i.e. sited at its centre;
        # say so in the VUI (H.264/HEVC otherwise imply left siting).
        _add_param(opts, _CHROMALOC_PARAMS[plan.encoder], "chromaloc", "1")
    if plan.encoder in ("libx264", "libx264rgb") and "threads" not in opts:
        from nvenc_cli.backends.cpu import lookahead_threads

        _add_param(opts, "x264-params", "lookahead-threads", str(lookahead_threads()))
    if plan.encoder in ("libvpx-vp9", "libvpx"):
        # libvpx's defaults are a low fixed bitrate and a very slow mode; constant
        # quality with row threading is what "encode this to webm" means.
        crf = plan.crf if plan.crf is not None else (32 if plan.encoder == "libvpx-vp9" else 10)
        opts.setdefault("b", "0" if plan.encoder == "libvpx-vp9" else "4M")
        if plan.encoder == "libvpx-vp9":
            opts.setdefault("row-mt", "1")
            if crf == 0:
                # crf 0 is lossless for x264; libvpx's crf 0 is merely its finest
                # quantiser, so say lossless where it means it.
                opts.setdefault("lossless", "1")
        opts.setdefault("deadline", "good")
        opts.setdefault("cpu-used", "4")
        return replace(plan, crf=crf, codec_options=opts)
    return replace(plan, codec_options=opts)
