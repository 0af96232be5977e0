"""torchcodec's ``JpegEncoder`` and ``PngEncoder`` (torchcodec ≥ 0.16), and a batch of frames
to a numbered image sequence in one call, which torchcodec lacks.

On the CPU the pictures go through Pillow, which wraps the same libjpeg defaults and zlib
levels torchcodec's encoders use: JPEG output decodes to within 2 of Pillow's on 99 % of
values and PNG round-trips exactly. A CUDA tensor is JPEG-encoded on its GPU by nvJPEG
through torchvision when torchvision is installed; otherwise it is copied to the CPU once
and encoded there. Every file appears only once complete (a temporary file renamed in);
on an error nothing is left behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvenc_cli.errors import FrameFormatError, SettingError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["JpegEncoder", "PngEncoder", "write_image_sequence"]

JPEG_DEFAULT_QUALITY = 75
PNG_DEFAULT_LEVEL = 6


def _api_errors() -> contextlib.AbstractContextManager[None]:
    from nvenc_cli.api.video import api_errors

    return api_errors()


def _check_quality(quality: Any) -> int:
    """JPEG quality 1–100; torchcodec raises ``ValueError`` in its own words."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise UsageError(
            f"invalid quality {quality!r}: it must be an integer from 1 to 100",
            torchcodec="Image quality should be a positive number between 1 and 100",
        )
    return quality


def _check_level(level: Any) -> int:
    """PNG zlib level 0–9; torchcodec raises ``RuntimeError``."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
        raise SettingError(
            f"invalid compression_level {level!r}: it must be an integer from 0 to 9",
            torchcodec=f"Compression level should be between 0 and 9, got {level}.",
        )
    return level


def _check_image(img: Any, what: str, channels: tuple[int, ...] = (1, 3)) -> None:
    """One (C, H, W) uint8 picture with 1 or 3 channels, torchcodec's rules and words."""
    import numpy as np

    from nvenc_cli.sources.memory import is_torch

    if not (is_torch(img) or isinstance(img, np.ndarray)):
        raise FrameFormatError(f"{what} must be a torch.Tensor or numpy array, got {type(img).__name__}")
    dtype = str(img.dtype).removeprefix("torch.")
    if dtype != "uint8":
        raise FrameFormatError(
            f"{what} must be uint8 (0-255), got {dtype}", torchcodec="Input tensor dtype should be uint8"
        )
    if img.ndim != 3:
        raise FrameFormatError(
            f"{what} must be one 3-dimensional (C, H, W) picture, got shape {tuple(img.shape)}",
            torchcodec="Input data should be a 3-dimensional tensor",
        )
    if int(img.shape[0]) not in channels:
        allowed = " or ".join(str(c) for c in channels)
        gpu = channels == (3,)
        raise FrameFormatError(
            f"{what} has {int(img.shape[0])} channels; {allowed} (C, H, W) are encodable"
            + ("; on a GPU only RGB: move a gray picture to the CPU with .cpu()" if gpu else ""),
            torchcodec=(
                f"The number of channels should be 3 (RGB) for JPEG encoding on GPU, got: {int(img.shape[0])}"
                if gpu
                else f"The number of channels should be 1 or 3, got: {int(img.shape[0])}"
            ),
        )
    if int(img.shape[1]) < 1 or int(img.shape[2]) < 1:
        raise FrameFormatError(f"{what} has no pixels: shape {tuple(img.shape)}")


def _is_cuda(img: Any) -> bool:
    return getattr(getattr(img, "device", None), "type", "cpu") == "cuda"


def _hwc(img: Any) -> np.ndarray:
    """The picture as a contiguous (H, W, C) numpy array on the CPU (one copy at most)."""
    import numpy as np

    from nvenc_cli.sources.memory import is_torch

    hwc = img.detach().permute(1, 2, 0).cpu().numpy() if is_torch(img) else img.transpose(1, 2, 0)
    return np.ascontiguousarray(hwc)


