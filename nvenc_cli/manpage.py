"""Build the nvenc(1) manual page from the Typer app, so the page and ``--help`` cannot drift.

Commands, options, metavars, defaults and help texts are read from the Click command tree
behind the app (``typer.main.get_command``); the prose sections (inputs, colour, progress
format, exit status, environment, examples) are written here. ``make man`` regenerates
``man/nvenc.1``; ``tests/test_man.py`` fails when the committed page is stale.

    python -m nvenc_cli.manpage                    # the page on stdout, dated today
    python -m nvenc_cli.manpage --output man/nvenc.1
    python -m nvenc_cli.manpage --check man/nvenc.1
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import os
import re
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nvenc_cli import __version__
from nvenc_cli.options import CONTAINERS, DEFAULT_CODEC

PAGE_PATH = Path(__file__).resolve().parent.parent / "man" / "nvenc.1"
WIDTH = 78  # source line width; roff refills the text anyway

# Metavars for options whose value a name alone would not explain.
_METAVARS = {
    "output": "FILE",
    "fps": "RATE",
    "codec": "CODEC",
    "pixel_format": "FORMAT",
    "crf": "N",
    "preset": "PRESET",
    "option": "KEY=VALUE",
    "key": "KEY",
    "format": "FORMAT",
    "progress": "FILE|-",
    "size": "WxH",
    "pattern": "NAME",
}
# Glyphs with portable roff names (they fall back to ASCII on ASCII terminals).
_GLYPHS = {
    "…": "\\&...",
    "→": "\\(->",
    "≥": "\\(>=",
    "≤": "\\(<=",
    "–": "\\(en",
    "—": "\\(em",
    "×": "\\(mu",
    "’": "'",
    "“": '"',
    "”": '"',
}


# -- roff text ----------------------------------------------------------------------------
def esc(text: str) -> str:
    """Escape running text for roff: backslashes, minus signs, non-ASCII characters."""
    out = []
    for ch in text.replace("\\", "\\e"):
        if ch == "-":
            out.append("\\-")
        elif ch in _GLYPHS:
            out.append(_GLYPHS[ch])
        elif ord(ch) > 127:
            out.append(f"\\[u{ord(ch):04X}]")
        else:
            out.append(ch)
    return "".join(out)


def _line(text: str) -> str:
    """A source line that roff will not mistake for a request, nor an abbreviation's full
    stop for the end of a sentence."""
    text = re.sub(r"\b(e\.g|i\.e|etc)\.(?!\\&)", r"\1.\\&", text)
    return "\\&" + text if text[:1] in (".", "'") else text


_SENTENCE_END = r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+"


def _wrap(escaped: str) -> list[str]:
    """Wrap already escaped roff text at spaces (escapes never contain one)."""
    pieces = textwrap.wrap(escaped, WIDTH, break_long_words=False, break_on_hyphens=False)
    return [_line(piece) for piece in pieces]


def _sentences(flat: str, starts: str) -> list[str]:
    return re.split(_SENTENCE_END + f"(?=[{starts}])", flat)


def para(text: str) -> list[str]:
    """Plain text (help strings) as roff source: one sentence per line (roff's convention, so
    it can put two spaces after full stops), long sentences wrapped."""
    lines: list[str] = []
    for sentence in _sentences(" ".join(text.split()), "A-Z(`'\""):
        lines += _wrap(esc(sentence))
    return lines


def markup(text: str) -> str:
    """Inline markup for the hand-written prose: ``**bold**`` and ``__italic__``."""
    text = esc(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", text)
    return re.sub(r"__(.+?)__", r"\\fI\1\\fR", text)


def prose(text: str) -> list[str]:
    """Hand-written paragraphs (blank-line separated) with ``**bold**``/``__italic__`` markup."""
    out: list[str] = []
    for block in textwrap.dedent(text).strip().split("\n\n"):
        if out:
            out.append(".PP")
        for sentence in _sentences(" ".join(block.split()), "A-Z0-9(*_"):
            out += _wrap(markup(sentence))
    return out


def items(entries: Iterable[tuple[str, str]]) -> list[str]:
    """A ``.TP`` list: (tag in markup, body in markup)."""
    out: list[str] = []
    for tag, body in entries:
        out += [".TP", _line(markup(tag)), *prose(body)]
    return out


def example(comment: str, command: str) -> list[str]:
    """One example: a sentence, then the command indented in a no-fill block."""
    return [*prose(comment), ".PP", ".RS 4", ".nf", _line(esc(command)), ".fi", ".RE"]


# -- the command tree ---------------------------------------------------------------------
def command_tree() -> tuple[Any, Any]:
    """The Click group behind the Typer app and a context for it (as ``nvenc`` sees it)."""
    import typer.main

    from nvenc_cli.cli import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="nvenc", **group.context_settings)
    return group, ctx


def subcommands(group: Any, ctx: Any) -> list[tuple[str, Any, Any]]:
    """(name, command, context) for every visible subcommand, in declaration order."""
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or getattr(cmd, "hidden", False):
            continue
        sub = cmd.context_class(cmd, info_name=name, parent=ctx, **cmd.context_settings)
        out.append((name, cmd, sub))
    return out


def visible_params(cmd: Any, ctx: Any) -> list[Any]:
    return [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)]


def is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _choices(param: Any) -> list[str]:
    desc = getattr(param, "type_descriptor", None)
    choices = getattr(desc, "choices", None) or getattr(getattr(param, "type", None), "choices", None)
    return [str(getattr(c, "value", c)) for c in choices or ()]


def metavar(param: Any) -> str:
    """What an option's value is called on the page: its choices, or a descriptive name."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    choices = _choices(param)
    if choices:
        return "{" + "|".join(choices) + "}"
    if param.metavar and param.metavar not in ("TEXT", "INTEGER", "FLOAT"):
        return str(param.metavar)
    if param.name in _METAVARS:
        return _METAVARS[param.name]
    if _value_type(param) in ("int", "integer", "float"):
        return "N"
    return param.name.upper().replace("_", "-")


