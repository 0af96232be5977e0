"""Failures part-way through an encode: the encoder breaks, the disk fills, the file size
limit is hit, the reader of a pipe goes away, a frame deep in the input is corrupt, or the
user presses Ctrl-C / a scheduler sends SIGTERM.

Each must end with the documented exit code and one ``nvenc: error:`` line, leave the file
that was at the output path before (if any) byte for byte as it was, and leave no
``.NAME.XXXX.part`` temporary file behind.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from nvenc_cli.backends import cpu
from nvenc_cli.encoding import encode_path
from nvenc_cli.errors import EncoderError, InputDataError, OutputError
from nvenc_cli.options import EncodeOptions
from tests.conftest import ROOT, reaped, run_cli, start_cli

PREVIOUS = b"the previous, complete video"


def noise(frames: int, height: int = 240, width: int = 320) -> np.ndarray:
    """Frames that compress badly: the encoder works hard and writes a lot."""
    return np.random.default_rng(frames).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def temp_files(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".part"))


def assert_clean_failure(proc: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    """Documented code, exactly one error line naming the cause, nothing on stdout."""
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == code, stderr
    assert stderr.startswith("nvenc: error:") and stderr.count("\n") == 1, stderr
    assert fragment in stderr
    assert "Traceback" not in stderr


# --- the encoder fails (a fault at the library/hardware seam) ---------------------------


class FailingContext:
    """Stands in for the PyAV codec context: encodes ``budget`` frames, then raises the
    error FFmpeg raises when an encoder breaks; everything else goes to the real one."""

    def __init__(self, ctx: Any, budget: int | None, seen: Callable[[], None]) -> None:
        self._ctx, self._budget, self._seen = ctx, budget, seen

    def encode(self, frame: Any = None) -> Any:
        if frame is None or self._budget is not None:
            if frame is None or self._budget == 0:
                self._seen()
                raise av.FFmpegError(errno.EIO, "simulated encoder fault")
            self._budget -= 1
        return self._ctx.encode(frame)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def failing_init(budget: int | None, seen: Callable[[], None] = lambda: None) -> Callable[..., None]:
    """A ``CpuSession.__init__`` whose encoder fails after ``budget`` frames (None: at
    the final flush)."""
    original = cpu.CpuSession.__init__

    def init(self: cpu.CpuSession, plan: Any, muxer: Any) -> None:
        original(self, plan, muxer)
        self.ctx = FailingContext(self.ctx, budget, seen)

    return init


def run_with_failing_encoder(budget: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real CLI entry point in a child process whose encoder fails after ``budget``."""
    driver = (
        "import sys\n"
        "from nvenc_cli.backends import cpu\n"
        "from tests.test_failures import failing_init\n"
        f"cpu.CpuSession.__init__ = failing_init({budget})\n"
        "from nvenc_cli.cli import run\n"
        "sys.argv[0] = 'nvenc'\n"
        "run()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", driver, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )


def test_encoder_fault_midway_exits_74_and_keeps_the_previous_file(tmp_path: Path) -> None:
    np.save(tmp_path / "in.npy", noise(40, 48, 64))
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    proc = run_with_failing_encoder(
        20, "encode", "in.npy", "-o", "out.mp4", "-y", "--preset", "ultrafast", cwd=tmp_path
    )
    assert_clean_failure(proc, 74, "libx264 failed: ")
    assert (tmp_path / "out.mp4").read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("budget", [20, None], ids=["at-frame-20", "at-final-flush"])
def test_encoder_fault_through_the_library(
    budget: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Library callers get EncoderError (exit code 74); the temporary file that held the
    frames encoded so far is gone, and no output appears."""
    np.save(tmp_path / "in.npy", noise(40, 48, 64))
    at_failure: list[list[tuple[str, int]]] = []

    def seen() -> None:
        at_failure.append([(n, (tmp_path / n).stat().st_size) for n in temp_files(tmp_path)])

    monkeypatch.setattr(cpu.CpuSession, "__init__", failing_init(budget, seen))
    options = EncodeOptions(preset="ultrafast", batch_size=4)
    with pytest.raises(EncoderError, match="simulated encoder fault") as caught:
        encode_path(str(tmp_path / "in.npy"), str(tmp_path / "out.mp4"), options)
    assert caught.value.exit_code == 74
    assert len(at_failure) == 1 and len(at_failure[0]) == 1, "the encode was under way"
    assert at_failure[0][0][1] > 0, "frames had already been written to the temporary file"
    assert sorted(os.listdir(tmp_path)) == ["in.npy"]


# --- the disk fills up, or the file size limit is reached ------------------------------


def test_file_size_limit_midway_exits_74_and_keeps_the_previous_file(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG): a disk that fills
    up part-way, simulated without needing one."""
    np.save(tmp_path / "in.npy", noise(30))
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    limit = 256 << 10  # the output would be ~3 MB

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "nvenc_cli", "encode", "in.npy", "-o", "out.mp4", "-y"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        preexec_fn=limit_file_size,
        timeout=120,
    )
    assert_clean_failure(proc, 74, "out.mp4: file size limit reached while writing")
    assert (tmp_path / "out.mp4").read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []


