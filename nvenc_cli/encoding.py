"""The library entry point behind ``nvenc encode``: a file (or sequence) in, a video out."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from nvenc_cli.errors import UsageError
from nvenc_cli.mux import Destination, check_destination
from nvenc_cli.options import DEFAULT_BATCH, EncodeOptions, container_for, resolve_color
from nvenc_cli.pipeline import Progress, Result, run
from nvenc_cli.plan import EncodePlan, make_plan
from nvenc_cli.sources import Source, open_source

if TYPE_CHECKING:
    from nvenc_cli.audio import AudioTrack
    from nvenc_cli.timestamps import Timeline


@dataclass(frozen=True)
class InputOptions:
    """How to read the input: which array, which axes, which frames."""

    key: str | None = None
    layout: str | None = None
    start_number: int | None = None
    start: int = 0
    frames: int | None = None
    value_range: tuple[float, float] | None = None
    input_size: tuple[int, int] | None = None
    input_pixel_format: str | None = None
    #: ``--clamp``: samples outside the value range are clamped (and counted), not refused
    clamp: bool = False
    #: ``--sample``: which clip of a 5-D batch ``(B, F, …)`` to encode (-1: the last)
    sample: int | None = None
    #: ``--depth-bits``: integer samples hold codes of this many bits (12-bit depth in uint16)
    depth_bits: int | None = None
    #: ``--timestamps``: a file of per-frame times in seconds (.npy, .txt, .csv), or the
    #: API's times already read (a ``Timeline``)
    timestamps: str | Timeline | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.clamp, bool):
            raise UsageError(f"invalid --clamp {self.clamp!r}: true or false")
        if self.sample is not None and (isinstance(self.sample, bool) or not isinstance(self.sample, int)):
            raise UsageError(f"invalid --sample {self.sample!r}: a whole number (-1 is the last clip)")
        if self.depth_bits is None:
            return
        if (
            isinstance(self.depth_bits, bool)
            or not isinstance(self.depth_bits, int)
            or not 1 <= self.depth_bits <= 16
        ):
            raise UsageError(f"invalid --depth-bits {self.depth_bits!r}: a whole number of bits, 1 to 16")
        codes = (0.0, float((1 << self.depth_bits) - 1))
        if self.value_range is not None and tuple(self.value_range) != codes:
            raise UsageError(
                f"--depth-bits {self.depth_bits} means --value-range 0,{int(codes[1])}: give one of them"
            )
        object.__setattr__(self, "value_range", codes)


def options_from(values: Mapping[str, Any]) -> tuple[EncodeOptions, InputOptions]:
    """``EncodeOptions`` and ``InputOptions`` from plain values by the CLI's option names
    (underscored): the command line's, a manifest row's laid over them, or ``encode()``'s
    arguments. The one place where what a door was given becomes options; a name left out
    takes the option's default."""
    from nvenc_cli.audio import AudioOptions, parse_bitrate
    from nvenc_cli.resize import parse_resize
    from nvenc_cli.sources.layout import parse_value_range
    from nvenc_cli.sources.pipe import parse_size

    p = dict(values).get
    audio = p("audio")
    sound = AudioOptions(
        enabled=not p("no_audio", False),
        codec=p("audio_codec"),
        bitrate=parse_bitrate(p("audio_bitrate")),
        file=None if audio is None else os.fspath(audio),
        key=p("audio_key"),
        rate=p("audio_rate"),
    )
    options = EncodeOptions(
        fps=p("fps"),
        codec=p("codec"),
        pixel_format=p("pixel_format"),
        crf=p("crf"),
        preset=p("preset"),
        extra=p("option") or (),  # KEY=VALUE texts, a dict or pairs: EncodeOptions reads each
        device=p("device", "auto"),
        color_matrix=p("color_matrix"),
        color_range=p("color_range"),
        pad=p("pad", False),
        crop=p("crop", False),
        format=p("format"),
        batch_size=p("batch_size", DEFAULT_BATCH),
        overwrite=p("overwrite", False),
        audio=sound,
        resize=parse_resize(p("resize")),
        gop=p("gop"),
        fast_decode=p("fast_decode", False),
    )
    size = p("input_size")
    inputs = InputOptions(
        key=p("key"),
        layout=p("layout"),
        start_number=p("start_number"),
        start=p("start", 0),
        frames=p("frames"),
        value_range=parse_value_range(p("value_range")),
        input_size=parse_size(size) if size is not None else None,
        input_pixel_format=p("input_pixel_format"),
        clamp=p("clamp", False),
        sample=p("sample"),
        depth_bits=p("depth_bits"),
        timestamps=p("timestamps"),
    )
    return options, inputs


