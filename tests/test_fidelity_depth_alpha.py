"""Higher depth, alpha and odd sizes: nothing squashed, dropped or resized without a word.

Depth: a gentle 16-bit ramp spans only ~13 steps of 8-bit code values, so an output that
went through 8 bits anywhere shows a staircase 1.0 10-bit code RMS (1.7 at worst) away
from the exact ramp; a real 10-bit path tracks it to the rounding floor, ~0.29 RMS
(column means cancel the codec's noise). Alpha: decoded alpha planes are compared with the input's. Odd
sizes: the output is exactly as large as the summary says, with replicated edges.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from fidelity_refs import decode_frames, ffprobe_json, plane, ycbcr

from nvenc_cli import testsrc
from nvenc_cli.frames import FrameInfo
from nvenc_cli.plan import default_pixel_format

WIDTH, HEIGHT = 256, 32
RAMP = 0.40 + 0.05 * np.arange(WIDTH) / (WIDTH - 1)  # 40%..45% gray, left to right


def ramp_frames(dtype: type) -> np.ndarray:
    """Two identical gray-ramp frames, uint16 codes or float in [0, 1]."""
    gray = np.broadcast_to(RAMP[None, None, :, None], (2, HEIGHT, WIDTH, 3))
    if dtype is np.uint16:
        return np.rint(gray * 65535).astype(np.uint16)
    return gray.astype(dtype)


def exact_luma10() -> np.ndarray:
    """The ramp's 10-bit limited-range BT.601 luma, unrounded (R = G = B)."""
    codes = np.rint(RAMP * 65535)
    rgb = np.stack([codes, codes, codes], axis=-1)
    return ycbcr(rgb, "bt601", "tv", bits=10, in_max=65535)[:, 0]


def rms(error: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(error))))


def staircase_error() -> float:
    """RMS distance of the best 8-bit rendition of the ramp from it, in 10-bit codes."""
    squashed = np.rint(RAMP * 255)
    rgb = np.stack([squashed] * 3, axis=-1)
    return rms(ycbcr(rgb, "bt601", "tv", bits=10)[:, 0] - exact_luma10())


