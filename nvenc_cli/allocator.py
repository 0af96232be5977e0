"""How the encoding process's C heap behaves (glibc tuning shared by the CLI and workers).

Its own small module so a batch worker process can apply it without importing the
command-line layer (Typer and the whole of ``cli.py``: ~0.04 s of CPU per worker).
"""

from __future__ import annotations

import sys


def keep_freed_memory() -> None:
    """Have glibc reuse freed frame buffers instead of handing them back to the kernel.

    FFmpeg allocates every converted frame afresh (3 MB at 1080p), and by default glibc
    returns blocks that size to the kernel on free (munmap, or trimming the heap top), so
    the next one is page-faulted and zeroed again: on a kernel with transparent huge pages
    that zeroing was ~12 % of all CPU time in a 1080p ultrafast encode, and ~3 % with these
    settings. Peak RSS is unchanged (the same few buffers are live at any time); memory
    is simply kept until the process exits, which the CLI does right after the encode.
    Only ``nvenc encode`` (and its batch workers) does this, never the library: its host
    owns the allocator.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest: allocations up to it reuse heap
    mallopt(m_trim_threshold, 1 << 30)