def prepare(
    spec: str, dest: Destination, options: EncodeOptions, inputs: InputOptions
) -> tuple[Source, EncodePlan]:
    """Open the input and resolve the plan; everything that can be refused is refused here."""
    sound = options.audio.file if options.audio is not None and options.audio.enabled else None
    container = check_output(dest, options, inputs=(spec,) if sound is None else (spec, sound))
    source = open_source(
        spec,
        layout=inputs.layout,
        key=inputs.key,
        start_number=inputs.start_number,
        start=inputs.start,
        frames=inputs.frames,
        input_size=inputs.input_size,
        input_pixel_format=inputs.input_pixel_format,
        sample=inputs.sample,
    )
    try:
        source.set_value_range(inputs.value_range, inputs.clamp)
        _rate_notice(source, options)
        if options.fps is not None and getattr(source, "variable_rate", False) and inputs.timestamps is None:
            source.timeline = None  # -r re-times a variable-rate video to a constant rate
        timeline = source_timeline(source, inputs.timestamps)
        plan = make_plan(options, source.info, container, source.fps_hint, timeline)
    except BaseException:
        source.close()
        raise
    plan = carry_display(source, plan)
    plan = pass_planes(source, plan, options)
    adopt_plan(source, plan)
    return source, plan


# FFmpeg's colour codes for the matrices nvenc knows (ISO/IEC 23091-2): what a decoded
# frame says of its own maths.
_MATRIX_OF_SPACE = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 4: "fcc"}


def pass_planes(source: Source, plan: EncodePlan, options: EncodeOptions) -> EncodePlan:
    """Let a video input's decoded planes go to the encoder as they are, when the output
    keeps their pixel format, size and colour: no RGB round trip (CPU time, and a
    generation of chroma and rounding loss). The file is then tagged with the input's own
    colour (a tagged input keeps its matrix and range unless --color-matrix/--color-range
    ask for others; an untagged one is tagged by the usual rule, as players read it)."""
    from nvenc_cli.sources.video import VideoSource

    if not isinstance(source, VideoSource) or plan.backend != "cpu" or plan.resize or plan.geometry:
        return plan
    facts = source.planes()
    if facts is None or facts[0] != plan.pixel_format or plan.color.matrix is None:
        return plan
    _, primaries, transfer, space, code = facts
    matrix = _MATRIX_OF_SPACE.get(space)
    rng = {1: "tv", 2: "pc"}.get(code)
    wanted_matrix = options.color_matrix or matrix or plan.color.matrix
    wanted_range = options.color_range or rng or plan.color.range
    if (matrix or plan.color.matrix) != wanted_matrix or (rng or plan.color.range) != wanted_range:
        return plan  # the user asks for other maths: convert
    color = plan.color
    if matrix is not None:
        keep = resolve_color(matrix, wanted_range, plan.height, plan.pixel_format)
        color = replace(
            keep,
            primaries=primaries if primaries != 2 else keep.primaries,
            transfer=transfer if transfer != 2 else keep.transfer,
            space=space,
        )
    elif rng is not None:
        color = replace(color, range=rng)
    source.passthrough = True  # type: ignore[attr-defined]
    return replace(plan, color=color)


# Containers whose stream can hold a display matrix (FFmpeg writes it for these).
_ROTATION_CONTAINERS = frozenset({"mp4", "mov", "matroska", "webm"})


def carry_display(source: Source, plan: EncodePlan) -> EncodePlan:
    """Keep how the input is meant to be shown: its display rotation and the shape of its
    pixels (sample aspect ratio). Where the output cannot hold one, a notice says so."""
    rotation = int(getattr(source, "rotation", 0) or 0)
    sar: Fraction | None = getattr(source, "sample_aspect", None)
    notices: list[str] = []
    if rotation and plan.container not in _ROTATION_CONTAINERS:
        notices.append(
            f"the input's display rotation ({rotation}°) is not carried: {plan.container} files "
            "cannot hold it (use .mp4, .mov or .mkv)"
        )
        rotation = 0
    if sar is not None and plan.resize is not None:
        # Scaling changes the pixels' shape; the picture's shape is what is kept.
        width, height = plan.resize[0], plan.resize[1]
        sar = sar * Fraction(plan.source.width * height, plan.source.height * width)
        sar = None if sar == 1 else sar
    if sar is not None and plan.backend == "nvenc":
        notices.append(
            f"the input's sample aspect ratio ({sar.numerator}:{sar.denominator}) is not carried by "
            "the NVENC route: the picture will look stretched (--device cpu keeps it)"
        )
        sar = None
    if not (rotation or sar or notices):
        return plan
    return replace(plan, rotation=rotation, sample_aspect=sar, notices=(*plan.notices, *notices))


