""" "Did you mean …?" for names people mistype: codecs, pixel formats, presets, options.

difflib's ratio is enough for these short names (``libx246`` → ``libx264``, ``yuv420``
→ ``yuv420p``, ``slwo`` → ``slow``); nothing is suggested when no name is close, so a
wrong guess never sends anyone further astray.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate most like ``word`` (case-insensitive), if any is close enough."""
    names = {c.lower(): c for c in candidates}
    typed = str(word).lower()
    swapped = [name for name in names if sorted(name) == sorted(typed) and _one_swap(name, typed)]
    if swapped:  # two letters swapped (libx246, h246): difflib's ratio ties those
        return names[swapped[0]]
    found = difflib.get_close_matches(typed, list(names), n=1, cutoff=cutoff)
    return names[found[0]] if found else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean X?)"`` to append to a message, or ``""``."""
    match = closest(word, candidates)
    return f" (did you mean {match}?)" if match and match != word else ""


def encoder_names() -> list[str]:
    """Every name ``--codec`` accepts: FFmpeg's video encoders, NVENC's, the families."""
    from nvenc_cli.backends.cpu import CpuBackend
    from nvenc_cli.options import CPU_ENCODER_FOR, NVENC_ENCODERS

    return [*CpuBackend().encoders(), *NVENC_ENCODERS.values(), *CPU_ENCODER_FOR]


def _one_swap(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with two neighbouring characters exchanged."""
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
