"""One output container: packets in, a complete file out — or nothing at all.

A path is written to a hidden temporary file beside the target and renamed over it only
after the trailer is written, so readers never see a half-written video and a failed or
cancelled run leaves the previous file (if any) untouched — except fragmented MP4/MOV the
caller asked for, which is meant to be read as it grows and so is written in place (and
still removed on a failure). Standard output and file-like
objects get fragmented MP4/MOV when they cannot seek, since a plain MP4 needs to seek
back to write its index.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import select
import stat
import tempfile
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nvenc_cli import signals
from nvenc_cli.errors import (
    Interrupted,
    NvencError,
    OutputError,
    OutputPathError,
    UsageError,
    WriteError,
    brief,
    tc_cannot_open,
)
from nvenc_cli.paths import for_ffmpeg, identity

if TYPE_CHECKING:
    import av

# delay_moov (not empty_moov) lets the first moov carry the edit list that keeps the
# first frame at pts 0 when B-frames push the first dts below zero.
_FRAGMENTED = "frag_keyframe+delay_moov+default_base_moof"

Destination = str | os.PathLike | IO[bytes]

# Packets held back to interleave streams by time. Whatever order and batch sizes the
# producers use, no more than this is held: past it the earliest packet is written anyway
# (FFmpeg's own interleaver then still orders within its 10 s window).
HOLD_PACKETS = 2048
HOLD_BYTES = 32 << 20


class Lane:
    """One stream's queue in the interleaver. The video lane's stream comes from the
    backend; other lanes (audio) make theirs when the header is due, after the video's,
    so the video stays stream 0 even when NVENC describes it only at its first packet."""

    def __init__(self, factory: Callable[[Any], Any] | None = None) -> None:
        self.factory = factory
        self.stream: Any = None
        self.queue: deque[tuple[float, Any]] = deque()
        self.done = False
        self.packets = 0


class VideoPort:
    """One video stream of a :class:`Muxer`, as a backend session sees it: where it makes
    its stream and sends its packets. A muxer's first video stream is the muxer itself;
    further ones (``Muxer.add_video``) share its file, interleaver and trailer."""

    def __init__(self, muxer: Muxer, lane: Lane) -> None:
        self.muxer, self.lane = muxer, lane
        self.container_name = muxer.container_name
        self._rotation = 0
        self._sample_aspect: Any = None

    @property
    def stream(self) -> Any:
        return self.lane.stream

    def display(self, rotation: int, sample_aspect: Any = None) -> None:
        self._rotation, self._sample_aspect = rotation, sample_aspect

    def new_stream(self, encoder: str, rate: Any) -> Any:
        stream = self.muxer.output.add_stream(encoder, rate=rate)
        return self._made(stream, encoded_here=True)

    def stream_from_template(self, template: Any, opaque: bool | None = None) -> Any:
        stream = self.muxer.output.add_stream_from_template(template, opaque=opaque)
        return self._made(stream, encoded_here=False)

    def _made(self, stream: Any, encoded_here: bool) -> Any:
        self.lane.stream = stream
        _apple_hevc_tag(stream, self.container_name)
        if self._rotation:
            stream.set_display_rotation(self._rotation)
        if self._sample_aspect is not None and encoded_here:
            stream.codec_context.sample_aspect_ratio = self._sample_aspect
        return stream

    def write(self, packets: list[Any]) -> None:
        """Queue this stream's packets (in its encoder's time base) in decode order."""
        self.muxer.push(self.lane, packets)

    def finish(self) -> int:
        """This stream has ended; the muxer's owner writes the trailer. Returns 0 bytes:
        the file's size is the owner's to report."""
        self.muxer.end_lane(self.lane)
        return 0

    def abort(self) -> None:
        """A failed stream fails the whole file."""
        self.muxer.abort()


def is_stdout(dest: Destination) -> bool:
    return isinstance(dest, (str, os.PathLike)) and str(dest) == "-"


def check_destination(dest: Destination, overwrite: bool, inputs: tuple[str, ...] = ()) -> Path | None:
    """Fail early (exit 73) when a path output exists, equals an input, or has no folder.

    Returns the file to create, or None for a sink written through: standard output, a
    file object, a descriptor (``/dev/stdout``, ``/proc/self/fd/N``) or a device.
    """
    if not isinstance(dest, (str, os.PathLike)) or is_stdout(dest) or descriptor_of(dest) is not None:
        return None
    path = _final_target(Path(dest))
    for spec in inputs:
        if os.path.exists(spec) and _exists(path) and os.path.samefile(spec, path):
            raise OutputError(f"{dest}: output is the same file as the input {spec}")
    if os.path.isdir(path):
        raise OutputPathError(
            f"{dest}: is a directory; give a file name such as {Path(dest) / 'out.mp4'}",
            torchcodec=tc_cannot_open(str(dest)),
        )
    if _exists(path) and not os.path.isfile(path):
        return None  # a device or a pipe: written through, never replaced
    if _exists(path) and not overwrite:
        raise OutputError(f"{dest}: already exists (use -y to overwrite)")
    parent = path.parent if str(path.parent) else Path(".")
    if not os.path.isdir(parent):
        raise OutputPathError(
            f"{dest}: cannot create it: folder {parent} does not exist",
            torchcodec=tc_cannot_open(str(dest)),
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{dest}: cannot create it: folder {parent} is not writable",
            torchcodec=tc_cannot_open(str(dest)),
        )
    if len(os.fsencode(path.name)) > _name_max(parent):
        raise OutputPathError(
            f"{dest}: cannot create it: the name is longer than this file system allows",
            torchcodec=tc_cannot_open(str(dest)),
        )
    return path


def _exists(path: Path) -> bool:
    try:
        os.stat(path)
    except (OSError, ValueError):  # missing, a name too long, a loop of links
        return False
    return True


def _final_target(path: Path) -> Path:
    """What a symbolic link at the output path points to, so the finished file is renamed
    over its target and the link itself stays (a dangling link names the file to make)."""
    try:
        linked = stat.S_ISLNK(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return path
    return Path(os.path.realpath(path)) if linked else path


_FD_PATH = re.compile(r"^/(?:proc/(?:self|thread-self|(\d+))/fd|dev/fd)/(\d+)$")


def descriptor_of(dest: Destination) -> int | None:
    """The open descriptor of ours that ``dest`` names (``/dev/stdout`` → 1,
    ``/proc/self/fd/3`` → 3), following links, or None.

    Such a path is the caller's redirection (``-o /dev/stdout > file.mp4``): it is
    written through that descriptor as it stands, never replaced by a renamed
    temporary file and never reopened (which would truncate an appended log or
    re-create a file the caller already has open).
    """
    if not isinstance(dest, (str, os.PathLike)):
        return None
    current = os.path.abspath(os.fspath(dest))
    for _ in range(40):  # the kernel's own limit on a chain of links
        match = _FD_PATH.match(current)
        if match is not None:
            pid, fd = match.group(1), int(match.group(2))
            if pid is not None and int(pid) != os.getpid():
                return None
            try:
                os.fstat(fd)
            except OSError:
                return None
            return fd
        try:
            link = os.readlink(current)
        except OSError:
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current), link))
    return None


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


_run_tag = ""
"""The run's own mark in its temporary files' names (``.NAME.TAG-XXXXXXXX.part``), set
by a batch worker for the job it runs: cleanup after a killed worker removes files with
this mark only, never another run's temporary file for the same output."""