def _value_type(param: Any) -> str:
    """``int``, ``float``, ``str``…: from Typer's type descriptor, or Click's type name."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type):
        return annotation.__name__
    name = str(getattr(getattr(param, "type", None), "name", "")).lower()
    return name.removesuffix(" range")  # Click's IntRange/FloatRange (``min=``) count too


def option_tag(param: Any) -> str:
    """``\\fB\\-o\\fR, \\fB\\-\\-output\\fR \\fIFILE\\fR`` for the line after ``.TP``."""
    names = [*param.opts, *getattr(param, "secondary_opts", [])]
    names.sort(key=lambda n: (n.startswith("--"), n))  # short form first, as in man pages
    tag = ", ".join(f"\\fB{esc(n)}\\fR" for n in names)
    value = metavar(param)
    return f"{tag} \\fI{esc(value)}\\fR" if value else tag


def _default_text(param: Any) -> str | None:
    default = param.default
    if default is None or getattr(param, "is_flag", False) or param.show_default is False:
        return None
    if callable(default) or default in ((), []):
        return None
    return str(getattr(default, "value", default))


def _range_text(param: Any) -> str | None:
    info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None)
    low = getattr(info, "min", None) if info is not None else getattr(param.type, "min", None)
    return f"At least {low}." if low is not None else None


def param_body(param: Any) -> list[str]:
    """The help text plus what --help shows in brackets: required, range, default."""
    text = (param.help or "").strip()
    extras = []
    if getattr(param, "multiple", False):
        extras.append("Repeatable.")
    if is_option(param) and param.required:
        extras.append("Required.")
    rng = _range_text(param)
    if rng:
        extras.append(rng)
    default = _default_text(param)
    if default is not None:
        extras.append(f"Default: {default}.")
    body = " ".join([text, *extras]).strip()
    return para(body) if body else []


def param_items(cmd: Any, ctx: Any) -> list[str]:
    out: list[str] = []
    for param in visible_params(cmd, ctx):
        if is_option(param):
            tag = option_tag(param)
        else:
            tag = f"\\fI{esc(str(param.metavar or param.name.upper()))}\\fR"
        out += [".TP", _line(tag), *param_body(param)]
    return out


def synopsis_line(name: str, cmd: Any, ctx: Any) -> list[str]:
    """``nvenc encode INPUT -o FILE [OPTIONS]``: arguments and required options spelled out."""
    parts = [f"\\fBnvenc {esc(name)}\\fR"]
    for param in visible_params(cmd, ctx):
        if not is_option(param):
            parts.append(f"\\fI{esc(str(param.metavar or param.name.upper()))}\\fR")
        elif param.required:
            parts.append(f"\\fB{esc(param.opts[0])}\\fR \\fI{esc(metavar(param))}\\fR")
    # A command that names its own words (batch: JOBS [ENCODE OPTIONS]) is shown with them.
    words = getattr(cmd, "options_metavar", None) or "[OPTIONS]"
    if words == "[OPTIONS]":
        parts.append("[\\fIOPTIONS\\fR]")
    else:
        for word in re.findall(r"\[[^\]]*\]|\S+", words):
            inner = esc(word.strip("[]"))
            parts.append(f"[\\fI{inner}\\fR]" if word.startswith("[") else f"\\fI{inner}\\fR")
    return [_line(" ".join(parts)), ".br"]


# -- the page ------------------------------------------------------------------------------
def render(date: str) -> str:
    """The whole page as roff source."""
    group, ctx = command_tree()
    commands = subcommands(group, ctx)
    lines = [
        '.\\" Generated by python -m nvenc_cli.manpage (make man); edit that, not this file.',
        f'.TH NVENC 1 "{date}" "nvenc {__version__}" "User Commands"',
        ".SH NAME",
        "nvenc \\- encode frame tensors, image sequences and videos into video files",
        ".SH SYNOPSIS",
    ]
    for name, cmd, sub in commands:
        lines += synopsis_line(name, cmd, sub)
    lines += [
        "\\fBnvenc\\fR [\\fB\\-\\-version\\fR | \\fB\\-\\-help\\fR | "
        "\\fB\\-\\-install\\-completion\\fR | \\fB\\-\\-show\\-completion\\fR]",
        ".SH DESCRIPTION",
        *prose(DESCRIPTION),
        ".SH GLOBAL OPTIONS",
        *param_items(group, ctx),
        ".SH COMMANDS",
    ]
    for name, cmd, sub in commands:
        lines += [f'.SS "nvenc {esc(name)}"', *para(cmd.help or ""), *param_items(cmd, sub)]
    lines += [".SH INPUTS", *prose(INPUTS), *items(INPUT_FORMS)]
    lines += [".SH OUTPUT", *prose(OUTPUT), *items(container_entries()), ".PP", *prose(OUTPUT_MORE)]
    lines += [".SH COLOUR", *prose(COLOUR)]
    lines += [".SH PROGRESS", *prose(PROGRESS), *items(PROGRESS_KEYS)]
    lines += [".SH SHELL COMPLETION", *prose(COMPLETION)]
    lines += [".SH EXIT STATUS", *items(EXIT_STATUS)]
    lines += [".SH ENVIRONMENT", *items(ENVIRONMENT)]
    lines += [".SH FILES", *items(FILES)]
    lines += [".SH EXAMPLES"]
    for number, (comment, command) in enumerate(EXAMPLES):
        lines += [".PP"] * (number > 0) + example(comment, command)
    lines += [".SH SEE ALSO", ".BR ffmpeg (1),", ".BR ffprobe (1),", ".BR ffmpeg\\-codecs (1)"]
    return "\n".join(lines) + "\n"


def container_entries() -> list[tuple[str, str]]:
    """One entry per container, from the same table the encoder uses."""
    by_muxer: dict[str, list[str]] = {}
    for ext, muxer in CONTAINERS.items():
        by_muxer.setdefault(muxer, []).append("." + ext)
    return [
        (", ".join(exts), f"{muxer}; default codec {DEFAULT_CODEC.get(muxer, 'libx264')}.")
        for muxer, exts in by_muxer.items()
    ]


DESCRIPTION = """
**nvenc** turns frames held in array files (.npy, .npz, .pt), image sequences and video files
into a video file. It converts RGB to YUV with the colour matrix and range it writes into
the file's tags, and encodes with NVIDIA NVENC (CV-CUDA and PyNvVideoCodec) when a GPU with an
NVENC engine is present, or with FFmpeg's encoders through PyAV on the CPU.

