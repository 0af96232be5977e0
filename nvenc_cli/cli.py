"""The ``nvenc`` command: parse, call the library, report, map errors to exit codes.

No encoding logic lives here. Heavy modules (torch, av, CUDA) are imported inside the
commands so ``nvenc --help`` stays instant.

No ``from __future__ import annotations`` here: Typer reads every option from its
annotation, and string annotations would be compiled and evaluated again on every run
(~25 ms of each process); evaluated once at import they cost a fraction of that.
"""

import errno
import os
import sys
from enum import Enum
from typing import Annotated, Any, NoReturn

import typer

from nvenc_cli import __version__, signals
from nvenc_cli.allocator import keep_freed_memory
from nvenc_cli.completion import (
    complete_codec,
    complete_format,
    complete_pixel_format,
    complete_preset,
    complete_raw_format,
)
from nvenc_cli.errors import Interrupted, NvencError, UsageError

app = typer.Typer(
    name="nvenc",
    help="Turn frame tensors, image sequences and videos into video files, on GPU or CPU.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Examples:\n"
    "  nvenc testsrc frames.npy && nvenc encode frames.npy -o out.mp4\n"
    "  nvenc encode 'renders/*.png' -r 24 -o out.webm\n"
    "  nvenc batch jobs.jsonl -j 4\n"
    "Each command's options: nvenc COMMAND --help; everything: man nvenc.",
)


# --help groups encode's options the way people look for them; batch shares them.
INPUT = "Input"
OUTPUT = "Output"
QUALITY = "Quality and codec"
GEOMETRY = "Colour and geometry"
AUDIO = "Audio"
MANY = "Many clips"
REPORTING = "Output for people and scripts"


PANELS = (INPUT, OUTPUT, QUALITY, GEOMETRY, AUDIO, MANY, REPORTING)


