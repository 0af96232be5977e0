"""The header of a ``.npy`` payload, read with its length checked before anything else.

NumPy's own header readers take the length field at its word: a version 2/3 header may
declare up to 4 GiB, and NumPy reads all of it before comparing it with its own 10,000
character limit. A few hundred kilobytes of deflated spaces in an ``.npz`` member, or a
pipe, then cost gigabytes of memory. Here the length is checked first and only the
header's own bytes are handed to NumPy's parser.
"""

from __future__ import annotations

import io
import struct
from typing import IO, Any

import numpy as np

from nvenc_cli.errors import InputDataError

MAGIC = b"\x93NUMPY"
# NumPy's own limit on the header text (``max_header_size``); nothing it writes is longer.
HEADER_LIMIT = 10_000


def read_header(fh: IO[bytes], label: str, what: str = "array") -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from ``fh``, left at the first byte of data.

    Reads exactly the magic, the length field and the header: never more than
    ``HEADER_LIMIT`` bytes whatever the length field says, so it works on pipes and zip
    members alike.
    """
    start = _read_upto(fh, 8)
    if start[:6] != MAGIC:
        raise InputDataError(f"{label}: not a valid .npy {what} (no .npy magic at its start)")
    if len(start) < 8:
        raise InputDataError(f"{label}: not a valid .npy {what} (it ends early)")
    version = (start[6], start[7])
    if version == (1, 0):
        width = 2
    elif version in ((2, 0), (3, 0)):
        width = 4
    else:
        raise InputDataError(
            f"{label}: .npy format version {version[0]}.{version[1]} is not one numpy writes (1.0, 2.0, 3.0)"
        )
    field = _read_exactly(fh, width, label, what)
    length = struct.unpack("<H" if width == 2 else "<I", field)[0]
    if length > HEADER_LIMIT:
        raise InputDataError(
            f"{label}: its .npy header claims {length} bytes (numpy writes at most {HEADER_LIMIT}): "
            "not a valid .npy file"
        )
    header = _read_exactly(fh, length, label, what)
    # NumPy parses the header (a dict literal, never evaluated as code); 3.0 is 2.0 with a
    # UTF-8 header, which the 2.0 reader takes alike for the ASCII headers of plain dtypes.
    copy = io.BytesIO(start + field + header)
    copy.seek(8)
    try:
        if width == 2:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(copy)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(copy)
    except Exception as exc:  # a parser of untrusted bytes: any failure means corrupt
        from nvenc_cli.errors import brief

        raise InputDataError(f"{label}: not a valid .npy {what} ({brief(exc)})") from None
    return tuple(int(n) for n in shape), bool(fortran), dtype


def read_small_array(fh: IO[bytes], label: str, size: int, limit: int) -> np.ndarray:
    """A whole (small) array from ``fh`` whose payload holds ``size`` bytes: the header's
    promise is checked against ``size`` and ``limit`` before anything is allocated."""
    shape, fortran, dtype = read_header(fh, label)
    if dtype.hasobject:
        raise InputDataError(f"{label}: holds Python objects (dtype {dtype}); nvenc refuses pickle")
    need = _nbytes(shape, dtype)
    if need > limit or need > size:
        raise InputDataError(f"{label}: its header promises {need} bytes, more than the entry holds")
    data = _read_exactly(fh, need, label, "array")
    values = np.frombuffer(data, dtype=dtype).copy()
    return values.reshape(shape[::-1]).T if fortran else values.reshape(shape)


def nbytes(shape: tuple[int, ...], dtype: Any) -> int:
    """Bytes of an array of ``shape`` and ``dtype``, as an exact Python int (no overflow)."""
    return _nbytes(shape, np.dtype(dtype))


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    count = 1
    for n in shape:
        count *= int(n)
    return count * dtype.itemsize


def _read_exactly(fh: IO[bytes], count: int, label: str, what: str) -> bytes:
    data = _read_upto(fh, count)
    if len(data) < count:
        raise InputDataError(f"{label}: not a valid .npy {what} (it ends early)")
    return data


def _read_upto(fh: IO[bytes], count: int) -> bytes:
    """``count`` bytes, or fewer where the stream ends first (pipes hand out pieces)."""
    chunks, got = [], 0
    while got < count:
        chunk = fh.read(count - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
