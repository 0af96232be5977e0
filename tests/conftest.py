"""Shared test helpers: run the real CLI, decode outputs independently, compare pixels."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from nvenc_cli import testsrc

ROOT = Path(__file__).resolve().parent.parent

# Byte-identity checks run x264 on one thread: with frame threads it has, in a few
# full-suite runs on a fresh machine, encoded identical frames to streams 16 bytes apart,
# and these tests are about nvenc's own determinism, not the encoder's scheduling.
SERIAL = {"threads": 1}


def run_cli(
    *args: str,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    stdin: Any = subprocess.DEVNULL,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run ``python -m nvenc_cli ARGS`` as a user would, capturing stdout as bytes."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "nvenc_cli", *map(str, args)],
        cwd=cwd,
        env=full_env,
        stdin=stdin,
        capture_output=True,
        timeout=timeout,
    )


def default_signals() -> None:
    """The child starts with default SIGINT/SIGTERM handling, as in a terminal, even when
    the test runner itself was started with them ignored (e.g. as a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_cli(
    cwd: Path, *args: str, new_session: bool = False, output: int = subprocess.PIPE
) -> subprocess.Popen:
    """``python -m nvenc_cli ARGS`` in ``cwd``, started as a terminal starts a program (no
    stdin, default signal handling), for tests that signal it mid-run; ``new_session``
    gives it its own process group, as a terminal's foreground job, for signals sent to the
    whole group; ``output`` is where stdout and stderr go (captured by default)."""
    return subprocess.Popen(
        [sys.executable, "-m", "nvenc_cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        preexec_fn=default_signals,
        start_new_session=new_session,
    )


@contextlib.contextmanager
def reaped(child: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Whatever the test asserts, the child is gone afterwards: killed if still running
    (with its whole process group when it leads one, so no worker outlives the test)."""
    try:
        yield child
    finally:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(child.pid) == child.pid:
                    os.killpg(child.pid, signal.SIGKILL)
                else:
                    child.kill()
            child.wait()


def handles_signal(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (its SigCgt mask in /proc): for
    SIGTERM, only nvenc installs one (Python itself has one for SIGINT from the start)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def decode(path: str | Path, fmt: str = "rgb24") -> tuple[np.ndarray, dict[str, Any]]:
    """Decode every frame with PyAV; returns (N,H,W,C) frames and stream facts."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, pts = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format=fmt))
            pts.append(frame.pts)
        ctx = stream.codec_context
        facts = {
            "codec": ctx.name,
            "pix_fmt": ctx.pix_fmt,
            "width": ctx.width,
            "height": ctx.height,
            "time_base": stream.time_base,
            "rate": stream.average_rate,
            "pts": pts,
            "format": container.format.name,
        }
    return np.stack(frames), facts


def ffprobe(path: str | Path) -> dict[str, Any]:
    """ffprobe's view of the first video stream (skips when ffprobe is absent)."""
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    data = json.loads(out.stdout)
    return {"stream": data["streams"][0], "format": data["format"]}


class PipeSink(io.RawIOBase):
    """A write-only sink that cannot seek, as a pipe or socket is; keeps what it got."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("not seekable")

    def seekable(self) -> bool:
        return False


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak * peak / mse))


def fraction(value: Any) -> Fraction:
    return Fraction(value)


@pytest.fixture(scope="session")
def pattern() -> np.ndarray:
    """12 frames of testsrc2 at 320x240: natural content, small enough to be fast."""
    return testsrc.batch(320, 240, 12)


@pytest.fixture(scope="session")
def pattern_hd() -> np.ndarray:
    """6 frames of testsrc2 at 1280x720 (BT.709 territory)."""
    return testsrc.batch(1280, 720, 6)


@pytest.fixture()
def npy(tmp_path: Path, pattern: np.ndarray) -> Path:
    path = tmp_path / "frames.npy"
    np.save(path, pattern)
    return path


@pytest.fixture()
def broken_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CPU encode call fails the way a real encoder fault surfaces from PyAV.

    A double at the hardware seam (the opened codec context), so the pipeline, the
    muxer's cleanup and the error mapping above it all run for real.
    """
    from nvenc_cli.backends import cpu

    class Broken:
        def encode(self, frame: Any) -> list[Any]:
            raise av.error.ExternalError(5, "encoder on fire")

    opened = cpu.CpuSession.__init__

    def open_broken(self: Any, plan: Any, muxer: Any) -> None:
        opened(self, plan, muxer)
        self.ctx = Broken()

    monkeypatch.setattr(cpu.CpuSession, "__init__", open_broken)


# Linux carries a process's peak RSS across exec, so a child spawned straight from the
# test runner (hundreds of MB by now) would report the runner's peak, not its own. A small
# launcher forks the CLI from a fresh interpreter and reports that grandchild's own peak.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "nvenc_cli", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""
