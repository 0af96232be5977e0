"""Hostile inputs, second round: names that look like patterns, signals of every kind,
a progress file that collides or cannot be written, outputs behind links and
descriptors, names that try to forge lines on stderr.

Every case runs the real CLI (or the API) and checks the exit code, the one stderr line,
that nothing is left behind and, where an encode succeeds, what the output decodes to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, decode, handles_signal, psnr, reaped, run_cli, start_cli

PREVIOUS = b"the previous, complete video"


def one_line_error(proc: subprocess.CompletedProcess, code: int, fragment: str = "") -> str:
    """The documented code, exactly one ``nvenc: error:`` line, no traceback, no stdout."""
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == code, stderr
    assert stderr.startswith("nvenc: error:") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and "\x1b" not in stderr, stderr
    assert fragment in stderr, stderr
    return stderr


def parts(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".part"))


def solid(value: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """A frame of one grey level, so decoded frames say which file they came from."""
    return np.full((size[1], size[0], 3), value, np.uint8)


def frames_of(path: Path) -> np.ndarray:
    frames, _ = decode(path)
    return frames


# --- 1. a real file is that file, never a pattern ----------------------------------------


def test_a_file_named_like_a_glob_is_that_file(tmp_path: Path) -> None:
    Image.fromarray(solid(200)).save(tmp_path / "shot[1].png")
    Image.fromarray(solid(40)).save(tmp_path / "shot1.png")  # what the glob would match
    proc = run_cli("encode", "shot[1].png", "-o", "out.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    frames = frames_of(tmp_path / "out.mp4")
    assert len(frames) == 1
    assert psnr(frames[0], solid(200)) > 40


def test_a_file_named_like_a_printf_pattern_is_that_file(tmp_path: Path) -> None:
    Image.fromarray(solid(180)).save(tmp_path / "100%done.png")
    proc = run_cli("encode", "100%done.png", "-o", "out.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    frames = frames_of(tmp_path / "out.mp4")
    assert len(frames) == 1 and psnr(frames[0], solid(180)) > 40


def test_a_folder_named_like_a_pattern_is_a_folder(tmp_path: Path) -> None:
    """Only the file name of a printf pattern is a pattern; a glob's existing folder is a
    path, even when its name has glob characters."""
    for folder in ("take%d", "set[1]"):
        (tmp_path / folder).mkdir()
        for i, value in enumerate((20, 120, 220)):
            Image.fromarray(solid(value)).save(tmp_path / folder / f"f_{i:03d}.png")
    (tmp_path / "set1").mkdir()
    Image.fromarray(solid(90)).save(tmp_path / "set1" / "f_000.png")  # the glob's decoy
    for spec in ("take%d/f_%03d.png", "set[1]/*.png"):
        out = tmp_path / f"{spec.split('/')[0]}.mp4"
        proc = run_cli("encode", spec, "-o", out, cwd=tmp_path)
        assert proc.returncode == 0, (spec, proc.stderr.decode())
        frames = frames_of(out)
        assert len(frames) == 3
        assert [round(float(f.mean())) for f in frames] == pytest.approx([20, 120, 220], abs=3)


def test_a_doubled_percent_is_a_literal_percent(tmp_path: Path) -> None:
    for i in range(3):
        Image.fromarray(solid(50 + 60 * i)).save(tmp_path / f"100%_{i:03d}.png")
    proc = run_cli("encode", "100%%_%03d.png", "-o", "out.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(frames_of(tmp_path / "out.mp4")) == 3


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("frame_%0999999999d.png", "absurd"),
        ("frame_%099d.png", "absurd"),
        ("frame_%d_%d.png", "two"),
    ],
)
def test_a_bad_printf_pattern_is_a_usage_error(tmp_path: Path, spec: str, fragment: str) -> None:
    proc = run_cli("encode", spec, "-o", "out.mp4", cwd=tmp_path)
    one_line_error(proc, 2, fragment)
    assert not (tmp_path / "out.mp4").exists()


# --- 4. every run-ending signal gets the same cleanup ------------------------------------


def noise(frames: int, height: int = 240, width: int = 320) -> np.ndarray:
    return np.random.default_rng(frames).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def _start_encode(tmp_path: Path, *extra: str, stdout: int | None = subprocess.PIPE) -> subprocess.Popen:
    np.save(tmp_path / "in.npy", noise(200))
    return subprocess.Popen(
        [sys.executable, "-m", "nvenc_cli", "encode", "in.npy", "--preset", "slow", *extra],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )


def _wait_for_encoding(child: subprocess.Popen, tmp_path: Path) -> None:
    deadline = time.monotonic() + 60
    while not any((tmp_path / name).stat().st_size for name in parts(tmp_path)):
        assert child.poll() is None, child.communicate()[1].decode()
        assert time.monotonic() < deadline, "the encode never started"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("sig", "fragment"),
    [
        (signal.SIGHUP, "SIGHUP"),
        (signal.SIGXCPU, "SIGXCPU"),
        (signal.SIGXFSZ, "SIGXFSZ"),  # sent by hand: no file size limit is set
    ],
    ids=["SIGHUP", "SIGXCPU", "SIGXFSZ"],
)
def test_other_run_ending_signals_clean_up_like_sigterm(tmp_path: Path, sig: int, fragment: str) -> None:
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    child = _start_encode(tmp_path, "-o", "out.mp4", "-y")
    with reaped(child):
        _wait_for_encoding(child, tmp_path)
        child.send_signal(sig)
        stdout, stderr = child.communicate(timeout=60)
    text = stderr.decode(errors="replace")
    assert child.returncode == 128 + sig, text
    assert text.startswith("nvenc: error: ") and text.count("\n") == 1 and fragment in text, text
    assert stdout == b""
    assert (tmp_path / "out.mp4").read_bytes() == PREVIOUS
    assert parts(tmp_path) == []


def test_signals_during_cleanup_leave_no_part_and_no_traceback(tmp_path: Path) -> None:
    """A burst of signals (an impatient user, a scheduler escalating): the first one is
    acted on, the ones that land during its cleanup do not interrupt that cleanup."""
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    child = _start_encode(tmp_path, "-o", "out.mp4", "-y")
    with reaped(child):
        _wait_for_encoding(child, tmp_path)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) * 30:
            if child.poll() is not None:
                break
            child.send_signal(sig)
            time.sleep(0.001)
        _, stderr = child.communicate(timeout=60)
    text = stderr.decode(errors="replace")
    # Signals pending together are handled lowest number first: any of the three may be
    # the one acted on, and the line and the code must agree on which.
    lines = {129: "terminated by SIGHUP", 130: "interrupted", 143: "terminated"}
    assert child.returncode in lines, text
    assert text.startswith(f"nvenc: error: {lines[child.returncode]}") and text.count("\n") == 1, text
    assert (tmp_path / "out.mp4").read_bytes() == PREVIOUS
    assert parts(tmp_path) == []


def test_sigterm_ends_a_run_whose_output_pipe_stalled(tmp_path: Path) -> None:
    """The reader of -o - stopped reading: the encode blocks in a write; SIGTERM still
    ends it at once (cleanup never waits on the pipe again)."""
    read_end, write_end = os.pipe()
    try:
        child = _start_encode(tmp_path, "-o", "-", "-f", "mkv", "--preset", "ultrafast", stdout=write_end)
        os.close(write_end)
        write_end = -1
        time.sleep(3)  # noise fills the 64 KiB pipe buffer in well under a second
        assert child.poll() is None, child.communicate()[1].decode()
        child.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        try:
            _, stderr = child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            pytest.fail("still alive 10 s after SIGTERM with a stalled pipe")
        assert time.monotonic() - sent < 10
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    assert child.returncode == 143, stderr.decode()
    assert b"Traceback" not in stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_a_signal_during_start_up_exits_with_its_code(tmp_path: Path, sig: int, delay: float) -> None:
    """Start-up (imports, option parsing, probing) is not covered by an encode's handler
    but still ends with the signal's own code and at most one line, never a traceback.
    The signal goes once nvenc's handlers are in (SIGTERM caught), ``delay`` after: before
    that only the interpreter's own start-up runs, which no program's code can cover."""
    np.save(tmp_path / "in.npy", noise(100, 48, 64))
    child = start_cli(tmp_path, "encode", "in.npy", "-o", "out.mp4", "--preset", "slow")
    deadline = time.monotonic() + 60
    while (
        not handles_signal(child.pid, signal.SIGTERM) and child.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.001)
    time.sleep(delay)
    child.send_signal(sig)
    stdout, stderr = child.communicate(timeout=60)
    text = stderr.decode(errors="replace")
    if child.returncode == 0:  # it finished before the signal came: nothing to check
        return
    assert child.returncode == 128 + sig, text
    assert "Traceback" not in text and text.count("\n") <= 1, text
    assert stdout == b""
    assert not (tmp_path / "out.mp4").exists()
    assert parts(tmp_path) == []


# A signal arriving inside code that guards untrusted parsing or probing with a broad
# ``except Exception``: the patched seam sends the real signal to the process, so the
# real handler raises where a library call would be running.
_SIGNAL_INSIDE = {
    "nvenc probe": ("nvenc_cli.backends.nvenc", "_load_library", "in.npy"),
    ".npz reader": ("zipfile", "ZipFile", "in.npz"),
    ".pt fast reader": ("zipfile", "ZipFile", "in.pt"),
    "torch.load": ("torch", "load", "legacy.pt"),
}


@pytest.mark.parametrize("where", sorted(_SIGNAL_INSIDE))
def test_a_signal_inside_a_guarded_call_is_never_swallowed(tmp_path: Path, where: str) -> None:
    import torch

    module, name, source = _SIGNAL_INSIDE[where]
    frames = noise(4, 48, 64)
    np.save(tmp_path / "in.npy", frames)
    np.savez(tmp_path / "in.npz", frames=frames)
    torch.save(torch.from_numpy(frames), tmp_path / "in.pt")
    torch.save(torch.from_numpy(frames), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    driver = (
        "import importlib, os, signal, sys, time\n"
        f"target = importlib.import_module({module!r})\n"
        "def arrive(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(5)\n"
        "    raise RuntimeError('the signal should have interrupted this call')\n"
        f"setattr(target, {name!r}, arrive)\n"
        "sys.argv[0] = 'nvenc'\n"
        "from nvenc_cli.__main__ import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver, "encode", source, "-o", "out.mp4", "-y", "--device", "auto"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 143, proc.stderr.decode()
    assert proc.stderr == b"nvenc: error: terminated\n"
    assert (tmp_path / "out.mp4").read_bytes() == PREVIOUS
    assert parts(tmp_path) == []


# --- 5. --progress FILE ------------------------------------------------------------------


def test_progress_to_a_full_device_is_a_write_error(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    np.save(tmp_path / "in.npy", noise(6, 48, 64))
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    proc = run_cli("encode", "in.npy", "-o", "out.mp4", "-y", "--progress", "/dev/full", cwd=tmp_path)
    one_line_error(proc, 74, "progress")
    assert (tmp_path / "out.mp4").read_bytes() == PREVIOUS
    assert parts(tmp_path) == []


def test_progress_may_not_name_the_input_or_the_output(tmp_path: Path) -> None:
    frames = noise(3, 48, 64)
    np.save(tmp_path / "in.npy", frames)
    (tmp_path / "out.mp4").write_bytes(PREVIOUS)
    os.symlink("in.npy", tmp_path / "alias.npy")
    os.mkdir(tmp_path / "seq")
    for i in range(3):
        Image.fromarray(frames[i]).save(tmp_path / "seq" / f"f_{i}.png")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    cases = [
        ("in.npy", "in.npy", "out.mp4", "an input"),
        ("in.npy", "alias.npy", "out.mp4", "an input"),
        ("in.npy", "out.mp4", "out.mp4", "the output"),
        ("in.npy", "./new.mp4", "new.mp4", "the output"),
        ("seq", "seq/f_1.png", "out.mp4", "an input"),
        ("seq/f_%d.png", "seq/f_2.png", "out.mp4", "an input"),
    ]
    for source, progress, output, fragment in cases:
        proc = run_cli("encode", source, "-o", output, "-y", "--progress", progress, cwd=tmp_path)
        one_line_error(proc, 2, fragment)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "new.mp4").exists()


def test_progress_may_not_be_the_standard_output_that_carries_data(tmp_path: Path) -> None:
    np.save(tmp_path / "in.npy", noise(3, 48, 64))
    with open(tmp_path / "video.mkv", "wb") as sink:
        proc = subprocess.run(
            [sys.executable, "-m", "nvenc_cli", "encode", "in.npy", "-o", "-", "-f", "mkv",
             "--progress", "/dev/stdout"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=sink, stderr=subprocess.PIPE, timeout=120,
        )  # fmt: skip
    one_line_error(proc, 2, "standard output")
    proc = run_cli("encode", "in.npy", "-o", "out.mp4", "--json", "--progress", "/dev/stdout", cwd=tmp_path)
    one_line_error(proc, 2, "standard output")


# --- 6. outputs behind links and descriptors; long names ---------------------------------


def test_dev_stdout_redirected_to_a_file_is_written_through(tmp_path: Path) -> None:
    frames = noise(5, 48, 64)
    np.save(tmp_path / "in.npy", frames)
    target = tmp_path / "redirected.mp4"
    with open(target, "wb") as sink:
        proc = subprocess.run(
            [sys.executable, "-m", "nvenc_cli", "encode", "in.npy", "-o", "/dev/stdout", "-f", "mp4"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=sink, stderr=subprocess.PIPE, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert os.path.islink("/dev/stdout") or os.path.exists("/dev/stdout")
    assert len(frames_of(target)) == 5
    assert parts(tmp_path) == []


def test_an_appended_descriptor_keeps_what_was_before(tmp_path: Path) -> None:
    """``>> log``: written through the descriptor as it stands, after what is there."""
    np.save(tmp_path / "in.npy", noise(5, 48, 64))
    target = tmp_path / "appended.mkv"
    target.write_bytes(b"HEAD")
    with open(target, "ab") as sink:
        proc = subprocess.run(
            [sys.executable, "-m", "nvenc_cli", "encode", "in.npy", "-o", "/proc/self/fd/1", "-f", "mp4"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=sink, stderr=subprocess.PIPE, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    data = target.read_bytes()
    assert data.startswith(b"HEAD")
    (tmp_path / "tail.mp4").write_bytes(data[4:])
    assert len(frames_of(tmp_path / "tail.mp4")) == 5


def test_a_link_to_a_file_is_kept_and_its_target_replaced(tmp_path: Path) -> None:
    np.save(tmp_path / "in.npy", noise(4, 48, 64))
    (tmp_path / "real.mp4").write_bytes(PREVIOUS)
    os.symlink("real.mp4", tmp_path / "link.mp4")
    proc = run_cli("encode", "in.npy", "-o", "link.mp4", cwd=tmp_path)
    one_line_error(proc, 73, "already exists")
    assert (tmp_path / "real.mp4").read_bytes() == PREVIOUS
    proc = run_cli("encode", "in.npy", "-o", "link.mp4", "-y", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "link.mp4").is_symlink()
    assert len(frames_of(tmp_path / "real.mp4")) == 4
    assert parts(tmp_path) == []


def test_a_link_to_a_device_is_written_through(tmp_path: Path) -> None:
    np.save(tmp_path / "in.npy", noise(4, 48, 64))
    os.symlink(os.devnull, tmp_path / "null.mp4")
    proc = run_cli("encode", "in.npy", "-o", "null.mp4", "-y", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "null.mp4").is_symlink() and os.readlink(tmp_path / "null.mp4") == os.devnull
    assert sorted(os.listdir(tmp_path)) == ["in.npy", "null.mp4"]


@pytest.mark.parametrize("stem", ["x" * 251, "é" * 125 + "x"], ids=["ascii", "utf-8"])
def test_output_names_up_to_the_name_limit_work(tmp_path: Path, stem: str) -> None:
    name = stem + ".mp4"
    assert len(os.fsencode(name)) == 255
    np.save(tmp_path / "in.npy", noise(3, 48, 64))
    proc = run_cli("encode", "in.npy", "-o", name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(frames_of(tmp_path / name)) == 3
    assert parts(tmp_path) == []
    proc = run_cli("encode", "in.npy", "-o", "y" + name, cwd=tmp_path)
    one_line_error(proc, 73, "longer than this file system allows")


# --- 7. what reaches stderr ---------------------------------------------------------------


def test_a_name_cannot_forge_lines_or_escape_codes(tmp_path: Path) -> None:
    forged = "x\nnvenc: wrote fake.mp4: 1 frames\x1b[2K\x1b[31m"
    np.save(tmp_path / "in.npy", noise(3, 48, 64))
    proc = run_cli("encode", forged + ".npy", "-o", "out.mp4", cwd=tmp_path)
    stderr = one_line_error(proc, 66)
    assert "\\n" in stderr and "\\x1b" in stderr
    out = forged + ".mp4"
    proc = run_cli("encode", "in.npy", "-o", out, cwd=tmp_path)
    assert proc.returncode == 0
    text = proc.stderr.decode()
    assert text.count("\n") == 1 and "\x1b" not in text
    assert text.startswith("nvenc: wrote x\\nnvenc: wrote fake")
    assert len(frames_of(tmp_path / out)) == 3


def test_undecodable_name_bytes_are_shown_escaped(tmp_path: Path) -> None:
    np.save(tmp_path / "in.npy", noise(3, 48, 64))
    name = os.fsdecode(b"bad\xff\x1b.npy")
    proc = run_cli("encode", name, "-o", "out.mp4", cwd=tmp_path)
    stderr = one_line_error(proc, 66)
    assert "bad\\xff\\x1b.npy" in stderr


# --- 2 and 3. images: every sample kept or the change said; headers bound memory ---------


def _write_png16(path: Path, frame: np.ndarray) -> None:
    """A 16-bit RGB(A) PNG written by FFmpeg's encoder (Pillow cannot write one)."""
    import av

    fmt = "rgb48" if frame.shape[2] == 3 else "rgba64"
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], fmt + "be"
        image = av.VideoFrame.from_ndarray(frame, format=fmt + "le").reformat(format=fmt + "be")
        for packet in [*stream.encode(image), *stream.encode(None)]:
            container.mux(packet)


