"""One exception hierarchy whose classes carry the process exit code.

The library raises these; only ``cli.py`` turns them into a stderr line and an exit
status, so Python callers get ordinary exceptions and shell callers get sysexits-style
codes (see README "Exit codes").

The Python API is a drop-in for torchcodec's encoders, so each class is also an instance
of the built-in exception torchcodec raises for the same failure. torchcodec raises
``ValueError`` from its Python checks (frame type, rank, dtype, frame rate) and
``RuntimeError`` from its C++ core (everything FFmpeg refuses). Where nvenc's own kind and
torchcodec's disagree, a class derives from both (``SettingError`` is a ``ValueError``
like every usage error, and a ``RuntimeError`` like torchcodec's), so code written
``except RuntimeError:`` around torchcodec calls still catches them.

An error may also carry ``torchcodec``: torchcodec's wording for the same failure (the
functions at the end of this module write it). The API appends it to the message, since
torchcodec's tests and its users' code match on those words; the CLI leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable


class NvencError(Exception):
    """Base class: every failure nvenc reports on purpose."""

    exit_code: int = 1
    torchcodec: str | None = None
    """torchcodec's wording for the same failure, appended to the message by the API."""

    def __init__(self, *args: object, torchcodec: str | None = None) -> None:
        super().__init__(*args)
        if torchcodec is not None:
            self.torchcodec = torchcodec


class UsageError(NvencError, ValueError):
    """An option value that can never work (bad crf, unknown preset, unknown -x key)."""

    exit_code = 2


class SettingError(UsageError, RuntimeError):
    """A codec, pixel format, crf, preset, extra option, container or destination object
    that the encoder or muxer refuses: a usage error (exit 2, ``ValueError``) that
    torchcodec raises as ``RuntimeError``."""


class InputDataError(NvencError, ValueError):
    """The input exists but its contents are unusable (shape, dtype, corrupt data)."""

    exit_code = 65


class FrameFormatError(InputDataError, RuntimeError):
    """Frames whose channel count no pixel format takes (torchcodec: ``RuntimeError``)."""


class InputMissingError(NvencError, FileNotFoundError):
    """The input cannot be found or opened for reading."""

    exit_code = 66


class UnavailableError(NvencError, RuntimeError):
    """A requested backend, codec or device is not available on this machine."""

    exit_code = 69


class OutputError(NvencError, OSError):
    """The output exists (and overwriting was not allowed) or cannot be created."""

    exit_code = 73


class OutputPathError(OutputError, RuntimeError):
    """The output cannot be created at that path (no such folder, not writable, a folder);
    torchcodec raises ``RuntimeError`` (its ``avio_open`` failed)."""


class WriteError(NvencError, OSError, RuntimeError):
    """Writing the output failed part-way (disk full, broken pipe, muxer error); an
    ``OSError`` as for any failed write, and a ``RuntimeError`` as in torchcodec."""

    exit_code = 74


class EncoderError(NvencError, RuntimeError):
    """The encoder itself failed while encoding; reported like a write failure."""

    exit_code = 74


class Interrupted(BaseException):
    """The run was cancelled by a signal: SIGINT (130), SIGTERM (143), SIGHUP (129),
    SIGXCPU (152) or SIGXFSZ (153), i.e. 128 + the signal's number.

    A ``BaseException``, like ``KeyboardInterrupt``: the ``except Exception`` that guards
    a probe or a parser of untrusted bytes must never swallow a cancellation or turn it
    into another error; only cleanup (``finally``, ``except BaseException: ...; raise``)
    sees it on the way out.
    """

    exit_code = 130

    def __init__(self, message: str = "interrupted", exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def brief(exc: BaseException, limit: int = 200) -> str:
    """First line of an underlying library error, for a one-line message."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def with_torchcodec(message: str, exc: BaseException) -> str:
    """``message`` with torchcodec's wording for ``exc`` appended, for the Python API."""
    extra = getattr(exc, "torchcodec", None)
    if not extra or extra in message:
        return message
    return f"{message} ({extra})"


# torchcodec's wording (release 0.13), one function per failure. Its C++ core prints
# numbers with the C++ stream defaults, which ``:g`` reproduces (6 significant digits).


def tc_codec_not_found(codec: str, kind: str = "Video") -> str:
    return f"{kind} codec {codec} not found. To see available codecs, run: ffmpeg -encoders"


def tc_bad_extension(dest: str) -> str:
    return f"Couldn't allocate AVFormatContext. The destination file is {dest}, check the desired extension?"


def tc_bad_format(fmt: str) -> str:
    return f"Couldn't allocate AVFormatContext. Check the desired format? Got format={fmt}"


def tc_cannot_open(dest: str) -> str:
    return f"avio_open failed. The destination file is {dest}, make sure it's a valid path?"


def tc_file_like_lacks(method: str) -> str:
    if method == "write":
        return "File like object must implement a write method for writing."
    if method == "read":
        return "File like object must implement a read method for reading."
    return f"File like object must implement a {method} method."


def tc_out_of_range(name: str, value: float, low: float, high: float, encoder: str) -> str:
    return (
        f"{name}={value:g} is out of valid range [{low:g}, {high:g}] for this codec. "
        f"For more details, run 'ffmpeg -h encoder={encoder}'"
    )


def tc_not_numeric(name: str, value: str) -> str:
    return f"Option {name} expects a numeric value but got '{value}'"


def tc_open_failed(reason: str = "Invalid argument") -> str:
    return f"avcodec_open2 failed: {reason}"


def tc_pixel_format(pixel_format: str, encoder: str, supported: Iterable[str], known: bool) -> str:
    """FFmpeg-style refusal; torchcodec puts the list on a second line, here it is one."""
    if known:
        head = f"Specified pixel format {pixel_format} is not supported by the {encoder} encoder."
    else:
        head = f"Unknown pixel format: {pixel_format}"
    return f"{head} Supported pixel formats for {encoder}: {' '.join(supported)}"


def tc_channels(got: int) -> str:
    return f"frame must have 3 channels (R, G, B), got {got}"


def tc_frames_rank(shape: object) -> str:
    return f"Expected 4D frames, got frames.shape = {shape!r}."


def tc_frames_type(frames: object) -> str:
    return f"Expected frames to be a Tensor, got type(frames) = {type(frames)!r}."


def tc_frame_rate(value: object) -> str:
    return f"frame_rate = {value!r} must be > 0."


def out_of_resources(exc: BaseException) -> UnavailableError | None:
    """The error the system's limits raise (too many open files, no memory) as the
    unavailable resource it is (exit 69), not a bug: it can strike anywhere (a worker
    pool's pipes, a decoder's thread), so it is recognised where failures are reported."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        scope = "this process" if exc.errno == errno.EMFILE else "the system"
        return UnavailableError(
            f"too many open files for {scope} (ulimit -n): raise the limit or run fewer workers (-j)"
        )
    if isinstance(exc, MemoryError):
        return UnavailableError("out of memory: free some, or lower --batch-size / -j")
    return None