class PanelledCommand(typer.core.TyperCommand):
    """Lists options panel by panel in ``PANELS`` order (Typer prints panels in the order
    it first meets them), with -h/--help among the options for people."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        place = {name: index for index, name in enumerate(PANELS)}
        return sorted(params, key=lambda p: place.get(getattr(p, "rich_help_panel", None) or "", -1))

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.rich_help_panel = REPORTING
        return option


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Layout(str, Enum):
    nhwc = "nhwc"
    nchw = "nchw"


class Matrix(str, Enum):
    bt601 = "bt601"
    bt709 = "bt709"
    bt2020 = "bt2020"


class Range(str, Enum):
    tv = "tv"
    pc = "pc"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nvenc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """nvenc: frames in, video out."""


class Executor(str, Enum):
    local = "local"
    ray = "ray"


@app.command(
    cls=PanelledCommand,
    epilog="Examples:\n"
    "  nvenc encode frames.npy -o out.mp4                 # H.264 in MP4 at 30 fps\n"
    "  nvenc encode 'renders/*.png' -r 24 --crf 20 -o out.mp4\n"
    "  nvenc encode input.mov -o small.webm --resize 640x-2\n"
    "  nvenc encode clips/*.npy -o 'out/{stem}.mp4' -j 2   # one video per input\n"
    "Every option and exit code: man nvenc, or docs/reference/cli.md in the source.",
)
def encode(
    ctx: typer.Context,
    input: Annotated[
        list[str],
        typer.Argument(
            help=".npy/.npz/.pt, image folder, 'glob', frame_%05d.png, video, - (stdin).",
            show_default=False,
            metavar="INPUT...",
        ),
    ],
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="Extension picks the container; - for stdout; 'out/{stem}.mp4'.",
            show_default=False,
            metavar="FILE",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    fps: Annotated[
        str | None,
        typer.Option(
            "-r",
            "--fps",
            help="30, 29.97, 30000/1001. Default: the video input's, else 30.",
            metavar="RATE",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    codec: Annotated[
        str | None,
        typer.Option(
            "-c",
            "--codec",
            help="libx264, libx265, libsvtav1, libvpx-vp9, ffv1, h264_nvenc…",
            autocompletion=complete_codec,
            metavar="CODEC",
            rich_help_panel=QUALITY,
        ),
    ] = None,
    pixel_format: Annotated[
        str | None,
        typer.Option(
            "--pixel-format",
            help="yuv420p (H.264/HEVC/VP9/AV1 default), yuv444p, yuv420p10le…",
            autocompletion=complete_pixel_format,
            metavar="FORMAT",
            rich_help_panel=QUALITY,
        ),
    ] = None,
    crf: Annotated[
        float | None,
        typer.Option(
            "--crf",
            help="Constant quality, lower is better (x264: 0–51).",
            metavar="N",
            rich_help_panel=QUALITY,
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="ultrafast…placebo for any encoder, or its own (0–13, p1–p7).",
            autocompletion=complete_preset,
            metavar="PRESET",
            rich_help_panel=QUALITY,
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "-x",
            "--option",
            help="Codec/muxer option, repeatable: -x g=60 (keyframe interval).",
            metavar="KEY=VALUE",
            rich_help_panel=QUALITY,
        ),
    ] = None,
    device: Annotated[
        Device,
        typer.Option(
            "--device",
            help="auto (NVENC if usable, else CPU), cpu, cuda (NVENC or fail).",
            show_default=False,
            metavar="DEVICE",
            rich_help_panel=QUALITY,
        ),
    ] = Device.auto,
    overwrite: Annotated[
        bool,
        typer.Option("-y", "--overwrite", help="Replace an existing output file.", rich_help_panel=OUTPUT),
    ] = False,
    no_overwrite: Annotated[
        bool,
        typer.Option(
            "-n",
            "--no-overwrite",
            help="Never replace an existing output (the default).",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Print nothing on success.", rich_help_panel=REPORTING)
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("-v", "--verbose", help="Show FFmpeg's log and tracebacks.", rich_help_panel=REPORTING),
    ] = False,
    json_report: Annotated[
        bool, typer.Option("--json", help="Print a JSON report on stdout.", rich_help_panel=REPORTING)
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            help="Frames per window, at most (default: 8; ≤ 24 MiB).",
            min=1,
            show_default=False,
            metavar="N",
            rich_help_panel=INPUT,
        ),
    ] = 8,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Array in a .npz, or tensor key/index in a .pt.",
            metavar="KEY",
            rich_help_panel=INPUT,
        ),
    ] = None,
    layout: Annotated[
        Layout | None,
        typer.Option(
            "--layout", help="Axis order of 4-D arrays: nhwc or nchw.", metavar="ORDER", rich_help_panel=INPUT
        ),
    ] = None,
    start_number: Annotated[
        int | None,
        typer.Option(
            "--start-number",
            help="First number of a printf pattern (default: the lowest).",
            metavar="N",
            rich_help_panel=INPUT,
        ),
    ] = None,
    start: Annotated[
        int,
        typer.Option(
            "--start",
            help="Index of the first frame to encode (default: 0).",
            min=0,
            show_default=False,
            metavar="N",
            rich_help_panel=INPUT,
        ),
    ] = 0,
    frames: Annotated[
        int | None,
        typer.Option(
            "--frames", help="Encode at most this many frames.", min=1, metavar="N", rich_help_panel=INPUT
        ),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "-f",
            "--format",
            help="Container when the extension cannot say (needed with -o -).",
            autocompletion=complete_format,
            metavar="FORMAT",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    pad: Annotated[
        bool,
        typer.Option("--pad", help="Pad odd sizes for 4:2:0 (repeat the edge).", rich_help_panel=GEOMETRY),
    ] = False,
    crop: Annotated[
        bool, typer.Option("--crop", help="Crop odd sizes for 4:2:0 instead.", rich_help_panel=GEOMETRY)
    ] = False,
    color_matrix: Annotated[
        Matrix | None,
        typer.Option(
            "--color-matrix",
            help="bt601, bt709 or bt2020. Default: bt709 from 720 lines up.",
            metavar="MATRIX",
            rich_help_panel=GEOMETRY,
        ),
    ] = None,
    color_range: Annotated[
        Range | None,
        typer.Option(
            "--color-range",
            help="tv (limited, default) or pc (full).",
            metavar="RANGE",
            rich_help_panel=GEOMETRY,
        ),
    ] = None,
    progress: Annotated[
        str | None,
        typer.Option(
            "--progress",
            help="key=value progress blocks, as ffmpeg -progress.",
            metavar="FILE|-",
            rich_help_panel=REPORTING,
        ),
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No ANSI colours (also NO_COLOR=1).", rich_help_panel=REPORTING)
    ] = False,
    no_audio: Annotated[
        bool,
        typer.Option("--no-audio", "-an", help="Drop the sound (a video's is kept).", rich_help_panel=AUDIO),
    ] = False,
    audio: Annotated[
        str | None,
        typer.Option(
            "--audio",
            help="Sound from wav, flac, mp3, m4a, a video, .npz/.pt samples.",
            metavar="FILE",
            rich_help_panel=AUDIO,
        ),
    ] = None,
    audio_codec: Annotated[
        str | None,
        typer.Option(
            "--audio-codec",
            help="aac, libopus, flac… or copy (default where the container can).",
            metavar="CODEC",
            rich_help_panel=AUDIO,
        ),
    ] = None,
    audio_bitrate: Annotated[
        str | None,
        typer.Option(
            "--audio-bitrate",
            help="e.g. 128k (default: the encoder's).",
            metavar="RATE",
            rich_help_panel=AUDIO,
        ),
    ] = None,
    audio_key: Annotated[
        str | None,
        typer.Option(
            "--audio-key",
            help="Entry of an .npz/.pt holding samples, (C, S) or (S,).",
            metavar="KEY",
            rich_help_panel=AUDIO,
        ),
    ] = None,
    audio_rate: Annotated[
        int | None,
        typer.Option(
            "--audio-rate",
            help="Sample rate of array samples the file does not state.",
            metavar="HZ",
            rich_help_panel=AUDIO,
        ),
    ] = None,
    value_range: Annotated[
        str | None,
        typer.Option(
            "--value-range",
            help="Black…white of samples: -1,1 · 0,255 · codes 0,4095.",
            metavar="MIN,MAX",
            rich_help_panel=INPUT,
        ),
    ] = None,
    clamp: Annotated[
        bool,
        typer.Option(
            "--clamp",
            help="Clamp samples outside the value range (a VAE's ±1.08).",
            rich_help_panel=INPUT,
        ),
    ] = False,
    depth_bits: Annotated[
        int | None,
        typer.Option(
            "--depth-bits",
            help="uint16 holds N-bit codes: --value-range 0,2^N-1.",
            min=1,
            max=16,
            metavar="N",
            rich_help_panel=INPUT,
        ),
    ] = None,
    timestamps: Annotated[
        str | None,
        typer.Option(
            "--timestamps",
            help="Each frame's time in s (.npy, .txt, .csv), kept.",
            metavar="FILE",
            rich_help_panel=INPUT,
        ),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            help="Clip N of a 5-D batch; -o 'c_{sample}.mp4': each.",
            metavar="N",
            rich_help_panel=INPUT,
        ),
    ] = None,
    gop: Annotated[
        int | None,
        typer.Option(
            "--gop",
            help="A keyframe at least every N frames (2: random access).",
            min=1,
            metavar="N",
            rich_help_panel=QUALITY,
        ),
    ] = None,
    fast_decode: Annotated[
        bool,
        typer.Option(
            "--fast-decode",
            help="Cheap to decode (x264/x265 fastdecode, SVT-AV1).",
            rich_help_panel=QUALITY,
        ),
    ] = False,
    resize: Annotated[
        str | None,
        typer.Option(
            "--resize",
            help="Scale: 640x360; -1 keeps the aspect, -2 also rounds to even.",
            metavar="WxH",
            rich_help_panel=GEOMETRY,
        ),
    ] = None,
    input_size: Annotated[
        str | None,
        typer.Option(
            "--input-size",
            help="Raw frames (stdin, FIFO, file): each frame's size.",
            metavar="WxH",
            rich_help_panel=INPUT,
        ),
    ] = None,
    input_pixel_format: Annotated[
        str | None,
        typer.Option(
            "--input-pixel-format",
            help="Raw frames: rgb24 (default), bgr24, rgba, gray, rgbf32le…",
            autocompletion=complete_raw_format,
            metavar="FORMAT",
            rich_help_panel=INPUT,
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "-j",
            "--jobs",
            help="Worker processes (default: one per core).",
            min=1,
            metavar="N",
            rich_help_panel=MANY,
        ),
    ] = None,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing", help="Skip jobs whose output exists (resume a run).", rich_help_panel=MANY
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard", help="Run only slice K of N (0-based), e.g. 0/4.", metavar="K/N", rich_help_panel=MANY
        ),
    ] = None,
    executor: Annotated[
        Executor,
        typer.Option(
            "--executor",
            help="local worker processes (default), or ray tasks.",
            show_default=False,
            metavar="NAME",
            rich_help_panel=MANY,
        ),
    ] = Executor.local,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster (default: a local one for the run).",
            metavar="ADDR",
            rich_help_panel=MANY,
        ),
    ] = None,
    manifest: Annotated[bool, typer.Option("--manifest", hidden=True)] = False,
) -> None:
    """Encode frames into a video file. Several inputs make one video each (see -o)."""
    from nvenc_cli import report

    out = report.Reporter(quiet=quiet, verbose=verbose, no_color=no_color, progress_path=progress)
    keep_freed_memory()
    if overwrite and no_overwrite:
        out.fail(NvencError("-y and -n exclude each other"), code=2)
    if output is None and not manifest:
        out.fail(NvencError("missing option '-o' / '--output'"), code=2)
    if json_report and output is not None and report.names_stdout(output):
        out.fail(NvencError("--json and -o - both need standard output: write the video to a file"), code=2)
    if output == "-" and sys.stdout.isatty():  # as gzip and zstd do: binary would garble it
        out.fail(
            NvencError("refusing to write video to a terminal: pipe or redirect -o - (… | ffplay -)"), code=2
        )
    from nvenc_cli.batch.jobs import uses_sample

    # -j sizes a pool of workers for several inputs; one input is encoded here whatever
    # -j says (a worker could not read this process's standard input).
    many = (
        manifest or len(input) > 1 or bool((jobs and input != ["-"]) or shard or skip_existing or ray_address)
    )
    try:
        many = many or (not manifest and uses_sample(output))
    except NvencError as exc:  # a template that is refused: one line, as any refusal
        out.fail(exc)
    if many or executor is not Executor.local:
        _encode_many(ctx, out, input, output, manifest)
    assert output is not None
    try:
        from nvenc_cli.batch.jobs import expand_output, has_placeholder, is_dir_template
        from nvenc_cli.sources import input_files

        templated = has_placeholder(output) or is_dir_template(output)
        if templated:
            output = expand_output(output, input[0], 0)
        stdout_data = output == "-" or json_report
        sound = None if no_audio else audio
        others = (("the --audio file", sound),)
        report.check_progress_path(progress, output, input_files(input[0]), stdout_data, others)
    except NvencError as exc:
        out.progress_file = None  # refused: it must not be opened, not even for the last block
        out.fail(exc)
    from nvenc_cli.batch.worker import make_folder, remove_folders

    made: list[Any] = []
    try:
        from nvenc_cli.encoding import encode_path

        if templated:
            made = make_folder(output)  # as for several inputs: the template names the folder
        options, inputs = _options(ctx.params)
        out.ffmpeg_logging()
        result = encode_path(input[0], output, options, inputs, progress=out.progress, on_plan=out.planned)
    except (NvencError, Interrupted) as exc:
        remove_folders(made)
        out.fail(exc)
    except KeyboardInterrupt:  # SIGINT's default handler, where a host kept it
        remove_folders(made)
        out.fail(Interrupted("interrupted"))
    except Exception as exc:
        remove_folders(made)
        out.fail(exc, code=70)
    out.done(input[0], output, result, json_report)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _options(params: dict[str, Any]) -> tuple[Any, Any]:
    """``EncodeOptions`` and ``InputOptions`` from ``encode``'s parameters by name: the
    command line's, or a manifest row's laid over them."""
    from nvenc_cli.encoding import options_from

    return options_from({name: _plain(value) for name, value in params.items()})


# Options that shape the run, not one job: a manifest row cannot set them.
_RUN_OPTIONS = frozenset(
    {
        "jobs",
        "skip_existing",
        "shard",
        "executor",
        "ray_address",
        "manifest",
        "json_report",
        "quiet",
        "verbose",
        "progress",
        "no_color",
        "no_overwrite",
        "input",
        "output",
    }
)


def _row_params(ctx: typer.Context, row: Any) -> dict[str, Any]:
    """A manifest row's options by long name (``pixel-format`` or ``pixel_format``),
    converted by the same Click types as the command line's."""
    by_name: dict[str, Any] = {}
    for param in ctx.command.params:
        for opt in getattr(param, "opts", ()):
            if opt.startswith("--"):
                by_name[opt[2:]] = param
        by_name[param.name] = param
    params: dict[str, Any] = {}
    for key, value in row.fields.items():
        if key in ("input", "output"):
            continue
        param = by_name.get(str(key).lstrip("-")) or by_name.get(str(key).lstrip("-").replace("_", "-"))
        if param is None or param.name in _RUN_OPTIONS:
            raise UsageError(f"{row.where}: {key!r} is not an option a job can set")
        if value is None:  # JSON null: the option's own default, not the command line's
            params[param.name] = param.get_default(ctx)
            continue
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\0" in text for text in texts):
            raise UsageError(f"{row.where}: invalid {key!r}: a value cannot contain a NUL character")
        if row.typed:
            value = _typed_value(param, value, f"{row.where}: invalid {key!r}")
        if getattr(param, "multiple", False) and isinstance(value, str):
            import shlex

            try:
                value = shlex.split(value)
            except ValueError as exc:  # an unclosed quote
                raise UsageError(f"{row.where}: invalid {key!r}: {exc}") from None
        try:
            params[param.name] = param.type_cast_value(ctx, value)
        except Exception as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise UsageError(f"{row.where}: invalid {key!r}: {message}") from None
    return params


