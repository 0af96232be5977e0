"""ffmpeg habits, did-you-mean, and the small ones: a repeated -o, testsrc -q, the NVENC
fallback reason in the summary, and libx265's crashing sizes refused at plan time."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import decode, run_cli


@pytest.fixture()
def small(tmp_path: Path, pattern: np.ndarray) -> Path:
    path = tmp_path / "f.npy"
    np.save(path, pattern[:3])
    return path


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["-crf", "20"], "nvenc options use two dashes: did you mean --crf 20?"),
        (["-crf"], "did you mean --crf N?"),
        (["-preset", "slow"], "did you mean --preset slow?"),
        (["-pix_fmt", "yuv444p"], "did you mean --pixel-format yuv444p?"),
        (["-c:v", "libx265"], "did you mean --codec libx265?"),
        (["-vcodec", "libx264"], "did you mean --codec libx264?"),
        (["-vf", "scale=640:-2"], "did you mean --resize 640x-2?"),
        (["-vf", "scale=w=320:h=240"], "did you mean --resize 320x240?"),
        (["-vf", "hflip"], "--resize WxH (nvenc has no other filters)"),
        (["-framerate", "24"], "nvenc has no -framerate: did you mean -r 24?"),
        (["-b:v", "5M"], "did you mean -x b=5M?"),
        (["-movflags", "+faststart"], "did you mean -x movflags=+faststart?"),
        (["-vframes", "10"], "did you mean --frames 10?"),
        (["-i", "in.mp4"], "nvenc takes the input without -i: did you mean nvenc encode in.mp4 -o OUTPUT?"),
        (["-hide_banner"], "nvenc has no -hide_banner"),
    ],
)
def test_ffmpeg_spellings_get_one_line(tmp_path: Path, small: Path, args: list[str], hint: str) -> None:
    out = tmp_path / "out.mp4"
    done = run_cli("encode", small, "-o", out, *args)
    assert done.returncode == 2
    stderr = done.stderr.decode()
    assert stderr.startswith("nvenc: error: ") and stderr.count("\n") == 1 and hint in stderr
    assert not out.exists()


def test_nvenc_options_and_values_are_not_habits(tmp_path: Path, small: Path) -> None:
    """-r and -an are nvenc's own; a value that looks like an option is still a value."""
    out = tmp_path / "out.mp4"
    done = run_cli("encode", small, "-o", out, "-r", "24", "-an", "-x", "-crf=30", "-y")
    assert done.returncode == 0, done.stderr
    decoded, facts = decode(out)
    assert len(decoded) == 3 and facts["rate"] == 24
    floats = tmp_path / "f.npy"
    np.save(floats, np.zeros((2, 16, 16, 3), np.float32) - 1)
    ranged = run_cli("encode", floats, "-o", tmp_path / "r.mp4", "--value-range", "-1,1")
    assert ranged.returncode == 0, ranged.stderr
    sample = run_cli("testsrc", tmp_path / "s.npy", "-s", "32x24", "--frames", "2")
    assert sample.returncode == 0, sample.stderr  # testsrc's own -s


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["-c", "libx246"], "unknown codec 'libx246' (did you mean libx264?)"),
        (["--pixel-format", "yuv420"], "unknown --pixel-format 'yuv420' (did you mean yuv420p?)"),
        (["--preset", "slwo"], "unknown --preset 'slwo' for libx264 (did you mean slow?)"),
    ],
)
def test_did_you_mean_for_names(tmp_path: Path, small: Path, args: list[str], hint: str) -> None:
    done = run_cli("encode", small, "-o", tmp_path / "out.mp4", *args)
    assert done.returncode in (2, 69)
    assert hint in done.stderr.decode() and done.stderr.decode().count("\n") == 1


def test_did_you_mean_in_the_api(tmp_path: Path, pattern: np.ndarray) -> None:
    from nvenc_cli import VideoEncoder

    with pytest.raises(ValueError, match=r"did you mean yuv420p\?"):
        VideoEncoder(pattern[:2], frame_rate=30).to_file(tmp_path / "x.mp4", pixel_format="yuv420")


def test_repeated_output_is_an_error(tmp_path: Path, small: Path) -> None:
    done = run_cli("encode", small, "-o", tmp_path / "a.mp4", "--output", tmp_path / "b.mp4")
    assert done.returncode == 2
    assert "-o given 2 times" in done.stderr.decode()
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()


def test_testsrc_quiet(tmp_path: Path) -> None:
    done = run_cli("testsrc", tmp_path / "q.npy", "-s", "32x24", "--frames", "3", "-q")
    assert done.returncode == 0 and done.stderr == b"" and done.stdout == b""
    assert np.load(tmp_path / "q.npy").shape == (3, 24, 32, 3)


def test_fallback_reason_only_where_nvenc_could_run(tmp_path: Path, small: Path) -> None:
    if shutil.which("nvidia-smi") or Path("/proc/driver/nvidia/version").exists():
        pytest.skip("this machine has an NVIDIA driver")
    out = tmp_path / "out.mp4"
    plain = run_cli("encode", small, "-o", out, "--json")
    assert plain.returncode == 0, plain.stderr
    assert "NVENC not used" not in plain.stderr.decode()
    assert json.loads(plain.stdout)["fallback_reason"]  # scripts still get it
    verbose = run_cli("encode", small, "-o", out, "-y", "-v")
    assert "NVENC not used: no NVIDIA driver" in verbose.stderr.decode()
    # A driver library that loads but finds no GPU, as libcuda does on such a machine
    # (cuInit returns CUDA_ERROR_NO_DEVICE, 100): now NVENC could have run, so say why not.
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the stand-in driver library")
    (tmp_path / "fake.c").write_text("int cuInit(unsigned int flags) { return 100; }\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "libcuda.so.1"), str(tmp_path / "fake.c")],
        check=True,
    )
    driver = run_cli("encode", small, "-o", out, "-y", env={"LD_LIBRARY_PATH": str(tmp_path)})
    assert driver.returncode == 0, driver.stderr
    assert "NVENC not used: " in driver.stderr.decode()


@pytest.mark.parametrize("pixel_format", ["yuv420p", "yuv420p10le", "gray", "gray10le"])
def test_libx265_crashing_sizes_are_refused_at_plan_time(tmp_path: Path, pixel_format: str) -> None:
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.random.default_rng(1).integers(0, 255, (4, 32, 34, 3), dtype=np.uint8))
    out = tmp_path / "out.mkv"
    done = run_cli("encode", narrow, "-o", out, "-c", "libx265", "--pixel-format", pixel_format)
    assert done.returncode == 2  # the codec's limit, like its other refused settings
    assert "too narrow for libx265" in done.stderr.decode() and "--resize 64x-2" in done.stderr.decode()
    assert not out.exists()
    wide = run_cli(
        "encode", narrow, "-o", out, "-c", "libx265", "--pixel-format", pixel_format, "--resize", "64x-2"
    )
    assert wide.returncode == 0, wide.stderr
    decoded, facts = decode(out, fmt="rgb24")
    assert len(decoded) == 4 and (facts["width"], facts["height"]) == (64, 60)
