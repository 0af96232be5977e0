"""Zip-format ``.pt`` files (``torch.save`` since 1.6) read without importing torch.

Importing torch costs about 225 MB of RSS and a second of start-up, more than the whole
rest of an encode, only to find a tensor's dtype, shape and strides and where its bytes
are. All of that is in the archive: ``data.pkl`` says how each tensor is rebuilt from a
storage, and every storage is an uncompressed member, so frames can be read with
positioned reads as for ``.npy``.

``data.pkl`` is unpickled with an allowlist of exactly what a plain tensor needs; the
rebuild functions are replaced by ones that only record facts, so nothing from the file
is ever called. What this reader does not know (legacy files, sparse or quantized
tensors, odd dtypes, damaged archives) raises ``NeedsTorch``: the caller then loads the
file with torch's own ``weights_only`` loader, which decides and words the outcome as
before. Globals that neither loader would accept are refused here directly.
"""

from __future__ import annotations

import collections
import contextlib
import io
import mmap
import os
import pickle
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from nvenc_cli.errors import InputDataError, InputMissingError, UsageError
from nvenc_cli.sources.buffers import WindowBuffers

# The dtypes frames can come in, by torch's name: numpy type and bytes per element.
# bfloat16 has no numpy type: its raw bits are read as uint16 and widened to float32.
_READABLE: dict[str, tuple[str, int]] = {
    "uint8": ("u1", 1),
    "uint16": ("u2", 2),
    "float16": ("f2", 2),
    "bfloat16": ("u2", 2),
    "float32": ("f4", 4),
    "float64": ("f8", 8),
}

# Legacy typed storages named in persistent ids, by the dtype of their elements.
_STORAGE_DTYPES = {
    "ByteStorage": "uint8",
    "CharStorage": "int8",
    "ShortStorage": "int16",
    "IntStorage": "int32",
    "LongStorage": "int64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}

# dtype globals (``torch.uint16``) that ``_rebuild_tensor_v3`` names next to an untyped
# storage. Only the readable ones get a fast path; the rest still count as tensors when
# --key picks among them, and the torch loader reports them if one is picked.
_DTYPE_NAMES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint32", "uint64", "complex32", "complex64", "complex128"}
    | set(_READABLE)
)

# Globals outside torch that torch's weights-only loader accepts: a file holding them is
# still a plain file, so torch reads it rather than this reader refusing it.
_TORCH_ACCEPTS = frozenset(
    f"{module}.{name}"
    for module, names in (
        ("collections", ("Counter",)),
        ("_codecs", ("encode",)),
        ("builtins", ("bytearray", "set", "complex")),
        ("__builtin__", ("bytearray", "set", "complex")),
    )
    for name in names
)

_LOCAL_HEADER = struct.Struct("<4s5H3I2H")


class NeedsTorch(Exception):
    """The file may be valid but holds something only torch can rebuild or judge."""


class _Refused(Exception):
    """``data.pkl`` names a global that no weights-only loader would accept."""


@dataclass(frozen=True, slots=True)
class _StorageKind:
    """A storage type named in a persistent id; ``dtype`` is empty for untyped bytes."""

    dtype: str


@dataclass(frozen=True, slots=True)
class _DType:
    """A ``torch.<dtype>`` global, by name."""

    name: str


@dataclass(frozen=True, slots=True)
class StorageRef:
    """Where one storage's bytes are: an archive member and its size in bytes (or
    ``None`` when the element size of its dtype is not known here)."""

    member: str
    dtype: str
    nbytes: int | None


@dataclass(frozen=True, slots=True)
class TensorRef:
    """A tensor as ``data.pkl`` describes it; ``plain`` is false when torch would apply
    metadata (conjugate or negative views) that this reader does not."""

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str
    plain: bool


def _ints(value: object) -> tuple[int, ...]:
    """A size or stride tuple; anything else means the file needs torch's judgement."""
    if not isinstance(value, tuple | list) or not all(type(v) is int for v in value):
        raise NeedsTorch("malformed size or stride")
    return tuple(value)


