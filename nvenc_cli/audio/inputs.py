"""Where sound comes from: a media file's first audio stream, or samples in an array file.

Each input states its facts (codec, rate, channels) before anything is decoded, and hands
out packets (for a copy) or frames (for a re-encode) one at a time, so memory does not
grow with the track's length.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from nvenc_cli.errors import InputDataError, InputMissingError, UsageError, brief

if TYPE_CHECKING:  # imported by the samples' paths: a media file's sound goes through PyAV alone
    import numpy as np

ARRAY_EXTENSIONS = (".npz", ".pt", ".pth")
# Sample-rate entries looked for beside the samples, in this order ({key} is the samples' key).
_RATE_KEYS = (
    "{key}_sample_rate",
    "{key}_rate",
    "sample_rate",
    "audio_sample_rate",
    "audio_rate",
    "sr",
    "rate",
)
MAX_RATE = 768_000
MAX_CHANNELS = 64
_CHUNK = 4096  # samples per frame made from an array


def layout_for(channels: int) -> str:
    """FFmpeg's default layout for a channel count ("mono", "stereo", "5.1"…)."""
    import av

    try:
        return av.AudioLayout(f"{channels}c").name
    except ValueError:  # FFmpeg names default layouts up to a count (16 today), not beyond
        raise InputDataError(
            f"{channels} audio channels: FFmpeg has no channel layout for that many to encode"
        ) from None


class MediaAudio:
    """The first audio stream of any file FFmpeg opens (wav, flac, mp3, m4a, a video)."""

    origin = "file"

    def __init__(self, path: str, *, required: bool = True) -> None:
        import av

        from nvenc_cli import storage

        self.path = storage.redact(path)
        remote = storage.streams(path)  # an object in a store, read through a file object
        if not remote and not os.path.exists(path):
            raise InputMissingError(f"{path}: no such file")
        #: what av.open was given: closed with the container (PyAV leaves a file object open)
        self._opened = storage.media_input(path)  # 66 for a missing object
        try:
            self.container = av.open(self._opened, "r")
        except PermissionError:
            storage.close_media(self._opened)
            raise InputMissingError(f"{path}: cannot read (permission denied)") from None
        except (av.FFmpegError, OSError, ValueError) as exc:
            storage.close_media(self._opened)
            raise InputDataError(f"{self.path}: not a readable audio or video file ({brief(exc)})") from None
        streams = self.container.streams.audio
        if not streams:
            self.stream = None
            self.close()
            if required:
                raise InputDataError(f"{self.path}: has no audio stream")
            return
        self.stream = stream = streams[0]
        ctx = stream.codec_context
        if ctx is None or not ctx.sample_rate or not ctx.channels:
            self.close()
            raise InputDataError(f"{self.path}: its audio stream has no decoder or no sample rate")
        self.codec: str | None = ctx.codec.canonical_name  # "mp3", not its decoder "mp3float"
        self.rate: int = ctx.sample_rate
        self.channels: int = ctx.channels
        # WAV and raw PCM often leave the channel order unset ("2 channels"); encoders
        # want a named layout, and FFmpeg's default for the count is what players assume.
        named = ctx.layout.name
        self.layout: str = layout_for(ctx.channels) if named.endswith("channels") else named
        self.sample_format: str = ctx.format.name if ctx.format is not None else "fltp"
        self.time_base: Fraction = stream.time_base
        self.start = Fraction(stream.start_time or 0) * stream.time_base

    @property
    def present(self) -> bool:
        return self.stream is not None

    def video_start(self) -> Fraction:
        """Start time of the file's first video stream: the instant output time 0 shows."""
        videos = self.container.streams.video
        if not videos or videos[0].start_time is None:
            return self.start
        return Fraction(videos[0].start_time) * videos[0].time_base

    def packets(self) -> Iterator[Any]:
        """Demuxed packets of the audio stream, in file order (empty flush packets skipped)."""
        import av

        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0 or (packet.pts is None and packet.dts is None):
                    continue
                yield packet
        except av.FFmpegError as exc:
            raise InputDataError(f"{self.path}: reading audio failed ({brief(exc)})") from None

    def frames(self) -> Iterator[Any]:
        """Decoded frames, with their timestamps, for a re-encode."""
        import av

        for packet in self.packets():
            try:
                decoded = self.stream.codec_context.decode(packet)
            except av.FFmpegError as exc:
                raise InputDataError(f"{self.path}: decoding audio failed ({brief(exc)})") from None
            yield from decoded
        try:
            yield from self.stream.codec_context.decode(None)
        except av.FFmpegError:
            return

    def close(self) -> None:
        if self.stream is not None or getattr(self, "container", None) is not None:
            # Closing twice, or a file that went away: nothing to keep either way.
            with contextlib.suppress(Exception):
                self.container.close()
        from nvenc_cli.storage import close_media

        with contextlib.suppress(Exception):
            close_media(getattr(self, "_opened", None) or "")