Every choice (codec, container, pixel format, colour, rate control, extra options) is made
and checked before the first frame is read, so a bad command fails at once with one line on
standard error: __nvenc: error: ...__, and no traceback unless **-v** is given.

Standard output carries data only: the video with **-o -**, or the JSON report with
**--json**. Everything for people goes to standard error: a progress bar and colours only
when standard error is a terminal, nothing at all with **-q** on success.
"""

INPUTS = """
__INPUT__ is one of the forms below. Arrays are read a window of frames at a time
(**--batch-size**), so memory stays flat whatever the file size. Frames are
(N,H,W,C) or (N,C,H,W) batches, (N,H,W) gray batches or one (H,W,C) or (H,W) frame, with C
being 1 (gray), 3 (RGB) or 4 (RGBA); **--layout** settles shapes that fit both orders.
Samples are uint8, uint16 (kept at high bit depth where the pixel format allows) or floats
in [0, 1]; NaN or infinite values are refused.
"""

INPUT_FORMS = [
    ("**.npy**", "A NumPy array, read with positioned reads (never memory-mapped)."),
    ("**.npz**", "One array of a NumPy archive; **--key** names it when there are several."),
    (
        "**.pt**, **.pth**",
        "A tensor saved with torch.save, loaded with weights_only=True (never a full unpickle); "
        "**--key** picks a dict key or list index.",
    ),
    (
        "__folder__",
        "Every image in it (.png .jpg .jpeg .bmp .tif .tiff .webp .tga .ppm), in natural "
        "order: frame2 before frame10.",
    ),
    (
        "__'glob'__",
        "A quoted glob such as 'renders/*.png', matched by nvenc rather than the shell.",
    ),
    (
        "__pattern__",
        "A printf pattern such as frame_%05d.png; **--start-number** gives the first "
        "number, else the lowest found.",
    ),
    (
        "__video__",
        "Any other file is decoded with FFmpeg; its frame rate becomes the default **-r**.",
    ),
]

OUTPUT = """
The extension of __FILE__ picks the container, or **-f** names it (required with **-o -**).
The codec defaults per container:
"""

OUTPUT_MORE = """
The video is written to a hidden temporary file beside the target and renamed into place
only when it is complete, so a failed or interrupted run leaves no partial file and an
existing file (replaced only with **-y**) untouched. MP4 and MOV written to a pipe are
fragmented, since a plain MP4 must seek back to write its index.
"""

COLOUR = """
RGB becomes YUV with BT.709 from 720 lines up and BT.601 below, in limited (tv) range,
unless **--color-matrix** or **--color-range** say otherwise; primaries, transfer
and matrix are tagged to match exactly the maths that produced the pixels, on the CPU and
the GPU alike. 4:2:0 chroma is the mean of each 2x2 block. Sizes that the pixel format
cannot hold (odd width or height for 4:2:0) are refused unless **--pad** (edge
replication) or **--crop** is given.
"""

PROGRESS = """
**--progress** __FILE__ (or **-** for standard error) receives blocks of __key=value__ lines in
the manner of **ffmpeg -progress**, for wrappers and CI logs: one block at most every half
second and a last one when the run ends, successfully or not. Each block ends with its
**progress** line. Unknown values are __N/A__; parsers should ignore keys they do not know.
"""

PROGRESS_KEYS = [
    ("**frame**", "Frames encoded so far."),
    ("**fps**", "Frames encoded per second of wall-clock time."),
    ("**total_frames**", "Frames the run will encode, when the input says (nvenc's addition)."),
    (
        "**out_time_us**, **out_time_ms**",
        "Duration of the video written so far in microseconds (both, as in ffmpeg).",
    ),
    ("**out_time**", "The same as HH:MM:SS.microseconds."),
    ("**speed**", "Video time per wall-clock time, e.g. 4.250x."),
    ("**elapsed**", "Seconds since encoding started (nvenc's addition)."),
    ("**progress**", "__continue__, or __end__ in the last block."),
]

COMPLETION = """
**nvenc --install-completion** installs completion for bash, zsh, fish or PowerShell;
**nvenc --show-completion** prints the script instead. It completes commands and options,
file names for __INPUT__ and __FILE__, and the codecs (**-c**), presets (**--preset**, after
**-c** only those of that codec) and pixel formats (**--pixel-format**) that nvenc accepts.
"""

EXIT_STATUS = [
    ("**0**", "Success."),
    ("**2**", "Usage error: a bad option or option value."),
    (
        "**65**",
        "Bad input data: shape, dtype, NaN, corrupt or truncated file, odd size without "
        "**--pad**/**--crop**.",
    ),
    ("**66**", "The input is missing or unreadable."),
    (
        "**69**",
        "A requested backend, codec or device is unavailable (e.g. NVENC on a GPU without an NVENC engine).",
    ),
    ("**70**", "Internal error: a bug; please report it with the **-v** output."),
    ("**73**", "The output exists and **-y** was not given, or it cannot be created."),
    (
        "**74**",
        "I/O error while writing (disk full, file size limit, closed pipe) or an encoder failure.",
    ),
    (
        "**1**",
        "Several jobs (several inputs, **nvenc batch**) failed with different codes; each "
        "failure's own line and **--json** object give its code. Jobs failing alike give that code.",
    ),
    ("**130**", "Interrupted (Ctrl-C); the partial output was removed."),
    ("**143**", "Terminated (SIGTERM); the partial output was removed."),
    (
        "**129**, **152**, **153**",
        "Ended by SIGHUP, SIGXCPU or SIGXFSZ (128 + the signal's number), with the same cleanup.",
    ),
]

ENVIRONMENT = [
    ("**NO_COLOR**", "When set and not empty, no ANSI colours anywhere, as with **--no-color**."),
    (
        "**FORCE_COLOR**",
        "When set and not empty, colours even when standard error is not a terminal "
        "(never the progress bar).",
    ),
    ("**TERM**", "__dumb__ turns off colours and the progress bar."),
    ("**TERMINAL_WIDTH**", "Width of the **--help** output."),
    ("**CUDA_VISIBLE_DEVICES**", "Which GPUs the NVENC backend may use, as for any CUDA program."),
    (
        "**SVT_LOG**",
        "SVT-AV1's own log level; without **-v** nvenc sets it to 1 (errors only) unless it is set.",
    ),
    (
        "**NVENC_CORES**",
        "Cores one encode sizes its encoder threads for (default: all); **-j N** gives each "
        "worker its share unless this is set.",
    ),
    ("**_NVENC_COMPLETE**", "Set by the completion scripts when the shell asks for candidates."),
]

FILES = [
    (
        "__.NAME.XXXXXXXX.part__",
        "The temporary file beside the target __NAME__ while it is written; removed on any failure.",
    ),
]

EXAMPLES = [
    ("Encode an array of frames to H.264 in MP4 at 30 fps:", "nvenc encode frames.npy -o out.mp4"),
    (
        "HEVC 10-bit from a tensor in a .pt file, at 24 fps:",
        "nvenc encode frames.pt --key video -o out.mkv -r 24 -c libx265 --pixel-format yuv420p10le",
    ),
    (
        "A web-friendly MP4 that starts playing before it is fully downloaded:",
        "nvenc encode 'renders/*.png' -o web.mp4 --crf 20 -x movflags=+faststart",
    ),
    ("A lossless archive:", "nvenc encode frames.npz -o archive.mkv -c ffv1"),
    ("One video per input, two at a time:", "nvenc encode clips/*.npy -o 'out/{stem}.mp4' -j 2"),
    ("The jobs of a manifest, resumable:", "nvenc batch jobs.jsonl --skip-existing --crf 20"),
    (
        "An animated GIF preview of the first 50 frames:",
        "nvenc encode frames.npy -o preview.gif --frames 50 -r 10",
    ),
    ("Transcode a video:", "nvenc encode input.mov -o out.mp4 --preset slow"),
    (
        "Pipe the video to another program (MP4 to a pipe is fragmented):",
        "nvenc encode frames.npy -o - -f mp4 | ffplay -",
    ),
    (
        "Machine-readable progress and the JSON report, for scripts:",
        "nvenc encode frames.npy -o out.mp4 -q --progress progress.txt --json > report.json",
    ),
]


# -- command line --------------------------------------------------------------------------
def today() -> str:
    """Today, or SOURCE_DATE_EPOCH's day for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
        if epoch
        else datetime.datetime.now(datetime.timezone.utc)
    )
    return when.strftime("%Y-%m-%d")


