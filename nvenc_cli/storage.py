"""Inputs and outputs named by URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``, ``file://``).

Everything above this module works on local files; a URL is turned into one here and
nowhere else. A ``.npy`` or ``.npz`` object is read in place, each window of frames a
ranged read (``open_input``); a video or sound object is read by PyAV through a file
object with a bounded block cache (``media_input``); any other input object (``.pt``,
images, timestamps, anything from http(s)) is copied, in bounded chunks, into a private
temporary folder before it is opened; either way memory stays flat however large the
object. An output is written to a temporary file beside
it and uploaded in one ``put`` once the encode has finished, so the object appears only
whole: a failure or an interruption before that point uploads nothing. The stores are
reached through fsspec and its implementations (the ``cloud`` extra),
imported only when a URL is given; credentials come from each store's own chain
(environment, configuration files, instance roles), never from nvenc's command line.

Errors map as for local files: a missing object, bucket or permission on an input is 66;
on an output, no permission or no bucket is 73 and a failed upload 74. Transient errors
(a dropped connection, a timeout, throttling) are retried ``RETRIES`` times with a
doubling delay. Any URL quoted in a message goes through ``redact`` first, so a
password or a signed query never reaches stderr, ``--json`` or a progress file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nvenc_cli.errors import (
    InputMissingError,
    NvencError,
    OutputError,
    OutputPathError,
    UnavailableError,
    UsageError,
    WriteError,
)

REMOTE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "http", "https", "file"})
"""The URL schemes nvenc opens through fsspec; any other ``x://`` is a local name."""

READ_ONLY = frozenset({"http", "https"})
"""Schemes that can be read but not written."""

RETRIES = 3
"""How many times a transient error is retried (after the first try) before it counts."""

RETRY_DELAY = 0.5
"""Seconds before the first retry; each further retry waits twice as long (0.5, 1, 2 s)."""

CHUNK = 8 << 20
"""Bytes copied at a time from an input object: the most an input holds in memory."""

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_SECRET_QUERY = re.compile(
    r"([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|"
    r"x-goog-credential|sig|signature|token|access_token|sas|sv|se|sp|skoid|sktid|"
    r"password|secret|key|apikey|api_key)=)(?:[^&#\s'\":]|:(?!\s|$))*",
    re.IGNORECASE,
)

T = TypeVar("T")


