"""Jobs as plain data, decided before anything runs.

A run of many encodes is a list of ``JobSpec``s built up front: output templates are
expanded, collisions refused, the shard picked and finished outputs skipped here, so an
executor only ever sees independent jobs and every shard of a cluster run computes the
same list from the same arguments.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nvenc_cli.encoding import InputOptions
from nvenc_cli.errors import UsageError
from nvenc_cli.options import EncodeOptions

PLACEHOLDERS = ("stem", "name", "parent", "index", "ext", "sample")
PLACEHOLDER_TEXT = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
DIR_TEMPLATE = "{stem}.mp4"


@dataclass(frozen=True)
class JobSpec:
    """One encode: ``encode_path(input, output, options, inputs)`` and nothing more.

    ``index`` is the job's place in the whole list (before sharding), so ``{index}`` and
    the reports name a job the same way on every machine of a sharded run.
    """

    input: str
    output: str
    options: EncodeOptions = field(default_factory=EncodeOptions)
    inputs: InputOptions = field(default_factory=InputOptions)
    index: int = 0
    run_tag: str = ""
    """The run's mark on its temporary files (see ``mux.set_run_tag``): cleanup after a
    killed worker removes this run's files only."""


MAX_WIDTH = 255
"""The widest a placeholder may be padded (``{index:>N}``): one file name's worth."""

_SPEC = re.compile(
    r"^(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[bcdeEfFgGnosxX%]?$"
)


def has_placeholder(template: str) -> bool:
    """Whether ``template`` names at least one of the known placeholders."""
    return any(name in PLACEHOLDERS for name, _ in _fields(template))