def set_run_tag(tag: str) -> None:
    """Mark the temporary files this process creates from now on as the run ``tag``'s."""
    global _run_tag
    if tag and not re.fullmatch(r"[0-9a-z]{1,16}", tag):
        raise ValueError(f"a run tag is 1-16 lowercase letters or digits, not {tag!r}")
    _run_tag = tag


def temp_prefix(target: Path, tag: str | None = None) -> str:
    """``.NAME.`` (``.NAME.TAG-`` in a batch run) for the temporary file, the name
    shortened so the whole (with mkstemp's 8 random characters and ``.part``) fits the
    file system's name limit."""
    tag = _run_tag if tag is None else tag
    mark = f"{tag}-" if tag else ""
    limit = _name_max(target.parent) - len(".") - len(".") - len(mark) - 8 - len(".part")
    name = os.fsencode(target.name)
    if len(name) > limit:
        name = name[: max(limit, 1)]
        name = name.decode("utf-8", "ignore").encode() if _utf8(name) else name
    return f".{os.fsdecode(name)}.{mark}"


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 3  # only a character cut at the end
    return True


class FdSink(io.RawIOBase):
    """A descriptor written with ``os.write``: no Python buffer left to flush (and block
    on) at exit, and once ``drop()`` is called writes are discarded, so cleanup after a
    failure or a signal never waits on a reader that stopped reading.

    Seekable only where the bytes can be put back where they belong: a regular file not
    opened for appending; positions count from where the descriptor stood, so a file
    the caller already wrote to keeps its head.
    """

    def __init__(self, fd: int, own: bool) -> None:
        super().__init__()
        self.fd, self.own, self._dropping = fd, own, False
        self._base: int | None = None
        self._pipe = False
        try:
            import fcntl

            mode = os.fstat(fd).st_mode
            self._pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
            appending = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)
            if stat.S_ISREG(mode) and not appending:
                self._base = os.lseek(fd, 0, os.SEEK_CUR)
        except (OSError, ImportError):
            self._base = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self._dropping:
            return len(view)
        done = 0
        try:
            while done < len(view):
                if signals.received() is not None:
                    raise Interrupted()
                if self._pipe:
                    done += self._write_when_ready(view[done : done + select.PIPE_BUF])
                else:
                    done += os.write(self.fd, view[done:])
        except Interrupted:
            # Called back from FFmpeg, which cannot carry this exception: a failed write
            # it can; the muxer asks ``signals.received()`` what the failure was.
            raise OSError(errno.EINTR, "interrupted by a signal") from None
        return done

    def _write_when_ready(self, chunk: memoryview) -> int:
        """Wait in short polls until the pipe has room, then write at most PIPE_BUF bytes,
        which a pipe takes without blocking once it polls writable.

        A blocking write into a full pipe would hold this thread in the kernel for as long
        as the reader stalls, and a signal the kernel hands to another thread (any of the
        encoder's) would never interrupt it; between polls, Python runs its handlers.
        """
        while not select.select([], [self.fd], [], 0.2)[1]:
            pass
        return os.write(self.fd, chunk)

    def seekable(self) -> bool:
        return self._base is not None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self._base is None:
            raise OSError(errno.ESPIPE, "not seekable")
        where = os.lseek(self.fd, offset + (self._base if whence == os.SEEK_SET else 0), whence)
        return where - self._base

    def tell(self) -> int:
        return self.seek(0, os.SEEK_CUR)

    def drop(self) -> None:
        self._dropping = True

    def close(self) -> None:
        if not self.closed and self.own:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        super().close()


