"""ffmpeg's spellings on nvenc's command line, caught before the parser sees them.

People type ``-crf 20`` and ``-pix_fmt yuv420p`` from habit. Left to the parser, ``-crf``
reads as ``-c rf`` (the codec "rf") and ``20`` as a stray argument, so the error points
nowhere near the mistake. These tokens are looked up before parsing and answered with one
line naming nvenc's spelling (exit 2). A token that is the value of an nvenc option
(``--value-range -1,1``, ``-x -crf``) is left alone; ``-an`` and ``-r`` are nvenc options.
"""

from __future__ import annotations

from collections.abc import Callable

_Rewrite = Callable[[str | None], str]


def _two_dashes(name: str, example: str) -> _Rewrite:
    return lambda value: f"{name} {value if value is not None else example}"


def _extra(key: str, example: str) -> _Rewrite:
    return lambda value: f"-x {key}={value if value is not None else example}"


def _scale(value: str | None) -> str:
    """``scale=640:-2`` (or ``scale=w=640:h=-2``) as ``--resize 640x-2``."""
    if value is None:
        return "--resize WxH"
    filters = value.split(",")
    for item in filters:
        name, _, args = item.partition("=")
        if name.strip() == "scale" and args:
            parts = [p.split("=", 1)[-1] for p in args.split(":")[:2]]
            if len(parts) == 2 and all(p.lstrip("-").isdigit() for p in parts):
                return f"--resize {parts[0]}x{parts[1]}"
    return "--resize WxH (nvenc has no other filters)"


# ffmpeg option -> how nvenc says it, given the value that followed it (None if none did).
HABITS: dict[str, _Rewrite] = {
    "-crf": _two_dashes("--crf", "N"),
    "-preset": _two_dashes("--preset", "NAME"),
    "-pix_fmt": _two_dashes("--pixel-format", "FORMAT"),
    "-c:v": _two_dashes("--codec", "CODEC"),
    "-codec:v": _two_dashes("--codec", "CODEC"),
    "-vcodec": _two_dashes("--codec", "CODEC"),
    "-codec": _two_dashes("--codec", "CODEC"),
    "-framerate": _two_dashes("-r", "RATE"),
    "-r:v": _two_dashes("-r", "RATE"),
    "-vf": _scale,
    "-filter:v": _scale,
    "-s": lambda value: f"--resize {value or 'WxH'} (or --input-size {value or 'WxH'} for raw input)",
    "-vframes": _two_dashes("--frames", "N"),
    "-frames:v": _two_dashes("--frames", "N"),
    "-b:v": _extra("b", "5M"),
    "-g": _extra("g", "60"),
    "-tune": _extra("tune", "film"),
    "-profile:v": _extra("profile", "high"),
    "-movflags": _extra("movflags", "+faststart"),
    "-x264-params": _extra("x264-params", "KEY=VALUE"),
    "-x265-params": _extra("x265-params", "KEY=VALUE"),
}
_INPUT = ("-i",)
_NO_VALUE = frozenset({"-hide_banner", "-nostdin", "-nostats"})
WATCHED = frozenset({*HABITS, *_INPUT, *_NO_VALUE, "-loglevel"})


def repeated_output(argv: list[str], takes_value: Callable[[str], bool]) -> str | None:
    """The message for ``-o`` given twice (the parser would silently keep the last)."""
    seen: list[str] = []
    skip = False
    for index, token in enumerate(argv):
        if skip:
            skip = False
            continue
        if token == "--":
            break
        if token in ("-o", "--output"):
            seen.append(argv[index + 1] if index + 1 < len(argv) else "")
            skip = True
        elif token.startswith("--output="):
            seen.append(token.split("=", 1)[1])
        elif "=" not in token and takes_value(token):
            skip = True
    if len(seen) < 2:
        return None
    return f"-o given {len(seen)} times ({', '.join(seen)}): one encode writes one output"


def check(
    argv: list[str], takes_value: Callable[[str], bool], is_option: Callable[[str], bool] = lambda t: False
) -> str | None:
    """The hint for the first ffmpeg-style token in ``argv``, or None.

    ``takes_value(token)`` says whether an nvenc option consumes the token after it, so
    that token is skipped (it is a value, whatever it looks like); ``is_option`` names the
    command's own options, never taken for habits (``testsrc -s``).
    """
    skip = False
    for index, token in enumerate(argv):
        if skip:
            skip = False
            continue
        if token == "--":
            return None
        value = argv[index + 1] if index + 1 < len(argv) else None
        if is_option(token):
            skip = takes_value(token)
            continue
        if token in _INPUT:
            shown = value if value is not None else "INPUT"
            return f"nvenc takes the input without -i: did you mean nvenc encode {shown} -o OUTPUT?"
        if token in HABITS:
            spelled = HABITS[token](value)
            if spelled.startswith("--"):
                return f"nvenc options use two dashes: did you mean {spelled}?"
            return f"nvenc has no {token}: did you mean {spelled}?"
        if token == "-loglevel" or token in _NO_VALUE:
            return f"nvenc has no {token}: it is quiet by default; -v shows FFmpeg's log, -q silences it"
        if "=" not in token and takes_value(token):
            skip = True
    return None
