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
from typing import TYPE_CHECKING, Any

from nvenc_cli.errors import InputDataError, InputMissingError, UsageError, brief
from nvenc_cli.frames import FrameInfo
from nvenc_cli.sources.base import Source

if TYPE_CHECKING:  # imported where images are decoded: naming files (input_files) needs none
    import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".tga", ".ppm")
_PRINTF = re.compile(r"%(0?)(\d*)d")
# A printf width beyond this cannot be a frame number in a file name (NAME_MAX is 255).
_MAX_WIDTH = 64
# Pillow's own decompression-bomb threshold (~89 Mpx, well above 8K UHD's 33 Mpx): a header
# declaring more is refused before anything is decoded, since a small file would
# otherwise cost what its pixels cost.
MAX_IMAGE_PIXELS = 89_478_485
# Modes Pillow decodes to and how each becomes RGB/RGBA/gray without changing a sample;
# None means "already one of ours".
_LOSSLESS = {
    "L": None,
    "RGB": None,
    "RGBA": None,
    "P": "",
    "PA": "RGBA",
    "LA": "RGBA",
    "1": "L",
    "RGBX": "RGB",
}
# Modes Pillow can turn into RGB only by a colour conversion nobody asked for: done, and said.
_CONVERTED = {
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "CIE L*a*b*",
    "HSV": "HSV",
    "RGBa": "premultiplied RGBA",
}