class Muxer:
    """Owns the output container and the temporary file for one encode."""

    def __init__(
        self,
        dest: Destination,
        container: str,
        options: dict[str, str] | None = None,
        overwrite: bool = False,
        video: bool = True,
    ) -> None:
        import av

        self.dest, self.container_name, self.overwrite = dest, container, overwrite
        self.target = check_destination(dest, overwrite)
        self.temp: Path | None = None
        self.bytes = 0
        self.stream: Any = None
        self._video = Lane()
        self._lanes: list[Lane] = [self._video] if video else []
        # Through a weak proxy: muxer <-> port would be a cycle, and a cycle is freed only by
        # Python's full collection, so a batch worker kept every finished job's container and
        # encoder (16 MB a job at 320x240) until then (tests/test_batch.py, the growth check).
        self._port = VideoPort(weakref.proxy(self), self._video)
        self._held_packets = 0
        self._held_bytes = 0
        self.started = False
        self._sink: Any
        self._device: FdSink | None = None
        named = isinstance(dest, (str, os.PathLike)) and not is_stdout(dest)
        self._name = os.fspath(dest) if named else "output"  # type: ignore[arg-type]
        options = dict(options or {})
        self._header_written = False
        fd = descriptor_of(dest) if named else None
        if fd is not None:
            self._device = FdSink(os.dup(fd), own=True)
        elif self.target is None and named:
            # A device or a pipe (/dev/null, a FIFO): write straight into it. Renaming a
            # temporary file over it would replace the device node itself (as root,
            # -o /dev/null -y would leave a regular file where /dev/null was).
            self._device = _open_device(Path(os.fspath(dest)))  # type: ignore[arg-type]
        elif is_stdout(dest):
            self._device = FdSink(1, own=False)
        self._live: Path | None = None
        #: (device, inode) of the live file as this encode created it: a failed encode
        #: removes that file only, never one another run has since put at the same path.
        self._live_id: tuple[int, int] | None = None
        if self.target is not None:
            try:
                fd, name = tempfile.mkstemp(
                    prefix=temp_prefix(self.target), suffix=".part", dir=self.target.parent or "."
                )
            except OSError as exc:  # read-only or full filesystem, immutable folder
                raise OutputError(f"{self.target}: cannot create it ({exc.strerror or exc})") from None
            os.close(fd)
            self.temp = Path(name)
            self._sink = for_ffmpeg(self.temp)
            if container in ("mp4", "mov") and _fragmented(options):
                self._go_live()
        else:
            self._sink = self._device or dest
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

    def _go_live(self) -> None:
        """Asked-for fragmented MP4/MOV is there to be read while it grows (a recording, a
        live preview), so it is written at its own path from the start; a failed or
        cancelled encode still removes it."""
        self._publish_temp("cannot create it")
        self._live, self.temp = self.target, None
        self._live_id = identity(self.target)
        self._sink = for_ffmpeg(self.target)

    def _publish_temp(self, failing: str) -> None:
        """Rename the temporary file onto the target; if that fails, nothing is left."""
        assert self.temp is not None and self.target is not None
        try:
            _publish(self.temp, self.target, self.overwrite)
        except OSError as exc:
            self.abort()
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"{self.target}: {failing} ({exc.strerror or exc})") from None
        except BaseException:
            self.abort()
            raise

    def _failure(self, exc: BaseException) -> NvencError:
        """The muxer applies its options when it writes the header (with the first packet):
        EINVAL there means settings it refuses (-x movflags=+nonsense), a usage error, not
        a failed write."""
        if not self._header_written and getattr(exc, "errno", None) == errno.EINVAL:
            reason = getattr(exc, "strerror", None) or brief(exc)
            muxer = self.container_name
            return UsageError(f"the {muxer} muxer refused its settings ({reason}): check its -x options")
        return _write_error(self._label(), exc)

    def display(self, rotation: int, sample_aspect: Any = None) -> None:
        """How the picture is to be shown, written to the stream made next: a display
        rotation (counter-clockwise degrees) and the pixels' sample aspect ratio."""
        self._port.display(rotation, sample_aspect)

    def new_stream(self, encoder: str, rate: Any) -> av.VideoStream:
        """A stream whose codec context the backend configures, opens and encodes with.

        PyAV skips opening a context that is already open, and copies its parameters
        (size, pixel format, colour tags, extradata) into the stream at header time.
        """
        self.stream = self._port.new_stream(encoder, rate)
        return self.stream

    def stream_from_template(self, template: av.VideoStream, opaque: bool | None = None) -> av.VideoStream:
        """A stream for packets encoded elsewhere, described by another stream's parameters
        (e.g. one demuxed from the encoder's first access unit). ``opaque=True`` keeps the
        template's own codec, needed when its decoder has no encoder twin (libdav1d)."""
        self.stream = self._port.stream_from_template(template, opaque)
        return self.stream

    def add_video(self) -> VideoPort:
        """Reserve a further video stream (torchcodec's ``Encoder`` takes several): a port
        that a second backend session opens its stream on and writes its packets through.
        The header waits until every video stream exists."""
        lane = Lane()
        self._lanes.insert(sum(1 for ln in self._lanes if ln.factory is None), lane)
        return VideoPort(self, lane)

    def add_lane(self, factory: Callable[[Any], Any]) -> Lane:
        """Reserve a further stream (audio); ``factory(output)`` adds it to the container
        just before the header is written and returns it."""
        lane = Lane(factory)
        self._lanes.append(lane)
        return lane

    @property
    def can_start(self) -> bool:
        """True once the video stream exists (or there is none): the header may be written."""
        return not self.started and all(ln.stream is not None for ln in self._lanes if ln.factory is None)

    def start(self) -> None:
        """Create the reserved streams; after this no stream can be added."""
        if self.started:
            return
        for lane in self._lanes:
            if lane.factory is not None and lane.stream is None:
                lane.stream = lane.factory(self.output)
        self.started = True

    def write(self, packets: list[av.Packet]) -> None:
        """Queue video packets (pts/dts in the encoder's 1/fps time base) in decode order."""
        self._port.write(packets)

    def push(self, lane: Lane, packets: list[Any]) -> None:
        """Queue one lane's packets (in its decode order) and write what interleaving allows."""
        if not packets:
            return
        for packet in packets:
            lane.queue.append((_when(packet, lane), packet))
            self._held_bytes += packet.size
        self._held_packets += len(packets)
        if self.can_start:
            self.start()
        self._drain(final=False)

    def end_lane(self, lane: Lane) -> None:
        """No more packets will come on ``lane`` (a track shorter than the video)."""
        lane.done = True
        self._drain(final=False)

    def _drain(self, final: bool) -> None:
        """Write packets in time order while every open lane has one waiting (or the hold
        limit is passed, or the end has come)."""
        if not self.started:
            return
        lanes = self._lanes
        while True:
            waiting = [lane for lane in lanes if lane.queue]
            if not waiting:
                return
            starved = any(not lane.queue and not lane.done for lane in lanes)
            over = self._held_packets > HOLD_PACKETS or self._held_bytes > HOLD_BYTES
            if starved and not final and not over:
                return
            lane = min(waiting, key=lambda ln: ln.queue[0][0])
            _, packet = lane.queue.popleft()
            self._held_packets -= 1
            self._held_bytes -= packet.size
            self._mux(lane, packet)

    @property
    def held(self) -> int:
        """Packets waiting in the interleaver (for tests of its bound)."""
        return self._held_packets

    def _mux(self, lane: Lane, packet: Any) -> None:
        import av

        packet.stream = lane.stream
        self.bytes += packet.size
        lane.packets += 1
        try:
            self.output.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise signals.received() or self._failure(exc) from None
        self._header_written = True

    def finish(self) -> int:
        """Write the trailer and put the file in place; returns the bytes written."""
        import av

        try:
            self.start()
            for lane in self._lanes:
                lane.done = True
            self._drain(final=True)
            if not self._header_written:
                self.output.start_encoding()  # streams without packets: still a valid file
            self.output.close()
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise signals.received() or self._failure(exc) from None
        except BaseException:
            self.abort()
            raise
        if self._live is not None:
            self._live = None
            return self.target.stat().st_size  # type: ignore[union-attr]
        if self.temp is None or self.target is None:
            _flush_sink(self._sink)
            if self._device is not None:
                self._device.close()
            return self.bytes
        size = self.temp.stat().st_size
        self._publish_temp("cannot put the file in place")
        self.temp = None
        return size

    def abort(self) -> None:
        """Close and delete whatever was written; safe to call at any point, twice."""
        device = getattr(self, "_device", None)
        if device is not None:
            device.drop()  # the trailer must not wait on a stalled reader
        output = getattr(self, "output", None)
        if output is not None:
            with contextlib.suppress(Exception):
                output.close()
            self.output = None
        if device is not None:
            with contextlib.suppress(OSError):
                device.close()
        if self.temp is not None:
            # Best effort: a cleanup failure must not replace the error being reported.
            with contextlib.suppress(OSError):
                self.temp.unlink()
            self.temp = None
        live = getattr(self, "_live", None)
        if live is not None:
            if identity(live) == getattr(self, "_live_id", None):
                with contextlib.suppress(OSError):
                    live.unlink()
            self._live = None


def _when(packet: Any, lane: Lane) -> float:
    """A packet's decode time in seconds: the interleaving key across time bases."""
    stamp = packet.dts if packet.dts is not None else packet.pts
    base = packet.time_base or (lane.stream.time_base if lane.stream is not None else None)
    if stamp is None or base is None:
        return float("-inf") if not lane.queue else lane.queue[-1][0]
    return float(stamp * base)


def _open_device(path: Path) -> FdSink:
    try:
        return FdSink(os.open(path, os.O_WRONLY | os.O_CLOEXEC), own=True)  # closed by the Muxer
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


def _fragmented(options: dict[str, str]) -> bool:
    """Whether the muxer options ask for fragments (FFmpeg's mov muxer: ``movflags``
    frag_keyframe, frag_every_frame, frag_custom or empty_moov; a non-zero ``frag_duration``
    or ``frag_size``)."""
    flags = {
        name for sign, name in re.findall(r"([+-]?)(\w+)", options.get("movflags", "") or "") if sign != "-"
    }
    wanted = {"frag_keyframe", "frag_every_frame", "frag_custom", "empty_moov"}
    sized = any(options.get(key) not in (None, "", "0") for key in ("frag_duration", "frag_size"))
    return bool(wanted & flags) or sized


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