def _typed_value(param: Any, value: Any, what: str) -> Any:
    """A JSON value of the option's own type, refused otherwise: a manifest never turns
    ``true`` into crf 1, ``2.7`` into 2 frames or ``"false"`` into a switch left on.
    Numbers are taken for the text options that hold one (``"fps": 29.97``), as written."""
    import math

    kind = type(param.type).__name__
    if getattr(param, "is_flag", False) or kind == "BoolParamType":
        if not isinstance(value, bool):
            raise UsageError(f"{what}: expected true or false, got {json_text(value)}")
        return value
    if getattr(param, "multiple", False):
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        if isinstance(value, str):
            return value
        raise UsageError(f"{what}: expected a string or a list of strings, got {json_text(value)}")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"{what}: expected {_expected(kind)}, got {json_text(value)}")
    if kind in ("IntParamType", "IntRange"):
        if not isinstance(value, int):
            raise UsageError(f"{what}: expected a whole number, got {json_text(value)}")
        return value
    if kind in ("FloatParamType", "FloatRange"):
        if isinstance(value, str) or not math.isfinite(value):
            raise UsageError(f"{what}: expected a number, got {json_text(value)}")
        return value
    if isinstance(value, str):
        return value
    if param.name not in _NUMBER_AS_TEXT or (isinstance(value, float) and not math.isfinite(value)):
        raise UsageError(f"{what}: expected {_expected(kind)}, got {json_text(value)}")
    return repr(value)