def _ramp16(channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 65536, (48, 64, channels), dtype=np.uint16)


def test_16_bit_colour_pngs_keep_all_16_bits(tmp_path: Path) -> None:
    """Pillow reads a 16-bit RGB PNG at 8 bits; the lossless archive recipe must get
    back every one of the 16 bits that were written."""
    frames = [_ramp16() for _ in range(2)]
    frames[1] = frames[1][::-1].copy()
    for i, frame in enumerate(frames):
        _write_png16(tmp_path / f"deep_{i}.png", frame)
    proc = run_cli("encode", "deep_%d.png", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    decoded, facts = decode(tmp_path / "out.mkv", fmt="rgb48le")
    assert facts["pix_fmt"] == "gbrp16le"
    assert np.array_equal(decoded, np.stack(frames))


def test_16_bit_rgba_png_keeps_its_alpha_at_16_bits(tmp_path: Path) -> None:
    frame = _ramp16(4)
    _write_png16(tmp_path / "deep.png", frame)
    proc = run_cli("encode", "deep.png", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    decoded, _ = decode(tmp_path / "out.mkv", fmt="rgba64le")
    assert np.array_equal(decoded[0], frame)


def test_float_tiff_in_0_1_is_read_not_blackened(tmp_path: Path) -> None:
    ramp = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    Image.fromarray(ramp, mode="F").save(tmp_path / "f.tif")
    proc = run_cli("encode", "f.tif", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    decoded, _ = decode(tmp_path / "out.mkv", fmt="gray16le")
    assert np.array_equal(decoded[0], np.rint(ramp.astype(np.float64) * 65535).astype(np.uint16))


@pytest.mark.parametrize(
    ("values", "mode", "fragment"),
    [
        (np.full((48, 64), 2.5, np.float32), "F", "[0, 1]"),
        (np.full((48, 64), np.nan, np.float32), "F", "NaN"),
        (np.full((48, 64), 70000, np.int32), "I", "beyond 16 bits"),
        (np.full((48, 64), -3, np.int32), "I", "beyond 16 bits"),
    ],
    ids=["float-above-1", "float-nan", "int32-above-16-bit", "int32-negative"],
)
def test_wide_tiffs_that_cannot_be_kept_are_refused(
    tmp_path: Path, values: np.ndarray, mode: str, fragment: str
) -> None:
    Image.fromarray(values, mode=mode).save(tmp_path / "w.tif")
    one_line_error(run_cli("encode", "w.tif", "-o", "out.mp4", cwd=tmp_path), 65, fragment)
    assert not (tmp_path / "out.mp4").exists()


def test_int32_tiff_within_16_bits_is_read_exactly(tmp_path: Path) -> None:
    values = np.random.default_rng(3).integers(0, 65536, (48, 64)).astype(np.int32)
    Image.fromarray(values, mode="I").save(tmp_path / "i.tif")
    proc = run_cli("encode", "i.tif", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    decoded, _ = decode(tmp_path / "out.mkv", fmt="gray16le")
    assert np.array_equal(decoded[0], values.astype(np.uint16))


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff"])
def test_multi_frame_images_are_refused_not_cut_to_one_frame(tmp_path: Path, fmt: str) -> None:
    images = [Image.fromarray(solid(v)) for v in (10, 120, 230)]
    name = f"anim.{fmt}"
    images[0].save(tmp_path / name, save_all=True, append_images=images[1:])
    assert Image.open(tmp_path / name).n_frames == 3
    one_line_error(run_cli("encode", name, "-o", "out.mp4", cwd=tmp_path), 65, "3 frames")
    assert not (tmp_path / "out.mp4").exists()


def test_a_png_declaring_144_megapixels_is_refused_from_its_header(tmp_path: Path) -> None:
    """A small file whose header declares 12000x12000: refused before decoding, in one line
    (no Pillow warning), and without the memory the pixels would take."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    width = height = 12000
    row = b"\x00" + b"\x00" * width
    body = zlib.compress(row * 200, 9)  # a few rows only: the file is small, its header is not
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )
    (tmp_path / "bomb.png").write_bytes(png)
    assert len(png) < 200_000
    proc, peak_mb = _peak_mb("encode", "bomb.png", "-o", "out.mp4", cwd=tmp_path)
    stderr = proc.stderr.decode()
    assert proc.returncode == 65, stderr
    assert stderr.startswith("nvenc: error: bomb.png: refused") and stderr.count("\n") == 1, stderr
    assert "12000x12000" in stderr and "Warning" not in stderr
    assert peak_mb < 250, f"peak RSS {peak_mb:.0f} MB for a refused header"


def test_a_later_image_of_another_size_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    Image.fromarray(solid(10)).save(tmp_path / "s_0.png")
    Image.fromarray(solid(10, (640, 480))).save(tmp_path / "s_1.png")
    one_line_error(run_cli("encode", "s_%d.png", "-o", "out.mp4", cwd=tmp_path), 65, "640x480")
    assert parts(tmp_path) == [] and not (tmp_path / "out.mp4").exists()


def test_a_cmyk_image_is_converted_with_a_notice(tmp_path: Path) -> None:
    import json

    Image.fromarray(solid(100)).convert("CMYK").save(tmp_path / "c.jpg")
    proc = run_cli("encode", "c.jpg", "-o", "out.mp4", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert any("CMYK" in n for n in report["notices"]), report["notices"]
    assert "nvenc: note: c.jpg: CMYK image converted to RGB" in proc.stderr.decode()
    assert len(frames_of(tmp_path / "out.mp4")) == 1


def test_an_exif_rotation_is_not_applied_silently(tmp_path: Path) -> None:
    image = Image.fromarray(solid(100))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif)
    proc = run_cli("encode", "r.jpg", "-o", "out.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "EXIF orientation 6 not applied" in proc.stderr.decode()
    frames = frames_of(tmp_path / "out.mp4")
    assert frames.shape[1:3] == (48, 64)  # as stored: the note says so


# --- 8. every .npy version, every listed pixel format, rates, concat lists ----------------


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)], ids=["1.0", "2.0", "3.0"])
def test_every_npy_format_version_numpy_writes_is_read(tmp_path: Path, version: tuple[int, int]) -> None:
    frames = noise(3, 48, 64)
    with open(tmp_path / "v.npy", "wb") as out:
        np.lib.format.write_array(out, frames, version=version)
    assert (tmp_path / "v.npy").read_bytes()[6:8] == bytes(version)
    proc = run_cli("encode", "v.npy", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert np.array_equal(frames_of(tmp_path / "out.mkv"), frames)


def test_an_npz_member_in_npy_format_3_is_read(tmp_path: Path) -> None:
    import zipfile

    frames = noise(3, 48, 64)
    with zipfile.ZipFile(tmp_path / "v.npz", "w") as archive, archive.open("frames.npy", "w") as member:
        np.lib.format.write_array(member, frames, version=(3, 0))
    proc = run_cli("encode", "v.npz", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert np.array_equal(frames_of(tmp_path / "out.mkv"), frames)


def test_an_npy_version_numpy_never_wrote_is_bad_data(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", noise(2, 48, 64))
    data = bytearray((tmp_path / "v.npy").read_bytes())
    data[6:8] = bytes((9, 0))
    (tmp_path / "v.npy").write_bytes(bytes(data))
    one_line_error(run_cli("encode", "v.npy", "-o", "out.mp4", cwd=tmp_path), 65, "version 9.0")


def test_every_pixel_format_info_lists_encodes_or_is_refused_up_front(tmp_path: Path) -> None:
    """What ``nvenc info`` offers for each CPU encoder either works or is a usage error
    before the output is opened: never an internal error (pal8 was one)."""
    import json

    from nvenc_cli.encoding import encode_path
    from nvenc_cli.errors import UsageError
    from nvenc_cli.options import EncodeOptions

    info = json.loads(run_cli("info", "--json").stdout)
    np.save(tmp_path / "in.npy", noise(2, 16, 32))
    extension = {"matroska": "mkv", "mpegts": "ts"}
    tried = refused = 0
    for name, facts in sorted(info["encoders"].items()):
        containers = [
            c for c, cf in info["containers"].items() if any(name in n for n in cf["encoders"].values())
        ]
        if facts.get("backend") != "cpu" or not containers:
            continue
        out = tmp_path / f"out.{extension.get(containers[0], containers[0])}"
        for fmt in facts.get("pixel_formats") or []:
            options = EncodeOptions(codec=name, pixel_format=fmt, pad=True, overwrite=True, device="cpu")
            tried += 1
            try:
                encode_path(str(tmp_path / "in.npy"), str(out), options)
            except UsageError:
                refused += 1
                assert parts(tmp_path) == [], (name, fmt)
    assert tried > 50 and refused < tried


def test_pal8_is_made_by_the_palette_filters(tmp_path: Path) -> None:
    """pal8 once failed inside the scaler (exit 70); it is now built by FFmpeg's palette
    filters (backends/palette.py) for every codec that takes it."""
    import av

    np.save(tmp_path / "in.npy", noise(2, 48, 64))
    for out, args in (("out.gif", []), ("out.mov", ["-c", "png"])):
        proc = run_cli("encode", "in.npy", "-o", out, *args, "--pixel-format", "pal8", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        with av.open(str(tmp_path / out)) as container:
            assert len(list(container.decode(video=0))) == 2
    assert parts(tmp_path) == []


@pytest.mark.parametrize("rate", ["1e999999999", "1e-999999999", "10/1e99999999", "3e40"])
def test_a_huge_exponent_in_the_rate_is_refused_at_once(tmp_path: Path, rate: str) -> None:
    np.save(tmp_path / "in.npy", noise(2, 48, 64))
    started = time.monotonic()
    proc = run_cli("encode", "in.npy", "-o", "out.mp4", "-r", rate, cwd=tmp_path, timeout=30)
    one_line_error(proc, 2, "rate")
    assert time.monotonic() - started < 20


def test_a_huge_exponent_in_the_api_frame_rate_is_refused_at_once() -> None:
    from nvenc_cli import VideoEncoder

    started = time.monotonic()
    with pytest.raises(ValueError, match="rate"):
        VideoEncoder(noise(2, 48, 64), frame_rate="1e999999999")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("entry", ["/etc/hostname", "../outside.mp4", "missing.mp4"])
def test_a_concat_list_the_demuxer_refuses_is_bad_data(tmp_path: Path, entry: str) -> None:
    (tmp_path / "list.ffconcat").write_text(f"ffconcat version 1.0\nfile {entry}\n")
    one_line_error(run_cli("encode", "list.ffconcat", "-o", "out.mp4", cwd=tmp_path), 65, "list.ffconcat")
    assert not (tmp_path / "out.mp4").exists()


# --- x264-params entries the library rejects ----------------------------------------------


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        ("x264-params=keyint=abc", "keyint=abc (bad value)"),
        ("x264-params=bogus=1", "bogus=1 (unknown setting)"),
        ("x264-params=keyint=10:ref", "x264-params"),
    ],
)
def test_a_malformed_x264_params_entry_is_a_usage_error(tmp_path: Path, option: str, fragment: str) -> None:
    np.save(tmp_path / "in.npy", noise(2, 48, 64))
    one_line_error(run_cli("encode", "in.npy", "-o", "out.mp4", "-x", option, cwd=tmp_path), 2, fragment)
    assert sorted(os.listdir(tmp_path)) == ["in.npy"]


def test_a_malformed_x265_params_entry_is_a_usage_error(tmp_path: Path) -> None:
    np.save(tmp_path / "in.npy", noise(2, 48, 64))
    proc = run_cli(
        "encode", "in.npy", "-o", "o.mp4", "-c", "libx265", "-x", "x265-params=ref=abc", cwd=tmp_path
    )
    one_line_error(proc, 2, "ref=abc (bad value)")


def test_valid_x264_params_still_take_effect(tmp_path: Path) -> None:
    import av

    np.save(tmp_path / "in.npy", noise(12, 48, 64))
    proc = run_cli("encode", "in.npy", "-o", "out.mp4", "-x", "x264-params=keyint=4:min-keyint=4:scenecut=0",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    with av.open(str(tmp_path / "out.mp4")) as container:
        keys = [i for i, frame in enumerate(container.decode(video=0)) if frame.key_frame]
    assert keys == [0, 4, 8]


# --- 9. testsrc ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--pattern", "nosuch"], 2, "nosuch"),
        (["--pattern", "testsrc2,split"], 2, "pattern"),
        (["-s", "99999x99999"], 2, "99999x99999"),
        (["-s", "0x10"], 2, "size"),
    ],
)
def test_testsrc_validates_before_it_touches_the_file(
    tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    for name in ("keep.npy", "keep.npz", "keep.pt"):
        (tmp_path / name).write_bytes(PREVIOUS)
        one_line_error(run_cli("testsrc", name, *args, cwd=tmp_path), code, fragment)
        assert (tmp_path / name).read_bytes() == PREVIOUS
    assert parts(tmp_path) == []


def test_testsrc_refuses_an_output_it_cannot_write(tmp_path: Path) -> None:
    one_line_error(run_cli("testsrc", "frames.mp4", cwd=tmp_path), 2, ".npy, .npz, .pt")
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "frame_00000.png").write_bytes(PREVIOUS)
    proc = run_cli("testsrc", "shots", "-s", "64x48", "--frames", "2", cwd=tmp_path)
    one_line_error(proc, 73, "not an empty")
    assert (tmp_path / "shots" / "frame_00000.png").read_bytes() == PREVIOUS
    assert sorted(os.listdir(tmp_path)) == ["shots"]


@pytest.mark.parametrize("name", ["s.npy", "s.npz", "s.pt", "folder"])
def test_testsrc_writes_every_kind_completely(tmp_path: Path, name: str) -> None:
    from nvenc_cli import testsrc

    (tmp_path / name).write_bytes(PREVIOUS) if name != "folder" else None
    proc = run_cli("testsrc", name, "-s", "64x48", "--frames", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    proc = run_cli("encode", name, "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert np.array_equal(frames_of(tmp_path / "out.mkv"), testsrc.batch(64, 48, 3))
    assert parts(tmp_path) == [] and not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_testsrc_interrupted_leaves_the_previous_file(tmp_path: Path) -> None:
    (tmp_path / "big.npy").write_bytes(PREVIOUS)
    child = subprocess.Popen(
        [sys.executable, "-m", "nvenc_cli", "testsrc", "big.npy", "-s", "1920x1080", "--frames", "3000"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any((tmp_path / n).stat().st_size for n in os.listdir(tmp_path) if n.endswith(".part")):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()[1].decode()
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 143, stderr.decode()
    assert stderr == b"nvenc: error: terminated\n"
    assert (tmp_path / "big.npy").read_bytes() == PREVIOUS
    assert sorted(os.listdir(tmp_path)) == ["big.npy"]


# --- 10. the API: tensors with lazy negation or conjugation bits -------------------------


def test_tensors_with_lazy_negation_encode_like_their_values(tmp_path: Path) -> None:
    import torch

    import nvenc_cli
    from nvenc_cli import VideoEncoder

    values = torch.from_numpy(noise(3, 48, 64)).permute(0, 3, 1, 2).float().div(255)
    negated = torch.complex(torch.zeros_like(values), -values).conj().imag  # a negative view
    assert negated.is_neg() and torch.equal(negated.resolve_neg(), values)
    VideoEncoder(negated, frame_rate=30).to_file(str(tmp_path / "neg.mkv"), codec="ffv1")
    with nvenc_cli.open_writer(str(tmp_path / "writer.mkv"), frame_rate=30, codec="ffv1") as writer:
        writer.write(negated)
    expected = np.rint(values.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    assert np.array_equal(frames_of(tmp_path / "neg.mkv"), expected)
    assert np.array_equal(frames_of(tmp_path / "writer.mkv"), expected)


# --- 2. transcodes keep rotation and pixel shape; re-timing and damage are said -----------


def _video(path: Path, frames: int = 6, rotation: int = 0, times_ms: list[int] | None = None) -> None:
    """A small H.264 file written by PyAV: optionally rotated (display matrix) or with the
    given presentation times (a variable frame rate)."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, t in enumerate(times_ms or [100 * k for k in range(frames)]):
            frame = av.VideoFrame.from_ndarray(solid(20 + 25 * i), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _rotation(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return round(next(container.decode(video=0)).rotation or 0)


@pytest.mark.parametrize("ext", ["mp4", "mov", "mkv"])
def test_a_transcode_keeps_the_display_rotation(tmp_path: Path, ext: str) -> None:
    _video(tmp_path / "in.mp4", rotation=90)
    assert _rotation(tmp_path / "in.mp4") == 90
    proc = run_cli("encode", "in.mp4", "-o", f"out.{ext}", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert _rotation(tmp_path / f"out.{ext}") == 90
    assert len(frames_of(tmp_path / f"out.{ext}")) == 6


def test_a_rotation_the_container_cannot_hold_is_a_notice(tmp_path: Path) -> None:
    import json

    _video(tmp_path / "in.mp4", rotation=270)
    proc = run_cli("encode", "in.mp4", "-o", "out.ts", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    notices = json.loads(proc.stdout)["notices"]
    assert any("rotation (270°) is not carried" in n for n in notices), notices
    assert "nvenc: note: the input's display rotation (270°)" in proc.stderr.decode()


def test_a_transcode_keeps_the_sample_aspect_ratio(tmp_path: Path) -> None:
    from fractions import Fraction

    import av

    _video(tmp_path / "plain.mp4")
    with av.open(str(tmp_path / "plain.mp4")) as source, av.open(str(tmp_path / "in.mkv"), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for i, frame in enumerate(source.decode(video=0)):
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    for ext in ("mp4", "mkv"):
        proc = run_cli("encode", "in.mkv", "-o", f"out.{ext}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
        with av.open(str(tmp_path / f"out.{ext}")) as result:
            assert result.streams.video[0].sample_aspect_ratio == Fraction(2, 1)


def test_a_variable_frame_rate_keeps_its_times_and_re_timing_is_a_notice(tmp_path: Path) -> None:
    import json

    times_ms = [0, 100, 200, 300, 2300, 2400, 2500, 2600]
    _video(tmp_path / "vfr.mkv", times_ms=times_ms)
    proc = run_cli("encode", "vfr.mkv", "-o", "out.mp4", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    notices = json.loads(proc.stdout)["notices"]
    assert any("variable frame rate" in n and "-r N re-times" in n for n in notices), notices
    _, facts = decode(tmp_path / "out.mp4")
    assert [round(float(p * facts["time_base"]) * 1000) for p in facts["pts"]] == times_ms
    proc = run_cli("encode", "vfr.mkv", "-o", "cfr.mp4", "-r", "10", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    notices = json.loads(proc.stdout)["notices"]
    assert any("re-timed to a constant 10 fps" in n and "moved by 1.900 s" in n for n in notices), notices
    _, facts = decode(tmp_path / "cfr.mp4")
    assert len(facts["pts"]) == 8  # every frame kept, at the constant rate asked for


def test_a_constant_rate_transcode_has_no_timing_notice(tmp_path: Path) -> None:
    import json

    _video(tmp_path / "cfr.mkv")
    proc = run_cli("encode", "cfr.mkv", "-o", "out.mp4", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["notices"] == []


def test_frames_missing_against_the_header_are_counted_in_a_notice(tmp_path: Path) -> None:
    import json

    import av

    with av.open(str(tmp_path / "full.mp4"), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=30, options={"g": "10"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for frame in noise(60):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])  # index first, data cut
    proc = run_cli("encode", "cut.mp4", "-o", "out.mp4", "--json", cwd=tmp_path)
    assert proc.returncode in (0, 65), proc.stderr.decode()
    if proc.returncode == 0:
        report = json.loads(proc.stdout)
        assert report["frames"] < 60
        assert any("header promises 60 frames" in n for n in report["notices"]), report["notices"]
        assert len(frames_of(tmp_path / "out.mp4")) == report["frames"]
    else:
        one_line_error(proc, 65, "cut.mp4")


# --- 3. small .pt files that would inflate into large memory ------------------------------


def _deflate(src: Path, dst: Path) -> None:
    """The same archive with every member deflated (as a zip tool re-packing it would)."""
    import zipfile

    with zipfile.ZipFile(src) as source, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            with source.open(info) as member, out.open(info.filename, "w", force_zip64=True) as copy:
                while chunk := member.read(1 << 22):
                    copy.write(chunk)


def _peak_mb(*args: str, cwd: Path, setup: str = "") -> tuple[subprocess.CompletedProcess, float]:
    """Run the CLI in a child that reports its own peak RSS (VmHWM) when it ends."""
    script = (
        "import sys\n" + setup + "sys.argv[0] = 'nvenc'\n"
        "from nvenc_cli.cli import run\n"
        "try:\n"
        "    run()\n"
        "finally:\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "    print(hwm, file=sys.__stdout__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, timeout=300,
    )  # fmt: skip
    return proc, int(proc.stdout.split()[-1]) / 1024


def test_a_deflated_huge_tensor_streams_only_the_frames_asked_for(tmp_path: Path) -> None:
    import torch

    frames = torch.zeros(600, 480, 640, 3, dtype=torch.uint8)  # 553 MB of frames, deflated to ~0.5 MB
    frames[:, :, :, 0] = (torch.arange(600) % 200).to(torch.uint8).view(600, 1, 1)
    torch.save(frames, tmp_path / "plain.pt")
    del frames
    _deflate(tmp_path / "plain.pt", tmp_path / "deflated.pt")
    (tmp_path / "plain.pt").unlink()
    assert (tmp_path / "deflated.pt").stat().st_size < 5 << 20
    proc, peak = _peak_mb("encode", "deflated.pt", "-o", "out.mkv", "-c", "ffv1", "--frames", "5",
                          "--start", "400", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert peak < 300, f"peak RSS {peak:.0f} MB for 5 frames of a deflated 553 MB tensor"
    decoded = frames_of(tmp_path / "out.mkv")
    assert [int(f[0, 0, 0]) for f in decoded] == [(400 + k) % 200 for k in range(5)]


def test_a_deflated_description_that_inflates_huge_is_refused(tmp_path: Path) -> None:
    import torch

    torch.save({"frames": torch.zeros(2, 48, 64, 3, dtype=torch.uint8), "junk": bytes(80 << 20)},
               tmp_path / "plain.pt")  # fmt: skip
    _deflate(tmp_path / "plain.pt", tmp_path / "bomb.pt")
    (tmp_path / "plain.pt").unlink()
    assert (tmp_path / "bomb.pt").stat().st_size < 1 << 20
    proc, peak = _peak_mb("encode", "bomb.pt", "--key", "frames", "-o", "out.mp4", cwd=tmp_path)
    one_line_error(proc_without_rss(proc), 65, "data.pkl inflates past")
    assert peak < 250, f"peak RSS {peak:.0f} MB"
    assert not (tmp_path / "out.mp4").exists()


def proc_without_rss(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """The child's outcome with the RSS figure its driver printed taken off stdout."""
    return subprocess.CompletedProcess(proc.args, proc.returncode, b"", proc.stderr)


@pytest.mark.parametrize("kind", ["legacy", "deflated-strided"])
def test_pt_files_torch_must_load_whole_are_bounded(tmp_path: Path, kind: str) -> None:
    """Files only torch can read, and only whole: refused from their header past the bound
    (lowered here to 1 MiB so the test stays small), read below it."""
    import torch

    frames = torch.from_numpy(noise(8, 48, 64))  # 74 kB of frames
    if kind == "legacy":
        torch.save(frames, tmp_path / "f.pt", _use_new_zipfile_serialization=False)
        big = torch.from_numpy(noise(200, 48, 64))
        torch.save(big, tmp_path / "big.pt", _use_new_zipfile_serialization=False)
    else:
        torch.save(frames.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3), tmp_path / "s.pt")
        _deflate(tmp_path / "s.pt", tmp_path / "f.pt")
        big = torch.from_numpy(noise(200, 48, 64)).permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3)
        torch.save(big, tmp_path / "b.pt")
        _deflate(tmp_path / "b.pt", tmp_path / "big.pt")
    setup = "import nvenc_cli.sources.ptfile as p\np.INFLATE_LIMIT = 1 << 20\n"
    proc, _ = _peak_mb("encode", "f.pt", "-o", "small.mkv", "-c", "ffv1", cwd=tmp_path, setup=setup)
    assert proc.returncode == 0, proc.stderr.decode()
    assert np.array_equal(frames_of(tmp_path / "small.mkv"), frames.numpy())
    proc, _ = _peak_mb("encode", "big.pt", "-o", "big.mp4", cwd=tmp_path, setup=setup)
    one_line_error(proc_without_rss(proc), 65, "refused")
    assert not (tmp_path / "big.mp4").exists()


def test_torch_boilerplate_never_replaces_the_reason(tmp_path: Path) -> None:
    """torch's weights-only refusal opens with a paragraph of advice (with ESC codes); the
    line shown is the one naming what was refused."""
    import collections

    import torch

    value = {"frames": torch.zeros(2, 48, 64, 3, dtype=torch.uint8), "x": collections.deque([1])}
    torch.save(value, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    proc = run_cli("encode", "legacy.pt", "--key", "frames", "-o", "out.mp4", cwd=tmp_path)
    stderr = one_line_error(proc, 65, "GLOBAL collections.deque")
    assert "Weights only load failed" not in stderr and "\\x1b" not in stderr
    assert not (tmp_path / "out.mp4").exists()
