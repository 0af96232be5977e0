"""Image sequences: a folder, a quoted glob, or a printf pattern such as frame_%05d.png.

Only file names are listed up front; each image is decoded when its window is read, and a
bad image mid-sequence is reported by name.
"""

from __future__ import annotations

import glob
import os
import re
import warnings
from collections.abc import Iterator

import numpy as np

from nvenc_cli.errors import InputDataError, InputMissingError, brief
from nvenc_cli.frames import FrameInfo
from nvenc_cli.sources.base import Source

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".tga", ".ppm")
_PRINTF = re.compile(r"%(0?)(\d*)d")


def natural_key(name: str) -> list[object]:
    """Sort frame2 before frame10, as people number files."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_image_spec(spec: str) -> bool:
    """Does the input name an image sequence rather than one file?"""
    if os.path.isdir(spec) or _PRINTF.search(spec):
        return True
    return glob.has_magic(spec) and not os.path.exists(spec)


def list_images(spec: str, start_number: int | None = None) -> list[str]:
    """Resolve a folder, glob or printf pattern to an ordered list of files."""
    if os.path.isdir(spec):
        names = [n for n in os.listdir(spec) if n.lower().endswith(IMAGE_EXTENSIONS)]
        if not names:
            raise InputDataError(f"{spec}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return [os.path.join(spec, n) for n in sorted(names, key=natural_key)]
    if _PRINTF.search(spec):
        return _pattern_files(spec, start_number)
    found = [p for p in glob.glob(spec) if os.path.isfile(p)]
    if not found:
        raise InputMissingError(f"{spec}: no file matches this pattern")
    return sorted(found, key=natural_key)


def _pattern_files(spec: str, start_number: int | None) -> list[str]:
    """Expand frame_%05d.png from --start-number (or the lowest present) with no gaps."""
    folder = os.path.dirname(spec) or "."
    base = os.path.basename(spec)
    match = _PRINTF.search(base)
    if match is None or _PRINTF.search(os.path.dirname(spec)):
        raise InputMissingError(f"{spec}: only the file name may hold a %d pattern")
    width = int(match.group(2) or 0)
    head, tail = re.escape(base[: match.start()]), re.escape(base[match.end() :])
    digits = rf"(\d{{{width},}})" if match.group(1) == "0" and width else r"(\d+)"
    regex = re.compile(f"^{head}{digits}{tail}$")
    try:
        listing = os.listdir(folder)
    except OSError as exc:
        raise InputMissingError(f"{spec}: cannot list {folder} ({exc.strerror})") from None
    numbers = sorted(int(m.group(1)) for n in listing if (m := regex.match(n)))
    first = numbers[0] if start_number is None and numbers else start_number
    numbers = [n for n in numbers if first is not None and n >= first]
    if not numbers or numbers[0] != first:
        raise InputMissingError(f"{spec}: no file for number {first if first is not None else 0}")
    for expected, number in enumerate(numbers, start=first):
        if number != expected:
            missing = os.path.join(os.path.dirname(spec), _number(base, match, expected))
            raise InputDataError(
                f"{spec}: the sequence has a gap: {missing} is missing "
                f"(found {first}–{expected - 1}, then {number})"
            )
    return [os.path.join(os.path.dirname(spec), _number(base, match, n)) for n in numbers]


def _number(base: str, match: re.Match[str], number: int) -> str:
    return base[: match.start()] + match.group(0) % number + base[match.end() :]


def _load(path: str) -> np.ndarray:
    """Decode one image to HWC (uint8, or uint16 for 16-bit gray)."""
    from PIL import Image, UnidentifiedImageError

    try:
        # Pillow warns (on stderr) from 89 Mpx and refuses from 179 Mpx; the refusal is
        # reported below as one error line, the warning about a frame we accept is noise.
        with warnings.catch_warnings(), Image.open(path) as img:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                return np.asarray(img, dtype=np.uint16)[..., np.newaxis].copy()
            if mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif mode in ("LA", "PA"):
                img = img.convert("RGBA")
            elif mode == "1":
                img = img.convert("L")
            elif mode not in ("L", "RGB", "RGBA"):
                img = img.convert("RGB")
            array = np.asarray(img)
    except FileNotFoundError:
        raise InputMissingError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputDataError(f"{path}: cannot decode this image ({brief(exc)})") from None
    except Image.DecompressionBombError as exc:
        raise InputDataError(f"{path}: refused: {brief(exc)}") from None
    return array[..., np.newaxis] if array.ndim == 2 else array


class ImageSource(Source):
    """Frames from image files; the first image fixes size, channels and depth."""

    def __init__(self, spec: str, start_number: int | None = None) -> None:
        super().__init__()
        self.name = spec
        self.files = list_images(spec, start_number)
        first = _load(self.files[0])
        height, width, channels = first.shape
        self.info = FrameInfo(width, height, channels, 16 if first.dtype == np.uint16 else 8)
        self._first = (self.files[0], first)

    @property
    def total(self) -> int:
        return len(self.files)

    def _windows(self, start: int, size: int) -> Iterator[np.ndarray]:
        for index in range(start, len(self.files), size):
            paths = self.files[index : index + size]
            yield np.stack([self._frame(p) for p in paths])

    def _frame(self, path: str) -> np.ndarray:
        cached_path, cached = self._first
        array = cached if path == cached_path else _load(path)
        want = (self.info.height, self.info.width, self.info.channels)
        if array.shape != want:
            raise InputDataError(
                f"{path}: is {array.shape[1]}x{array.shape[0]} with {array.shape[2]} channel(s), "
                f"but the sequence started at {want[1]}x{want[0]} with {want[2]}"
            )
        dtype = np.uint16 if self.info.depth == 16 else np.uint8
        if array.dtype != dtype:
            raise InputDataError(f"{path}: bit depth differs from the first image")
        return array