# Text options whose value is a number, which JSON may give as one ("fps": 29.97).
_NUMBER_AS_TEXT = frozenset({"fps", "audio_bitrate", "preset"})


def _expected(kind: str) -> str:
    return {
        "IntParamType": "a whole number",
        "IntRange": "a whole number",
        "FloatParamType": "a number",
        "FloatRange": "a number",
    }.get(kind, "a string")


def json_text(value: Any) -> str:
    """A manifest value as JSON spells it, shortened, for an error line."""
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _job_path(row: Any, name: str) -> str | None:
    """A row's ``input`` or ``output``: text naming a file, never a number or a list
    turned into one, never a name with a NUL character (no file system has one)."""
    value = row.fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UsageError(f"{row.where}: invalid {name!r}: expected a path string, got {json_text(value)}")
    if "\0" in value:
        raise UsageError(f"{row.where}: invalid {name!r}: a path cannot contain a NUL character")
    return value


def _manifest_jobs(ctx: typer.Context, inputs: list[str], template: str | None) -> list[Any]:
    """Every job of the manifest, the command line's options as each one's defaults."""
    from nvenc_cli.batch.jobs import JobSpec, expand_output, per_job_inputs
    from nvenc_cli.batch.manifest import read_manifest

    if len(inputs) != 1:
        raise UsageError("nvenc batch takes one manifest (JSON Lines or CSV)")
    specs = []
    for index, row in enumerate(read_manifest(inputs[0])):
        source = _job_path(row, "input")
        if not source:
            raise UsageError(f"{row.where}: the job has no 'input'")
        dest = _job_path(row, "output")
        if not dest:
            if template is None:
                raise UsageError(f"{row.where}: the job has no 'output' (or give -o TEMPLATE)")
            dest = template
        dest = str(dest)
        from nvenc_cli.batch.jobs import has_placeholder, is_dir_template

        if has_placeholder(dest) or is_dir_template(dest):
            dest = expand_output(dest, str(source), index)
        options, input_options = _options({**ctx.params, **_row_params(ctx, row)})
        input_options = per_job_inputs(input_options, str(source), index)
        specs.append(JobSpec(str(source), dest, options, input_options, index))
    return specs