def _tensor(
    storage: object, offset: object, size: object, stride: object, dtype: str, metadata: object
) -> TensorRef:
    """Check one tensor record's fields; ``metadata`` (conj/neg bits) makes it not plain."""
    if not isinstance(storage, StorageRef) or type(offset) is not int:
        raise NeedsTorch("malformed tensor record")
    shape, steps = _ints(size), _ints(stride)
    if len(shape) != len(steps):
        raise NeedsTorch("size and stride disagree")
    plain = metadata is None or (isinstance(metadata, dict) and not metadata)
    return TensorRef(storage, offset, shape, steps, dtype, plain)


def _rebuild_v1(storage: object, offset: object, size: object, stride: object) -> TensorRef:
    """Stands in for ``torch._utils._rebuild_tensor``."""
    return _tensor(storage, offset, size, stride, getattr(storage, "dtype", ""), None)


def _rebuild_v2(
    storage: object,
    offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    hooks: object = None,
    metadata: object = None,
) -> TensorRef:
    """Stands in for ``torch._utils._rebuild_tensor_v2``: the dtype is the storage's.
    ``requires_grad`` and hooks do not change the data, which is all that is read."""
    return _tensor(storage, offset, size, stride, getattr(storage, "dtype", ""), metadata)


def _rebuild_v3(
    storage: object,
    offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    hooks: object,
    dtype: object,
    metadata: object = None,
) -> TensorRef:
    """Stands in for ``torch._utils._rebuild_tensor_v3``: an untyped storage whose
    dtype is named separately (how torch 2.x saves uint16 and newer dtypes)."""
    if not isinstance(dtype, _DType):
        raise NeedsTorch("malformed dtype")
    return _tensor(storage, offset, size, stride, dtype.name, metadata)


_REBUILDERS: dict[str, Callable[..., TensorRef]] = {
    "torch._utils._rebuild_tensor": _rebuild_v1,
    "torch._utils._rebuild_tensor_v2": _rebuild_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_v3,
}