def source_timeline(source: Source, path: str | Timeline | None) -> Timeline | None:
    """The frames' own times, if any: ``--timestamps FILE`` (which wins over an entry in
    the input file, with a notice) or the input's; checked against the frame count and cut
    by ``--start``/``--frames`` to the frames encoded."""
    from nvenc_cli.timestamps import Timeline, load_timestamps

    timeline = source.timeline
    if path is not None:
        if timeline is not None:
            given = "timestamps=" if isinstance(path, Timeline) else f"--timestamps {path}"
            source.notices.append(f"{given} used; {source.timeline_from} ignored")
        timeline = path if isinstance(path, Timeline) else load_timestamps(path)
    elif timeline is not None and source.timeline_from is not None:
        source.notices.append(f"per-frame timestamps from {source.timeline_from} ({source.timeline_hint})")
    if timeline is None:
        return None
    if source.total is None:
        raise UsageError(
            "per-frame timestamps need an input whose frames are counted up front; "
            f"{source.name or 'the input'} is a stream"
        )
    timeline.check_count(source.total, source.name or "the input")
    return timeline.select(source.start, source.limit)


def _rate_notice(source: Source, options: EncodeOptions) -> None:
    """Say where the frame rate came from when the file's metadata set (or lost) it."""
    if source.rate_missing is not None and source.fps_hint is None and options.fps is None:
        from nvenc_cli.options import DEFAULT_FPS

        source.notices.append(f"{source.rate_missing}: {DEFAULT_FPS} fps used (-r sets the rate)")
    if source.fps_from is None or source.fps_hint is None:
        return
    if options.fps is None:
        source.notices.append(f"frame rate {source.fps_hint} fps from {source.fps_from} (-r overrides it)")
    elif options.fps != source.fps_hint:
        source.notices.append(f"-r {options.fps} used; {source.fps_from} says {source.fps_hint} fps")


def check_output(dest: Destination, options: EncodeOptions, inputs: tuple[str, ...] = ()) -> str:
    """The container for ``dest``, once it is known that the output can be written: the
    cheap refusals (unknown extension, existing file, missing folder) come before any input
    is opened, for the CLI and the Python API alike."""
    path = dest if isinstance(dest, str) else None
    check_destination(dest, options.overwrite, inputs=inputs)  # a missing folder first, as FFmpeg
    return container_for(path, options.format)


def adopt_plan(source: Source, plan: EncodePlan) -> None:
    """Tell the source what the plan needs of it: float input is scaled to 16 bits when
    the output keeps more than 8."""
    source.float_depth = 16 if plan.out_depth > 8 else 8
    source.out_rate = plan.fps


def prepare_audio_track(
    spec: str | None, source: Source, plan: EncodePlan, options: EncodeOptions, inputs: InputOptions
) -> tuple[AudioTrack | None, EncodePlan]:
    """The sound for this encode, decided (and refused) before the output exists; the
    plan comes back with the audio notices added."""
    from nvenc_cli.audio import prepare_audio
    from nvenc_cli.sources.video import VideoSource
    from nvenc_cli.storage import streams

    rate = source.fps_hint or plan.fps
    media = isinstance(source, VideoSource)
    # The sound is read by a second reader of the same file (or of an object read in
    # place, opened again as a file is); a pipe cannot be read twice.
    readable = media and spec is not None and (os.path.isfile(spec) or streams(spec))
    track, notices = prepare_audio(
        options.audio,
        plan.container,
        spec,
        video_is_media=readable,
        # Frames with their own timestamps keep their real times, so the sound keeps its
        # own too: nothing is cut from its start.
        trim_start=Fraction(0) if plan.ticks is not None else Fraction(inputs.start) / rate,
    )
    enabled = options.audio is None or options.audio.enabled
    if media and not readable and enabled and track is None and _has_audio(source):
        notices = (*notices, "audio dropped: the sound of a piped input cannot be kept; pass it with --audio")
    entry = getattr(source, "audio_entry", None)
    asked = options.audio is not None and (options.audio.file or options.audio.key)
    if entry and enabled and track is None and not asked:
        notices = (
            *notices,
            f"the input's {entry!r} entry is not added as sound: pass --audio-key {entry} "
            "(and --audio-rate if the file stores no rate)",
        )
    if notices:
        plan = replace(plan, notices=(*plan.notices, *notices))
    return track, plan