def natural_key(name: str) -> list[object]:
    """Sort frame2 before frame10, as people number files."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")


def numbering_gap(files: list[str]) -> str | None:
    """What a folder or glob of numbered frames is missing (``frame_0005.png`` of 1–12), in
    words, or None. The frames are encoded one after another, so a missing number shortens
    the video where it is; the printf form refuses it, a folder or glob says it."""
    if len(files) < 2:
        return None
    parts = [_NUMBERED.match(os.path.basename(f)) for f in files]
    if any(p is None for p in parts):
        return None
    shapes = {(p.group(1), p.group(3)) for p in parts if p is not None}
    if len(shapes) != 1:
        return None
    numbers = sorted(int(p.group(2)) for p in parts if p is not None)
    missing = (numbers[-1] - numbers[0] + 1) - len(set(numbers))
    if missing <= 0:
        return None
    first = next(n for n in range(numbers[0], numbers[-1]) if n not in set(numbers))
    head, tail = shapes.pop()
    digits = {len(p.group(2)) for p in parts if p is not None}
    width = digits.pop() if len(digits) == 1 else 0  # zero-padded names keep their width
    return (
        f"frames are numbered {numbers[0]}–{numbers[-1]} but {missing} number(s) are missing (first: "
        f"{head}{first:0{width}d}{tail}): the video runs on without them (a printf pattern such as "
        f"{head}%{f'0{width}' if width else ''}d{tail} refuses gaps)"
    )


def is_image_spec(spec: str) -> bool:
    """Does the input name an image sequence rather than one file?

    A path that exists is always that path: ``shot[1].png`` or ``100%done.png`` are files,
    not a glob or a printf pattern. Patterns apply only to names no file has.
    """
    if os.path.isdir(spec):
        return True
    if os.path.lexists(spec):
        return False
    return _printf_slot(os.path.basename(spec)) is not None or glob.has_magic(spec)


def list_images(spec: str, start_number: int | None = None) -> list[str]:
    """Resolve a file, folder, glob or printf pattern to an ordered list of files."""
    if os.path.isdir(spec):
        try:
            listing = os.listdir(spec)
        except OSError as exc:
            raise InputMissingError(f"{spec}: cannot list the folder ({exc.strerror or exc})") from None
        names = [n for n in listing if n.lower().endswith(IMAGE_EXTENSIONS)]
        if not names:
            raise InputDataError(f"{spec}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return [os.path.join(spec, n) for n in sorted(names, key=natural_key)]
    if os.path.lexists(spec):
        return [spec]
    if _printf_slot(os.path.basename(spec)) is not None:
        return _pattern_files(spec, start_number)
    folder, base = os.path.split(spec)
    # An existing folder is a path, not a pattern, whatever characters its name has.
    literal = bool(folder) and os.path.isdir(folder)
    spec_glob = os.path.join(glob.escape(folder), base) if literal else spec
    found = [p for p in glob.glob(spec_glob) if os.path.isfile(p)]
    if not found:
        raise InputMissingError(f"{spec}: no file matches this pattern")
    return sorted(found, key=natural_key)


def _printf_slot(base: str) -> tuple[str, int, bool, str] | None:
    """Split a printf file name into (head, width, zero-padded, tail), ffmpeg's way:
    ``%%`` is a literal ``%``; one ``%d`` (``%05d``) is the number; a second is refused."""
    head: list[str] = []
    slot: tuple[str, int, bool] | None = None
    tail: list[str] = []
    i = 0
    while i < len(base):
        if base.startswith("%%", i):
            (tail if slot else head).append("%")
            i += 2
            continue
        match = _PRINTF.match(base, i) if base[i] == "%" else None
        if match is None:
            (tail if slot else head).append(base[i])
            i += 1
            continue
        if slot is not None:
            raise UsageError(f"{base}: a printf pattern takes one %d, this name has two")
        digits = match.group(2)
        if len(digits) > 3 or int(digits or 0) > _MAX_WIDTH:
            raise UsageError(f"{base}: the printf width {match.group(0)} is absurd (at most %0{_MAX_WIDTH}d)")
        slot = ("".join(head), int(digits or 0), match.group(1) == "0")
        i = match.end()
    if slot is None:
        return None
    return slot[0], slot[1], slot[2], "".join(tail)


def _pattern_files(spec: str, start_number: int | None) -> list[str]:
    """Expand frame_%05d.png from --start-number (or the lowest present) with no gaps.

    Only the file name is a pattern; the folder is a path, taken as it is."""
    folder = os.path.dirname(spec)
    slot = _printf_slot(os.path.basename(spec))
    assert slot is not None
    head, width, zero, tail = slot
    digits = rf"(\d{{{width},}})" if zero and width else (r" *(\d+)" if width else r"(\d+)")
    regex = re.compile(f"^{re.escape(head)}{digits}{re.escape(tail)}$")
    try:
        listing = os.listdir(folder or ".")
    except OSError as exc:
        raise InputMissingError(f"{spec}: cannot list {folder or '.'} ({exc.strerror})") from None

    def name(number: int) -> str:
        text = f"{number:0{width}d}" if zero else f"{number:{width}d}"
        return os.path.join(folder, f"{head}{text}{tail}")

    found = {int(m.group(1)): n for n in listing if (m := regex.match(n))}
    numbers = sorted(number for number, n in found.items() if os.path.join(folder, n) == name(number))
    first = numbers[0] if start_number is None and numbers else start_number
    numbers = [n for n in numbers if first is not None and n >= first]
    if not numbers or numbers[0] != first:
        raise InputMissingError(f"{spec}: no file for number {first if first is not None else 0}")
    for expected, number in enumerate(numbers, start=first):
        if number != expected:
            raise InputDataError(
                f"{spec}: the sequence has a gap: {name(expected)} is missing "
                f"(found {first}–{expected - 1}, then {number})"
            )
    return [name(n) for n in numbers]


def _open(path: str, expect: tuple[int, int] | None) -> Any:
    """Open ``path`` reading its header only, and refuse what the header alone shows:
    more pixels than ``MAX_IMAGE_PIXELS``, a size unlike the sequence's, or several
    frames (animated PNG/WebP, multi-page TIFF), which one image per frame would cut."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # The bound is checked below, as one refusal line; Pillow's own warning
            # would reach stderr as two lines of noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except FileNotFoundError:
        raise InputMissingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputDataError(f"{path}: is a folder, not an image") from None
    except PermissionError as exc:
        raise InputMissingError(f"{path}: cannot read ({exc.strerror})") from None
    except Image.DecompressionBombError as exc:
        raise InputDataError(f"{path}: refused: {_pixels_text(exc)}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputDataError(f"{path}: cannot decode this image ({brief(exc)})") from None
    except Exception as exc:  # a parser of untrusted bytes: any failure means corrupt
        raise InputDataError(
            f"{path}: cannot decode this image ({type(exc).__name__}: {brief(exc)})"
        ) from None
    try:
        width, height = img.size
        if width * height > MAX_IMAGE_PIXELS:
            raise InputDataError(
                f"{path}: refused: its header declares {width}x{height} ({width * height} pixels), "
                f"more than the {MAX_IMAGE_PIXELS} an image may have (a decompression bomb guard)"
            )
        if expect is not None and (width, height) != expect:
            raise InputDataError(
                f"{path}: is {width}x{height}, but the sequence started at {expect[0]}x{expect[1]}"
            )
        frames = _frame_count(img, path)
        if frames > 1:
            kind = {"PNG": "an animated PNG", "WEBP": "an animated WebP", "TIFF": "a multi-page TIFF"}
            raise InputDataError(
                f"{path}: is {kind.get(img.format or '', 'an image')} of {frames} frames; nvenc reads "
                "one frame per image file and will not drop the rest: split it into files "
                "(ffmpeg -i in.png frame_%04d.png) or give it as a video"
            )
    except BaseException:
        img.close()
        raise
    return img


def _frame_count(img: Any, path: str) -> int:
    """How many frames the file holds (TIFF counts its pages by walking them)."""
    try:
        return int(getattr(img, "n_frames", 1))
    except Exception as exc:  # a parser of untrusted bytes: any failure means corrupt
        raise InputDataError(f"{path}: cannot decode this image ({brief(exc)})") from None


def _pixels_text(exc: BaseException) -> str:
    return f"{brief(exc)} (nvenc refuses images over {MAX_IMAGE_PIXELS} pixels from the header)"


def _load(path: str, expect: tuple[int, int] | None = None) -> tuple[np.ndarray, list[str]]:
    """Decode one image to HWC (uint8, or uint16 for deep images), with a note for
    every change nobody asked for (a colour space converted, an orientation ignored)."""
    import numpy as np

    notes: list[str] = []
    img = _open(path, expect)
    try:
        # Pillow warns on stderr about what it repairs or converts (a damaged EXIF block,
        # palette transparency); what matters is decided and reported here.
        with img, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rawmode = _rawmode(img)
            mode = img.mode
            if "16" in rawmode and mode in ("RGB", "RGBA", "LA"):
                # Pillow reads 16-bit colour PNG/TIFF samples at 8 bits; FFmpeg reads all 16.
                return _load_deep(path, mode), notes
            img.load()
            mode = img.mode
            if mode.startswith("I;16"):
                return np.asarray(img, dtype=np.uint16)[..., np.newaxis].copy(), notes
            if mode in ("I", "F"):
                return _wide_samples(path, img), notes
            if mode in _LOSSLESS:
                target = _LOSSLESS[mode]
                if target == "":
                    target = "RGBA" if "transparency" in img.info else "RGB"
                if target:
                    img = img.convert(target)
            elif mode in _CONVERTED:
                notes.append(f"{path}: {_CONVERTED[mode]} image converted to RGB by Pillow")
                img = img.convert("RGBA" if mode == "RGBa" else "RGB")
            else:
                raise InputDataError(f"{path}: image mode {mode} is not supported (use RGB, RGBA or gray)")
            orientation = _orientation(img)
            if orientation not in (None, 1):
                notes.append(
                    f"{path}: EXIF orientation {orientation} not applied: frames are encoded as stored "
                    "(rotate the images first if they should be upright)"
                )
            array = np.asarray(img)
    except (InputDataError, InputMissingError):
        raise
    except Exception as exc:  # a decoder of untrusted bytes: any failure means corrupt
        raise InputDataError(f"{path}: cannot decode this image ({brief(exc)})") from None
    return (array[..., np.newaxis] if array.ndim == 2 else array), notes


def _rawmode(img: Any) -> str:
    """How the file stores its samples (``RGB;16B`` for a 16-bit PNG), from the header."""
    try:
        args = img.tile[0].args if img.tile else ""
    except (AttributeError, IndexError):
        return ""
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else ""


def _load_deep(path: str, mode: str) -> np.ndarray:
    """A 16-bit colour image through FFmpeg's decoders, at its full 16 bits."""
    import av

    fmt = "rgb48le" if mode == "RGB" else "rgba64le"
    try:
        from nvenc_cli.paths import for_ffmpeg

        with av.open(for_ffmpeg(path), "r") as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format=fmt)
    except (av.FFmpegError, OSError, ValueError, StopIteration) as exc:
        raise InputDataError(f"{path}: cannot decode this 16-bit image ({brief(exc)})") from None