def page_date(text: str) -> str | None:
    """The date in a page's ``.TH`` line."""
    match = re.search(r'^\.TH \S+ \S+ "([^"]*)"', text, re.MULTILINE)
    return match.group(1) if match else None


def stale_diff(path: Path) -> str:
    """Empty when ``path`` is what ``render`` makes (with the page's own date), else a diff."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    fresh = render(page_date(current) or today())
    if current == fresh:
        return ""
    return "".join(
        difflib.unified_diff(current.splitlines(True), fresh.splitlines(True), str(path), "generated", n=1)
    )


def write(path: Path) -> bool:
    """Regenerate ``path``; the date changes only when the content does. True if rewritten."""
    if path.exists() and not stale_diff(path):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(today()), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nvenc_cli.manpage", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--output", type=Path, help="write the page here (date kept if unchanged)")
    mode.add_argument("--check", type=Path, help="exit 1 with a diff if this page is stale")
    args = parser.parse_args(argv)
    if args.check:
        diff = stale_diff(args.check)
        sys.stdout.write(diff)
        if diff:
            sys.stderr.write(f"{args.check} is stale: run 'make man'\n")
        return 1 if diff else 0
    if args.output:
        changed = write(args.output)
        sys.stderr.write(f"{args.output}: {'updated' if changed else 'up to date'}\n")
        return 0
    sys.stdout.write(render(today()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