def encode(tmp_path: Path, frames: np.ndarray, out_name: str, *args: str) -> tuple[Path, str]:
    src = tmp_path / f"{out_name}.npy"
    np.save(src, frames)
    out = tmp_path / out_name
    proc = run_cli("encode", src, "-o", out, *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return out, proc.stderr.decode()


def test_the_ramp_tells_8_from_10_bits() -> None:
    assert staircase_error() > 0.9


DEEP = [
    ("libx265", "u16", ()),
    ("libx265", "f32", ("--pixel-format", "yuv420p10le")),
    ("libx265", "u16", ("-x", "x265-params=lossless=1")),
    ("libsvtav1", "u16", ()),
    ("libx264", "u16", ()),
    ("prores_ks", "u16", ()),
]


@pytest.mark.parametrize(("codec", "kind", "args"), DEEP, ids=[f"{c}-{k}-{len(a)}" for c, k, a in DEEP])
def test_deep_input_keeps_more_than_8_bits(
    tmp_path: Path, codec: str, kind: str, args: tuple[str, ...]
) -> None:
    """uint16 (or float with a 10-bit --pixel-format) reaches a 10-bit stream unsquashed."""
    frames = ramp_frames(np.uint16 if kind == "u16" else np.float32)
    ext = "mov" if codec == "prores_ks" else "mkv"
    quality = () if codec == "prores_ks" else ("--crf", "10")  # ProRes has fixed profiles
    out, _ = encode(tmp_path, frames, f"deep.{ext}", "-c", codec, *quality, *args)
    frame = decode_frames(out)[0]
    bits = frame.format.components[0].bits
    assert bits >= 10, frame.format.name
    luma = plane(frame, 0).astype(np.float64) / (1 << (bits - 10))
    error = rms(luma.mean(axis=0) - exact_luma10())
    assert error < 0.5 < staircase_error(), f"{frame.format.name}: RMS column error {error:.2f}"


def test_lossless_10_bit_luma_is_the_formula(tmp_path: Path) -> None:
    """Random uint16 RGB through lossless x265: every 10-bit sample is the rounded formula
    (swscale's 16-bit path is off by up to 3.7 codes with a +1.7 bias; nvenc's is not)."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 65536, size=(1, 32, 64, 3), dtype=np.uint16)
    args = ("-c", "libx265", "-x", "x265-params=lossless=1", "--color-matrix", "bt709")
    out, _ = encode(tmp_path, frames, "random.mkv", *args)
    frame = decode_frames(out)[0]
    assert frame.format.name == "yuv420p10le"
    exact = ycbcr(frames[0], "bt709", "tv", bits=10, in_max=65535)
    chroma = exact.reshape(16, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(plane(frame, 0) - exact[..., 0]).max() <= 0.5
    for index in (1, 2):
        assert np.abs(plane(frame, index) - chroma[..., index]).max() <= 0.5


def test_vp9_says_it_writes_8_bits(tmp_path: Path) -> None:
    """libvpx-vp9 in this build has no 10-bit formats: 8-bit output, and one note says so."""
    out, stderr = encode(tmp_path, ramp_frames(np.uint16), "deep.webm", "-c", "libvpx-vp9")
    assert decode_frames(out)[0].format.name == "yuv420p"
    notes = [line for line in stderr.splitlines() if "written at 8 bits" in line]
    assert len(notes) == 1 and "libvpx-vp9" in notes[0]


@pytest.mark.parametrize(
    ("encoder", "family", "depth", "expected"),
    [
        ("hevc_nvenc", "hevc", 16, "p010le"),
        ("h264_nvenc", "h264", 16, "p010le"),
        ("hevc_nvenc", "hevc", 8, "yuv420p"),
        ("libx265", "hevc", 16, "yuv420p10le"),
        ("libsvtav1", "av1", 16, "yuv420p10le"),
        ("libvpx-vp9", "vp9", 16, "yuv420p"),
    ],
)
def test_default_pixel_format_for_depth(encoder: str, family: str, depth: int, expected: str) -> None:
    """10-bit defaults: yuv420p10le for the CPU encoders that have it, P010 for NVENC."""
    assert default_pixel_format(encoder, family, FrameInfo(64, 48, 3, depth)) == expected


def rgba_frames() -> np.ndarray:
    """testsrc2 colour with a horizontal alpha ramp (0..255)."""
    rgb = testsrc.batch(64, 48, 2)
    alpha = np.broadcast_to(
        np.linspace(0, 255, 64).round().astype(np.uint8)[None, None, :, None], (2, 48, 64, 1)
    )
    return np.concatenate([rgb, alpha], axis=3)


ALPHA = [
    ("ffv1", "mkv", None, "bgra", 0),
    ("png", "mov", None, "rgba", 0),
    ("prores_ks", "mov", None, "yuva444p12le", 1),
    ("libvpx-vp9", "webm", "libvpx-vp9", "yuva420p", 3),
]


@pytest.mark.parametrize(
    ("codec", "ext", "decoder", "decoded_as", "tolerance"), ALPHA, ids=[a[0] for a in ALPHA]
)
def test_alpha_is_kept_where_the_codec_can(
    tmp_path: Path, codec: str, ext: str, decoder: str | None, decoded_as: str, tolerance: int
) -> None:
    frames = rgba_frames()
    out, stderr = encode(tmp_path, frames, f"alpha.{ext}", "-c", codec)
    assert "alpha channel dropped" not in stderr
    decoded = decode_frames(out, decoder)
    assert decoded[0].format.name == decoded_as
    for frame, source in zip(decoded, frames, strict=True):
        alpha = frame.to_ndarray(format="rgba")[..., 3].astype(int)
        assert np.abs(alpha - source[..., 3]).max() <= tolerance
    if codec == "libvpx-vp9":
        tags = ffprobe_json(out, "-show_entries", "stream_tags=alpha_mode")["streams"][0]["tags"]
        assert tags["alpha_mode"] == "1"


def test_alpha_dropped_with_one_line_notice(tmp_path: Path) -> None:
    out, stderr = encode(tmp_path, rgba_frames(), "alpha.mp4", "-c", "libx264")
    notes = [line for line in stderr.splitlines() if line.startswith("nvenc: note:")]
    assert len(notes) == 1 and "alpha channel dropped" in notes[0], stderr
    assert decode_frames(out)[0].format.name == "yuv420p"


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """63x47 frames cut from a 64x48 pattern (lavfi itself rounds odd sizes down)."""
    frames = np.ascontiguousarray(testsrc.batch(64, 48, 2)[:, :47, :63])
    path = tmp_path_factory.mktemp("odd") / "odd.npy"
    np.save(path, frames)
    return path, frames


def test_odd_size_without_a_choice_is_refused(tmp_path: Path, odd: tuple[Path, np.ndarray]) -> None:
    src, _ = odd
    out = tmp_path / "out.mkv"
    proc = run_cli("encode", src, "-o", out, "-c", "libx264")
    assert proc.returncode == 65
    assert b"--pad" in proc.stderr and b"--crop" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(("flag", "size"), [("--pad", (64, 48)), ("--crop", (62, 46))])
def test_pad_and_crop_are_stated_and_exact(
    tmp_path: Path, odd: tuple[Path, np.ndarray], flag: str, size: tuple[int, int]
) -> None:
    """The note and the JSON report name the choice; the luma is the source's, with the
    last row and column repeated (pad) or removed (crop), never rescaled."""
    src, frames = odd
    out = tmp_path / "out.mkv"
    proc = run_cli("encode", src, "-o", out, "-c", "ffv1", "--pixel-format", "yuv420p", flag, "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    verb = "padded (edge replication)" if flag == "--pad" else "cropped"
    note = f"frame size 63x47 {verb} to {size[0]}x{size[1]}"
    assert note in proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert (report["width"], report["height"]) == size and note in report["notices"]
    width, height = size
    if flag == "--pad":
        expected_rgb = np.pad(frames[0], ((0, 1), (0, 1), (0, 0)), mode="edge")
    else:
        expected_rgb = frames[0, :height, :width]
    luma = plane(decode_frames(out)[0], 0)
    assert luma.shape == (height, width)
    assert np.abs(luma - ycbcr(expected_rgb, "bt601", "tv")[..., 0]).max() <= 1.0


def test_rgb_formats_need_no_padding(tmp_path: Path, odd: tuple[Path, np.ndarray]) -> None:
    """Odd sizes are fine for unsubsampled RGB: 63x47 in, 63x47 out, bit-exact."""
    src, frames = odd
    out = tmp_path / "out.mkv"
    proc = run_cli("encode", src, "-o", out, "-c", "ffv1")
    assert proc.returncode == 0, proc.stderr.decode()
    decoded = np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(out)])
    assert np.array_equal(decoded, frames)