class ArrayAudio:
    """Samples, (C, S) or (S,), float in [-1, 1] or int16, from memory or an array file."""

    origin = "array"
    codec: str | None = None
    start = Fraction(0)

    def __init__(self, samples: Any, rate: int | None, label: str, lenient: bool = False) -> None:
        import numpy as np

        self.path = label
        data = _as_numpy(samples, label)
        if data.ndim == 1:
            data = data.with_channel_axis() if isinstance(data, MemberSamples) else data[None, :]
        if data.ndim != 2:
            raise InputDataError(
                f"{label}: audio samples must be (channels, samples) or (samples,), got {data.shape}"
            )
        channels, count = data.shape
        if channels > MAX_CHANNELS and count <= MAX_CHANNELS:
            raise InputDataError(
                f"{label}: audio shape {data.shape} looks like (samples, channels); "
                "store it as (channels, samples) (transpose it)"
            )
        if not 1 <= channels <= MAX_CHANNELS:
            raise InputDataError(f"{label}: {channels} audio channels (at most {MAX_CHANNELS})")
        if count == 0:
            raise InputDataError(f"{label}: the audio holds no samples")
        if data.dtype == np.int16:
            self.sample_format = "s16p"
        elif data.dtype.kind == "f":
            _check_range(data, label, lenient)
            self.sample_format = "fltp"
        else:
            raise InputDataError(f"{label}: audio samples are {data.dtype}: use float in [-1, 1] or int16")
        self.rate = check_rate(rate, label)
        self.data = data
        self.channels = channels
        self.layout = layout_for(channels)
        self.time_base = Fraction(1, self.rate)
        self.stream = None

    @property
    def present(self) -> bool:
        return True

    def frames(self) -> Iterator[Any]:
        import av
        import numpy as np

        dtype = np.int16 if self.sample_format == "s16p" else np.float32
        for offset in range(0, self.data.shape[1], _CHUNK):
            chunk = np.ascontiguousarray(self.data[:, offset : offset + _CHUNK], dtype=dtype)
            frame = av.AudioFrame.from_ndarray(chunk, format=self.sample_format, layout=self.layout)
            frame.sample_rate = self.rate
            frame.time_base = self.time_base
            frame.pts = offset
            yield frame

    def packets(self) -> Iterator[Any]:
        raise AssertionError("raw samples have no packets to copy")

    def close(self) -> None:
        import numpy as np

        if isinstance(self.data, MemberSamples):
            self.data.close()
        self.data = np.zeros((1, 0), np.float32)


class PushedAudio:
    """Samples the caller will push later (``AudioStream.add_samples``): only the facts."""

    origin = "samples"
    codec: str | None = None
    start = Fraction(0)
    stream = None
    sample_format = "fltp"

    def __init__(self, rate: int, channels: int, label: str = "samples") -> None:
        self.path = label
        self.rate = rate
        self.channels = channels
        self.layout = layout_for(channels)
        self.time_base = Fraction(1, rate)

    @property
    def present(self) -> bool:
        return True

    def frames(self) -> Iterator[Any]:
        return iter(())

    def packets(self) -> Iterator[Any]:
        raise AssertionError("raw samples have no packets to copy")

    def close(self) -> None:
        pass


