"""Open any supported input as a ``Source`` (see ``sources.base``)."""

from __future__ import annotations

import os

from nvenc_cli.errors import InputMissingError, UsageError
from nvenc_cli.sources.base import Source

__all__ = ["Source", "batch_samples", "input_files", "open_source"]


def batch_samples(spec: str, key: str | None = None) -> int:
    """How many clips the 5-D batch ``spec`` holds (read from its header alone), for an
    output template with ``{sample}``; anything else is refused by name."""
    try:
        source = open_source(spec, key=key, sample=0)
    except UsageError as exc:  # worded for the option the user gave: the template
        raise UsageError(
            str(exc).replace("--sample picks a clip", "{sample} in -o names the clips")
        ) from None
    with source:
        count = getattr(source, "samples", None)
    if count is None:  # open_source refused a non-batch already; kept for the type
        raise UsageError(f"{{sample}} in -o needs a 5-D batch input; {spec} is not one")
    return int(count)


def input_files(spec: str) -> list[str]:
    """The files an input names (a sequence's images, else the path itself), listed
    without opening any: what nothing else the run writes may be."""
    from nvenc_cli.errors import NvencError
    from nvenc_cli.sources.images import is_image_spec, list_images

    try:
        if spec == "-" or not is_image_spec(spec):
            return [spec]
        return [spec, *list_images(spec)]
    except NvencError:  # reported, worded, when the input itself is opened
        return [spec]


def open_source(
    spec: str,
    *,
    layout: str | None = None,
    key: str | None = None,
    start_number: int | None = None,
    start: int = 0,
    frames: int | None = None,
    input_size: tuple[int, int] | None = None,
    input_pixel_format: str | None = None,
    sample: int | None = None,
) -> Source:
    """Pick the reader by what ``spec`` is: array file, image sequence, video file, or a
    pipe (``-``, a FIFO), or raw frames when ``input_size`` gives their size."""
    from nvenc_cli.sources.images import IMAGE_EXTENSIONS, ImageSource, is_image_spec
    from nvenc_cli.sources.pipe import is_pipe, open_pipe
    from nvenc_cli.storage import streams

    ext = os.path.splitext(spec)[1].lower()
    if input_pixel_format is not None and input_size is None:
        raise UsageError("--input-pixel-format needs --input-size WxH (raw frames carry no size)")
    if is_pipe(spec) or (input_size is not None and os.path.isfile(spec)):
        if key is not None:
            raise UsageError("--key applies to .npz and .pt files, not to a pipe")
        source: Source = open_pipe(spec, size=input_size, pixel_format=input_pixel_format, layout=layout)
    elif input_size is not None:
        raise InputMissingError(f"{spec}: no such file")
    elif is_image_spec(spec):
        source = ImageSource(spec, start_number)
    elif not os.path.exists(spec) and not streams(spec):
        raise InputMissingError(f"{spec}: no such file or directory")
    elif ext == ".npy":
        from nvenc_cli.sources.arrays import NpySource

        source = NpySource(spec, layout, sample)
    elif ext == ".npz":
        from nvenc_cli.sources.arrays import NpzSource

        source = NpzSource(spec, key, layout, sample)
    elif ext in (".pt", ".pth"):
        from nvenc_cli.sources.arrays import TorchSource

        source = TorchSource(spec, key, layout, sample)
    elif ext in IMAGE_EXTENSIONS:
        source = ImageSource(spec, start_number)
    else:
        from nvenc_cli.sources.video import VideoSource

        source = VideoSource(spec)
    if key is not None and ext not in (".npz", ".pt", ".pth") and not is_pipe(spec):
        source.close()
        raise UsageError(f"--key applies to .npz and .pt inputs, not {spec}")
    if sample is not None and getattr(source, "samples", None) is None:
        source.close()
        raise UsageError(f"--sample picks a clip of a 5-D batch in a .npy, .npz or .pt file, not {spec}")
    try:
        source.select(start, frames)
    except Exception:
        source.close()
        raise
    return source
