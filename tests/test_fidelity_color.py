"""Colour: pixels converted with the matrix and range the file's tags name, on every path.

Peers convert with BT.601 and tag nothing, or relabel without converting. Here each test
encodes losslessly (libx264 qp 0 or ffv1) so the decoded planes are exactly what the
converter produced, then checks them against the formulas and checks ffprobe's tags.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from fidelity_refs import FFPROBE_TAGS, decode_frames, ffprobe_json, plane, ycbcr

# Saturated primaries, the extremes and a few in-between colours: each frame one colour.
SOLID_COLOURS = np.array(
    [
        (0, 0, 0),
        (255, 255, 255),
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (200, 40, 90),
        (16, 128, 240),
        (128, 128, 128),
    ],
    dtype=np.uint8,
)


def solid_frames(width: int = 64, height: int = 48) -> np.ndarray:
    """One frame per colour in SOLID_COLOURS, (N, H, W, 3) uint8."""
    frames = np.empty((len(SOLID_COLOURS), height, width, 3), dtype=np.uint8)
    frames[:] = SOLID_COLOURS[:, None, None, :]
    return frames


def encode_lossless(tmp_path: Path, frames: np.ndarray, *args: str, name: str = "out.mkv") -> Path:
    """Encode through the real CLI with libx264 at qp 0 (lossless in the YUV domain)."""
    src = tmp_path / f"{name}.npy"
    np.save(src, frames)
    out = tmp_path / name
    proc = run_cli("encode", src, "-o", out, "-c", "libx264", "-x", "qp=0", "--preset", "ultrafast", *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return out


def tags(path: Path) -> tuple[str, str, str, str]:
    """(color_space, color_transfer, color_primaries, color_range) as ffprobe reports."""
    entry = "stream=color_space,color_transfer,color_primaries,color_range"
    stream = ffprobe_json(path, "-show_entries", entry)["streams"][0]
    keys = ("color_space", "color_transfer", "color_primaries", "color_range")
    return tuple(stream.get(key, "unknown") for key in keys)  # type: ignore[return-value]


@pytest.mark.parametrize("matrix", ["bt601", "bt709", "bt2020"])
@pytest.mark.parametrize("color_range", ["tv", "pc"])
def test_solid_colours_match_the_formulas_and_the_tags(tmp_path: Path, matrix: str, color_range: str) -> None:
    """Every plane of every solid frame is within ±1 of the recommendation's code value."""
    out = encode_lossless(tmp_path, solid_frames(), "--color-matrix", matrix, "--color-range", color_range)
    expected = np.rint(ycbcr(SOLID_COLOURS, matrix, color_range))
    frames = decode_frames(out)
    assert len(frames) == len(SOLID_COLOURS)
    for frame, want in zip(frames, expected, strict=True):
        assert frame.format.name in ("yuv420p", "yuvj420p")  # the decoder marks pc as yuvj
        got = [plane(frame, i) for i in range(3)]
        for samples, value in zip(got, want, strict=True):
            assert int(samples.min()) >= value - 1 and int(samples.max()) <= value + 1, (
                f"{matrix}/{color_range}: planes {[int(p[0, 0]) for p in got]}, formula {want}"
            )
    space, transfer, primaries = FFPROBE_TAGS[matrix]
    assert tags(out) == (space, transfer, primaries, color_range)


def test_formula_values_differ_between_matrices() -> None:
    """The references themselves tell the matrices apart (so the test above can fail)."""
    colour = np.array([[200, 40, 90]], dtype=np.uint8)
    lumas = {m: float(ycbcr(colour, m, "tv")[0, 0]) for m in FFPROBE_TAGS}
    assert lumas["bt601"] - lumas["bt709"] > 10
    assert lumas["bt2020"] - lumas["bt709"] > 5


@pytest.mark.parametrize(("size", "matrix"), [((64, 48), "bt601"), ((1280, 720), "bt709")], ids=["sd", "hd"])
def test_default_matrix_follows_the_height_rule(tmp_path: Path, size: tuple[int, int], matrix: str) -> None:
    """BT.601 below 720 lines, BT.709 from 720 up, limited range: converted and tagged."""
    width, height = size
    frames = solid_frames(width, height)[5:6]
    out = encode_lossless(tmp_path, frames)
    space, transfer, primaries = FFPROBE_TAGS[matrix]
    assert tags(out) == (space, transfer, primaries, "tv")
    want = np.rint(ycbcr(SOLID_COLOURS[5:6], matrix, "tv"))[0]
    frame = decode_frames(out)[0]
    got = np.array([int(plane(frame, i)[0, 0]) for i in range(3)])
    assert np.abs(got - want).max() <= 1, (got, want)