def samples_frame(data: np.ndarray, rate: int, layout: str) -> Any:
    """A planar float or int16 frame of (C, S) samples, as FFmpeg's resampler takes them."""
    import av
    import numpy as np

    fmt = "s16p" if data.dtype == np.int16 else "fltp"
    chunk = np.ascontiguousarray(data, dtype=np.int16 if fmt == "s16p" else np.float32)
    frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout=layout)
    frame.sample_rate = rate
    return frame


def check_samples(data: np.ndarray, label: str, lenient: bool = False, warn: bool = True) -> bool:
    """The value rule for float samples, shared with array files: finite, and in [-1, 1].

    ``lenient`` (the torchcodec-compatible API) lets louder samples through with a
    ``UserWarning``: torchcodec encodes them as given; float codecs take them as they are,
    integer ones (PCM, FLAC) clip them. Returns whether samples were out of range, so a
    stream that is fed piece by piece warns once (``warn=False`` after that).
    """
    return _check_range(data, label, lenient, warn, stacklevel=5)


def check_rate(rate: Any, label: str) -> int:
    """A sample rate as an int > 0, or UsageError (it comes from an option or argument)."""
    if rate is None:
        raise UsageError(
            f"{label}: no sample rate: store one beside the samples (e.g. sample_rate) or pass --audio-rate"
        )
    if isinstance(rate, bool):
        raise UsageError(f"invalid audio sample rate {rate!r}: it must be a whole number > 0")
    try:
        value = int(rate)
    except (TypeError, ValueError):
        raise UsageError(f"invalid audio sample rate {rate!r}: it must be a whole number > 0") from None
    if value != rate:
        import numpy as np

        if not (isinstance(rate, (np.integer, np.floating)) and float(rate) == value):
            raise UsageError(f"invalid audio sample rate {rate!r}: it must be a whole number > 0")
    if not 1 <= value <= MAX_RATE:
        raise UsageError(f"invalid audio sample rate {value}: it must be 1–{MAX_RATE} Hz")
    return value


