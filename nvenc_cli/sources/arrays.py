"""``.npy``, ``.npz`` and ``.pt`` inputs, read a window of frames at a time.

Peak memory must not grow with the file. ``.npy`` (and stored ``.npz`` members) are read
with plain positioned reads into a fresh window, so nothing is mapped at all. ``.pt`` is
opened with ``torch.load(mmap=True, weights_only=True)``; the pages of each window are
handed back with ``madvise(MADV_DONTNEED)`` once copied, because touched pages of a map
otherwise stay in the process's RSS until it exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from nvenc_cli.errors import InputDataError, InputMissingError, UsageError, brief
from nvenc_cli.sources.base import Source
from nvenc_cli.sources.buffers import WindowBuffers
from nvenc_cli.sources.layout import Layout, detect_layout, dtype_depth, frame_info, to_nhwc
from nvenc_cli.sources.npyheader import read_header, read_small_array

_MADV_DONTNEED = 4
_WINDOW_BYTES = 128 << 20


def _sample_bytes(dtype: Any) -> int:
    """Bytes per sample while a window is normalised (floats pass through float32).

    ``dtype`` is a numpy dtype or a torch dtype name such as ``"bfloat16"``.
    """
    name = str(dtype)
    bits = "".join(ch for ch in name if ch.isdigit()) or "64"
    size = int(getattr(dtype, "itemsize", 0)) or max(int(bits) // 8, 1)
    return max(size, 4) if "float" in name else size


def batch_refusal(name: str, shape: tuple[int, ...]) -> str:
    """What to say of a 5-D batch met without ``--sample``: both ways out."""
    return (
        f"{name} holds a batch of {shape[0]} clips, shape {tuple(shape)}: encode one with "
        f"--sample N (0–{shape[0] - 1}; negative counts from the end), or each to its own file "
        "with an output template such as -o 'out_{sample}.mp4'"
    )


def pick_sample(shape: tuple[int, ...], sample: int | None, name: str) -> int | None:
    """Which item of a 5-D batch ``(B, F, …)`` to read (``--sample``; -1 is the last),
    or None for a shape that is no batch; a batch without ``--sample`` is refused."""
    if len(shape) != 5:
        if sample is not None:
            raise UsageError(
                f"--sample picks a clip of a 5-D batch (B, F, C, H, W); {name} holds "
                f"{len(shape)}-D frames {tuple(shape)}"
            )
        return None
    if sample is None:
        raise UsageError(batch_refusal(name, shape))
    count = int(shape[0])
    if not -count <= sample < count:
        raise InputDataError(
            f"--sample {sample} is out of range: {name} holds {count} clips (0–{count - 1}, or "
            f"{-count}–-1 from the end)"
        )
    return sample % count


class ArraySource(Source):
    """Shared window logic; subclasses provide ``_read(index, count)`` of raw frames."""

    layout: Layout
    #: clips in the 5-D batch the frames were taken from (``--sample``), else None
    samples: int | None = None

    def _sample_of(self, shape: tuple[int, ...], sample: int | None) -> int | None:
        """``pick_sample`` for this file, remembering the batch's size for templates."""
        picked = pick_sample(shape, sample, self.name)
        if picked is not None:
            self.samples = int(shape[0])
        return picked

    def _setup(self, shape: tuple[int, ...], dtype: Any, forced_layout: str | None) -> None:
        try:
            self.layout = detect_layout(shape, forced_layout)
            self.depth = dtype_depth(dtype)
            self.info = frame_info(self.layout, self.depth)
        except InputDataError as exc:
            raise InputDataError(f"{self.name}: {exc}") from None
        if self.layout.kind == "chw" and forced_layout is None:
            kind = {1: "gray", 3: "RGB", 4: "RGBA"}[self.layout.channels]
            self.notices.append(
                f"shape {tuple(shape)} read as one {kind} frame, channels first (as the Python API "
                f"reads it); for {shape[0]} gray frames save them as {(*shape, 1)}"
            )
        # Cap a window's bytes so huge frames (4K float64) do not multiply by the batch
        # size and the queue depth into gigabytes; ordinary frames keep the batch size.
        samples = self.layout.height * self.layout.width * self.layout.channels
        self._max_window = max(1, _WINDOW_BYTES // (samples * _sample_bytes(dtype)))

    @property
    def total(self) -> int:
        return self.layout.frames

    @property
    def is_float(self) -> bool:
        return self.depth == 0

    def _take_rate(self, entry: tuple[str, Any] | None) -> None:
        """Use a frame rate saved beside the frames (``fps``/``frame_rate``) as the default."""
        if entry is None:
            return
        from nvenc_cli.options import parse_fps

        name, value = entry
        try:
            self.fps_hint = parse_fps(value)
        except UsageError:
            raise InputDataError(f"{self.name}: its {name!r} entry ({value!r}) is not a frame rate") from None
        self.fps_from = f"the file's {name!r} entry"

    def _take_timestamps(self, entry: tuple[str, Any] | None) -> None:
        """Use per-frame timestamps saved beside the frames (``timestamps``/``pts``/``t``)."""
        if entry is None:
            return
        from nvenc_cli.timestamps import Timeline

        name, values = entry
        if values is None:
            raise InputDataError(f"{self.name}: its {name!r} entry is not a list of times in seconds")
        try:
            self.timeline = Timeline.of(values, f"its {name!r} entry")
        except InputDataError as exc:
            raise InputDataError(f"{self.name}: {exc}") from None
        self.timeline_from = f"the file's {name!r} entry"

    def _windows(self, start: int, size: int) -> Iterator[np.ndarray]:
        size = min(size, self._max_window)
        for index in range(start, self.layout.frames, size):
            count = min(size, self.layout.frames - index)
            raw = self._read(index, count)
            try:
                window = to_nhwc(raw, self.layout, self.float_depth, index, self.value_range)
            except InputDataError as exc:
                raise InputDataError(f"{self.name}: {exc}") from None
            yield window

    def _read(self, index: int, count: int) -> np.ndarray:
        raise NotImplementedError


class _NpyStream:
    """Reads frames of one .npy payload from a binary file object (file or zip member)."""

    def __init__(self, fh: IO[bytes], size: int, label: str) -> None:
        self.fh, self.label = fh, label
        try:
            shape, fortran, dtype = read_header(fh, label)
        except InputDataError:
            raise
        except Exception as exc:  # the reads of untrusted bytes: CRC, inflate errors
            raise InputDataError(f"{label}: not a valid .npy array ({brief(exc)})") from None
        if dtype.hasobject:
            raise InputDataError(
                f"{label}: holds Python objects (dtype {dtype}); loading it would need pickle, "
                "which nvenc refuses"
            )
        if fortran and len(shape) > 1:
            raise InputDataError(
                f"{label}: stored in Fortran order, which cannot be streamed; "
                "save it with np.save(path, np.ascontiguousarray(frames))"
            )
        self.shape, self.dtype = tuple(shape), dtype
        self.offset = fh.tell()
        self._buffers = WindowBuffers()
        count = int(np.prod(shape, dtype=object)) if shape else 1
        need = count * dtype.itemsize
        if size - self.offset < need:
            raise InputDataError(
                f"{label}: truncated: its header promises {need} bytes of frames, "
                f"the file holds {max(size - self.offset, 0)}"
            )

    def narrow(self, sample: int | None) -> None:
        """Read only clip ``sample`` of a 5-D batch: it lies whole, in order, in the payload."""
        if sample is None:
            return
        inner = self.shape[1:]
        self.offset += sample * int(np.prod(inner, dtype=np.int64)) * self.dtype.itemsize
        self.shape = inner

    def setup_frames(self, layout: Layout) -> None:
        self.frame_shape = self.shape if layout.single else self.shape[1:]
        self.frame_bytes = int(np.prod(self.frame_shape, dtype=np.int64)) * self.dtype.itemsize

    def read(self, index: int, count: int, single: bool) -> np.ndarray:
        shape = self.frame_shape if single else (count, *self.frame_shape)
        out = self._buffers.empty(shape, self.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        got = 0
        try:
            self.fh.seek(self.offset + index * self.frame_bytes)
            while got < len(view):
                n = self.fh.readinto(view[got:])
                if not n:
                    raise InputDataError(f"{self.label}: ended early, at frame {index}")
                got += n
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # CRC, inflate errors
            raise InputDataError(f"{self.label}: corrupt data near frame {index} ({brief(exc)})") from None
        except OSError as exc:
            reason = exc.strerror or exc
            raise InputMissingError(f"{self.label}: cannot read frame {index} ({reason})") from None
        return out


class NpySource(ArraySource):
    """A ``.npy`` file, read frame windows with positioned reads (never mapped)."""

    def __init__(self, path: str, layout: str | None = None, sample: int | None = None) -> None:
        super().__init__()
        from nvenc_cli import storage

        self.name = path
        if storage.streams(path):  # an object in a store: windows by ranged reads
            self._fh, size = storage.open_input(path)
        else:
            self._fh = _open_binary(path)
            size = os.fstat(self._fh.fileno()).st_size
        try:
            if size == 0:
                raise InputDataError(f"{storage.redact(path)}: the object is empty")
            self.stream = _NpyStream(self._fh, size, path)
            self.stream.narrow(self._sample_of(self.stream.shape, sample))
            self._setup(self.stream.shape, self.stream.dtype, layout)
            self.stream.setup_frames(self.layout)
        except BaseException:
            self._fh.close()  # refused at open: the caller never gets a source to close
            raise

    def _read(self, index: int, count: int) -> np.ndarray:
        return self.stream.read(index, count, self.layout.single)

    def close(self) -> None:
        self._fh.close()


class NpzSource(ArraySource):
    """One array of a ``.npz``; stored members seek, deflated ones decompress in order."""

    def __init__(
        self, path: str, key: str | None = None, layout: str | None = None, sample: int | None = None
    ) -> None:
        super().__init__()
        self.name = path
        self._raw = raw = open_array_file(path)  # ZipFile never closes a file it was handed
        try:
            self._zip = zipfile.ZipFile(raw)
        except Exception as exc:  # a parser of untrusted bytes: any failure means corrupt
            raw.close()
            raise InputDataError(f"{path}: not a valid .npz archive ({brief(exc)})") from None
        #: the members of a list of frames (``np.savez(path, *frames)``), in order
        self._listed: list[zipfile.ZipInfo] = []
        try:
            member, rate = _pick_member(self._zip, key, path)
            stamps = _timestamps_member(self._zip, key)
            names = {m.filename.removesuffix(".npy") for m in self._zip.infolist()}
            #: the documented default sound entry, when it sits beside the frames
            self.audio_entry = (
                "audio" if "audio" in names and (key or "").removesuffix(".npy") != "audio" else None
            )
            if isinstance(member, list):
                self._open_list(member, layout)
                self._take_rate(rate)
                self._take_timestamps(stamps)
                return
            self.name = f"{path}[{member.filename.removesuffix('.npy')}]"
            try:
                self._fh = self._zip.open(member)
            except Exception as exc:
                raise InputDataError(f"{self.name}: corrupt archive member ({brief(exc)})") from None
            self.stream = _NpyStream(self._fh, member.file_size, self.name)
            self.stream.narrow(self._sample_of(self.stream.shape, sample))
            self._setup(self.stream.shape, self.stream.dtype, layout)
            self.stream.setup_frames(self.layout)
            self._take_rate(rate)
            self._take_timestamps(stamps)
        except BaseException:
            self._zip.close()
            raw.close()
            raise

    def _open_list(self, members: list[zipfile.ZipInfo], layout: str | None) -> None:
        """One frame per member: all alike (the first odd one is named), read in order."""
        shape, dtype = self._member_facts(members[0])
        for member in members[1:]:
            other = self._member_facts(member)
            if other != (shape, dtype):
                raise InputDataError(
                    f"{self.name}: frame {member.filename.removesuffix('.npy')!r} is {other[1]} "
                    f"{other[0]}, unlike {members[0].filename.removesuffix('.npy')!r} ({dtype} {shape}): "
                    "every frame of the list needs the same size, channels and dtype"
                )
        self._listed = members
        gray = (1,) if len(shape) == 2 else ()
        self._setup((len(members), *shape, *gray), dtype, layout)
        self._frame_shape = shape
        self._fh = None

    def _member_facts(self, member: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
        stream = self._member_stream(member)
        stream.fh.close()
        return stream.shape, stream.dtype

    def _member_stream(self, member: zipfile.ZipInfo) -> _NpyStream:
        label = f"{self.name}[{member.filename.removesuffix('.npy')}]"
        try:
            fh = self._zip.open(member)
        except Exception as exc:
            raise InputDataError(f"{label}: corrupt archive member ({brief(exc)})") from None
        stream = _NpyStream(fh, member.file_size, label)
        stream.frame_shape, stream.frame_bytes = (
            stream.shape,
            int(np.prod(stream.shape)) * stream.dtype.itemsize,
        )
        return stream

    def _read(self, index: int, count: int) -> np.ndarray:
        if not self._listed:
            return self.stream.read(index, count, self.layout.single)
        frames = []
        for member in self._listed[index : index + count]:
            stream = self._member_stream(member)
            try:
                frames.append(stream.read(0, 1, True).copy())
            finally:
                stream.fh.close()
        window = np.stack(frames)
        return window[..., np.newaxis] if len(self._frame_shape) == 2 else window

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._zip.close()
        self._raw.close()


def _pick_member(
    archive: zipfile.ZipFile, key: str | None, path: str
) -> tuple[zipfile.ZipInfo | list[zipfile.ZipInfo], tuple[str, Any] | None]:
    """The member holding the frames, and a frame rate stored beside it (a 0-d ``fps`` or
    ``frame_rate``). Without ``--key``, the one member of 2 or more dimensions is the
    frames even when scalars or 1-D arrays (timestamps) sit beside it."""
    from nvenc_cli.sources.ptfile import RATE_KEYS, natural

    members = {m.filename.removesuffix(".npy"): m for m in archive.infolist()}
    rate = None
    for name in RATE_KEYS:
        if name in members and name != (key or "").removesuffix(".npy"):
            value = _scalar(archive, members[name])
            rate = None if value is None else (name, value)
            break
    if key is not None:
        if key.removesuffix(".npy") not in members:
            raise InputDataError(
                f"{path}: no array named {key!r}; it holds {', '.join(sorted(members)) or 'none'}"
            )
        return members[key.removesuffix(".npy")], rate
    if not members:
        raise InputDataError(f"{path}: the archive holds no arrays")
    if len(members) == 1:
        return next(iter(members.values())), rate
    shapes = {name: _member_shape(archive, member) for name, member in members.items()}
    frames = [name for name, shape in shapes.items() if len(shape) >= 2]
    if len(frames) > 1 and all(len(shapes[name]) in (2, 3) for name in frames):
        return [members[name] for name in sorted(frames, key=natural)], rate  # np.savez(path, *frames)
    if len(frames) != 1:
        listed = ", ".join(sorted(frames or members, key=natural))
        raise UsageError(f"{path} holds several arrays ({listed}): pick one with --key")
    return members[frames[0]], rate


def _timestamps_member(archive: zipfile.ZipFile, key: str | None) -> tuple[str, Any] | None:
    """A 1-D ``timestamps``/``pts``/``t`` member beside the frames: its name and values."""
    from nvenc_cli.sources.ptfile import VECTOR_LIMIT
    from nvenc_cli.timestamps import ENTRY_NAMES

    members = {m.filename.removesuffix(".npy"): m for m in archive.infolist()}
    for name in ENTRY_NAMES:
        member = members.get(name)
        if member is None or name == (key or "").removesuffix(".npy"):
            continue
        if len(_member_shape(archive, member)) != 1:
            return None
        if member.file_size > VECTOR_LIMIT:
            raise InputDataError(f"its {name!r} entry holds more values than any video's frames")
        try:
            with archive.open(member) as fh:
                return name, read_small_array(fh, name, member.file_size, VECTOR_LIMIT)
        except Exception:
            return name, None
    return None


def _member_shape(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[int, ...]:
    """A member's array shape from its .npy header alone (nothing else is inflated)."""
    try:
        with archive.open(member) as fh:
            return read_header(fh, member.filename)[0]
    except Exception:  # not an array: never the frames; a pick by --key reports it
        return ()


def _scalar(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> float | int | None:
    """The value of a one-element numeric member (a frame rate), else None."""
    if member.file_size > 4096:
        return None
    try:
        with archive.open(member) as fh:
            value = read_small_array(fh, member.filename, member.file_size, 4096)
    except Exception:
        return None
    if value.size != 1 or value.dtype.kind not in "iuf":
        return None
    return value.reshape(()).item()


class TorchSource(ArraySource):
    """A tensor inside a ``.pt``/``.pth`` file, loaded safely.

    Zip-format files with plain tensors are read without torch (``ptfile``), which saves
    its import: ~225 MB of RSS and a second of start-up. Anything else goes through
    ``torch.load(weights_only=True)``, memory-mapped where the format allows.
    """

    def __init__(
        self, path: str, key: str | None = None, layout: str | None = None, sample: int | None = None
    ) -> None:
        from nvenc_cli.sources.ptfile import open_frames

        super().__init__()
        self.name = path
        self._frames = open_frames(_open_binary(path), path, key)
        if self._frames is not None:
            self.tensor = None
            try:
                self._frames.narrow(self._sample_of(self._frames.shape, sample))
                self._setup(self._frames.shape, self._frames.dtype_name, layout)
            except BaseException:
                self._frames.close()
                raise
            self._take_rate(self._frames.rate)
            self._take_timestamps(self._frames.timestamps)
            return
        loaded, self._mapped = _torch_load(path)
        if not self._mapped:
            # A documented limit: torch has no way to read these a window at a time, so
            # the memory they take grows with the file (up to INFLATE_LIMIT, checked above).
            self.notices.append(
                f"{os.path.getsize(path):,} bytes loaded into memory whole: a legacy (non-zip) or "
                "compressed .pt cannot be streamed; save it with torch.save(frames) to stream it"
            )
        picked, parent = _pick_tensor(loaded, key, path)
        if isinstance(picked, list):  # a list of frames: stacked a window at a time
            from nvenc_cli.sources.sequence import FrameList

            self._mapped = False
            try:
                picked = FrameList([_plain_tensor(item, path) for item in picked])
            except InputDataError as exc:
                raise InputDataError(f"{path}: {exc}") from None
        tensor = picked if not hasattr(picked, "is_complex") else _plain_tensor(picked, path)
        index = self._sample_of(tuple(tensor.shape), sample)
        if index is not None:
            tensor = tensor[index]
        self.tensor = tensor
        self._setup(tuple(tensor.shape), _torch_dtype_name(tensor), layout)
        from nvenc_cli.sources.ptfile import number, rate_entry, timestamps_entry

        entry = rate_entry(parent)
        value = None if entry is None else number(entry[1])
        self._take_rate(None if value is None else (entry[0], value))
        self._take_timestamps(timestamps_entry(parent))

    def _read(self, index: int, count: int) -> np.ndarray:
        if self._frames is not None:
            return self._frames.read(index, count, self.layout.single)
        import torch

        window = self.tensor if self.layout.single else self.tensor[index : index + count]
        window = window.resolve_neg().resolve_conj()  # lazy negated/conjugated views
        if window.dtype == torch.bfloat16:
            raw = _widen_bfloat16(window.view(torch.int16).numpy().view(np.uint16))
        else:
            raw = window.numpy().copy()
        if self._mapped and not self.layout.single:
            _release(window)
        return raw

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
        self.tensor = None


def _widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 samples (as raw uint16) to float32, exactly: a bfloat16 is the top half of
    a float32. Done in numpy because torch's ``.float()`` kept ~400 MB of allocator caches
    alive across its threads while streaming a large file."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _torch_dtype_name(tensor: Any) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _plain_tensor(tensor: Any, path: str) -> Any:
    """Refuse tensors that are not plain dense host memory, before any frame is read.

    ``weights_only`` happily loads sparse, quantized, nested and meta tensors; reading
    their frames would fail deep in numpy conversion with an internal error. A tensor
    saved with ``requires_grad`` (a model output) is fine: its data is detached.
    """
    import torch

    if tensor.is_complex():
        raise InputDataError(f"{path}: unsupported dtype {_torch_dtype_name(tensor)}")
    kind = None
    if tensor.is_nested:
        kind = "a nested tensor"
    elif tensor.layout != torch.strided:
        kind = f"a {str(tensor.layout).removeprefix('torch.').removeprefix('_')} tensor"
    elif tensor.is_quantized:
        kind = "a quantized tensor"
    elif tensor.device.type != "cpu":
        kind = f"a tensor on device {tensor.device.type!r} with no data"
    if kind is not None:
        raise InputDataError(f"{path}: holds {kind}; nvenc reads dense frame tensors only")
    return tensor.detach()


def _torch_load(path: str) -> tuple[Any, bool]:
    """Load with ``weights_only`` (never a full unpickle); say whether it is mapped."""
    import pickle

    from nvenc_cli.extras import require_torch

    _open_binary(path).close()
    torch = require_torch(f"{path}: this .pt file is not one the torch-free reader handles; loading it")
    try:
        # torch warns on stderr about odd pickle protocols and deprecated storages; the
        # outcome is reported as one error line (or success), so the warnings are noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole = _loaded_whole(path)
            if whole is not None:
                # Deflated storages or the legacy format: torch holds all of it in memory
                # (its mmap path would hand out deflated bytes as the tensor).
                return torch.load(path, map_location="cpu", weights_only=True), False
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True), True
    except InputDataError:
        raise
    except pickle.UnpicklingError as exc:
        raise InputDataError(
            f"{path}: refused: not a plain tensor file ({_unpickle_reason(exc)}); nvenc loads "
            ".pt files with weights_only=True and never runs a full unpickle, which could run code"
        ) from None
    except Exception as exc:  # torch.load parses untrusted bytes: any failure means corrupt
        raise InputDataError(f"{path}: not a readable torch file ({brief(exc)})") from None


def _loaded_whole(path: str) -> int | None:
    """The bytes torch would have to load into memory for ``path`` (None: it can map it),
    refused from the header when more than ``INFLATE_LIMIT``: a legacy (non-zip) file is
    read whole, a zip re-packed with compression is inflated whole."""
    from nvenc_cli.sources.ptfile import INFLATE_LIMIT

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if all(m.compress_type == zipfile.ZIP_STORED for m in members):
                return None
            size, kind = sum(m.file_size for m in members), "deflated archive"
    except (zipfile.BadZipFile, OSError, ValueError):
        size, kind = os.path.getsize(path), "legacy (non-zip) .pt file"
    if size > INFLATE_LIMIT:
        raise InputDataError(
            f"{path}: refused: a {kind} of {size >> 20} MiB would have to be loaded into memory "
            f"whole (nvenc streams frames; at most {INFLATE_LIMIT >> 20} MiB is loaded): re-save it "
            "with torch.save(frames) (zip format, not compressed)"
        )
    return size


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _unpickle_reason(exc: BaseException) -> str:
    """The specific line of torch's weights-only refusal (e.g. which GLOBAL it blocked),
    not the paragraph of boilerplate (with its terminal escape codes) around it, nor its
    advice to allowlist the global."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    for line in filter(None, lines):
        _, marker, rest = line.partition("WeightsUnpickler error:")
        text = rest.strip() if marker else line
        if text.lower().startswith(("trying to load unsupported", "unsupported")):
            return text.split(" Please use ", 1)[0].rstrip(".")[:160]
    boilerplate = ("weights only load failed", "check the documentation", "(1)", "(2)")
    useful = [line for line in filter(None, lines) if not line.lower().startswith(boilerplate)]
    return (useful[0] if useful else type(exc).__name__)[:160]


def _pick_tensor(obj: Any, key: str | None, path: str) -> tuple[Any, list[Any]]:
    """The tensor and the containers around it (where a frame rate may sit beside it)."""
    import torch

    from nvenc_cli.sources.ptfile import locate_tensor

    return locate_tensor(obj, key, path, lambda value: isinstance(value, torch.Tensor))


def _release(window: Any) -> None:
    """Drop the mapped pages a copied window touched, so RSS stays flat."""
    if not window.is_contiguous() or window.numel() == 0:
        return
    page = mmap.PAGESIZE
    start = window.data_ptr()
    end = start + window.numel() * window.element_size()
    # Only whole pages inside the window: a page shared with the next window stays.
    first, last = -(-start // page) * page, end // page * page
    if last <= first:
        return
    with contextlib.suppress(OSError, AttributeError):
        _libc().madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return _LIBC


def open_array_file(path: str) -> IO[bytes]:
    """The array file ``path`` opened for reading, refused when missing or empty: a
    local file, or an object in a store read by ranged requests (``storage.open_input``),
    over which ``zipfile`` and the ``.npy`` reader seek as over any file."""
    from nvenc_cli import storage

    if storage.streams(path):
        fh, size = storage.open_input(path)
        if size == 0:
            fh.close()
            raise InputDataError(f"{storage.redact(path)}: the object is empty")
        return fh  # type: ignore[no-any-return]
    return _open_binary(path)


def _open_binary(path: str) -> IO[bytes]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - owned by the source, closed in close()
    except FileNotFoundError:
        raise InputMissingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputMissingError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InputMissingError(f"{path}: cannot read ({exc.strerror})") from None
    if os.fstat(fh.fileno()).st_size == 0:
        fh.close()
        raise InputDataError(f"{path}: the file is empty")
    return fh
