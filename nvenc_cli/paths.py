"""What a path names, decided in one place, and the files one run may touch.

A name given on the command line, in a manifest row or to the API is either standard
input (``-``) or a local file: nothing else. FFmpeg, left to itself, reads a name such as
``concat:a.mkv|b.mkv`` or ``tcp:127.0.0.1:9`` as a protocol, so an existing file called
``concat:other.mkv`` would be encoded as ``other.mkv`` and a file called ``tcp:…`` would
open a connection. Every path nvenc hands FFmpeg therefore goes through ``for_ffmpeg``,
which names FFmpeg's ``file`` protocol explicitly; a name that exists is that file,
always, and nvenc opens no protocol at all.

``RunFiles`` is the run's own list of files by role (inputs, sound, manifest: read;
outputs, progress: written). It is checked before anything is opened: a written file may
be no other entry, under any name (a link, a hard link, ``./x`` beside ``x``), because
opening it for writing would destroy what the other role needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from nvenc_cli.errors import UsageError

STDIN = "-"
"""The one name that is not a file: standard input (or, for an output, standard output)."""


def is_stdio(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` is ``-``: standard input as an input, standard output as an output."""
    return os.fspath(spec) == STDIN


def for_ffmpeg(path: str | os.PathLike[str]) -> str:
    """The name to give FFmpeg for the local file ``path``: its ``file:`` protocol, spelt
    out, so no prefix inside the name (``concat:``, ``tcp:``, ``subfile,,…:``) is read as
    another protocol. The rest of the name is used as it stands, relative or absolute."""
    return "file:" + os.fspath(path)


def identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of an existing file, following links; None when there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, a NUL in the name, a name too long, a loop
        return None
    return st.st_dev, st.st_ino


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two names reach one file: the same inode when both exist (links, hard
    links), else the same resolved path (a file still to be created)."""
    first, second = identity(a), identity(b)
    if first is not None and second is not None:
        return first == second
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


@dataclass
class RunFiles:
    """Every file a run names, with the role it plays; ``check()`` refuses a written file
    that is any other entry (exit 2, before anything is opened or truncated)."""

    entries: list[tuple[str, str, bool]] = field(default_factory=list)

    def reads(self, role: str, path: str | None) -> None:
        """``path`` is read by the run (an input, a sound file, the manifest)."""
        if path is not None and not is_stdio(path):
            self.entries.append((role, os.fspath(path), False))

    def writes(self, role: str, path: str | None) -> None:
        """``path`` is written by the run (an output, the progress file)."""
        if path is not None and not is_stdio(path):
            self.entries.append((role, os.fspath(path), True))

    def check(self) -> None:
        for i, (role, path, written) in enumerate(self.entries):
            if not written:
                continue
            for j, (other_role, other, _) in enumerate(self.entries):
                if i == j or (role == other_role and path == other):
                    continue
                if same_file(path, other):
                    raise UsageError(_collision(role, path, other_role, other))


def _collision(role: str, path: str, other_role: str, other: str) -> str:
    if role == "--progress":
        return f"--progress {path} is {other_role} ({other}): give the progress file its own name"
    if other_role == "--progress":
        return f"--progress {other} is {role} ({path}): give the progress file its own name"
    if path == other:
        return f"{path} is both {role} and {other_role}: give each its own file"
    return f"{path} is {role} and also {other_role} ({other}): give each its own file"
