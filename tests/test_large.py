"""Large inputs: memory stays flat whatever the file size, and ``--start``/``--frames``
read only the frames they pick.

The 20 GB input is a sparse file (a header, then a hole the size of 3216 1080p frames), so
it costs no disk and no time to make; only the frames the test fills in are real data.
Peak memory is the CLI process's own ``ru_maxrss`` from ``wait4``, not an estimate.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nvenc_cli.sources import open_source
from tests.conftest import LAUNCHER, ROOT, decode

HD = (1080, 1920, 3)
SMALL = (360, 640, 3)
MB = 1 << 20


def sparse_npy(path: Path, frames: int, frame: tuple[int, int, int]) -> np.memmap:
    """Write a .npy header for ``frames`` uint8 frames and extend the file to its full
    size as a hole; returns a writable map of the frames to fill some in."""
    with path.open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "|u1", "fortran_order": False, "shape": (frames, *frame)}
        )
        offset = fh.tell()
    os.truncate(path, offset + frames * int(np.prod(frame)))
    if path.stat().st_blocks * 512 > 16 * MB:
        path.unlink()
        pytest.skip("this filesystem does not keep sparse files sparse")
    return np.memmap(path, dtype=np.uint8, mode="r+", offset=offset, shape=(frames, *frame))


def pattern(index: int, frame: tuple[int, int, int]) -> np.ndarray:
    """A frame that says which one it is (gradients shifted by the index), cheap to make."""
    y, x = np.mgrid[0 : frame[0], 0 : frame[1]]
    return np.stack(
        [(x + 3 * index) % 256, (y + 7 * index) % 256, (x // 8 + y // 8 + 50 * index) % 256], axis=-1
    ).astype(np.uint8)


def encode_measured(*args: str, cwd: Path) -> tuple[int, str, float]:
    """Run ``nvenc encode ARGS``; returns (exit code, stderr, the CLI's peak RSS in MB)."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, "encode", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    peak_kib = int(proc.stdout.decode().split()[-1])  # the CLI itself prints nothing on stdout
    return proc.returncode, proc.stderr.decode(errors="replace"), peak_kib / 1024


@pytest.fixture(scope="module")
def big_npy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 20 GB (sparse) .npy of 1080p frames; frames 0-2 and 100-104 hold real pictures."""
    path = tmp_path_factory.mktemp("big") / "big.npy"
    count = -(-20 * 10**9 // int(np.prod(HD)))
    frames = sparse_npy(path, count, HD)
    for index in (0, 1, 2, 100, 101, 102, 103, 104):
        frames[index] = pattern(index, HD)
    frames.flush()
    del frames
    yield path
    path.unlink()


@pytest.mark.parametrize(("start", "count"), [(None, 3), (100, 5)], ids=["first-frames", "start-100"])
def test_20gb_npy_encodes_the_picked_frames_with_flat_memory(
    big_npy: Path, start: int | None, count: int
) -> None:
    assert big_npy.stat().st_size >= 20 * 10**9
    out = big_npy.parent / f"out-{start}.mkv"
    picks = ["--frames", str(count)] + (["--start", str(start)] if start is not None else [])
    code, stderr, peak = encode_measured(
        big_npy.name, *picks, "-c", "ffv1", "-o", out.name, cwd=big_npy.parent
    )
    assert code == 0, stderr
    assert peak < 600, f"peak RSS {peak:.0f} MB for a 20 GB input"
    frames, _ = decode(out)
    first = start or 0
    expected = np.stack([pattern(i, HD) for i in range(first, first + count)])
    assert frames.shape == expected.shape
    assert np.array_equal(frames, expected), "ffv1 is lossless: the picked frames, exactly"


def test_start_past_the_end_of_a_20gb_npy_fails_at_once(big_npy: Path) -> None:
    code, stderr, _ = encode_measured(big_npy.name, "--start", "5000", "-o", "never.mp4", cwd=big_npy.parent)
    assert code == 65 and "past the last frame (the input has 3216)" in stderr
    assert not (big_npy.parent / "never.mp4").exists()


def test_npy_peak_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    """Encode a 300 MB and a 600 MB .npy in full: the peak must be the same, and far
    below either file (the reader holds a few windows, never the input)."""
    peaks = []
    for name, frames in (("small.npy", 434), ("large.npy", 868)):
        data = sparse_npy(tmp_path / name, frames, SMALL)
        for index in range(0, frames, 50):
            data[index] = pattern(index, SMALL)
        data.flush()
        del data
        code, stderr, peak = encode_measured(name, "--preset", "ultrafast", "-o", f"{name}.mp4", cwd=tmp_path)
        assert code == 0, stderr
        peaks.append(peak)
        (tmp_path / name).unlink()
    small, large = peaks
    assert large < small + 48, f"peak RSS grew from {small:.0f} MB to {large:.0f} MB"
    assert large < 300, f"peak RSS {large:.0f} MB for a 600 MB input"


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bfloat16], ids=["uint8", "bfloat16"])
def test_pt_peak_memory_does_not_grow_with_file_size(tmp_path: Path, dtype: torch.dtype) -> None:
    """The .pt path maps the file and releases each window's pages after copying them:
    a 300 MB file must not take more memory than a 150 MB one (bfloat16, the usual model
    output, is widened to float32 on the way)."""
    peaks = []
    per_frame = int(np.prod(SMALL)) * dtype.itemsize
    for name, size in (("small.pt", 150 * MB), ("large.pt", 300 * MB)):
        tensor = torch.zeros(size // per_frame, *SMALL, dtype=dtype)
        tensor[::50] = torch.from_numpy(pattern(1, SMALL)).to(dtype) / (255 if dtype.is_floating_point else 1)
        torch.save(tensor, tmp_path / name)
        del tensor
        code, stderr, peak = encode_measured(name, "--preset", "ultrafast", "-o", f"{name}.mp4", cwd=tmp_path)
        assert code == 0, stderr
        peaks.append(peak)
        (tmp_path / name).unlink()
    small, large = peaks
    assert large < small + 48, f"peak RSS grew from {small:.0f} MB to {large:.0f} MB"
    assert large < 450, f"peak RSS {large:.0f} MB for a 300 MB input"


def write_inputs(folder: Path, frames: np.ndarray) -> list[str]:
    """The same frames as every input kind that has frame indices."""
    np.save(folder / "f.npy", frames)
    np.savez(folder / "stored.npz", frames=frames)
    np.savez_compressed(folder / "deflated.npz", frames=frames)
    torch.save({"frames": torch.from_numpy(frames)}, folder / "f.pt")
    torch.save(torch.from_numpy(frames).to(torch.float32) / 255, folder / "float.pt")
    (folder / "png").mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / "png" / f"f_{index:03d}.png")
    return ["f.npy", "stored.npz", "deflated.npz", "f.pt", "float.pt", "png", "png/f_%03d.png"]


@pytest.mark.parametrize(("start", "count"), [(0, None), (0, 1), (7, 3), (10, 5), (11, None), (3, 100)])
def test_start_and_frames_pick_the_same_frames_from_every_input(
    tmp_path: Path, start: int, count: int | None
) -> None:
    frames = np.stack([pattern(i, (6, 8, 3)) for i in range(12)])
    for spec in write_inputs(tmp_path, frames):
        with open_source(str(tmp_path / spec), start=start, frames=count) as source:
            got = np.concatenate(list(source.batches(4)))
        want = frames[start : start + count if count is not None else None]
        assert np.array_equal(got, want), spec