def _check_range(
    data: np.ndarray, label: str, lenient: bool = False, warn: bool = True, stacklevel: int = 4
) -> bool:
    """Refuse, never clip silently: a float track outside [-1, 1] was scaled wrongly upstream."""
    import numpy as np

    # Windows of at most ~4 MiB whatever the channel count (the samples may be read
    # from a file as they are checked).
    step = max(4096, (1 << 22) // (data.shape[0] * data.dtype.itemsize))
    for offset in range(0, data.shape[1], step):
        chunk = data[:, offset : offset + step]
        if not np.isfinite(chunk).all():
            bad = np.argwhere(~np.isfinite(chunk))[0]
            raise InputDataError(f"{label}: audio sample {offset + bad[1]} of channel {bad[0]} is not finite")
        peak = float(np.abs(chunk).max(initial=0.0))
        if peak <= 1.0:
            continue
        index = np.argwhere(np.abs(chunk) > 1.0)[0]
        where = f"sample {offset + index[1]} of channel {index[0]} is {float(chunk[index[0], index[1]]):g}"
        if not lenient:
            raise InputDataError(
                f"{label}: audio samples must be in [-1, 1]; {where} (scale the track, nvenc does not clip)"
            )
        if warn:
            warnings.warn(
                f"{label}: audio samples outside [-1, 1] ({where}) are encoded as given: codecs "
                "with integer samples (PCM, FLAC, ALAC) clip them to [-1, 1], float ones take "
                "them as they are",
                UserWarning,
                stacklevel=stacklevel,
            )
        return True
    return False


def _as_numpy(samples: Any, label: str) -> np.ndarray | MemberSamples:
    import numpy as np

    if isinstance(samples, (np.ndarray, MemberSamples)):
        return samples
    if type(samples).__module__.startswith("torch"):
        tensor = samples.detach()
        if tensor.device.type != "cpu":
            raise InputDataError(f"{label}: audio samples must be on the CPU, got {tensor.device.type}")
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return tensor.resolve_neg().resolve_conj().numpy()
    raise InputDataError(f"{label}: audio samples must be an array, got {type(samples).__name__}")


def open_array_audio(path: str, key: str | None, rate: int | None) -> ArrayAudio:
    """The samples named ``key`` in an .npz/.pt file, with the rate stored beside them.

    Only the samples and the small rate entries are read: the video beside them is not.
    """
    from nvenc_cli.storage import streams

    if not streams(path) and not os.path.exists(path):  # an object is asked for when opened
        raise InputMissingError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    names, load = _npz_entries(path) if ext == ".npz" else _pt_entries(path)
    candidates = [k for k in names if not _is_rate_key(k)]
    if key is None:
        if "audio" in names:
            key = "audio"
        elif len(candidates) == 1:
            key = candidates[0]
        else:
            raise UsageError(f"{path} holds {', '.join(sorted(names))}: pick the samples with --audio-key")
    if key not in names:
        raise InputDataError(f"{path}: no entry named {key!r}; it holds {', '.join(sorted(names)) or 'none'}")
    label = f"{path}[{key}]"
    if rate is None:
        for name in _RATE_KEYS:
            if name.format(key=key) in names:
                stored = _plain(load(name.format(key=key)))
                if stored.size == 1:
                    rate = stored.reshape(()).item()
                    break
    samples = load(key)
    try:
        return ArrayAudio(samples, rate, label)
    except BaseException:
        if isinstance(samples, MemberSamples):
            samples.close()
        raise


def _is_rate_key(key: str) -> bool:
    return key.endswith(("rate", "sr")) or key in ("fps", "frame_rate")


def _plain(value: Any) -> np.ndarray:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, MemberSamples):
        try:  # a rate entry: one value, read whole; anything longer is not a rate
            return value.window(0, 1) if value.size == 1 else np.zeros(0)
        finally:
            value.close()
    if type(value).__module__.startswith("torch"):
        return value.detach().numpy()
    return np.asarray(value)


def _npz_entries(path: str) -> tuple[list[str], Any]:
    """Entry names of an .npz and a loader for one entry (members are read on demand).

    An entry comes back as ``MemberSamples``: samples are read a window at a time while
    they are checked and encoded, so neither a long track nor a small deflated file that
    inflates to gigabytes is ever held whole.
    """
    import zipfile

    from nvenc_cli.sources.arrays import open_array_file

    raw = open_array_file(path)
    try:
        with raw, zipfile.ZipFile(raw) as archive:
            names = [m.filename for m in archive.infolist()]
    except Exception as exc:  # zipfile parses untrusted bytes
        raise InputDataError(f"{path}: not a readable .npz archive ({brief(exc)})") from None
    entries = [name.removesuffix(".npy") for name in names if name.endswith(".npy")]

    def load(name: str) -> Any:
        return MemberSamples(path, name)

    return entries, load