def _pillow(hwc: np.ndarray, fmt: str, **params: Any) -> bytes:
    from PIL import Image

    picture = Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc, "L" if hwc.shape[2] == 1 else "RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _gpu_jpeg() -> Callable[..., Any] | None:
    """torchvision's nvJPEG encoder when torchvision is installed, else None."""
    try:
        from torchvision.io import encode_jpeg
    except Exception:  # absent, or built against another torch: the CPU encodes instead
        return None
    return encode_jpeg


def _jpeg_bytes_cuda(img: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG bytes as a 1-D uint8 tensor on ``img``'s device: nvJPEG when it is there."""
    import torch

    encode = _gpu_jpeg()
    if encode is not None:
        try:
            return encode(img.contiguous(), quality=quality)
        except RuntimeError:  # a torchvision built without nvJPEG: the CPU encodes it instead
            pass
    data = _pillow(_hwc(img), "JPEG", quality=quality)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).to(img.device)


def _write_file(dest: str | os.PathLike, data: bytes | memoryview, overwrite: bool) -> None:
    """Write ``data`` to ``dest`` through a temporary file renamed into place."""
    from nvenc_cli.mux import check_destination, temp_prefix

    target = check_destination(os.fspath(dest), overwrite)
    if target is None:  # a device or descriptor: written through
        with open(dest, "wb") as sink:
            sink.write(data)
        return
    fd, temp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as sink:
            sink.write(data)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_path(dest: Any) -> None:
    if not isinstance(dest, (str, os.PathLike)):
        raise UsageError(
            f"dest must be a path (str or pathlib.Path), got {type(dest).__name__}: "
            "use to_file_like for file objects"
        )


def _write_file_like(dest: Any, data: bytes | memoryview) -> None:
    from nvenc_cli.api.encoder import check_file_like

    check_file_like(dest)
    dest.write(data)


class _ImageEncoder:
    """What both formats share: where the bytes go; subclasses say how they are made."""

    _what = "img"

    def __init__(self, img: Any) -> None:
        self._img = img

    def _encode(self, setting: int) -> bytes | memoryview:
        raise NotImplementedError

    def _to_file(self, dest: Any, setting: int, overwrite: bool) -> None:
        with _api_errors():
            _check_path(dest)
            _write_file(dest, self._encode(setting), overwrite)

    def _to_file_like(self, dest: Any, setting: int) -> None:
        from nvenc_cli.api.encoder import check_file_like

        with _api_errors():
            check_file_like(dest)  # before the picture, as torchcodec
            _write_file_like(dest, self._encode(setting))

    def _to_tensor(self, setting: int) -> torch.Tensor:
        import torch

        with _api_errors():
            return torch.frombuffer(bytearray(self._encode(setting)), dtype=torch.uint8)


class JpegEncoder(_ImageEncoder):
    """Encode one picture as JPEG; a drop-in for ``torchcodec.encoders.JpegEncoder``.

    Args:
        img: uint8 tensor (C, H, W) with 1 (gray) or 3 (RGB) channels; a numpy array of the
            same shape works too. A CUDA tensor is encoded on its GPU with nvJPEG (through
            torchvision) where installed, else copied to the CPU once; on a GPU only RGB is
            taken, as in torchcodec.

    Raises:
        RuntimeError: (also ``ValueError``) a dtype other than uint8, not 3-D, or a channel
            count other than 1 or 3; a file-like object without ``write``/``seek``.
        ValueError: ``quality`` outside 1–100.
    """

    def to_file(
        self, dest: str | Path, *, quality: int = JPEG_DEFAULT_QUALITY, overwrite: bool = True
    ) -> None:
        """Encode into the file ``dest`` (any name; the bytes are JPEG). ``quality`` 1–100,
        higher is better and larger. ``overwrite=False`` refuses an existing file
        (``OSError``); torchcodec always overwrites."""
        with _api_errors():
            _check_quality(quality)
        self._to_file(dest, quality, overwrite)

    def to_file_like(self, dest: Any, *, quality: int = JPEG_DEFAULT_QUALITY) -> None:
        """Encode into a binary file-like object with ``write`` and ``seek`` methods."""
        with _api_errors():
            _check_quality(quality)
        self._to_file_like(dest, quality)

    def to_tensor(self, *, quality: int = JPEG_DEFAULT_QUALITY) -> torch.Tensor:
        """The JPEG bytes as a 1-D uint8 tensor, on the picture's device (CUDA in, CUDA out)."""
        with _api_errors():
            _check_quality(quality)
            if _is_cuda(self._img):
                _check_image(self._img, self._what, channels=(3,))
                return _jpeg_bytes_cuda(self._img, quality)
        return self._to_tensor(quality)

    def _encode(self, quality: int) -> bytes | memoryview:
        if _is_cuda(self._img):
            _check_image(self._img, self._what, channels=(3,))
            return _jpeg_bytes_cuda(self._img, quality).cpu().numpy().data
        _check_image(self._img, self._what)
        return _pillow(_hwc(self._img), "JPEG", quality=quality)