def _has_audio(source: Source) -> bool:
    container = getattr(source, "_container", None)
    return bool(container is not None and container.streams.audio)


def run_source(
    source: Source,
    plan: EncodePlan,
    dest: Destination,
    options: EncodeOptions,
    progress: Progress | None = None,
    audio: AudioTrack | None = None,
) -> Result:
    """Encode every frame ``source`` yields, in windows of ``--batch-size``; the result's
    plan carries the source's notices too, those found while reading included."""
    result = run(
        source.batches(options.batch_size),
        plan,
        dest,
        overwrite=options.overwrite,
        total=source.frame_count,
        progress=progress,
        audio=audio,
    )
    if audio is not None:
        source.notices.extend(audio.notices)
    return with_source_notices(result, source)


def with_source_notices(result: Result, source: Source) -> Result:
    """Put what the reader noticed before the plan's own notices, once each."""
    extra = tuple(n for n in source.notices if n not in result.plan.notices)
    if not extra:
        return result
    return replace(result, plan=replace(result.plan, notices=(*extra, *result.plan.notices)))


def encode_path(
    spec: str,
    dest: Destination,
    options: EncodeOptions,
    inputs: InputOptions | None = None,
    progress: Progress | None = None,
    on_plan: Callable[[EncodePlan], None] | None = None,
) -> Result:
    """Encode the frames named by ``spec`` into ``dest`` (a path, ``-`` or a file object).

    ``on_plan`` sees the resolved plan before the first frame is encoded (the CLI starts
    its clock and opens its --progress file there).
    """
    inputs = inputs or InputOptions()
    if _names_url(spec, dest, options, inputs):
        return _encode_urls(spec, dest, options, inputs, progress, on_plan)
    return _encode_local(spec, dest, options, inputs, progress, on_plan)


def _encode_local(
    spec: str,
    dest: Destination,
    options: EncodeOptions,
    inputs: InputOptions,
    progress: Progress | None,
    on_plan: Callable[[EncodePlan], None] | None,
) -> Result:
    """``encode_path`` once every name is local (or a ``.npy`` object read in place)."""
    source, plan = prepare(spec, dest, options, inputs)
    with source:
        track, plan = prepare_audio_track(spec, source, plan, options, inputs)
        if on_plan is not None:
            on_plan(plan)
        return run_source(source, plan, dest, options, progress, audio=track)


def _names_url(spec: str, dest: Destination, options: EncodeOptions, inputs: InputOptions) -> bool:
    from nvenc_cli.storage import is_url

    sound = options.audio.file if options.audio is not None else None
    return any(is_url(name) for name in (spec, dest, sound, inputs.timestamps))


def _encode_urls(
    spec: str,
    dest: Destination,
    options: EncodeOptions,
    inputs: InputOptions,
    progress: Progress | None,
    on_plan: Callable[[EncodePlan], None] | None,
) -> Result:
    """``encode_path`` for URLs: ``file://`` ones become paths; a ``.npy`` or ``.npz``
    object is read in place (ranged reads, in ``sources/arrays.py``), a video or sound
    object through PyAV's file-object input (``storage.media_input``); other input
    objects are copied in,
    and the output is encoded into a temporary file and uploaded once whole, so nothing
    below this knows a path was remote."""
    from nvenc_cli import storage
    from nvenc_cli.errors import NvencError

    staging = storage.Staging()

    def local(name: Any, role: str) -> Any:
        if not storage.is_url(name):
            return name
        if not storage.remote(name):
            return storage.file_path(name)
        return staging.output(name, options.overwrite) if role == "out" else staging.local(name)

    try:
        dest = local(dest, "out")  # the output's refusals first, as for a file
        sound = options.audio.file if options.audio is not None else None
        if storage.is_url(sound) and not storage.streams_media(sound):
            options = replace(options, audio=replace(options.audio, file=local(sound, "in")))
        if storage.is_url(inputs.timestamps):
            inputs = replace(inputs, timestamps=local(inputs.timestamps, "in"))
        if not (storage.streams(spec) and inputs.input_size is None):  # read in place
            spec = local(spec, "in")
        result = _encode_local(spec, dest, options, inputs, progress, on_plan)
        staging.publish()
        return result
    except NvencError as exc:
        raise staging.rename(exc) from None
    finally:
        staging.close()