class _Unpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` into containers of ``TensorRef``; runs nothing from the file.

    ``find_class`` hands out only the stand-in rebuild functions, ``OrderedDict`` and
    inert markers, so REDUCE can call nothing else.
    """

    def __init__(self, data: bytes, prefix: str, members: dict[str, zipfile.ZipInfo]) -> None:
        super().__init__(io.BytesIO(data))
        self.prefix, self.members = prefix, members

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in _REBUILDERS:
            return _REBUILDERS[full]
        if full == "collections.OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageKind(_STORAGE_DTYPES[name])
        if full == "torch.storage.UntypedStorage":
            return _StorageKind("")
        if module == "torch" and name in _DTYPE_NAMES:
            return _DType(name)
        if module == "torch" or module.startswith("torch.") or full in _TORCH_ACCEPTS:
            raise NeedsTorch(full)
        raise _Refused(full)

    def persistent_load(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise NeedsTorch("unknown persistent id")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageKind) or not isinstance(key, str) or type(numel) is not int:
            raise NeedsTorch("malformed storage record")
        member = f"{self.prefix}data/{key}"
        if member not in self.members or numel < 0:
            raise NeedsTorch("storage record without data")
        if not kind.dtype:
            return StorageRef(member, "", numel)  # untyped: numel counts bytes
        itemsize = _READABLE.get(kind.dtype, ("", 0))[1]
        return StorageRef(member, kind.dtype, numel * itemsize if itemsize else None)


# What a header may make this reader inflate into memory: the pickled description, and a
# deflated storage that torch would have to load whole. Anything bigger is refused from
# the archive's directory, before it is inflated.
PICKLE_LIMIT = 64 << 20
INFLATE_LIMIT = 256 << 20


class _TooLarge(Exception):
    pass


def _read_bounded(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member's bytes, inflated no further than ``limit`` (whatever its header claims)."""
    with archive.open(name) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise _TooLarge(name)
    return data


def load_description(archive: zipfile.ZipFile, path: str) -> tuple[Any, str]:
    """Unpickle ``<prefix>/data.pkl`` into plain containers of ``TensorRef``; returns the
    object and the byte order of the storages (``<`` or ``>``)."""
    members = {info.filename: info for info in archive.infolist()}
    pickles = [name for name in members if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise NeedsTorch("no single data.pkl")
    prefix = pickles[0].removesuffix("data.pkl")
    try:
        data = _read_bounded(archive, pickles[0], PICKLE_LIMIT)
        named = prefix + "byteorder" in members
        order = _read_bounded(archive, prefix + "byteorder", 16) if named else b"little"
    except _TooLarge:
        raise InputDataError(
            f"{path}: refused: its data.pkl inflates past {PICKLE_LIMIT >> 20} MiB; a tensor "
            "file's description is a few kilobytes (a small file that would fill memory)"
        ) from None
    except Exception as exc:  # damaged archive: torch words the error as it always has
        raise NeedsTorch(str(exc)) from None
    if order not in (b"little", b"big"):
        raise NeedsTorch("unknown byte order")
    try:
        obj = _Unpickler(data, prefix, members).load()
    except _Refused as exc:
        raise InputDataError(
            f"{path}: refused: it holds objects that only a full unpickle could load "
            f"(GLOBAL {exc}); nvenc never runs a full unpickle of a .pt file, which could run code"
        ) from None
    except NeedsTorch:
        raise
    except Exception as exc:  # any parse failure of untrusted bytes: torch decides
        raise NeedsTorch(str(exc)) from None
    return obj, "<" if order == b"little" else ">"


def _parent_of(obj: Any, key: str | None, path: str) -> list[Any]:
    return locate_tensor(obj, key, path, lambda value: isinstance(value, TensorRef))[1]


def pick_tensor(obj: Any, key: str | None, path: str) -> TensorRef:
    """Choose the tensor ``--key`` names among what the fast unpickler recorded."""
    if isinstance(obj, _StorageKind | _DType | StorageRef):
        raise NeedsTorch("a bare storage or dtype")  # torch names these types its own way
    return choose_tensor(obj, key, path, lambda value: isinstance(value, TensorRef))


def choose_tensor(obj: Any, key: str | None, path: str, is_tensor: Callable[[Any], bool]) -> Any:
    """The selection rules shared by both .pt readers, so they agree on every message: a
    lone tensor, or the one ``--key`` names among the tensors of a dict, list or tuple."""
    return locate_tensor(obj, key, path, is_tensor)[0]


def locate_tensor(
    obj: Any, key: str | None, path: str, is_tensor: Callable[[Any], bool]
) -> tuple[Any, list[Any]]:
    """The tensor ``--key`` picks and the containers on the way to it, innermost first.

    ``--key a.b.0`` walks nested dicts and lists (a key that exists as written wins, so a
    dict key with a dot in it still works). Without ``--key``, tensors of fewer than 2
    dimensions (a frame rate saved as ``torch.tensor(24)``, timestamps) are not frame
    candidates when frame-shaped ones sit beside them.
    """
    if key is not None and "." in key and not _holds(obj, key):
        parts = key.split(".")
        containers, value = [], obj
        for depth, part in enumerate(parts):
            if is_tensor(value):
                raise InputDataError(f"{path}: --key {key}: {'.'.join(parts[:depth])!r} is already a tensor")
            containers.insert(0, value)
            value = _step(value, part, path, ".".join(parts[: depth + 1]))
        if not is_tensor(value):
            raise InputDataError(f"{path}: --key {key} names a {type(value).__name__}, not a tensor")
        return value, containers
    tensor = _choose_in(obj, key, path, is_tensor)
    return tensor, ([] if tensor is obj else [obj])


def _holds(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and any(str(k) == key for k in obj)


def _step(container: Any, part: str, path: str, where: str) -> Any:
    """One step of a dotted ``--key``: a dict key, or a list/tuple index."""
    if isinstance(container, dict):
        for k, value in container.items():
            if str(k) == part:
                return value
        raise InputDataError(
            f"{path}: no entry {where!r}; there it has {', '.join(sorted(map(str, container))) or 'nothing'}"
        )
    if isinstance(container, list | tuple):
        if part.lstrip("-").isdigit() and -len(container) <= int(part) < len(container):
            return container[int(part)]
        raise InputDataError(f"{path}: no index {where!r}: that list has {len(container)} items")
    raise InputDataError(f"{path}: nothing under {where!r}: it is a {type(container).__name__}")


def _dims(value: Any) -> int:
    size = getattr(value, "size", None)
    if isinstance(size, tuple):  # TensorRef
        return len(size)
    dim = getattr(value, "dim", None)
    return int(dim()) if callable(dim) else 0


def frame_list(value: Any, is_tensor: Callable[[Any], bool]) -> bool:
    """A list or tuple of single frames (``torch.save(list_of_frames)``): every item a
    tensor of 2 or 3 dimensions. Checked by shape only; ``PtFrames`` and the torch loader
    then refuse frames unlike the first."""
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(is_tensor(v) and _dims(v) in (2, 3) for v in value)
    )


def natural(name: str) -> tuple[Any, ...]:
    """Sort key that puts ``10`` after ``9`` (and ``arr_10`` after ``arr_9``)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name))


def _choose_in(obj: Any, key: str | None, path: str, is_tensor: Callable[[Any], bool]) -> Any:
    if is_tensor(obj):
        if key is not None:
            raise UsageError(f"{path} holds a single tensor: drop --key {key}")
        return obj
    if key is None and frame_list(obj, is_tensor) and len(obj) > 1:
        return list(obj)  # the file is a list of frames
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        items = iter(())
    found = {str(k): v for k, v in items if is_tensor(v) or frame_list(v, is_tensor)}
    if not found:
        nested = isinstance(obj, dict | list | tuple) and any(
            isinstance(v, dict | list | tuple) for v in (obj.values() if isinstance(obj, dict) else obj)
        )
        hint = "; --key a.b.0 reaches tensors inside nested dicts and lists" if nested else ""
        raise InputDataError(f"{path}: holds no tensor (found {type(obj).__name__}){hint}")
    if key is not None:
        if key not in found:
            raise InputDataError(
                f"{path}: no tensor under {key!r}; it has {', '.join(sorted(found, key=natural))}"
            )
        return _as_frames(found[key], is_tensor)
    frames = {k: v for k, v in found.items() if not is_tensor(v) or _dims(v) >= 2} or found
    if len(frames) > 1:
        raise UsageError(
            f"{path} holds several tensors ({', '.join(sorted(frames, key=natural))}): use --key"
        )
    return _as_frames(next(iter(frames.values())), is_tensor)


def _as_frames(value: Any, is_tensor: Callable[[Any], bool]) -> Any:
    """A tensor as it is; a list of frames as a list (``PtFrames`` reads it frame by frame)."""
    return value if is_tensor(value) else list(value)


# Entry names that hold a frame rate beside the frames ({'video': t, 'fps': 24}).
RATE_KEYS = ("fps", "frame_rate", "framerate")


def rate_entry(containers: list[Any]) -> tuple[str, Any] | None:
    """The name and raw value of a frame-rate entry in the nearest dict around the frames
    (``{'video': t, 'fps': 24}``, or ``{'samples': [t, …], 'fps': 24}`` with ``--key samples.0``)."""
    for container in containers:
        if not isinstance(container, dict):
            continue
        for name in RATE_KEYS:
            for k, value in container.items():
                if str(k) == name:
                    return name, value
    return None


def timestamps_entry(containers: list[Any]) -> tuple[str, Any] | None:
    """The name and raw value of a per-frame timestamps entry beside the frames
    (``{'frames': t, 'timestamps': ts}``), found as ``rate_entry`` finds a rate."""
    from nvenc_cli.timestamps import ENTRY_NAMES

    for container in containers:
        if not isinstance(container, dict):
            continue
        for name in ENTRY_NAMES:
            for k, value in container.items():
                if str(k) == name:
                    return name, value
    return None


# The most bytes a timestamps entry may hold (8 bytes a frame: 8 million frames).
VECTOR_LIMIT = 64 << 20


def read_vector(archive: zipfile.ZipFile, ref: TensorRef, order: str) -> list[Any] | None:
    """The values of a 1-D numeric tensor recorded by the fast unpickler (timestamps)."""
    code = _SCALAR_DTYPES.get(ref.dtype)
    if code is None or len(ref.size) != 1:
        return None
    dtype = np.dtype(order + code) if code[1] != "1" else np.dtype(code)
    count = ref.size[0]
    if count * dtype.itemsize > VECTOR_LIMIT:
        raise InputDataError(f"its timestamps entry holds {count} values: more than any video's frames")
    try:
        with archive.open(ref.storage.member) as fh:
            data = fh.read((ref.offset + count * ref.stride[0]) * dtype.itemsize)
        values = np.frombuffer(data, dtype, offset=ref.offset * dtype.itemsize)[:: ref.stride[0]][:count]
    except Exception:  # damaged: said when the frames are read, or the entry is ignored
        return None
    return values.tolist()


def number(value: Any, read_ref: Callable[[TensorRef], Any] | None = None) -> float | int | None:
    """A plain number from a frame-rate entry (int, float, a one-element tensor), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, TensorRef):
        return read_ref(value) if read_ref is not None else None
    item = getattr(value, "item", None)
    numel = getattr(value, "numel", None)
    if callable(item) and callable(numel) and numel() == 1:
        got = item()
        return got if isinstance(got, int | float) and not isinstance(got, bool) else None
    return None


_SCALAR_DTYPES = {
    "uint8": "u1", "int8": "i1", "int16": "i2", "int32": "i4", "int64": "i8",
    "uint16": "u2", "float16": "f2", "float32": "f4", "float64": "f8",
}  # fmt: skip


def read_scalar(archive: zipfile.ZipFile, ref: TensorRef, order: str) -> float | int | None:
    """The value of a one-element tensor recorded by the fast unpickler (a frame rate)."""
    code = _SCALAR_DTYPES.get(ref.dtype)
    if code is None or int(np.prod(ref.size, dtype=np.int64)) != 1:
        return None
    dtype = np.dtype(order + code) if code[1] != "1" else np.dtype(code)
    try:
        data = archive.read(ref.storage.member)
        return np.frombuffer(data, dtype, count=1, offset=ref.offset * dtype.itemsize)[0].item()
    except Exception:  # damaged or odd: the rate is optional, the frames decide the outcome
        return None


def _data_start(fh: IO[bytes], info: zipfile.ZipInfo) -> int:
    """File offset of a stored member's first byte: its local header's own lengths."""
    fh.seek(info.header_offset)
    header = fh.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size:
        raise NeedsTorch("truncated local header")
    fields = _LOCAL_HEADER.unpack(header)
    if fields[0] != b"PK\x03\x04":
        raise NeedsTorch("bad local header")
    name_length, extra_length = fields[-2], fields[-1]
    if fh.read(name_length) != info.orig_filename.encode("utf-8"):
        raise NeedsTorch("local header names another member")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _dense_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a C-contiguous tensor of ``shape``."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.insert(0, step)
        step *= size
    return tuple(strides)


def _c_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """Whether elements of ``shape`` with element ``stride`` are one dense C-order run."""
    expected = 1
    for size, step in zip(reversed(shape), reversed(stride), strict=True):
        if size != 1 and step != expected:
            return False
        expected *= size
    return True


def _widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 (raw uint16 bits) to float32, exactly: bfloat16 is a float32's top half."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


class PtFrames:
    """Windows of one tensor of a zip-format ``.pt``, read straight from the file.

    Frames laid out densely are read with positioned reads into reused window memory
    (nothing mapped); other strides go through a read-only map and ``as_strided``, and the pages
    no later window needs are handed back after each copy so RSS stays flat.
    """

    def __init__(self, fh: IO[bytes], path: str, key: str | None) -> None:
        self.fh, self.path = fh, path
        self._map: mmap.mmap | None = None
        self._flat: np.ndarray | None = None
        self._released = 0
        self._buffers = WindowBuffers()
        try:
            archive = zipfile.ZipFile(fh)
        except Exception as exc:  # legacy (non-zip) files and damaged ones: torch decides
            raise NeedsTorch(str(exc)) from None
        #: where each listed frame starts, in elements from ``self.start`` (a list of frames)
        self._parts: list[int] | None = None
        with archive:
            obj, order = load_description(archive, path)
            tensor = pick_tensor(obj, key, path)
            if isinstance(tensor, list):
                tensor = self._listed(archive, tensor, path)
            info = archive.getinfo(tensor.storage.member)
            #: (entry name, value) of a frame rate saved beside the frames, if any.
            self.rate: tuple[str, Any] | None = None
            parents = _parent_of(obj, key, path)
            entry = rate_entry(parents)
            if entry is not None:
                value = number(entry[1], lambda ref: read_scalar(archive, ref, order))
                self.rate = None if value is None else (entry[0], value)
            #: (entry name, values) of per-frame timestamps saved beside the frames, if any.
            self.timestamps: tuple[str, Any] | None = None
            stamps = timestamps_entry(parents)
            if stamps is not None:
                name, value = stamps
                values = read_vector(archive, value, order) if isinstance(value, TensorRef) else value
                self.timestamps = (name, values)
        typed = tensor.storage.dtype in ("", tensor.dtype)
        if tensor.dtype not in _READABLE or not tensor.plain or not typed:
            raise NeedsTorch(f"dtype {tensor.dtype}")
        if info.flag_bits & 1:
            raise NeedsTorch("encrypted storage")
        code, self.itemsize = _READABLE[tensor.dtype]
        self.dtype_name = tensor.dtype
        self.np_dtype = np.dtype(order + code) if self.itemsize > 1 else np.dtype(code)
        self.shape, self.stride, self.offset = tensor.size, tensor.stride, tensor.offset
        #: a deflated storage member, read by inflating it in order (never whole).
        self._deflated: zipfile.ZipInfo | None = None
        self._inflating: tuple[zipfile.ZipFile, IO[bytes]] | None = None
        self._inflated = 0
        if self._parts is not None:
            self.start, self.elements = 0, 0
            return
        if info.compress_type != zipfile.ZIP_STORED:
            self._deflated = info
            self.start = 0
            self.elements = self._check_bounds(tensor, info, None)
            self._check_streamable(tensor, info)
            return
        self.start = _data_start(fh, info)
        self.elements = self._check_bounds(tensor, info, os.fstat(fh.fileno()).st_size)

    def _listed(self, archive: zipfile.ZipFile, refs: list[TensorRef], path: str) -> TensorRef:
        """A list of frames, each its own storage: checked alike (the first odd one is
        named), then read frame by frame with positioned reads. Returns a stand-in for
        the first frame, shaped as the whole list, so the checks below apply to it."""
        first = refs[0]
        for index, ref in enumerate(refs[1:], 1):
            if (ref.size, ref.dtype) != (first.size, first.dtype):
                raise InputDataError(
                    f"{path}: frame {index} of the list is {ref.dtype} {ref.size}, unlike frame 0 "
                    f"({first.dtype} {first.size}): every frame needs the same size, channels and dtype"
                )
        starts = []
        for ref in refs:
            info = archive.getinfo(ref.storage.member)
            if info.compress_type != zipfile.ZIP_STORED or not ref.plain:
                raise NeedsTorch("a listed frame in a deflated storage")
            if not _c_contiguous(ref.size, ref.stride) or ref.dtype not in _READABLE:
                raise NeedsTorch("a listed frame that is not dense")
            itemsize = _READABLE[ref.dtype][1]
            nbytes = int(np.prod(ref.size, dtype=np.int64)) * itemsize
            if ref.storage.nbytes is None or ref.offset * itemsize + nbytes > min(
                ref.storage.nbytes, info.file_size
            ):
                raise NeedsTorch("storage larger than its member")
            starts.append(_data_start(self.fh, info) + ref.offset * itemsize)
        self._parts = starts
        frame = int(np.prod(first.size, dtype=np.int64))
        whole = (len(refs), *first.size)
        stride = (frame, *_dense_strides(first.size))
        storage = StorageRef(first.storage.member, first.storage.dtype, None)
        return TensorRef(storage, 0, whole, stride, first.dtype, first.plain)

    def _check_streamable(self, tensor: TensorRef, info: zipfile.ZipInfo) -> None:
        """A deflated storage streams when the frames lie in it in order (C-contiguous);
        any other layout needs the whole storage in memory, which torch may do for a
        bounded size only."""
        if _c_contiguous(self.shape, self.stride):
            return
        if info.file_size <= INFLATE_LIMIT:
            raise NeedsTorch("strided tensor in a deflated storage")
        raise InputDataError(
            f"{self.path}: refused: its tensor is strided inside a deflated storage of "
            f"{info.file_size >> 20} MiB, which would have to be inflated whole; save it with "
            "torch.save(frames.contiguous()) (torch.save does not compress)"
        )

    def _check_bounds(self, tensor: TensorRef, info: zipfile.ZipInfo, file_size: int | None) -> int:
        """Every element the tensor addresses lies inside its member, and the member
        inside the file; returns the storage's length in elements."""
        nbytes = tensor.storage.nbytes
        outside = file_size is not None and self.start + info.file_size > file_size
        if nbytes is None or nbytes > info.file_size or outside:
            raise NeedsTorch("storage larger than its member")
        elements = nbytes // self.itemsize
        if self.offset < 0 or any(step < 0 for step in self.stride):
            raise NeedsTorch("negative offset or stride")
        if 0 not in self.shape:
            reach = sum((size - 1) * step for size, step in zip(self.shape, self.stride, strict=True))
            last = self.offset + reach
            if last >= elements:
                raise NeedsTorch("tensor reaches past its storage")
        return elements

    def narrow(self, sample: int | None) -> None:
        """Read only clip ``sample`` of a 5-D batch (its frames, by the batch's strides)."""
        if sample is None:
            return
        self.offset += sample * self.stride[0]
        self.shape, self.stride = self.shape[1:], self.stride[1:]

    def read(self, index: int, count: int, single: bool) -> np.ndarray:
        """Frames ``[index, index + count)`` (the whole tensor when ``single``), as stored."""
        if self._parts is not None:
            raw = self._buffers.empty((count, *self.shape[1:]), self.np_dtype)
            for n in range(count):
                self._pread_into(self._parts[index + n], raw[n])
            return _widen_bfloat16(raw) if self.dtype_name == "bfloat16" else raw
        if single:
            first, shape, following = self.offset, self.shape, None
        else:
            first = self.offset + index * self.stride[0]
            shape = (count, *self.shape[1:])
            following = first + count * self.stride[0] if index + count < self.shape[0] else None
        if _c_contiguous(shape, self.stride):
            raw = self._pread(first, shape)
        elif not single and _c_contiguous(shape[1:], self.stride[1:]):
            raw = np.empty(shape, dtype=self.np_dtype)
            for n in range(count):
                raw[n] = self._pread(first + n * self.stride[0], shape[1:])
        else:
            raw = self._strided(first, shape, following)
        return _widen_bfloat16(raw) if self.dtype_name == "bfloat16" else raw

    def _pread(self, first: int, shape: tuple[int, ...]) -> np.ndarray:
        if self._deflated is not None:
            return self._inflate(first, shape)
        return self._pread_into(self.start + first * self.itemsize, self._buffers.empty(shape, self.np_dtype))

    def _pread_into(self, position: int, out: np.ndarray) -> np.ndarray:
        """Fill the C-contiguous ``out`` with the bytes at ``position`` of the file."""
        view = memoryview(out.reshape(-1).view(np.uint8))
        got = 0
        try:
            while got < len(view):
                n = os.preadv(self.fh.fileno(), [view[got:]], position + got)
                if not n:
                    raise InputDataError(f"{self.path}: ended early: the file was cut while being read")
                got += n
        except OSError as exc:
            raise InputMissingError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        return out

    def _inflate(self, first: int, shape: tuple[int, ...]) -> np.ndarray:
        """Elements from ``first`` on, inflated in order: what lies before is inflated and
        dropped a chunk at a time (``--start``), so memory holds one window, not the
        storage; going back (never needed by windows in order) starts the member again."""
        out = self._buffers.empty(shape, self.np_dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        position = first * self.itemsize
        try:
            if self._inflating is None or position < self._inflated:
                self._stop_inflating()
                archive = zipfile.ZipFile(self.fh)
                self._inflating = (archive, archive.open(self._deflated))  # type: ignore[arg-type]
                self._inflated = 0
            member = self._inflating[1]
            while self._inflated < position:
                skipped = len(member.read(min(1 << 20, position - self._inflated)))
                if not skipped:
                    raise InputDataError(f"{self.path}: ended early: its deflated storage is cut short")
                self._inflated += skipped
            got = 0
            while got < len(view):
                n = member.readinto(view[got:])  # type: ignore[attr-defined]
                if not n:
                    raise InputDataError(f"{self.path}: ended early: its deflated storage is cut short")
                got += n
            self._inflated += got
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise InputDataError(f"{self.path}: corrupt deflated storage ({exc})") from None
        except OSError as exc:
            raise InputMissingError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        return out

    def _stop_inflating(self) -> None:
        if self._inflating is not None:
            for part in reversed(self._inflating):
                with contextlib.suppress(Exception):
                    part.close()
            self._inflating = None

    def _strided(self, first: int, shape: tuple[int, ...], following: int | None) -> np.ndarray:
        """Copy a window of any strides out of a map of the member, then release the
        pages below where the next window starts: strides are never negative, so no
        later window reads them again."""
        if self._flat is None:
            try:
                self._map = mmap.mmap(self.fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                raise InputMissingError(f"{self.path}: cannot map ({exc})") from None
            self._flat = np.frombuffer(self._map, self.np_dtype, self.elements, self.start)
            self._released = self.start // mmap.PAGESIZE * mmap.PAGESIZE
        strides = tuple(step * self.itemsize for step in self.stride)
        view = np.lib.stride_tricks.as_strided(self._flat[first:], shape, strides, writeable=False)
        try:
            window = np.array(view, order="C")
        except (OSError, BufferError) as exc:
            raise InputMissingError(f"{self.path}: cannot read ({exc})") from None
        del view
        end = self.start + (self.elements if following is None else following) * self.itemsize
        self._release(end if following is None else end // mmap.PAGESIZE * mmap.PAGESIZE)
        return window

    def _release(self, end: int) -> None:
        if self._map is not None and end > self._released:
            try:
                self._map.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            except (OSError, ValueError, AttributeError):
                return  # releasing is an optimisation; the data is already copied
            self._released = end

    def close(self) -> None:
        self._stop_inflating()
        self._flat = None
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a view still exists: it goes with it
                self._map.close()
            self._map = None
        self.fh.close()


def open_frames(fh: IO[bytes], path: str, key: str | None) -> PtFrames | None:
    """The fast reader for ``fh`` (which it owns from here on), or ``None`` when the
    file needs torch's loader; selection and refusal errors propagate."""
    try:
        return PtFrames(fh, path, key)
    except NeedsTorch:
        fh.close()
        return None
    except BaseException:
        fh.close()
        raise
