"""Float frames outside [0, 1] are refused with their range and the fix; --value-range maps.

The referee is the uint8 encode of the same picture: a float image in [-1, 1] or 0–255,
mapped back with --value-range, must give exactly the uint8 pattern's bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SERIAL, decode, psnr, run_cli

THREADS = ["-x", f"threads={SERIAL['threads']}"]


@pytest.fixture()
def pattern8(pattern: np.ndarray) -> np.ndarray:
    return pattern[:6]


def _save(tmp_path: Path, name: str, frames: np.ndarray) -> Path:
    path = tmp_path / name
    np.save(path, frames)
    return path


@pytest.mark.parametrize(
    ("scale", "text", "hint"),
    [
        (lambda p: p.astype(np.float32) / 127.5 - 1, "-1,1", "--value-range -1,1"),
        (lambda p: p.astype(np.float32), "0,255", "--value-range 0,255"),
    ],
    ids=["minus1-1", "0-255"],
)
def test_out_of_range_floats_are_refused_then_mapped(
    tmp_path: Path, pattern8: np.ndarray, scale, text: str, hint: str
) -> None:
    floats = _save(tmp_path, "floats.npy", scale(pattern8))
    out = tmp_path / "out.mp4"
    refused = run_cli("encode", floats, "-o", out, *THREADS)
    assert refused.returncode == 65
    message = refused.stderr.decode()
    assert message.count("\n") == 1 and message.startswith("nvenc: error: ")
    low, high = (-1, 1) if text == "-1,1" else (0, 255)
    assert f"from {low:g} to {high:g}" in message and "outside [0, 1]" in message
    assert hint in message
    assert not out.exists() and not list(tmp_path.glob(".out.mp4.*"))

    mapped = run_cli("encode", floats, "-o", out, "--value-range", text, *THREADS)
    assert mapped.returncode == 0, mapped.stderr
    reference = tmp_path / "ref.mp4"
    ref = run_cli("encode", _save(tmp_path, "u8.npy", pattern8), "-o", reference, *THREADS)
    assert ref.returncode == 0, ref.stderr
    assert out.read_bytes() == reference.read_bytes()
    frames, _ = decode(out)
    assert len(frames) == 6 and psnr(frames, pattern8) > 35


def test_rounding_noise_is_clipped_not_refused(tmp_path: Path, pattern8: np.ndarray) -> None:
    unit = pattern8.astype(np.float32) / 255
    unit[0, 0, 0, 0], unit[1, 0, 0, 0] = 1.004, -0.004  # within the tolerance
    out = tmp_path / "out.mp4"
    done = run_cli("encode", _save(tmp_path, "f.npy", unit), "-o", out)
    assert done.returncode == 0, done.stderr
    assert len(decode(out)[0]) == 6


def test_a_bad_window_deep_in_the_input_fails_the_run(tmp_path: Path, pattern8: np.ndarray) -> None:
    unit = pattern8.astype(np.float32) / 255
    unit[5] *= 255  # only the last window strays: checked as it is read, no pre-pass
    out = tmp_path / "out.mp4"
    done = run_cli("encode", _save(tmp_path, "f.npy", unit), "-o", out, "--batch-size", "2")
    assert done.returncode == 65
    assert "frames 4–5" in done.stderr.decode()
    assert not out.exists()


def test_integer_value_range_needs_whole_codes_and_bad_pairs_are_refused(
    tmp_path: Path, pattern8: np.ndarray
) -> None:
    u8 = _save(tmp_path, "u8.npy", pattern8)
    out = tmp_path / "out.mp4"
    for bad in ("0,256", "0.5,200", "-1,255"):
        ints = run_cli("encode", u8, "-o", out, "--value-range", bad)
        assert ints.returncode == 2 and "whole codes" in ints.stderr.decode(), bad
    for bad in ("1,-1", "a,b", "0", "0,inf"):
        done = run_cli("encode", u8, "-o", out, "--value-range", bad)
        assert done.returncode == 2 and "--value-range" in done.stderr.decode()
    assert not out.exists()


def test_api_refuses_and_maps_like_the_cli(tmp_path: Path, pattern8: np.ndarray) -> None:
    import torch

    from nvenc_cli import VideoEncoder, open_writer

    chw = torch.from_numpy(pattern8).permute(0, 3, 1, 2).contiguous()
    signed = chw.float() / 127.5 - 1
    with pytest.raises(ValueError, match=r"from -1 to 1.*value_range=\(-1, 1\)"):
        VideoEncoder(signed, frame_rate=30).to_file(tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(ValueError, match="whole codes"):
        VideoEncoder(chw, frame_rate=30, value_range=(0, 256))
    with pytest.raises(ValueError, match="value_range"):
        VideoEncoder(signed, frame_rate=30, value_range=(1, -1))

    mapped, plain = tmp_path / "mapped.mp4", tmp_path / "plain.mp4"
    VideoEncoder(signed, frame_rate=30, value_range=(-1, 1)).to_file(mapped, extra_options=SERIAL)
    VideoEncoder(chw, frame_rate=30).to_file(plain, extra_options=SERIAL)
    assert mapped.read_bytes() == plain.read_bytes()

    written = tmp_path / "writer.mp4"
    with open_writer(written, frame_rate=30, value_range=(0, 255), extra_options=SERIAL) as writer:
        for frame in chw.float():
            writer.write(frame)
    assert written.read_bytes() == plain.read_bytes()
    with pytest.raises(ValueError, match="outside"), open_writer(tmp_path / "w2.mp4", frame_rate=30) as w:
        w.write(chw.float())
    assert not (tmp_path / "w2.mp4").exists()


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32", "int32"])
@pytest.mark.parametrize("layout", ["nchw", "chw"])
def test_channels_first_windows_come_out_as_the_same_nhwc_values(kind: str, layout: str) -> None:
    """Channels-first input is gathered a channel at a time (not numpy's sample-at-a-time
    transposing copy): the window is C-contiguous NHWC with the very values of the plain
    transpose, for codes, mapped floats and ranged integers alike."""
    from nvenc_cli.sources.layout import Layout, to_nhwc

    rng = np.random.default_rng(7)
    shape = (3, 3, 18, 22) if layout == "nchw" else (3, 18, 22)
    if kind == "float32":
        raw, value_range = rng.random(shape, dtype=np.float32), None
    elif kind == "int32":
        raw, value_range = rng.integers(0, 4096, shape).astype(np.int32), (0, 4095)
    else:
        raw, value_range = rng.integers(0, np.iinfo(kind).max, shape, endpoint=True).astype(kind), None
    depth = 16 if kind in ("uint16", "int32") else 8
    frames = 1 if layout == "chw" else 3
    out = to_nhwc(raw, Layout(layout, frames, 18, 22, 3), depth, value_range=value_range)
    nhwc = raw[np.newaxis] if layout == "chw" else raw
    nhwc = np.ascontiguousarray(nhwc.transpose(0, 2, 3, 1))
    want = to_nhwc(nhwc, Layout("nhwc", frames, 18, 22, 3), depth, value_range=value_range)
    assert out.flags.c_contiguous and out.shape == want.shape and out.dtype == want.dtype
    assert np.array_equal(out, want)