class PngEncoder(_ImageEncoder):
    """Encode one picture as PNG (lossless); a drop-in for ``torchcodec.encoders.PngEncoder``.

    Args:
        img: uint8 tensor (C, H, W) with 1 (gray) or 3 (RGB) channels, on any device (a CUDA
            picture is copied to the CPU once); a numpy array of the same shape works too.

    Raises:
        RuntimeError: (also ``ValueError``) ``compression_level`` outside 0–9, a dtype other
            than uint8, not 3-D, a channel count other than 1 or 3, or a file-like object
            without ``write``/``seek``.
    """

    def to_file(
        self, dest: str | Path, *, compression_level: int = PNG_DEFAULT_LEVEL, overwrite: bool = True
    ) -> None:
        """Encode into the file ``dest``. ``compression_level``: zlib's 0 (none, fastest) to
        9 (smallest, slowest). ``overwrite=False`` refuses an existing file (``OSError``)."""
        self._to_file(dest, compression_level, overwrite)

    def to_file_like(self, dest: Any, *, compression_level: int = PNG_DEFAULT_LEVEL) -> None:
        """Encode into a binary file-like object with ``write`` and ``seek`` methods."""
        self._to_file_like(dest, compression_level)

    def to_tensor(self, *, compression_level: int = PNG_DEFAULT_LEVEL) -> torch.Tensor:
        """The PNG bytes as a 1-D uint8 CPU tensor."""
        return self._to_tensor(compression_level)

    def _encode(self, level: int) -> bytes:
        _check_level(level)
        _check_image(self._img, self._what)
        return _pillow(_hwc(self._img), "PNG", compress_level=level)


_NUMBER = re.compile(r"%(0?\d*)d")


def _names(pattern: str, count: int, start: int) -> list[Path]:
    """``frame_%05d.png`` (FFmpeg's image-sequence spelling) numbered from ``start``."""
    found = _NUMBER.findall(pattern.replace("%%", ""))
    if len(found) != 1:
        raise UsageError(
            f"invalid pattern {pattern!r}: it needs exactly one frame number such as %05d "
            "(e.g. 'frames/frame_%05d.png')"
        )
    names = [Path(pattern % (start + i)) for i in range(count)]
    if len(set(names)) != len(names):
        raise UsageError(f"invalid pattern {pattern!r}: it gives two frames the same name")
    return names


def _image_format(pattern: str) -> str:
    suffix = Path(pattern).suffix.lower()
    kinds = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
    if suffix not in kinds:
        raise UsageError(f"invalid pattern {pattern!r}: the extension must be .png, .jpg or .jpeg")
    return kinds[suffix]


def _frames_of(frames: Any) -> Iterator[Any]:
    """Each (C, H, W) picture of a 4-D batch, a list of pictures, or one picture."""
    if isinstance(frames, (list, tuple)):
        yield from frames
    elif getattr(frames, "ndim", None) == 4:
        yield from (frames[i] for i in range(int(frames.shape[0])))
    else:
        yield frames