def _check_run_files(progress: str | None, jobs: list[Any], as_json: bool, manifest: str | None) -> None:
    """The --progress file may be no job's output, input or sound file, nor the manifest
    (opening it truncates it); no job may write the manifest or standard output beside a
    --json report."""
    from nvenc_cli.paths import RunFiles
    from nvenc_cli.report import check_progress_path, names_stdout
    from nvenc_cli.sources import input_files

    if as_json:
        for job in jobs:
            if names_stdout(job.output):
                raise UsageError(
                    f"job {job.index}: --json and output {job.output} both need standard output: "
                    "write the video to a file"
                )
    files = RunFiles()
    files.reads("the manifest", manifest)
    for job in jobs:
        files.writes(f"the output of job {job.index}", job.output)
    files.check()
    for job in jobs:
        sound = job.options.audio.file if job.options.audio is not None else None
        others = (("the --audio file", sound), ("the manifest", manifest))
        check_progress_path(progress, job.output, input_files(job.input), as_json, others)


def _encode_many(
    ctx: typer.Context, out: Any, inputs: list[str], output: str | None, manifest: bool
) -> NoReturn:
    """Several jobs: plan them all (refusing collisions), run them, report, exit."""
    from nvenc_cli.batch.warmup import start_workers_early

    if ctx.params["executor"] is Executor.local:
        start_workers_early()  # unless __main__ has: its imports overlap the planning below
    from nvenc_cli.batch.jobs import jobs_from_inputs, parse_shard, select_shard
    from nvenc_cli.batch.report import BatchReporter
    from nvenc_cli.batch.run import ExecutorOptions, combined_exit_code, iter_encode_many, plan_jobs

    p = ctx.params
    out.progress_file = None  # the run's reporter writes --progress, for the whole run
    try:
        if manifest:
            specs = _manifest_jobs(ctx, inputs, output)
        else:
            assert output is not None
            options, input_options = _options(p)
            specs = jobs_from_inputs(inputs, output, options, input_options)
        shard = parse_shard(p["shard"]) if p["shard"] else None
        planned = plan_jobs(specs)
        executor = ExecutorOptions(_plain(p["executor"]), p["jobs"], p["ray_address"], p["verbose"])
        _check_run_files(p["progress"], planned, p["json_report"], inputs[0] if manifest else None)
    except NvencError as exc:
        out.progress_file = None  # refused or not yet needed: the run's reporter opens it
        out.fail(exc)
    mine = select_shard(planned, shard)
    if executor.executor == "ray":
        where = f"ray {executor.ray_address}" if executor.ray_address else "ray, local cluster"
    else:
        from nvenc_cli.batch.executors import default_workers

        count = min(executor.workers or default_workers(), max(1, len(mine)))
        where = f"{count} worker{'s' if count > 1 else ''}"
    reporter = BatchReporter(
        len(mine),
        quiet=p["quiet"],
        verbose=p["verbose"],
        no_color=p["no_color"],
        progress_path=p["progress"],
        as_json=p["json_report"],
        workers=where,
    )
    runs = iter_encode_many(
        planned, executor=executor, skip_existing=p["skip_existing"], shard=shard, on_event=reporter.event
    )
    try:
        try:
            reporter.start()
            for result in runs:
                reporter.result(result)
        finally:
            runs.close()  # any way out stops the workers and removes their temporary files
        code = combined_exit_code(reporter.results)
        reporter.finish(code)
    except KeyboardInterrupt:
        reporter.finish(130, interrupted="interrupted")
        raise typer.Exit(130) from None
    except Interrupted as exc:
        reporter.finish(exc.exit_code, interrupted=str(exc))
        raise typer.Exit(exc.exit_code) from None
    except NvencError as exc:
        reporter.stop()
        out.fail(exc)
    except Exception as exc:
        reporter.stop()
        out.fail(exc, code=70)
    raise typer.Exit(code)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    options_metavar="JOBS [ENCODE OPTIONS]",
    epilog="Examples:\n"
    "  nvenc batch jobs.jsonl                        # each line names input and output\n"
    "  nvenc batch jobs.csv -o 'out/{index}.mp4' --crf 20\n"
    "  nvenc batch jobs.jsonl --skip-existing -j 4   # resume a run\n"
    '  nvenc batch jobs.jsonl --shard "$SLURM_ARRAY_TASK_ID/8"\n'
    "Manifests, shards, Ray: docs/cli/many-clips.md in the source.",
)
def batch(ctx: typer.Context) -> None:
    """Encode every job of a manifest (JSON Lines or CSV), with encode's options as defaults.

    JOBS is a JSON Lines file (one object per line), a CSV file with a header row, or - for standard input. Each job names an "input", an "output" (or -o TEMPLATE fills it) and any nvenc encode option by its long name ("crf", "pixel-format", "option").

    Every nvenc encode option may follow JOBS and is then each job's default; -j, --skip-existing, --shard, --executor, --json and --progress work as for several inputs of nvenc encode.
    """
    if not ctx.args:
        _die("give the manifest: nvenc batch JOBS [encode options] (see nvenc batch --help)", 2)
    assert ctx.parent is not None
    command = ctx.parent.command.get_command(ctx.parent, "encode")  # type: ignore[attr-defined]
    with command.make_context("nvenc batch", ["--manifest", *ctx.args], parent=ctx.parent) as sub:
        command.invoke(sub)


