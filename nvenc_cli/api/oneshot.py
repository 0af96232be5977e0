"""``encode()`` and ``encode_batch()``: one clip (or every clip of a batch) in process.

The in-process door to exactly what ``nvenc encode`` does — the same defaults, checks,
notices and atomic output — taking plain Python values with the CLI's and
``VideoEncoder``'s names. Nothing here starts a worker, so it runs from a script, a
notebook or ``python - <<EOF`` without a ``__main__`` guard. Notices become
``UserWarning``s; failures raise nvenc's exceptions (each a ``ValueError``, ``OSError``
or ``RuntimeError`` as torchcodec would raise, carrying the CLI's exit code).
"""

from __future__ import annotations

import os
import string
from fractions import Fraction
from typing import Any

from nvenc_cli.errors import UsageError

__all__ = ["encode", "encode_batch"]


def encode(
    input: Any,
    output: str | os.PathLike,
    *,
    frame_rate: float | Fraction | str | None = None,
    codec: str | None = None,
    pixel_format: str | None = None,
    crf: float | None = None,
    preset: str | int | None = None,
    extra_options: dict[str, Any] | None = None,
    gop: int | None = None,
    fast_decode: bool = False,
    device: str = "auto",
    color_matrix: str | None = None,
    color_range: str | None = None,
    pad: bool = False,
    crop: bool = False,
    resize: tuple[int, int] | str | None = None,
    format: str | None = None,
    overwrite: bool = False,
    batch_size: int = 8,
    key: str | None = None,
    layout: str | None = None,
    start: int = 0,
    frames: int | None = None,
    start_number: int | None = None,
    sample: int | None = None,
    value_range: tuple[float, float] | str | None = None,
    clamp: bool = False,
    depth_bits: int | None = None,
    audio: str | os.PathLike | None = None,
    audio_codec: str | None = None,
    audio_bitrate: str | int | None = None,
    no_audio: bool = False,
    timestamps: Any = None,
    verbose: bool | None = None,
) -> Any:
    """Encode one clip into ``output`` (a path, or ``"-"`` with ``format``), as ``nvenc encode``.

    ``input`` is what the CLI takes — a ``.npy``/``.npz``/``.pt`` file, an image folder,
    a quoted glob, a printf pattern, a video — or frames in memory: a tensor or array
    (``(N, C, H, W)``/``(N, H, W, C)``, one frame, or a 5-D batch with ``sample``), or a
    list of frames (arrays, tensors, PIL images). The other arguments are the CLI's
    options by their Python names (``frame_rate`` is ``-r``, ``extra_options`` is
    ``-x``), with the CLI's defaults: an existing ``output`` is refused unless
    ``overwrite=True``, a crf or preset the codec has no use for is refused.

    Returns the encode's result (``frames``, ``bytes``, ``plan`` with the codec, size,
    rate and notices). Every notice is also issued as a ``UserWarning``.

    ``timestamps`` are the frames' times in seconds (a file path as ``--timestamps``, or
    a 1-D array, tensor or list), kept in the output; ``frame_rate`` is then the nominal
    rate, derived from them when not given.
    """
    from nvenc_cli.api.video import api_errors, python_spelling
    from nvenc_cli.liblog import api_logging, warn_caller

    with api_errors():
        options, inputs = _settings(locals())
        dest = os.fspath(output)
    with api_errors(), api_logging(verbose):
        if isinstance(input, str | os.PathLike):
            from nvenc_cli.encoding import encode_path

            result = encode_path(os.fspath(input), dest, options, inputs)
        else:
            result = _encode_frames(input, dest, options, inputs)
    for notice in result.plan.notices:
        warn_caller(python_spelling(notice))
    return result


def encode_batch(batch: Any, output: str | os.PathLike, **options: Any) -> list[Any]:
    """Encode every clip of ``batch`` — a 5-D ``(B, F, C, H, W)``/``(B, F, H, W, C)``
    tensor or array, or a list of clips — to its own file, one after the other.

    ``output`` names each file with ``{sample}`` (``"out_{sample:03d}.mp4"``); the
    options are :func:`encode`'s, the same for every clip. Returns one result per clip.
    """
    template = os.fspath(output)
    fields = _template_fields(template)
    if fields != {"sample"}:
        raise UsageError(
            f"output template {template!r} must name each clip with {{sample}} and nothing else "
            "(e.g. 'out_{sample}.mp4')"
        )
    if "sample" in options:
        raise UsageError("encode_batch writes every clip: drop sample= (encode() takes one)")
    count = len(batch)
    if count == 0:
        raise UsageError("the batch holds no clips: nothing to encode")
    return [encode(batch[i], template.format(sample=i), **options) for i in range(count)]


def _template_fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise UsageError(f"invalid output template {template!r} ({exc})") from None


# encode()'s argument names that differ from the CLI's option names.
_CLI_NAMES = {"frame_rate": "fps", "extra_options": "option"}


def _settings(given: dict[str, Any]) -> tuple[Any, Any]:
    """``EncodeOptions`` and ``InputOptions`` from ``encode``'s arguments, built where the
    CLI builds its own (``encoding.options_from``), so the checks and defaults are one."""
    from nvenc_cli.encoding import options_from

    values = {_CLI_NAMES.get(name, name): value for name, value in given.items()}
    values["timestamps"] = _timestamps(given["timestamps"])
    return options_from(values)


def _timestamps(value: Any) -> Any:
    """A path stays a path (read as ``--timestamps`` reads it); times are checked now."""
    if value is None or isinstance(value, str | os.PathLike):
        return None if value is None else os.fspath(value)
    from nvenc_cli.timestamps import Timeline

    return Timeline.of(value)


def _encode_frames(frames: Any, dest: str, options: Any, inputs: Any) -> Any:
    """Frames in memory through the same plan and pipeline as a file input."""
    from nvenc_cli.encoding import adopt_plan, check_output, run_source, source_timeline
    from nvenc_cli.plan import make_plan
    from nvenc_cli.sources.arrays import pick_sample
    from nvenc_cli.sources.memory import MemorySource, check_readable, describe
    from nvenc_cli.sources.sequence import as_frames

    if inputs.key is not None or inputs.start_number is not None:
        raise UsageError("key and start_number apply to files, not to frames in memory")
    frames = as_frames(frames)
    index = pick_sample(tuple(frames.shape), inputs.sample, "the frames")
    if index is not None:
        frames = as_frames(frames[index])
    container = check_output(dest, options)
    described = describe(frames, inputs.layout)
    check_readable(frames)
    source = MemorySource(frames, described)
    source.select(inputs.start, inputs.frames)
    source.set_value_range(inputs.value_range, inputs.clamp)
    timeline = source_timeline(source, inputs.timestamps)
    plan = make_plan(options, source.info, container, None, timeline)
    adopt_plan(source, plan)
    plan = source.adopt(plan)
    audio = _audio_track(options, plan)
    return run_source(source, plan, dest, options, audio=audio)


def _audio_track(options: Any, plan: Any) -> Any:
    """``audio=FILE`` for frames in memory, cut at the video's end as ``--audio`` is."""
    if options.audio.file is None:
        return None
    from nvenc_cli.audio import writer_track

    return writer_track(options.audio.file, None, options.audio.codec, options.audio.bitrate, plan.container)