def _wide_samples(path: str, img: Any) -> np.ndarray:
    """32-bit integer or float gray (TIFF modes ``I`` and ``F``) as 16-bit samples.

    Integers must already be 16-bit values (0–65535) and floats in [0, 1], scaled to
    0–65535 and rounded once; anything else is refused rather than clipped, since an RGB
    conversion would clip (a float image in [0, 1] would come out black).
    """
    import numpy as np

    values = np.asarray(img)
    if img.mode == "F":
        if not np.isfinite(values).all():
            raise InputDataError(f"{path}: float image holds NaN or infinite samples")
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 1:
            raise InputDataError(
                f"{path}: float image samples span {low:g}…{high:g}; nvenc reads float images in [0, 1]"
            )
        scaled = np.rint(values.astype(np.float64) * 65535).astype(np.uint16)
        return scaled[..., np.newaxis]
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > 65535:
        raise InputDataError(
            f"{path}: 32-bit integer samples span {low}…{high}, beyond 16 bits (0–65535); "
            "nvenc will not clip them"
        )
    return values.astype(np.uint16)[..., np.newaxis]


def _orientation(img: Any) -> int | None:
    try:
        value = img.getexif().get(0x0112)
    except Exception:  # a damaged EXIF block only hides a tag we merely report
        return None
    return value if isinstance(value, int) else None