def test_full_disk_on_stdout_exits_74(tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    np.save(tmp_path / "in.npy", noise(8, 48, 64))
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "nvenc_cli", "encode", "in.npy", "-o", "-", "-f", "matroska"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert_clean_failure(proc, 74, "disk full while writing")


def test_full_tiny_filesystem_exits_74_and_keeps_the_previous_file(tmp_path: Path) -> None:
    """A 256 KiB tmpfs, mounted in a private mount namespace (so nothing leaks to the
    host), fills up part-way through the encode: a real ENOSPC from a real filesystem."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) to mount a private tmpfs")
    np.save(tmp_path / "in.npy", noise(30))
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        "disk=$1 previous=$2; shift 2\n"
        'mount -t tmpfs -o size=256k nvenc-test "$disk" || exit 99\n'
        'printf "%s" "$previous" > "$disk/out.mp4"\n'
        '"$@"; code=$?\n'
        'ls -A "$disk" >&2; cat "$disk/out.mp4" >&2; echo >&2\n'
        "exit $code\n"
    )
    command = [sys.executable, "-m", "nvenc_cli", "encode", "in.npy", "-o", str(disk / "out.mp4"), "-y"]
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(disk),
         PREVIOUS.decode(), *command],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    if proc.returncode == 99 or b"unshare failed" in proc.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {proc.stderr.decode().strip()}")
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 74, lines
    assert lines[0].startswith("nvenc: error:") and "disk full while writing" in lines[0]
    assert lines[1:] == ["out.mp4", PREVIOUS.decode()], "only the previous file, untouched"
    assert os.listdir(disk) == [], "the tmpfs lived only in the child's mount namespace"


def test_reader_closing_the_pipe_exits_74(tmp_path: Path) -> None:
    np.save(tmp_path / "in.npy", noise(8, 48, 64))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "nvenc_cli", "encode", "in.npy", "-o", "-", "-f", "matroska"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert_clean_failure(proc, 74, "closed the pipe")


# --- the input breaks part-way ----------------------------------------------------------


def test_corrupt_frame_deep_in_a_sequence_keeps_the_previous_file(tmp_path: Path) -> None:
    """The failure comes after frames were encoded and written, not at open time."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for n, frame in enumerate(noise(40, 48, 64)):
        Image.fromarray(frame).save(folder / f"f_{n:03d}.png")
    (folder / "f_035.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    proc = run_cli(
        "encode", "frames", "-o", "out.mp4", "-y", "--preset", "ultrafast", "--batch-size", "2",
        cwd=tmp_path,
    )  # fmt: skip
    assert_clean_failure(proc, 65, "f_035.png: cannot decode this image")
    assert (tmp_path / "out.mp4").read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []


def test_corrupt_frame_through_the_library_names_it(tmp_path: Path) -> None:
    frames = noise(12, 48, 64).astype(np.float32) / 255
    frames[9, 3, 3, 1] = np.inf
    np.save(tmp_path / "in.npy", frames)
    with pytest.raises(InputDataError, match="frame 9 holds NaN or infinite values"):
        encode_path(str(tmp_path / "in.npy"), str(tmp_path / "out.mp4"), EncodeOptions(batch_size=4))
    assert sorted(os.listdir(tmp_path)) == ["in.npy"]


# --- interrupted: Ctrl-C and SIGTERM -----------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "code", "message"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_while_encoding_keeps_the_previous_file(
    sig: signal.Signals, code: int, message: str, tmp_path: Path
) -> None:
    np.save(tmp_path / "in.npy", noise(200))  # seconds of encoding; stopped after ~0.5 s
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    child = start_cli(tmp_path, "encode", "in.npy", "-o", "out.mp4", "-y", "--preset", "slow")
    with reaped(child):
        deadline = time.monotonic() + 60
        while not any((tmp_path / name).stat().st_size for name in temp_files(tmp_path)):
            # until encoded frames reach the temporary file: the encode is well under way
            assert child.poll() is None, child.communicate()[1].decode()
            assert time.monotonic() < deadline, "the encode never started"
            time.sleep(0.02)
        assert child.poll() is None, "the encode ended before it could be interrupted"
        child.send_signal(sig)
        sent = time.monotonic()
        stdout, stderr = child.communicate(timeout=60)
        latency = time.monotonic() - sent
    text = stderr.decode(errors="replace")
    assert child.returncode == code, text
    assert text == f"nvenc: error: {message}\n"
    # Acted on when the encoder's current call returns: well inside the grace period a
    # scheduler gives before SIGKILL (10 s for docker stop, 30 s for Kubernetes).
    assert latency < 10, f"took {latency:.1f} s to stop"
    assert stdout == b""
    assert (tmp_path / "out.mp4").read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []


def test_a_file_appearing_at_the_output_during_the_encode_is_not_replaced(tmp_path: Path) -> None:
    """Without -y the check at start is not enough: another process may create the file
    while nvenc encodes. Publishing links the finished file into place, which fails
    rather than replace it."""
    np.save(tmp_path / "in.npy", noise(8, 48, 64))
    target = tmp_path / "out.mp4"

    def someone_else_writes(done: int, total: int | None) -> None:
        if not target.exists():
            target.write_bytes(PREVIOUS)

    with pytest.raises(OutputError, match="already exists"):
        encode_path(str(tmp_path / "in.npy"), str(target), EncodeOptions(), progress=someone_else_writes)
    assert target.read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []
