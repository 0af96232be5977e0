"""The library entry point behind ``nvenc encode``: a file (or sequence) in, a video out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING

from nvenc_cli.mux import Destination, check_destination
from nvenc_cli.options import EncodeOptions, container_for
from nvenc_cli.pipeline import Progress, Result, run
from nvenc_cli.plan import EncodePlan, make_plan
from nvenc_cli.sources import Source, open_source

if TYPE_CHECKING:
    from nvenc_cli.audio import AudioTrack


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
    )
    try:
        source.set_value_range(inputs.value_range)
        _rate_notice(source, options)
        plan = make_plan(options, source.info, container, source.fps_hint)
    except BaseException:
        source.close()
        raise
    plan = carry_display(source, plan)
    adopt_plan(source, plan)
    return source, plan


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


def _rate_notice(source: Source, options: EncodeOptions) -> None:
    """Say where the frame rate came from when the file's metadata set (or lost) it."""
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


def prepare_audio_track(
    spec: str | None, source: Source, plan: EncodePlan, options: EncodeOptions, inputs: InputOptions
) -> tuple[AudioTrack | None, EncodePlan]:
    """The sound for this encode, decided (and refused) before the output exists; the
    plan comes back with the audio notices added."""
    import os

    from nvenc_cli.audio import prepare_audio
    from nvenc_cli.sources.video import VideoSource

    rate = source.fps_hint or plan.fps
    media = isinstance(source, VideoSource)
    # The sound is read by a second reader of the same file; a pipe cannot be read twice.
    readable = media and spec is not None and os.path.isfile(spec)
    track, notices = prepare_audio(
        options.audio,
        plan.container,
        spec,
        video_is_media=readable,
        trim_start=Fraction(inputs.start) / rate,
    )
    enabled = options.audio is None or options.audio.enabled
    if media and not readable and enabled and track is None and _has_audio(source):
        notices = (*notices, "audio dropped: the sound of a piped input cannot be kept; pass it with --audio")
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
    source, plan = prepare(spec, dest, options, inputs)
    with source:
        track, plan = prepare_audio_track(spec, source, plan, options, inputs)
        if on_plan is not None:
            on_plan(plan)
        return run_source(source, plan, dest, options, progress, audio=track)