@app.command(
    epilog="Examples:\n"
    "  nvenc info                                   # tables on a terminal, text in a pipe\n"
    "  nvenc info --json | jq '.backends'\n"
    "  nvenc info | grep -i nvenc\n"
    "NVENC missing? docs/troubleshooting.md in the source.",
)
def info(
    json_report: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No ANSI colours (also NO_COLOR=1).")] = False,
) -> None:
    """Show versions, backends (available or why not) and what each can encode."""
    from nvenc_cli import report

    report.print_info(json_report, no_color=no_color)


@app.command(
    epilog="Examples:\n"
    "  nvenc testsrc frames.npy                     # 60 frames of 1280x720\n"
    "  nvenc testsrc small.npz -s 320x240 --frames 24\n"
    "  nvenc testsrc pngs/ --pattern smptebars      # a folder of PNGs\n"
    "Then: nvenc encode frames.npy -o out.mp4",
)
def testsrc(
    output: Annotated[str, typer.Argument(help="Where to write: .npy, .npz, .pt, or a folder for PNGs.")],
    size: Annotated[str, typer.Option("-s", "--size", help="WIDTHxHEIGHT.")] = "1280x720",
    frames: Annotated[int, typer.Option("--frames", help="Number of frames.", min=1)] = 60,
    pattern: Annotated[
        str, typer.Option("--pattern", help="FFmpeg lavfi pattern: testsrc2, testsrc, smptebars, mandelbrot.")
    ] = "testsrc2",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print nothing on success.")] = False,
) -> None:
    """Write sample frames (FFmpeg's testsrc2 pattern) for demos and tests."""
    from nvenc_cli import testsrc as samples

    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        _die(f"invalid --size {size!r}: use WIDTHxHEIGHT, e.g. 1280x720", 2)
    if width < 1 or height < 1:
        _die(f"invalid --size {size!r}: width and height must be ≥ 1", 2)
    try:
        samples.write(output, width, height, frames, pattern)
    except NvencError as exc:
        _die(str(exc), exc.exit_code)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        _die(f"{output}: cannot write ({exc.strerror or exc})", 74 if full else 73)
    except Exception as exc:
        _die(f"internal error: {type(exc).__name__}: {exc} (please report it)", 70)
    from nvenc_cli.report import counted, printable

    if not quiet:
        typer.echo(
            f"nvenc: wrote {counted(frames, 'frame')} of {width}x{height} {pattern} to {printable(output)}",
            err=True,
        )


