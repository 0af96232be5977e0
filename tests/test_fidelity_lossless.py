"""Lossless recipes: what goes in comes out, bit for bit, as docs/fidelity.md promises.

RGB stays RGB (ffv1 bgr0/bgra/gbrp16le, libx264rgb at qp 0, PNG in MOV), so the round
trip is exact; libx264 at qp 0 in 4:4:4 is exact in the YUV domain, which is checked by
comparing its planes with another lossless codec fed by the same converter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from fidelity_refs import decode_frames, plane, ycbcr

from nvenc_cli import testsrc

Sources = dict[str, tuple[Path, np.ndarray]]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """8-bit RGB, 8-bit RGBA and 16-bit RGB frames (natural content plus noise in the low
    bits, so a path that dropped to 8 bits or smoothed anything would show)."""
    folder = tmp_path_factory.mktemp("lossless")
    rng = np.random.default_rng(11)
    rgb = testsrc.batch(64, 48, 4)
    alpha = rng.integers(0, 256, size=(*rgb.shape[:3], 1), dtype=np.uint8)
    deep = rgb.astype(np.uint16) * 257 + rng.integers(0, 257, size=rgb.shape).astype(np.uint16)
    arrays = {"rgb": rgb, "rgba": np.concatenate([rgb, alpha], axis=3), "rgb16": deep}
    out = {}
    for name, array in arrays.items():
        path = folder / f"{name}.npy"
        np.save(path, array)
        out[name] = (path, array)
    return out


def encode(src: Path, out: Path, *args: str) -> str:
    proc = run_cli("encode", src, "-o", out, *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stderr.decode()


def decoded(path: Path, fmt: str) -> np.ndarray:
    return np.stack([f.to_ndarray(format=fmt) for f in decode_frames(path)])


RECIPES = [
    ("rgb", "ffv1", "mkv", (), "bgr0", "rgb24"),
    ("rgba", "ffv1", "mkv", (), "bgra", "rgba"),
    ("rgb16", "ffv1", "mkv", (), "gbrp16le", "rgb48le"),
    ("rgb", "libx264rgb", "mkv", ("-x", "qp=0"), "gbrp", "rgb24"),
    ("rgb", "libx264rgb", "mp4", ("-x", "qp=0"), "gbrp", "rgb24"),
    ("rgb", "png", "mov", (), "rgb24", "rgb24"),
    ("rgba", "png", "mov", (), "rgba", "rgba"),
    ("rgb16", "png", "mov", (), "rgb48be", "rgb48le"),
]


@pytest.mark.parametrize(
    ("name", "codec", "ext", "args", "stored", "fmt"),
    RECIPES,
    ids=[f"{r[1]}-{r[0]}-{r[2]}" for r in RECIPES],
)
def test_rgb_round_trip_is_bit_exact(
    tmp_path: Path,
    sources: Sources,
    name: str,
    codec: str,
    ext: str,
    args: tuple[str, ...],
    stored: str,
    fmt: str,
) -> None:
    src, frames = sources[name]
    out = tmp_path / f"out.{ext}"
    encode(src, out, "-c", codec, *args)
    assert decode_frames(out)[0].format.name == stored
    assert np.array_equal(decoded(out, fmt), frames)


def test_libx264_qp0_yuv444_is_exact_in_yuv(tmp_path: Path, sources: Sources) -> None:
    """libx264 at qp 0 returns the converter's planes unchanged (same as ffv1 does), and
    those planes are the BT.601 formula's values within ±1."""
    src, frames = sources["rgb"]
    h264, ffv1 = tmp_path / "x264.mkv", tmp_path / "ffv1.mkv"
    encode(src, h264, "-c", "libx264", "--pixel-format", "yuv444p", "-x", "qp=0", "--preset", "ultrafast")
    encode(src, ffv1, "-c", "ffv1", "--pixel-format", "yuv444p")
    for a, b, rgb in zip(decode_frames(h264), decode_frames(ffv1), frames, strict=True):
        planes = [plane(a, i) for i in range(3)]
        for i, samples in enumerate(planes):
            assert np.array_equal(samples, plane(b, i))
        want = ycbcr(rgb, "bt601", "tv")
        assert np.abs(np.stack(planes, axis=-1) - want).max() <= 1.0


def test_gray_round_trip_is_bit_exact(tmp_path: Path) -> None:
    """Gray uint8 and uint16 frames survive ffv1 untouched (full range, never squeezed).

    Five frames: a (3, H, W) array is one RGB frame, as in the API."""
    rng = np.random.default_rng(5)
    for dtype, stored, fmt in ((np.uint8, "gray", "gray"), (np.uint16, "gray16le", "gray16le")):
        frames = rng.integers(0, np.iinfo(dtype).max, size=(5, 48, 64), dtype=dtype, endpoint=True)
        src = tmp_path / f"gray_{stored}.npy"
        np.save(src, frames)
        out = tmp_path / f"gray_{stored}.mkv"
        encode(src, out, "-c", "ffv1")
        assert decode_frames(out)[0].format.name == stored
        assert np.array_equal(decoded(out, fmt), frames)


def test_ffv1_gbrp_names_the_formats_that_work(tmp_path: Path, sources: Sources) -> None:
    """This FFmpeg's ffv1 has no 8-bit gbrp; the error says which RGB formats it has."""
    src, _ = sources["rgb"]
    proc = run_cli("encode", src, "-o", tmp_path / "out.mkv", "-c", "ffv1", "--pixel-format", "gbrp")
    assert proc.returncode == 2
    message = proc.stderr.decode()
    assert "8-bit RGB formats are bgr0, bgra" in message
    assert not (tmp_path / "out.mkv").exists()


def test_png_in_matroska_is_refused_up_front(tmp_path: Path, sources: Sources) -> None:
    """PyAV's muxer check refuses PNG in Matroska: a usage error (exit 2) before any frame."""
    src, _ = sources["rgb"]
    proc = run_cli("encode", src, "-o", tmp_path / "out.mkv", "-c", "png")
    assert proc.returncode == 2
    assert b"cannot go in a matroska file" in proc.stderr
