"""The library entry point behind ``nvenc encode``: a file (or sequence) in, a video out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nvenc_cli.mux import Destination, check_destination
from nvenc_cli.options import EncodeOptions, container_for
from nvenc_cli.pipeline import Progress, Result, run
from nvenc_cli.plan import EncodePlan, make_plan
from nvenc_cli.sources import Source, open_source


@dataclass(frozen=True)
class InputOptions:
    """How to read the input: which array, which axes, which frames."""

    key: str | None = None
    layout: str | None = None
    start_number: int | None = None
    start: int = 0
    frames: int | None = None


def prepare(
    spec: str, dest: Destination, options: EncodeOptions, inputs: InputOptions
) -> tuple[Source, EncodePlan]:
    """Open the input and resolve the plan; everything that can be refused is refused here."""
    container = check_output(dest, options, inputs=(spec,))
    source = open_source(
        spec,
        layout=inputs.layout,
        key=inputs.key,
        start_number=inputs.start_number,
        start=inputs.start,
        frames=inputs.frames,
    )
    try:
        plan = make_plan(options, source.info, container, source.fps_hint)
    except BaseException:
        source.close()
        raise
    adopt_plan(source, plan)
    return source, plan


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


def run_source(
    source: Source,
    plan: EncodePlan,
    dest: Destination,
    options: EncodeOptions,
    progress: Progress | None = None,
) -> Result:
    """Encode every frame ``source`` yields, in windows of ``--batch-size``."""
    return run(
        source.batches(options.batch_size),
        plan,
        dest,
        overwrite=options.overwrite,
        total=source.frame_count,
        progress=progress,
    )


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
    source, plan = prepare(spec, dest, options, inputs or InputOptions())
    with source:
        if on_plan is not None:
            on_plan(plan)
        return run_source(source, plan, dest, options, progress)