def _die(message: str, code: int) -> NoReturn:
    from nvenc_cli.report import color_enabled, write_prefixed

    write_prefixed("error", message, color_enabled())
    raise typer.Exit(code)


def run() -> None:
    """Console-script entry point: Typer's parsing, nvenc's colour rules and error format.

    Usage errors become one ``nvenc: error:`` line plus the usage and a hint, like every
    other failure, instead of a boxed panel that scripts and CI logs cannot grep.
    """
    # nvenc does no linear algebra; OpenBLAS's thread pool only slows numpy's import.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    signals.install()  # again, for callers that enter here directly
    try:
        _fill_closed_std_fds()
        _apply_color_rules(sys.argv[1:])
        _show_completion(sys.argv[1:])
        _check_habits(sys.argv[1:])
        click_error, abort = _click_exceptions()
        try:
            code = app(standalone_mode=False, prog_name="nvenc")  # same name under python -m
        except click_error as exc:
            _usage_error(exc)
        except (abort, KeyboardInterrupt):  # Ctrl-C outside an encode (parsing, shutting down)
            code = 130
    except Interrupted as exc:  # a signal outside an encode: parsing, start-up, the usage line
        signals.settle()
        _stop_line(exc)
    # The outcome is decided: a late signal must not turn it into a traceback at shutdown.
    signals.settle()
    sys.exit(code if isinstance(code, int) else 0)