def write_image_sequence(
    frames: Any,
    pattern: str,
    *,
    start_number: int = 0,
    quality: int = JPEG_DEFAULT_QUALITY,
    compression_level: int = PNG_DEFAULT_LEVEL,
    overwrite: bool = False,
    workers: int | None = None,
) -> list[Path]:
    """Write a batch of frames as numbered PNG or JPEG files in one call (torchcodec has one
    encoder per picture only).

    Args:
        frames: uint8 (N, C, H, W) tensor or array, or a list of (C, H, W) pictures, with 1 or
            3 channels. CUDA JPEG frames go to nvJPEG in one batched call where torchvision
            is installed; otherwise a CUDA batch is copied to the CPU once.
        pattern: file names with one printf-style number, as FFmpeg's image sequences:
            ``"frames/frame_%05d.png"``; the extension picks the format.
        start_number: the first file's number (FFmpeg's ``-start_number``; default 0).
        quality: JPEG quality 1–100; compression_level: PNG zlib level 0–9.
        overwrite: replace existing files; by default an existing one is refused (``OSError``)
            before anything is written.
        workers: threads encoding on the CPU (default: the CPU count; Pillow's encoders run
            without the GIL).

    Returns:
        The paths written, in frame order. On any error, none of them is left behind.
    """
    with _api_errors():
        fmt = _image_format(pattern)
        setting = _check_quality(quality) if fmt == "jpeg" else _check_level(compression_level)
        pictures = list(_frames_of(frames))
        if not pictures:
            raise UsageError("no frames to write")
        names = _names(pattern, len(pictures), start_number)
        for index, picture in enumerate(pictures):
            on_gpu = fmt == "jpeg" and _is_cuda(picture) and _gpu_jpeg() is not None
            _check_image(picture, f"frame {index}", channels=(3,) if on_gpu else (1, 3))
        from nvenc_cli.mux import check_destination

        for name in names:
            check_destination(str(name), overwrite)
        blobs = _encode_all(pictures, fmt, setting, workers)
        written: list[Path] = []
        try:
            for name, blob in zip(names, blobs, strict=True):
                _write_file(name, blob, overwrite)
                written.append(name)
        except BaseException:
            for name in written:
                with contextlib.suppress(OSError):
                    name.unlink()
            raise
    return names


def _encode_all(pictures: list[Any], fmt: str, setting: int, workers: int | None) -> list[bytes | memoryview]:
    """Every picture's bytes: CUDA JPEG batches through nvJPEG in one call, the rest on CPU
    threads (a CUDA batch without nvJPEG is copied to the CPU in one transfer)."""
    from concurrent.futures import ThreadPoolExecutor

    encode = _gpu_jpeg() if fmt == "jpeg" and all(_is_cuda(p) for p in pictures) else None
    if encode is not None:
        try:
            batch = encode([p.contiguous() for p in pictures], quality=setting)
        except RuntimeError:  # a torchvision built without nvJPEG: the CPU encodes them instead
            pass
        else:
            return [t.cpu().numpy().data for t in batch]
    pictures = _on_cpu(pictures)
    params = {"quality": setting} if fmt == "jpeg" else {"compress_level": setting}
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return list(pool.map(lambda p: _pillow(_hwc(p), fmt.upper(), **params), pictures))


def _on_cpu(pictures: list[Any]) -> list[Any]:
    """CUDA pictures of one shape moved to the CPU in one transfer, not one per picture."""
    import torch

    cuda = [p for p in pictures if _is_cuda(p)]
    if not cuda:
        return pictures
    if len({tuple(p.shape) for p in cuda}) == 1:
        moved = iter(torch.stack(cuda).cpu().unbind(0))
        return [next(moved) if _is_cuda(p) else p for p in pictures]
    return [p.cpu() if _is_cuda(p) else p for p in pictures]