def scheme_of(spec: object) -> str | None:
    """The URL scheme of ``spec`` when it is one nvenc opens remotely, else None."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    match = _URL.match(os.fspath(spec)) if isinstance(spec, str) else None
    if match is None:
        return None
    scheme = match.group(1).lower()
    return scheme if scheme in REMOTE_SCHEMES else None


def is_url(spec: object) -> bool:
    """Whether ``spec`` names an object in a store (or a ``file://`` URL), not a local path."""
    return scheme_of(spec) is not None


def redact(text: str) -> str:
    """``text`` with the secrets a URL can carry replaced by ``***``: a ``user:password@``
    part and signed-query values (``X-Amz-Signature``, Azure's ``sig``, ``token``, ...)."""
    if "://" not in text:
        return text
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def file_path(url: str) -> str:
    """The local path a ``file://`` URL names (``file:///a/b.npy`` is ``/a/b.npy``): such
    a file is read and written as any local file, atomic rename included."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UsageError(f"{redact(url)}: a file:// URL names this machine (file:///path)")
    return unquote(parts.path)


def remote(spec: object) -> bool:
    """Whether ``spec`` names an object that is copied in or uploaded (a URL other than
    ``file://``)."""
    scheme = scheme_of(spec)
    return scheme is not None and scheme != "file"


def _filesystem(url: str) -> tuple[Any, str]:
    """fsspec's file system for ``url`` and the path within it; 69 when fsspec (or the
    store's implementation) is not installed."""
    from nvenc_cli.extras import install_hint

    try:
        import fsspec
    except ImportError:
        raise UnavailableError(f"{redact(url)}: URLs need fsspec: {install_hint('cloud')}") from None
    scheme = scheme_of(url) or "file"
    if scheme == "az":
        url = "abfs" + url[2:]  # adlfs registers az:// as abfs:// in older fsspec
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        package = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}.get(scheme, "adlfs")
        if scheme in ("http", "https"):
            package = "aiohttp"
        raise UnavailableError(
            f"{redact(url)}: {scheme}:// needs {package}: pip install {package} ({redact(str(exc))})"
        ) from None
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{redact(url)}: not a usable URL ({redact(str(exc))})") from None


def _transient(exc: BaseException) -> bool:
    """Worth another try: a connection dropped, a timeout, the store asking to slow down;
    not a missing object, a refusal, or a mistake in the request."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(exc, (NvencError, ValueError, TypeError, KeyboardInterrupt)):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    name = type(exc).__name__.lower()
    if any(word in name for word in ("connect", "timeout", "throttl", "slowdown", "unavailable")):
        return True
    return isinstance(exc, OSError) and "slow down" in str(exc).lower()


def with_retries(action: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """``action()``, retried ``RETRIES`` times with a doubling delay while it fails with a
    transient error; the last error is raised as it came."""
    delay = RETRY_DELAY
    for attempt in range(RETRIES + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == RETRIES or not _transient(exc):
                raise
        sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: BaseException) -> str:
    text = redact(str(exc).strip()) or type(exc).__name__
    return text.splitlines()[0][:200]


def _input_error(url: str, exc: BaseException) -> NvencError:
    shown = redact(url)
    if isinstance(exc, NvencError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return InputMissingError(f"{shown}: no such object (or bucket)")
    if isinstance(exc, PermissionError):
        return InputMissingError(f"{shown}: access denied ({_reason(exc)}); check the store's credentials")
    return InputMissingError(f"{shown}: cannot read it ({_reason(exc)})")


def _output_error(url: str, exc: BaseException) -> NvencError:
    shown = redact(url)
    if isinstance(exc, NvencError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return OutputPathError(f"{shown}: cannot create it: no such bucket or container")
    if isinstance(exc, PermissionError):
        return OutputError(f"{shown}: cannot create it: access denied ({_reason(exc)})")
    return WriteError(f"{shown}: upload failed after {RETRIES + 1} tries ({_reason(exc)})")


def exists(url: str) -> bool:
    """Whether the object ``url`` exists (``--skip-existing``, ``-y``); errors map as for an
    output (73 no permission or no bucket)."""
    fs, path = _filesystem(url)
    try:
        return bool(with_retries(lambda: fs.exists(path)))
    except Exception as exc:
        raise _output_error(url, exc) from None


def object_key(url: str) -> tuple[Any, ...] | None:
    """(ETag, size, time) of the object ``url``, None when there is none (or it cannot be
    asked): what tells an object this run uploaded from one that was there before."""
    try:
        fs, path = _filesystem(url)
        info = with_retries(lambda: fs.info(path))
    except Exception:
        return None
    when = info.get("LastModified") or info.get("mtime") or info.get("updated")
    return (str(info.get("ETag") or info.get("etag") or ""), info.get("size"), str(when))


def read_text(url: str) -> str:
    """A small text object (a manifest), read whole."""
    fs, path = _filesystem(url)
    try:
        data = with_retries(lambda: fs.cat_file(path))
    except Exception as exc:
        raise _input_error(url, exc) from None
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        from nvenc_cli.errors import InputDataError

        raise InputDataError(f"{redact(url)}: not UTF-8 text") from None


MEDIA_BLOCK = 4 << 20
"""Bytes fetched at a time for a video or sound object read through PyAV."""

MEDIA_BLOCKS = 4
"""How many ``MEDIA_BLOCK`` blocks one such reader keeps: its whole cache (16 MiB), enough
that reading two places of the file in turn (an MP4's index at its end, samples of two
interleaved streams) does not fetch the same bytes again and again."""

STREAMED = (".npy", ".npz")
"""Array files read in place: frames at known offsets (``.npy``) or in the members of a
zip whose directory says where each lies (``.npz``)."""


def _media_extensions() -> tuple[str, ...]:
    from nvenc_cli.sources.video import VIDEO_EXTENSIONS

    return (*VIDEO_EXTENSIONS, ".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".mka")


def streams(spec: object) -> bool:
    """Whether the input ``spec`` is read from its store in place (ranged reads) rather
    than copied in first: a ``.npy`` or ``.npz`` object, or a video or sound file that
    PyAV reads through a file object (``media_input``). http(s) objects are copied: a
    web server need not answer ranged requests or say an object's size."""
    if not isinstance(spec, str) or not remote(spec) or scheme_of(spec) in READ_ONLY:
        return False
    ext = os.path.splitext(spec.split("?", 1)[0])[1].lower()
    return ext in STREAMED or ext in _media_extensions()


def streams_media(spec: object) -> bool:
    """Whether ``spec`` is a video or sound object that PyAV reads in place."""
    return streams(spec) and not str(spec).split("?", 1)[0].lower().endswith(STREAMED)


def media_input(path: str) -> Any:
    """What ``av.open`` is given to read the media file ``path``: a local path as FFmpeg
    must see it (``paths.for_ffmpeg``), or, for an object in a store, a fresh seekable
    file object that fetches ``MEDIA_BLOCK`` bytes at a time and keeps at most
    ``MEDIA_BLOCKS`` of them. Each call opens its own, so a probe, a scan of the packets
    and the decode each read at their own place. PyAV does not close a file object it
    was given: the caller does (``close_media``)."""
    if not streams(path):
        from nvenc_cli.paths import for_ffmpeg

        return for_ffmpeg(path)
    fs, inner = _filesystem(path)

    def opened() -> Any:
        fh = fs.open(
            inner,
            "rb",
            block_size=MEDIA_BLOCK,
            cache_type="blockcache",
            cache_options={"maxblocks": MEDIA_BLOCKS},
        )
        fh.size  # noqa: B018 - a missing object fails here, not inside FFmpeg
        return fh

    try:
        return with_retries(opened)
    except Exception as exc:
        raise _input_error(path, exc) from None


def close_media(opened: Any) -> None:
    """Close what ``media_input`` returned when it is a file object (a path needs nothing)."""
    if not isinstance(opened, (str, bytes, os.PathLike)):
        opened.close()


def open_input(url: str) -> tuple[Any, int]:
    """A seekable binary file object reading the object ``url`` by ranged requests of at
    most ``CHUNK`` bytes ahead (what the reader asks for, plus that much read-ahead: the
    most it holds), and the object's size."""
    fs, path = _filesystem(url)

    def opened() -> tuple[Any, int]:
        fh = fs.open(path, "rb", block_size=CHUNK, cache_type="readahead")
        return fh, int(fh.size)

    try:  # a folder-like name has no object: s3fs says FileNotFoundError, reported as 66
        return with_retries(opened)
    except Exception as exc:
        raise _input_error(url, exc) from None


def _bucket(path: str) -> str:
    return path.split("/", 1)[0]


_BUCKETS_SEEN: set[tuple[str | None, str]] = set()
"""Buckets this process has seen exist: a worker that writes many objects into one bucket
asks once (a bucket deleted meanwhile still fails the upload, with 73)."""


def check_output_url(url: str, overwrite: bool) -> None:
    """The cheap refusals for an output object, before any input is read: a read-only
    scheme (2), an existing object without ``-y`` (73), a missing bucket (73)."""
    scheme = scheme_of(url)
    if scheme in READ_ONLY:
        raise UsageError(f"{redact(url)}: {scheme}:// is read-only: write to s3://, gs://, az:// or a file")
    if url.endswith("/"):
        raise OutputPathError(f"{redact(url)}: names a folder; give an object name such as out.mp4")
    fs, path = _filesystem(url)
    try:
        if with_retries(lambda: fs.exists(path)):
            if not overwrite:
                raise OutputError(f"{redact(url)}: already exists (use -y to overwrite)")
            return
        if scheme == "file":
            parent = os.path.dirname(path) or "."
            if not os.path.isdir(parent):
                raise OutputPathError(f"{redact(url)}: cannot create it: folder {parent} does not exist")
            return
        bucket = _bucket(path)
        if bucket and bucket != path and (scheme, bucket) not in _BUCKETS_SEEN:
            if not with_retries(lambda: fs.exists(bucket)):
                raise OutputPathError(f"{redact(url)}: cannot create it: no such bucket or container")
            _BUCKETS_SEEN.add((scheme, bucket))
    except Exception as exc:
        raise _output_error(url, exc) from None


def _local_name(url: str) -> str:
    """A local file name keeping the object's own name (its extension picks the reader
    or the container)."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._%+-]", "_", name) or "object"
    return name[-120:]


@dataclass
class Staging:
    """The local stand-ins for one encode's URLs: ``local(url)`` fetches an input,
    ``output(url)`` names the temporary file to encode into, ``publish()`` uploads it,
    ``close()`` removes every temporary file (always, whatever happened)."""

    folder: str | None = None
    outputs: list[tuple[str, str]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def _dir(self) -> str:
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="nvenc-url-")
        return self.folder

    def _path(self, url: str, role: str) -> str:
        sub = os.path.join(self._dir(), f"{role}{len(self.names)}")
        os.mkdir(sub)
        local = os.path.join(sub, _local_name(url))
        self.names[local] = redact(url)
        return local

    def local(self, url: str) -> str:
        """A local copy of the input object ``url`` (copied in ``CHUNK``-sized reads)."""
        fs, path = _filesystem(url)
        local = self._path(url, "in")

        def fetch() -> None:
            with fs.open(path, "rb", block_size=CHUNK) as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)

        try:
            if with_retries(lambda: fs.isdir(path)):
                raise InputMissingError(f"{redact(url)}: names a folder, not an object")
            with_retries(fetch)
        except Exception as exc:
            raise _input_error(url, exc) from None
        return local

    def output(self, url: str, overwrite: bool) -> str:
        """The temporary file to encode into for the output object ``url``."""
        check_output_url(url, overwrite)
        local = self._path(url, "out")
        self.outputs.append((local, url))
        return local

    def publish(self) -> None:
        """Upload each finished output (s3fs sends a large file in parts; the object
        appears when the last part is in)."""
        for local, url in self.outputs:
            fs, path = _filesystem(url)
            try:
                with_retries(lambda fs=fs, local=local, path=path: fs.put_file(local, path))
            except Exception as exc:
                _remove_partial(fs, path)
                raise _output_error(url, exc) from None

    def rename(self, exc: NvencError) -> NvencError:
        """``exc`` with its message quoting the URL where it quotes a temporary file."""
        text = str(exc)
        changed = text
        for local, shown in self.names.items():
            changed = changed.replace(local, shown)
        if changed != text and exc.args:
            exc.args = (changed, *exc.args[1:])
        return exc

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


@contextmanager
def written_at(dest: str, overwrite: bool) -> Iterator[str]:
    """The local file to write for ``dest``, a URL: a ``file://`` URL's own path, or a
    temporary file that is uploaded when the block ends without an error (and removed
    however it ends)."""
    if not remote(dest):
        yield file_path(dest)
        return
    staging = Staging()
    try:
        local = staging.output(dest, overwrite)
        try:
            yield local
        except NvencError as exc:
            raise staging.rename(exc) from None
        staging.publish()
    finally:
        staging.close()


def _remove_partial(fs: Any, path: str) -> None:
    """A store that shows a partial object after a failed upload (none of the object
    stores do; a ``file://`` target could): remove it."""
    try:
        if getattr(fs, "protocol", None) in ("file", ("file", "local")) and fs.exists(path):
            fs.rm(path)
    except Exception:  # best effort: the upload error is what is reported
        pass