def _show_completion(argv: list[str]) -> None:
    """``--show-completion zsh`` prints that shell's script (Typer's flag alone takes no
    shell name: it guesses the current shell and ignores the word after it)."""
    if not argv or not argv[0].startswith("--show-completion"):
        return
    name, _, attached = argv[0].partition("=")
    if name != "--show-completion":
        return
    shell = attached or (argv[1] if len(argv) > 1 else "")
    if not shell:
        return  # Typer detects the current shell
    from nvenc_cli.completion import SHELLS, completion_script

    if shell not in SHELLS:
        sys.stderr.write(
            f"nvenc: error: unknown shell {shell!r} for --show-completion: choose {', '.join(SHELLS)}\n"
        )
        sys.exit(2)
    sys.stdout.write(completion_script(shell) + "\n")
    sys.exit(0)


def _check_habits(argv: list[str]) -> None:
    """ffmpeg spellings (``-crf 20``) and a repeated ``-o`` fail with one line, exit 2,
    before Typer would misread them; a command line without either costs nothing."""
    from nvenc_cli import habits

    outputs = sum(1 for t in argv if t in ("-o", "--output") or t.startswith("--output="))
    if outputs < 2 and not any(t in habits.WATCHED for t in argv):
        return
    options, takes_value = _command_options(argv[0] if argv else "")
    message = habits.check(argv, takes_value.__contains__, options.__contains__)
    if message is None and argv[:1] == ["encode"]:
        message = habits.repeated_output(argv, takes_value.__contains__)
    if message is not None:
        from nvenc_cli.report import color_enabled, write_prefixed

        write_prefixed("error", message, color_enabled("--no-color" in argv))
        sys.exit(2)


def _command_options(name: str) -> tuple[set[str], set[str]]:
    """A command's option names, and those of them that take a value (the next token)."""
    command = getattr(typer.main.get_command(app), "commands", {}).get(name)
    every: set[str] = set()
    valued: set[str] = set()
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") != "option":
            continue
        names = {*param.opts, *param.secondary_opts}
        every |= names
        if not getattr(param, "is_flag", False):
            valued |= names
    return every, valued


def _stop_line(exc: Interrupted) -> NoReturn:
    sys.stderr.write(f"nvenc: error: {exc}\n")
    sys.stderr.flush()
    sys.exit(exc.exit_code)


def _fill_closed_std_fds() -> None:
    """Point a closed stdin/stdout/stderr (``2>&-``, some daemons) at /dev/null.

    Otherwise the next file opened takes the lowest free descriptor, so the output video
    could become fd 2 and receive a library's log lines, and Python's ``sys.stderr`` is None,
    so reporting the outcome would itself crash. Closed stdout means output is discarded.
    """
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        if os.open(os.devnull, os.O_RDWR) != fd:  # lowest free descriptor: this one
            continue
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 - lives as long as sys


def _apply_color_rules(argv: list[str]) -> None:
    """Make Typer's rich help obey NO_COLOR/--no-color fully (rich alone keeps bold)."""
    if "--no-color" in argv or os.environ.get("NO_COLOR"):
        import typer.rich_utils

        typer.rich_utils.COLOR_SYSTEM = None


def _click_exceptions() -> tuple[type[Exception], type[BaseException]]:
    """Click's base exception (vendored by newer Typer, a dependency of older) and Abort."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:
        from click.exceptions import ClickException  # type: ignore[no-redef]
    return ClickException, typer.Abort


def _usage_error(exc: Any) -> NoReturn:
    from nvenc_cli.report import color_enabled, write_prefixed

    code = getattr(exc, "exit_code", 2)
    if type(exc).__name__ == "NoArgsIsHelpError":  # plain `nvenc`: the help was the message
        text = exc.format_message()
        if text.strip():
            sys.stderr.write(text.rstrip("\n") + "\n")
        sys.exit(code)
    message = exc.format_message().strip().rstrip(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    write_prefixed("error", message, color_enabled("--no-color" in sys.argv))
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        sys.stderr.write(ctx.get_usage() + "\n")
        sys.stderr.write(f"Try '{ctx.command_path} --help' for help.\n")
    sys.exit(code)