class MemberSamples:
    """The samples of one ``.npz`` member, ``(C, S)`` or ``(S,)``, read by windows.

    It offers what ``ArrayAudio`` uses of an array (``shape``, ``ndim``, ``dtype``,
    ``size``, ``data[:, a:b]``), and reads only the asked window of each
    channel (one open handle per channel, so a deflated member is inflated in order). The
    header's promise is checked against the member's size in the zip directory before
    anything is read.
    """

    def __init__(self, path: str, name: str) -> None:
        import zipfile

        from nvenc_cli.sources.npyheader import nbytes, read_header

        self.label = label = f"{path}[{name}]"
        self._handles: list[Any] = []
        from nvenc_cli.sources.arrays import open_array_file

        self._raw = open_array_file(path)  # ZipFile never closes a file it was handed
        try:
            self._zip = zipfile.ZipFile(self._raw)
        except Exception as exc:
            self._raw.close()
            raise InputDataError(f"{path}: not a readable .npz archive ({brief(exc)})") from None
        try:
            self._member = self._zip.getinfo(f"{name}.npy")
            with self._zip.open(self._member) as fh:
                shape, self._fortran, self.dtype = read_header(fh, label)
                self._offset = fh.tell()
        except InputDataError:
            self.close()
            raise
        except Exception as exc:  # zipfile and numpy parse untrusted bytes
            self.close()
            raise InputDataError(f"{label}: not a readable array ({brief(exc)})") from None
        if self.dtype.hasobject:
            self.close()
            raise InputDataError(f"{label}: holds Python objects (dtype {self.dtype}); nvenc refuses pickle")
        need = nbytes(shape, self.dtype)
        held = self._member.file_size - self._offset
        if need > held:
            self.close()
            raise InputDataError(
                f"{label}: truncated: its header promises {need} bytes of samples, it holds {held}"
            )
        self._stored = shape
        self.shape: tuple[int, ...] = shape
        self.ndim = len(shape)
        self.size = need // max(self.dtype.itemsize, 1)

    def with_channel_axis(self) -> MemberSamples:
        """``(S,)`` samples seen as one channel, ``(1, S)``, like ``data[None, :]``."""
        self.shape, self.ndim = (1, *self._stored), 2
        return self

    def __getitem__(self, index: tuple[slice, slice]) -> np.ndarray:
        rows, cols = index
        if rows != slice(None) or cols.step is not None:
            raise AssertionError("samples are read as data[:, a:b] windows")
        start = max(cols.start or 0, 0)
        stop = min(self.shape[-1] if cols.stop is None else cols.stop, self.shape[-1])
        return self.window(start, max(stop - start, 0))

    def window(self, start: int, count: int) -> np.ndarray:
        """Samples ``start`` to ``start + count`` of every channel, shape ``(C, count)``."""
        import numpy as np

        if count <= 0:
            return np.zeros((self.shape[0] if self.ndim == 2 else 1, 0), self.dtype)
        item = self.dtype.itemsize
        if len(self._stored) <= 1 or self._fortran:
            # One channel, or (C, S) stored column-major: samples interleaved by channel.
            channels = 1 if len(self._stored) <= 1 else self._stored[0]
            raw = self._read(0, self._offset + start * channels * item, count * channels * item)
            values = np.frombuffer(raw, dtype=self.dtype)
            return values.reshape(count, channels).T if channels > 1 else values.reshape(1, count)
        channels, length = self._stored
        rows = [
            np.frombuffer(self._read(c, self._offset + (c * length + start) * item, count * item), self.dtype)
            for c in range(channels)
        ]
        return np.stack(rows)

    def _read(self, channel: int, position: int, count: int) -> bytes:
        import zipfile
        import zlib

        try:
            while len(self._handles) <= channel:
                self._handles.append(self._zip.open(self._member))
            fh = self._handles[channel]
            if fh.tell() != position:
                fh.seek(position)
            data = fh.read(count)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise InputDataError(f"{self.label}: corrupt samples ({brief(exc)})") from None
        if len(data) != count:
            raise InputDataError(f"{self.label}: the samples end early")
        return data

    def close(self) -> None:
        for fh in self._handles:
            fh.close()
        self._handles = []
        self._zip.close()
        self._raw.close()


def _pt_entries(path: str) -> tuple[list[str], Any]:
    """Tensors (and plain numbers) of a .pt dict, loaded with ``weights_only`` and mapped."""
    from nvenc_cli.sources.arrays import _torch_load

    loaded, _ = _torch_load(path)
    if not isinstance(loaded, dict):
        loaded = {"audio": loaded}
    entries = {str(k): v for k, v in loaded.items() if not isinstance(v, (dict, list, tuple, str))}
    return list(entries), entries.__getitem__