def test_chroma_is_the_mean_of_each_2x2_block(tmp_path: Path) -> None:
    """4:2:0 chroma of a block of four colours equals the mean of their chroma (±1).

    A point-sampling converter (CV-CUDA's cvtcolor, ffmpeg's fast path) would return the
    top-left pixel's chroma instead, off by tens of codes on this pattern.
    """
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, size=(1, 48, 64, 3), dtype=np.uint8)
    out = encode_lossless(tmp_path, frame, "--color-matrix", "bt709")
    exact = ycbcr(frame[0], "bt709", "tv")
    blocks = exact.reshape(24, 2, 32, 2, 3).mean(axis=(1, 3))
    decoded = decode_frames(out)[0]
    assert np.abs(plane(decoded, 0).astype(np.float64) - exact[..., 0]).max() <= 1.0
    for index in (1, 2):
        error = np.abs(plane(decoded, index).astype(np.float64) - blocks[..., index])
        assert error.max() <= 1.0, f"plane {index}: worst chroma error {error.max():.2f}"


def test_rgb_formats_are_tagged_as_rgb(tmp_path: Path) -> None:
    """An RGB pixel format carries untouched samples and says so: GBR matrix, full range."""
    src = tmp_path / "frames.npy"
    np.save(src, solid_frames()[:2])
    out = tmp_path / "rgb.mkv"
    proc = run_cli("encode", src, "-o", out, "-c", "ffv1")
    assert proc.returncode == 0, proc.stderr.decode()
    assert tags(out) == ("gbr", "iec61966-2-1", "bt709", "pc")


def test_gray_formats_are_full_range_bt601(tmp_path: Path) -> None:
    """swscale writes gray as full-range BT.601 luma, so that is what the tags say; a tag
    that would describe other maths (tv range) is refused instead of written."""
    frames = solid_frames()
    out = encode_lossless(tmp_path, frames, "--pixel-format", "gray")
    want = np.rint(ycbcr(SOLID_COLOURS, "bt601", "pc"))[:, 0]
    got = [int(plane(f, 0)[0, 0]) for f in decode_frames(out)]
    assert np.abs(np.array(got) - want).max() <= 1, (got, want)
    assert tags(out)[3] == "pc"
    src = tmp_path / "gray.npy"
    np.save(src, frames[:1])
    args = ("-c", "libx264", "--pixel-format", "gray", "--color-range", "tv")
    proc = run_cli("encode", src, "-o", tmp_path / "tv.mkv", *args)
    assert proc.returncode == 2
    assert b"full range" in proc.stderr


@pytest.mark.timeout(60)
def test_bt2020_conversion_is_the_matrix_alone(tmp_path: Path) -> None:
    """BT.2020 output is the BT.2020 matrix applied to the given R'G'B', with no hidden
    gamut or transfer conversion. swscale's colour-managed path (taken when it is told
    BT.2020 primaries) shifts these values and costs seconds a frame, hence the timeout."""
    frames = solid_frames(320, 240)
    out = encode_lossless(tmp_path, frames, "--color-matrix", "bt2020", "--color-range", "tv")
    want = np.rint(ycbcr(SOLID_COLOURS, "bt2020", "tv"))
    for frame, value in zip(decode_frames(out), want, strict=True):
        got = np.array([int(plane(frame, i)[0, 0]) for i in range(3)])
        assert np.abs(got - value).max() <= 1, (got, value)


@pytest.mark.parametrize(
    ("dtype", "pixel_format", "matrix", "color_range"),
    [
        (np.uint8, "yuv420p", "bt709", "tv"),
        (np.uint8, "yuv444p", "bt2020", "pc"),
        (np.uint16, "yuv420p10le", "bt709", "tv"),
        (np.uint16, "yuv444p10le", "bt601", "pc"),
    ],
)
def test_cpu_path_matches_the_gpu_paths_reference(
    tmp_path: Path, dtype: type, pixel_format: str, matrix: str, color_range: str
) -> None:
    """The CPU path's planes (swscale for 8-bit input, exact numpy for 16-bit) equal the
    torch maths the NVENC path runs (nvenc_cli.color) within ±1 code value."""
    import torch

    from nvenc_cli import color

    rng = np.random.default_rng(21)
    top = int(np.iinfo(dtype).max)
    frames = rng.integers(0, top, size=(1, 32, 64, 3), dtype=dtype, endpoint=True)
    src = tmp_path / "frames.npy"
    np.save(src, frames)
    out = tmp_path / "cpu.mkv"
    args = ("--pixel-format", pixel_format, "--color-matrix", matrix, "--color-range", color_range)
    proc = run_cli("encode", src, "-o", out, "-c", "ffv1", *args)
    assert proc.returncode == 0, proc.stderr.decode()
    decoded = decode_frames(out)[0]
    spec = color.YuvSpec(
        matrix=matrix,
        full_range=color_range == "pc",
        out_bits=10 if "10" in pixel_format else 8,
        chroma="444" if "444" in pixel_format else "420",
    )
    tensor = torch.from_numpy(frames.astype(np.int32))
    reference = color.rgb_to_planes(tensor, spec, in_bits=16 if dtype is np.uint16 else 8)
    for index, planes in enumerate(reference):
        cpu = plane(decoded, index).astype(np.int64)
        gpu = planes[0].numpy().astype(np.int64)
        assert np.abs(cpu - gpu).max() <= 1, f"plane {index}"