def _fields(template: str) -> list[tuple[str, str]]:
    """Each replacement field of ``template`` as (name, format spec), checked: the names
    are a closed set (no ``{stem.upper}``, ``{name[0]}``, ``{0}``), no ``!r`` conversion,
    no nested field, and a width or precision no wider than one file name."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"invalid output template {template!r} ({exc}): use {PLACEHOLDER_TEXT}") from None
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            shown = name if name else ""
            raise UsageError(f"unknown placeholder {{{shown}}} in -o {template!r}: use {PLACEHOLDER_TEXT}")
        if conversion is not None:
            raise UsageError(
                f"placeholder {{{name}!{conversion}}} in -o {template!r}: conversions are not taken"
            )
        match = _SPEC.match(spec or "")
        if match is None or "{" in (spec or ""):
            raise UsageError(f"invalid format {{{name}:{spec}}} in -o {template!r}: e.g. {{index:04d}}")
        for part in (match.group("width"), match.group("precision")):
            if part and int(part) > MAX_WIDTH:
                raise UsageError(
                    f"invalid format {{{name}:{spec}}} in -o {template!r}: "
                    f"at most {MAX_WIDTH} characters wide"
                )
        fields.append((name, spec or ""))
    return fields


def is_dir_template(output: str) -> bool:
    """``-o DIR/`` (a trailing separator) means ``DIR/{stem}.mp4``."""
    return output.endswith(("/", os.sep))


def uses_sample(template: str | None) -> bool:
    """Whether ``-o`` writes each clip of a 5-D batch to its own file (``{sample}``)."""
    return template is not None and any(name == "sample" for name, _ in _fields(template))


def expand_output(template: str, input_spec: str, index: int, sample: int | None = None) -> str:
    """The output path for one input: placeholders filled from the input's path.

    ``{stem}`` is the file name without its extension, ``{name}`` with it, ``{ext}`` the
    extension without the dot, ``{parent}`` the name of the folder holding the input and
    ``{index}`` the input's position (0-based; ``{index:04d}`` pads it), ``{sample}`` the
    clip of a 5-D batch. A folder or glob input uses its last path component as the name.
    Names are taken from the input's absolute path, so ``../a.npy`` has a real folder name
    as ``{parent}``, never ``..``: a filled-in value is one path component, and the output
    stays inside the folder the template's own text names.
    """
    if is_dir_template(template):
        template = template + DIR_TEMPLATE
    _fields(template)
    trimmed = input_spec.rstrip("/\\") or input_spec
    path = Path(os.path.abspath(trimmed)) if trimmed not in ("", "-") else Path("stdin")
    values = {
        "stem": path.stem if trimmed not in ("", "-") else "stdin",
        "name": path.name,
        "ext": path.suffix.lstrip("."),
        "parent": path.parent.name,
        "index": index,
        "sample": sample,
    }
    if sample is None and uses_sample(template):
        raise UsageError(
            f"{{sample}} in -o {template!r} names the clips of a 5-D batch; {input_spec} is one clip"
        )
    for key in ("stem", "name", "parent", "ext"):
        text = str(values[key])
        if text in (".", "..") or "/" in text or os.sep in text or "\0" in text:
            raise UsageError(f"{input_spec}: {{{key}}} would be {text!r}, which is no file name")
    try:
        return template.format(**values)
    except (ValueError, IndexError, KeyError) as exc:
        raise UsageError(f"invalid output template {template!r} ({exc}): use {PLACEHOLDER_TEXT}") from None


def jobs_from_inputs(
    inputs: Sequence[str],
    template: str,
    options: EncodeOptions | None = None,
    input_options: InputOptions | None = None,
) -> list[JobSpec]:
    """One job per input, its output from ``template``.

    Several inputs need a template that tells their outputs apart; without one the likely
    story is a shell-expanded image glob, and the error says to quote it.
    """
    if not inputs:
        raise UsageError("no input given")
    if len(inputs) > 1 and not (is_dir_template(template) or has_placeholder(template)):
        raise UsageError(_no_placeholder_message(inputs, template))
    options = options or EncodeOptions()
    input_options = input_options or InputOptions()
    if uses_sample(template):
        return _sample_jobs(inputs, template, options, input_options)
    return [
        JobSpec(spec, expand_output(template, spec, i), options, per_job_inputs(input_options, spec, i), i)
        for i, spec in enumerate(inputs)
    ]


def per_job_inputs(input_options: InputOptions, spec: str, index: int) -> InputOptions:
    """A job's own ``--timestamps`` file: placeholders in it are filled from the job's
    input as in ``-o`` (``--timestamps '{stem}.times.npy'``)."""
    from dataclasses import replace

    path = input_options.timestamps
    if path is None or not has_placeholder(path):
        return input_options
    return replace(input_options, timestamps=expand_output(path, spec, index))


def _sample_jobs(
    inputs: Sequence[str], template: str, options: EncodeOptions, input_options: InputOptions
) -> list[JobSpec]:
    """One job per clip of each 5-D batch input (``-o 'out_{sample}.mp4'``): each reads
    its clip with ``--sample``, so the batch machinery (``-j``, reports) applies."""
    from dataclasses import replace

    from nvenc_cli.sources import batch_samples

    if input_options.sample is not None:
        raise UsageError("--sample encodes one clip and {sample} in -o writes every clip: give one of them")
    jobs: list[JobSpec] = []
    for spec in inputs:
        for sample in range(batch_samples(spec, input_options.key)):
            index = len(jobs)
            output = expand_output(template, spec, index, sample)
            jobs.append(JobSpec(spec, output, options, replace(input_options, sample=sample), index))
    return jobs


def _no_placeholder_message(inputs: Sequence[str], template: str) -> str:
    from nvenc_cli.sources.images import IMAGE_EXTENSIONS

    head = f"{len(inputs)} inputs but one output {template!r}"
    if all(Path(spec).suffix.lower() in IMAGE_EXTENSIONS for spec in inputs):
        folder = os.path.dirname(inputs[0]) or "."
        ext = Path(inputs[0]).suffix
        return (
            f"{head}: the shell expanded an image glob into {len(inputs)} files; quote it to make "
            f"one video of them ('{os.path.join(folder, '*' + ext)}'), or put a placeholder "
            f"({PLACEHOLDER_TEXT}) in -o for one video per input"
        )
    return (
        f"{head}: put a placeholder in -o ({PLACEHOLDER_TEXT}, e.g. -o 'out/{{stem}}.mp4') "
        "or give a folder (-o out/) for one video per input"
    )


def _key(path: str) -> tuple[object, ...]:
    """What makes two names one file: the inode of an existing file (so a hard link or a
    symbolic link is the file it reaches), else the resolved path of one still to be made."""
    from nvenc_cli.paths import identity

    found = identity(path)
    if found is not None:
        return ("inode", *found)
    return ("path", os.path.normcase(os.path.realpath(path)))


def check_collisions(jobs: Iterable[JobSpec]) -> None:
    """Refuse, before any work, two jobs writing one file or a job writing over an input."""
    jobs = list(jobs)
    for job in jobs:
        sound = job.options.audio.file if job.options.audio is not None else None
        for name in (job.input, job.output, sound):
            if name is not None and "\0" in name:
                raise UsageError(f"job {job.index}: a path cannot contain a NUL character")
    if len(jobs) > 1 and any(job.input == "-" for job in jobs):
        raise UsageError("standard input (-) can feed one encode, not one of several jobs")
    if any(job.input == "-" for job in jobs):
        raise UsageError(
            "standard input (-) is read by this process only, not by a worker: "
            "drop --shard, --skip-existing and --executor for it"
        )
    outputs: dict[str, JobSpec] = {}
    for job in jobs:
        if job.output == "-":
            if len(jobs) > 1:
                raise UsageError("-o - (standard output) takes one input, not several")
            continue
        key = _key(job.output)
        if key in outputs:
            first = outputs[key]
            raise UsageError(
                f"inputs {first.input} and {job.input} would both be written to {job.output}: "
                f"use a placeholder that tells them apart ({PLACEHOLDER_TEXT})"
            )
        outputs[key] = job
    for job in jobs:
        hit = outputs.get(_key(job.input))
        if hit is not None:
            raise UsageError(f"{hit.output}: the output of {hit.input} would overwrite the input {job.input}")
        sound = job.options.audio.file if job.options.audio is not None else None
        hit = outputs.get(_key(sound)) if sound is not None and sound != "-" else None
        if hit is not None:
            raise UsageError(
                f"{hit.output}: the output of {hit.input} would overwrite the --audio file of {job.input}"
            )


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 0 ≤ K < N: the K-th of N slices (0-based, as Kubernetes' indexed jobs
    and ``--array=0-N`` Slurm arrays number them)."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise UsageError(f"invalid --shard {text!r}: use K/N, e.g. 0/4 for the first of 4 slices") from None
    if n < 1 or not 0 <= k < n:
        raise UsageError(f"invalid --shard {text!r}: K must be 0…N-1 and N at least 1")
    return k, n


def select_shard(jobs: Sequence[JobSpec], shard: tuple[int, int] | None) -> list[JobSpec]:
    """Job ``i`` belongs to slice ``i mod N``: disjoint, together complete, and balanced
    even when the list is sorted by size (neighbours go to different machines)."""
    if shard is None:
        return list(jobs)
    k, n = shard
    return [job for job in jobs if job.index % n == k]


def is_done(job: JobSpec) -> bool:
    """An existing output is a complete one: outputs appear only by atomic rename (an
    object in a store, only once uploaded whole)."""
    from nvenc_cli import storage

    if storage.remote(job.output):
        return storage.exists(job.output)
    if storage.is_url(job.output):
        return os.path.isfile(storage.file_path(job.output))
    return job.output != "-" and os.path.isfile(job.output)
