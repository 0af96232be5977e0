"""One output container: packets in, a complete file out — or nothing at all.

A path is written to a hidden temporary file beside the target and renamed over it only
after the trailer is written, so readers never see a half-written video and a failed or
cancelled run leaves the previous file (if any) untouched. Standard output and file-like
objects get fragmented MP4/MOV when they cannot seek, since a plain MP4 needs to seek
back to write its index.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nvenc_cli.errors import (
    NvencError,
    OutputError,
    OutputPathError,
    UsageError,
    WriteError,
    brief,
    tc_cannot_open,
)

if TYPE_CHECKING:
    import av

# delay_moov (not empty_moov) lets the first moov carry the edit list that keeps the
# first frame at pts 0 when B-frames push the first dts below zero.
_FRAGMENTED = "frag_keyframe+delay_moov+default_base_moof"

Destination = str | os.PathLike | IO[bytes]


def is_stdout(dest: Destination) -> bool:
    return isinstance(dest, (str, os.PathLike)) and str(dest) == "-"


def check_destination(dest: Destination, overwrite: bool, inputs: tuple[str, ...] = ()) -> Path | None:
    """Fail early (exit 73) when a path output exists, equals an input, or has no folder."""
    if not isinstance(dest, (str, os.PathLike)) or is_stdout(dest):
        return None
    path = Path(dest)
    for spec in inputs:
        if os.path.exists(spec) and os.path.exists(path) and os.path.samefile(spec, path):
            raise OutputError(f"{path}: output is the same file as the input")
    if path.is_dir():
        raise OutputPathError(
            f"{path}: is a directory; give a file name such as {path / 'out.mp4'}",
            torchcodec=tc_cannot_open(str(dest)),
        )
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists (use -y to overwrite)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(
            f"{path}: cannot create it: folder {parent} does not exist",
            torchcodec=tc_cannot_open(str(dest)),
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{path}: cannot create it: folder {parent} is not writable",
            torchcodec=tc_cannot_open(str(dest)),
        )
    return path


class Muxer:
    """Owns the output container and the temporary file for one encode."""

    def __init__(
        self,
        dest: Destination,
        container: str,
        options: dict[str, str] | None = None,
        overwrite: bool = False,
    ) -> None:
        import av

        self.dest, self.container_name, self.overwrite = dest, container, overwrite
        self.target = check_destination(dest, overwrite)
        self.temp: Path | None = None
        self.bytes = 0
        self.stream: Any = None
        self._sink: Any
        self._device: IO[bytes] | None = None
        self._name = str(self.target) if self.target is not None else "output"
        options = dict(options or {})
        self._header_written = False
        if self.target is not None and self.target.exists() and not self.target.is_file():
            # A device or a pipe (/dev/null, a FIFO): write straight into it. Renaming a
            # temporary file over it would replace the device node itself (as root,
            # -o /dev/null -y would leave a regular file where /dev/null was).
            self._device = _open_device(self.target)
            self.target = None
        if self.target is not None:
            try:
                fd, name = tempfile.mkstemp(
                    prefix=f".{self.target.name}.", suffix=".part", dir=self.target.parent or "."
                )
            except OSError as exc:  # read-only or full filesystem, immutable folder
                raise OutputError(f"{self.target}: cannot create it ({exc.strerror or exc})") from None
            os.close(fd)
            self.temp = Path(name)
            self._sink = str(self.temp)
        else:
            self._sink = self._device or (sys.stdout.buffer if is_stdout(dest) else dest)
            if container in ("mp4", "mov") and not _seekable(self._sink):
                options["movflags"] = _merge_flags(options.get("movflags"), _FRAGMENTED)
        try:
            self.output = av.open(self._sink, "w", format=container, options=options)
        except Exception as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise OutputError(f"{self._label()}: cannot create it ({exc.strerror or exc})") from None
            raise OutputError(f"{self._label()}: cannot start a {container} file ({brief(exc)})") from None

    def _label(self) -> str:
        return self._name

    def _failure(self, exc: BaseException) -> NvencError:
        """The muxer applies its options when it writes the header (with the first packet):
        EINVAL there means settings it refuses (-x movflags=+nonsense), a usage error, not
        a failed write."""
        if not self._header_written and getattr(exc, "errno", None) == errno.EINVAL:
            reason = getattr(exc, "strerror", None) or brief(exc)
            muxer = self.container_name
            return UsageError(f"the {muxer} muxer refused its settings ({reason}): check its -x options")
        return _write_error(self._label(), exc)

    def new_stream(self, encoder: str, rate: Any) -> av.VideoStream:
        """A stream whose codec context the backend configures, opens and encodes with.

        PyAV skips opening a context that is already open, and copies its parameters
        (size, pixel format, colour tags, extradata) into the stream at header time.
        """
        self.stream = self.output.add_stream(encoder, rate=rate)
        _apple_hevc_tag(self.stream, self.container_name)
        return self.stream

    def stream_from_template(self, template: av.VideoStream, opaque: bool | None = None) -> av.VideoStream:
        """A stream for packets encoded elsewhere, described by another stream's parameters
        (e.g. one demuxed from the encoder's first access unit). ``opaque=True`` keeps the
        template's own codec, needed when its decoder has no encoder twin (libdav1d)."""
        self.stream = self.output.add_stream_from_template(template, opaque=opaque)
        _apple_hevc_tag(self.stream, self.container_name)
        return self.stream

    def write(self, packets: list[av.Packet]) -> None:
        """Mux packets (pts/dts in the encoder's 1/fps time base) in decode order."""
        import av

        for packet in packets:
            packet.stream = self.stream
            self.bytes += packet.size
            try:
                self.output.mux(packet)
            except (av.FFmpegError, OSError) as exc:
                raise self._failure(exc) from None
            self._header_written = True

    def finish(self) -> int:
        """Write the trailer and put the file in place; returns the bytes written."""
        import av

        try:
            self.output.close()
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise self._failure(exc) from None
        if self.temp is None or self.target is None:
            _flush_sink(self._sink)
            if self._device is not None:
                self._device.close()
            return self.bytes
        size = self.temp.stat().st_size
        try:
            _publish(self.temp, self.target, self.overwrite)
        except OSError as exc:
            self.abort()
            if isinstance(exc, OutputError):
                raise
            reason = exc.strerror or exc
            raise OutputError(f"{self.target}: cannot put the file in place ({reason})") from None
        except BaseException:
            self.abort()
            raise
        self.temp = None
        return size

    def abort(self) -> None:
        """Close and delete whatever was written; safe to call at any point, twice."""
        output = getattr(self, "output", None)
        if output is not None:
            with contextlib.suppress(Exception):
                output.close()
            self.output = None
        if getattr(self, "_device", None) is not None:
            with contextlib.suppress(OSError):
                self._device.close()  # type: ignore[union-attr]
        if self.temp is not None:
            # Best effort: a cleanup failure must not replace the error being reported.
            with contextlib.suppress(OSError):
                self.temp.unlink()
            self.temp = None


def _open_device(path: Path) -> IO[bytes]:
    try:
        return open(path, "wb")  # owned by the Muxer, closed in finish() or abort()
    except OSError as exc:
        raise OutputError(f"{path}: cannot open it for writing ({exc.strerror or exc})") from None


def _apple_hevc_tag(stream: Any, container: str) -> None:
    """HEVC in MP4/MOV as 'hvc1' (parameter sets in the sample entry), not FFmpeg's
    default 'hev1', which QuickTime and Apple devices refuse to play."""
    ctx = stream.codec_context
    if container in ("mp4", "mov") and ctx is not None and ctx.codec.canonical_name == "hevc":
        stream.codec_tag = "hvc1"


def _publish(temp: Path, target: Path, overwrite: bool) -> None:
    """Rename into place; without -y, never clobber a file that appeared meanwhile."""
    os.chmod(temp, 0o666 & ~_umask())
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)
    except FileExistsError:
        raise OutputError(f"{target}: already exists (use -y to overwrite)") from None
    except OSError:  # a filesystem without hard links: best effort
        if target.exists():
            raise OutputError(f"{target}: already exists (use -y to overwrite)") from None
        os.replace(temp, target)
        return
    temp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _seekable(sink: Any) -> bool:
    try:
        return bool(sink.seekable()) and sink.tell() >= 0
    except (AttributeError, OSError, ValueError):
        return False


def _flush_sink(sink: Any) -> None:
    flush = getattr(sink, "flush", None)
    if flush is not None:
        try:
            flush()
        except OSError as exc:
            raise _write_error("output", exc) from None


def _merge_flags(current: str | None, extra: str) -> str:
    return f"{current}+{extra}" if current else extra


def _write_error(label: str, exc: BaseException) -> WriteError:
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return WriteError(f"{label}: disk full while writing")
    if code == errno.EFBIG:
        return WriteError(f"{label}: file size limit reached while writing")
    if code == errno.EPIPE:
        return WriteError(f"{label}: the reader closed the pipe")
    return WriteError(f"{label}: write failed ({brief(exc)})")