class ImageSource(Source):
    """Frames from image files; the first image fixes size, channels and depth."""

    def __init__(self, spec: str, start_number: int | None = None) -> None:
        super().__init__()
        self.name = spec
        self.files = list_images(spec, start_number)
        gap = numbering_gap(self.files)
        if gap is not None:
            self.notices.append(f"{spec}: {gap}")
        first, notes = _load(self.files[0])
        self.notices.extend(notes)
        height, width, channels = first.shape
        self.info = FrameInfo(width, height, channels, 16 if first.dtype.itemsize == 2 else 8)
        self._first = (self.files[0], first)
        self._said = {n.split(": ", 1)[1] for n in notes}

    @property
    def total(self) -> int:
        return len(self.files)

    def _windows(self, start: int, size: int) -> Iterator[np.ndarray]:
        import numpy as np

        for index in range(start, len(self.files), size):
            paths = self.files[index : index + size]
            yield np.stack([self._frame(p) for p in paths])

    def _frame(self, path: str) -> np.ndarray:
        cached_path, cached = self._first
        if path == cached_path:
            array = cached
        else:
            array, notes = _load(path, (self.info.width, self.info.height))
            self.notices.extend(n for n in notes if n.split(": ", 1)[1] not in self._said)
            self._said.update(n.split(": ", 1)[1] for n in notes)
        want = (self.info.height, self.info.width, self.info.channels)
        if array.shape != want:
            raise InputDataError(
                f"{path}: is {array.shape[1]}x{array.shape[0]} with {array.shape[2]} channel(s), "
                f"but the sequence started at {want[1]}x{want[0]} with {want[2]}"
            )
        if array.dtype != ("uint16" if self.info.depth == 16 else "uint8"):
            raise InputDataError(f"{path}: bit depth differs from the first image")
        return array
