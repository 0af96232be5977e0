"""Sample frames for demos, tests and benchmarks: FFmpeg's testsrc2 pattern.

A natural-looking pattern (gradients, moving shapes, text) rather than noise, so quality
figures such as PSNR mean what they would on real footage.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from nvenc_cli.errors import OutputError, UsageError, brief
from nvenc_cli.mux import temp_prefix


def frames(width: int, height: int, count: int, pattern: str = "testsrc2") -> Iterator[np.ndarray]:
    """Yield ``count`` RGB uint8 (H, W, 3) frames of an FFmpeg lavfi test pattern."""
    import av

    spec = f"{pattern}=size={width}x{height}:rate=30"
    with av.open(spec, format="lavfi") as container:
        stream = container.streams.video[0]
        for made, frame in enumerate(container.decode(stream), start=1):
            yield frame.to_ndarray(format="rgb24")
            if made >= count:
                return


def batch(width: int, height: int, count: int, pattern: str = "testsrc2") -> np.ndarray:
    """All ``count`` frames as one (N, H, W, 3) array (for small samples only)."""
    return np.stack(list(frames(width, height, count, pattern)))


def write(path: str, width: int, height: int, count: int, pattern: str = "testsrc2") -> None:
    """Write a sample to ``path``: .npy, .npz, .pt, or a folder of PNGs.

    Everything that can be refused is refused before anything is written (the kind of
    output, the size and the pattern, which FFmpeg is asked to make one frame of), and
    the sample is written to a hidden temporary file or folder beside ``path`` and
    renamed into place only once complete: a failure or a signal leaves whatever was at
    ``path`` as it was. Frames stream to disk, so memory does not grow with ``count``.
    """
    kind = output_kind(path)
    check_pattern(width, height, pattern)
    folder = os.path.dirname(os.path.abspath(path))
    if kind == "png":
        _write_folder(path, folder, width, height, count, pattern)
        return
    fd, temp = tempfile.mkstemp(prefix=temp_prefix(Path(path)), suffix=".part", dir=folder)
    os.close(fd)
    try:
        if kind == "npy":
            _write_npy(temp, width, height, count, pattern)
        elif kind == "npz":
            _write_npz(temp, width, height, count, pattern)
        else:
            _write_pt(temp, folder, width, height, count, pattern)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def output_kind(path: str) -> str:
    """``npy``, ``npz``, ``pt`` or ``png`` (a folder); anything else is a usage error,
    rather than a folder of PNGs named ``frames.mp4``."""
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    kinds = {".npy": "npy", ".npz": "npz", ".pt": "pt", ".pth": "pt", "": "png"}
    if path in ("", "-") or (ext not in kinds and not os.path.isdir(path)):
        raise UsageError(
            f"testsrc writes .npy, .npz, .pt or a folder of PNGs, not {path!r} "
            "(encode the sample afterwards: nvenc encode sample.npy -o out.mp4)"
        )
    return kinds.get(ext, "png")


def check_pattern(width: int, height: int, pattern: str) -> None:
    """Have FFmpeg make one frame of the pattern at this size, or say why it cannot."""
    import av

    if not pattern.replace("_", "").isalnum():  # a filter name, not a filter graph
        raise UsageError(f"unknown --pattern {pattern!r}: use testsrc2, testsrc, smptebars, mandelbrot")
    try:
        next(frames(width, height, 1, pattern))
    except (av.FFmpegError, ValueError, StopIteration) as exc:
        raise UsageError(f"cannot make pattern {pattern!r} at {width}x{height} ({brief(exc)})") from None


def _write_npy(temp: str, width: int, height: int, count: int, pattern: str) -> None:
    with open(temp, "wb") as out:
        _npy_header(out, (count, height, width, 3))
        for frame in frames(width, height, count, pattern):
            out.write(frame.tobytes())


def _npy_header(out: IO[bytes], shape: tuple[int, ...]) -> None:
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)


def _write_npz(temp: str, width: int, height: int, count: int, pattern: str) -> None:
    """``np.savez``'s layout (one stored ``frames.npy`` member), written a frame at a time."""
    with (
        zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
        archive.open("frames.npy", "w", force_zip64=True) as member,
    ):
        _npy_header(member, (count, height, width, 3))
        for frame in frames(width, height, count, pattern):
            member.write(frame.tobytes())


def _write_pt(temp: str, folder: str, width: int, height: int, count: int, pattern: str) -> None:
    """``torch.save`` of a tensor backed by a memory-mapped scratch ``.npy``, so the frames
    pass through the page cache rather than all being held in memory."""
    from nvenc_cli.extras import require_torch

    torch = require_torch("writing .pt sample frames")
    fd, scratch = tempfile.mkstemp(prefix=".testsrc.", suffix=".npy.part", dir=folder)
    os.close(fd)
    try:
        _write_npy(scratch, width, height, count, pattern)
        mapped = np.load(scratch, mmap_mode="r+")
        torch.save(torch.from_numpy(mapped), temp)
        del mapped
    finally:
        with contextlib.suppress(OSError):
            os.unlink(scratch)


def _write_folder(path: str, folder: str, width: int, height: int, count: int, pattern: str) -> None:
    """PNGs into a hidden folder, renamed to ``path`` when complete. An existing folder is
    replaced only when empty: frames are never written over files already there."""
    from PIL import Image

    if os.path.lexists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise OutputError(f"{path}: already exists and is not an empty folder; give a new folder name")
    temp = tempfile.mkdtemp(prefix=temp_prefix(Path(path.rstrip("/") or ".")), suffix=".part", dir=folder)
    try:
        for i, frame in enumerate(frames(width, height, count, pattern)):
            Image.fromarray(frame).save(os.path.join(temp, f"frame_{i:05d}.png"))
        os.chmod(temp, 0o777 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
