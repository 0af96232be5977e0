"""Model outputs as they are: lists of frames, 5-D batches, overshooting floats, integer
codes, ``encode()``, ``--gop``/``--fast-decode`` and a quiet API.

Every output is decoded (PyAV) and compared with the source: frame count, order and
pixels (lossless codecs where exactness is the claim, PSNR otherwise).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import nvenc_cli
from nvenc_cli import testsrc
from tests.conftest import ROOT, decode, psnr, run_cli

LOSSLESS = ("-c", "ffv1", "--pixel-format", "bgr0")  # RGB kept exactly: pixels compare equal


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """12 distinct frames (testsrc2 moves every frame), 64x48: order mistakes show."""
    return testsrc.batch(64, 48, 12)


def _lossless(path: Path) -> np.ndarray:
    return decode(path)[0]


# -- lists of frames --------------------------------------------------------------------


def test_api_lists_of_arrays_tensors_and_pil_images_equal_the_stacked_batch(
    tmp_path: Path, clip: np.ndarray
) -> None:
    import torch

    stacked = tmp_path / "stacked.mkv"
    nvenc_cli.VideoEncoder(clip, frame_rate=24).to_file(stacked, codec="ffv1", pixel_format="bgr0")
    forms = {
        "arrays": list(clip),
        "tuple": tuple(clip),
        "pil": [Image.fromarray(f) for f in clip],
        "tensors_chw": [torch.from_numpy(f).permute(2, 0, 1) for f in clip],
    }
    for name, frames in forms.items():
        out = tmp_path / f"{name}.mkv"
        nvenc_cli.VideoEncoder(frames, frame_rate=24).to_file(out, codec="ffv1", pixel_format="bgr0")
        assert np.array_equal(_lossless(out), clip), name
    assert np.array_equal(_lossless(stacked), clip)


def test_writer_takes_pil_images_and_lists(tmp_path: Path, clip: np.ndarray) -> None:
    out = tmp_path / "w.mkv"
    with nvenc_cli.open_writer(out, frame_rate=24, codec="ffv1", pixel_format="bgr0") as writer:
        for frame in clip[:5]:
            writer.write(Image.fromarray(frame))
        writer.write(list(clip[5:]))
    assert np.array_equal(_lossless(out), clip)


def test_encoder_add_frames_takes_a_list(tmp_path: Path, clip: np.ndarray) -> None:
    import torch

    out = tmp_path / "e.mkv"
    encoder = nvenc_cli.Encoder()
    stream = encoder.add_video(frame_rate=24, height=48, width=64, codec="ffv1", pixel_format="bgr0")
    encoder.open_file(str(out))
    stream.add_frames([torch.from_numpy(f).permute(2, 0, 1) for f in clip])
    encoder.close()
    assert np.array_equal(_lossless(out), clip)


def test_gray_and_palette_pil_frames_keep_their_values(tmp_path: Path, clip: np.ndarray) -> None:
    gray = clip[..., 1]
    out = tmp_path / "g.mkv"
    nvenc_cli.VideoEncoder([Image.fromarray(g) for g in gray], frame_rate=24).to_file(
        out, codec="ffv1", pixel_format="gray"
    )
    assert np.array_equal(decode(out, "gray")[0], gray)
    palette = [Image.fromarray(f).convert("P") for f in clip[:3]]
    expected = np.stack([np.asarray(p.convert("RGB")) for p in palette])
    out = tmp_path / "p.mkv"
    nvenc_cli.VideoEncoder(palette, frame_rate=24).to_file(out, codec="ffv1", pixel_format="bgr0")
    assert np.array_equal(_lossless(out), expected)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda c: [c[0], c[1][:10]], r"frames\[1\] is uint8 \(10, 64, 3\), unlike frames\[0\]"),
        (lambda c: [c[0], c[1], c[2].astype(np.uint16)], r"frames\[2\] is uint16"),
        (lambda c: [], "empty"),
        (lambda c: [c[0], "frame"], r"frames\[1\] is a str"),
        (lambda c: [Image.new("CMYK", (64, 48))], "mode CMYK"),
        (lambda c: [np.zeros((2, 3, 48, 64, 3), np.uint8)] * 2, "one frame"),
    ],
)
def test_unlike_frames_in_a_list_are_refused_naming_the_first_odd_one(
    tmp_path: Path, clip: np.ndarray, bad, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        nvenc_cli.VideoEncoder(bad(clip), frame_rate=24).to_file(tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_pt_and_npz_files_holding_lists_encode_every_frame_in_order(tmp_path: Path, clip: np.ndarray) -> None:
    import torch

    frames = [torch.from_numpy(f) for f in clip]
    files = {
        "list.pt": lambda p: torch.save(frames, p),
        "tuple.pt": lambda p: torch.save(tuple(frames), p),
        "dict.pt": lambda p: torch.save({"frames": [f.permute(2, 0, 1) for f in frames], "fps": 12}, p),
        "legacy.pt": lambda p: torch.save(frames, p, _use_new_zipfile_serialization=False),
        "savez.npz": lambda p: np.savez(p, *clip),  # arr_0 … arr_11: arr_10 after arr_9
        "compressed.npz": lambda p: np.savez_compressed(p, *clip, fps=np.array(12)),
    }
    for name, save in files.items():
        path = tmp_path / name
        save(path)
        out = tmp_path / f"{name}.mkv"
        done = run_cli("encode", path, "-o", out, *LOSSLESS)
        assert done.returncode == 0, (name, done.stderr.decode())
        assert np.array_equal(_lossless(out), clip), name


def test_ragged_list_files_are_refused_with_one_line_and_no_output(tmp_path: Path, clip: np.ndarray) -> None:
    import torch

    torch.save(
        [torch.from_numpy(f) for f in clip[:3]] + [torch.zeros(10, 10, 3, dtype=torch.uint8)],
        tmp_path / "r.pt",
    )
    np.savez(tmp_path / "r.npz", *clip[:3], clip[0][:, :, :1])
    for name in ("r.pt", "r.npz"):
        out = tmp_path / f"{name}.mp4"
        done = run_cli("encode", tmp_path / name, "-o", out)
        lines = done.stderr.decode().strip().splitlines()
        assert done.returncode == 65 and len(lines) == 1 and "unlike" in lines[0], (name, lines)
        assert not out.exists()


def test_several_tensors_are_listed_in_numeric_order(tmp_path: Path, clip: np.ndarray) -> None:
    import torch

    videos = {str(i): torch.from_numpy(clip[:2]) for i in (0, 1, 2, 10, 11)}
    torch.save(videos, tmp_path / "many.pt")
    done = run_cli("encode", tmp_path / "many.pt", "-o", tmp_path / "x.mp4")
    assert done.returncode == 2
    assert "(0, 1, 2, 10, 11)" in done.stderr.decode()


def test_list_memory_does_not_grow_with_the_list(tmp_path: Path) -> None:
    """Peak memory allocated while encoding 10 listed frames and 1000: within a window's
    worth (frames are stacked a window at a time, never the whole list)."""
    frame = testsrc.batch(160, 120, 1)[0]
    peaks = {}
    for count in (10, 1000):
        frames = [frame.copy() for _ in range(count)]
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        nvenc_cli.VideoEncoder(frames, frame_rate=30).to_file(tmp_path / f"m{count}.mp4", preset="ultrafast")
        peaks[count] = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        assert decode(tmp_path / f"m{count}.mp4")[0].shape[0] == count
    stacked = 1000 * frame.nbytes
    assert peaks[1000] - peaks[10] < stacked / 10, peaks


# -- 5-D batches --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    """3 clips of 4 frames, (B, F, H, W, C); each clip distinct."""
    return testsrc.batch(64, 48, 12).reshape(3, 4, 48, 64, 3)


def test_a_batch_without_sample_is_refused_naming_both_fixes(tmp_path: Path, batch: np.ndarray) -> None:
    np.save(tmp_path / "b.npy", batch)
    done = run_cli("encode", tmp_path / "b.npy", "-o", tmp_path / "x.mp4")
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1
    assert "--sample N" in lines[0] and "{sample}" in lines[0] and "3 clips" in lines[0]
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("kind", ["npy", "npz", "pt", "pt_nchw"])
@pytest.mark.parametrize("sample", [0, 1, -1])
def test_sample_picks_one_clip(tmp_path: Path, batch: np.ndarray, kind: str, sample: int) -> None:
    import torch

    path = tmp_path / f"b.{kind.split('_')[0]}"
    if kind == "npy":
        np.save(path, batch)
    elif kind == "npz":
        np.savez(path, video=batch, fps=np.array(24))
    elif kind == "pt":
        torch.save(torch.from_numpy(batch), path)
    else:
        torch.save({"samples": torch.from_numpy(batch).permute(0, 1, 4, 2, 3)}, path)
    out = tmp_path / "x.mkv"
    done = run_cli("encode", path, "-o", out, "--sample", str(sample), *LOSSLESS)
    assert done.returncode == 0, done.stderr.decode()
    assert np.array_equal(_lossless(out), batch[sample])


def test_sample_out_of_range_or_on_a_clip_is_refused(tmp_path: Path, batch: np.ndarray) -> None:
    np.save(tmp_path / "b.npy", batch)
    np.save(tmp_path / "c.npy", batch[0])
    for path, sample, code, words in (
        ("b.npy", "3", 65, "out of range"),
        ("b.npy", "-4", 65, "out of range"),
        ("c.npy", "0", 2, "5-D batch"),
    ):
        done = run_cli("encode", tmp_path / path, "-o", tmp_path / "x.mp4", "--sample", sample)
        assert done.returncode == code and words in done.stderr.decode(), done.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_sample_template_writes_every_clip_through_the_batch_machinery(
    tmp_path: Path, batch: np.ndarray
) -> None:
    np.save(tmp_path / "b.npy", batch)
    done = run_cli(
        "encode",
        tmp_path / "b.npy",
        "-o",
        tmp_path / "out" / "clip_{sample}.mkv",
        "-j",
        "2",
        "--json",
        *LOSSLESS,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [line["type"] for line in lines].count("job") == 3
    for i in range(3):
        assert np.array_equal(_lossless(tmp_path / "out" / f"clip_{i}.mkv"), batch[i])
    one = run_cli("encode", tmp_path / "b.npy", "-o", tmp_path / "s_{sample}.mp4", "--sample", "1")
    assert one.returncode == 2 and "give one" in one.stderr.decode()
    np.save(tmp_path / "c.npy", batch[0])
    clip = run_cli("encode", tmp_path / "c.npy", "-o", tmp_path / "c_{sample}.mp4")
    assert clip.returncode == 2 and "{sample}" in clip.stderr.decode()
    assert not list(tmp_path.glob("*_*.mp4"))


def test_encode_batch_api(tmp_path: Path, batch: np.ndarray) -> None:
    import torch

    tensors = torch.from_numpy(batch).permute(0, 1, 4, 2, 3)  # (B, F, C, H, W)
    results = nvenc_cli.encode_batch(
        tensors, tmp_path / "c_{sample:02d}.mkv", frame_rate=24, codec="ffv1", pixel_format="bgr0"
    )
    assert [r.frames for r in results] == [4, 4, 4]
    for i in range(3):
        assert np.array_equal(_lossless(tmp_path / f"c_{i:02d}.mkv"), batch[i])
    with pytest.raises(ValueError, match=r"\{sample\}"):
        nvenc_cli.encode_batch(tensors, tmp_path / "same.mp4", frame_rate=24)
    one = nvenc_cli.VideoEncoder(tensors[2], frame_rate=24)  # one clip of the batch
    one.to_file(tmp_path / "two.mkv", codec="ffv1", pixel_format="bgr0")
    assert np.array_equal(_lossless(tmp_path / "two.mkv"), batch[2])


# -- clamp --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vae(clip: np.ndarray) -> np.ndarray:
    """A VAE's output: [-1, 1] overshooting to ±1.08 at the brightest and darkest."""
    return (clip.astype(np.float32) / 127.5 - 1) * np.float32(1.08)


def test_clamp_clamps_counts_and_matches_clipped_input(tmp_path: Path, vae: np.ndarray) -> None:
    np.save(tmp_path / "v.npy", vae)
    np.save(tmp_path / "clipped.npy", np.clip(vae, -1, 1))
    refused = run_cli("encode", tmp_path / "v.npy", "-o", tmp_path / "r.mp4", "--value-range", "-1,1")
    assert refused.returncode == 65 and "--clamp" in refused.stderr.decode()
    assert not (tmp_path / "r.mp4").exists()
    done = run_cli(
        "encode",
        tmp_path / "v.npy",
        "-o",
        tmp_path / "c.mkv",
        "--value-range",
        "-1,1",
        "--clamp",
        "--json",
        *LOSSLESS,
    )
    assert done.returncode == 0, done.stderr.decode()
    outside = int(np.count_nonzero((vae < -1) | (vae > 1)))
    notice = [n for n in json.loads(done.stdout)["notices"] if n.startswith("clamped")]
    assert notice and f"clamped {outside} samples" in notice[0] and "0.08" in notice[0]
    assert f"clamped {outside} samples" in done.stderr.decode()
    reference = run_cli(
        "encode", tmp_path / "clipped.npy", "-o", tmp_path / "ref.mkv", "--value-range", "-1,1", *LOSSLESS
    )
    assert reference.returncode == 0
    assert np.array_equal(_lossless(tmp_path / "c.mkv"), _lossless(tmp_path / "ref.mkv"))


def test_clamp_still_refuses_nan(tmp_path: Path, vae: np.ndarray) -> None:
    bad = vae.copy()
    bad[3, 5, 5, 0] = np.nan
    np.save(tmp_path / "n.npy", bad)
    done = run_cli("encode", tmp_path / "n.npy", "-o", tmp_path / "n.mp4", "--value-range", "-1,1", "--clamp")
    assert done.returncode == 65 and "frame 3 holds NaN" in done.stderr.decode()
    assert not (tmp_path / "n.mp4").exists()


def test_clamp_in_the_api_warns_with_the_count(tmp_path: Path, vae: np.ndarray) -> None:
    import torch

    tensor = torch.from_numpy(vae).permute(0, 3, 1, 2)
    outside = int(np.count_nonzero((vae < -1) | (vae > 1)))
    with pytest.warns(UserWarning, match=f"clamped {outside} samples") as seen:
        nvenc_cli.VideoEncoder(tensor, frame_rate=24, value_range=(-1, 1), clamp=True).to_file(
            tmp_path / "a.mp4"
        )
    # the warning names the caller's line, not nvenc's own (warnings filters match on it)
    assert {w.filename for w in seen if issubclass(w.category, UserWarning)} == {__file__}
    with pytest.warns(UserWarning, match=f"clamped {outside} samples") as seen:
        nvenc_cli.encode(tensor, tmp_path / "e.mp4", frame_rate=24, value_range=(-1, 1), clamp=True)
    assert {w.filename for w in seen if issubclass(w.category, UserWarning)} == {__file__}
    with (
        pytest.warns(UserWarning, match=f"clamped {outside} samples"),
        nvenc_cli.open_writer(tmp_path / "w.mp4", frame_rate=24, value_range=(-1, 1), clamp=True) as w,
    ):
        for frame in tensor:
            w.write(frame)
    clipped = (np.clip(vae, -1, 1) + 1) * 127.5
    for name in ("a.mp4", "w.mp4"):
        frames = decode(tmp_path / name)[0]
        assert frames.shape[0] == 12 and psnr(frames, clipped) > 30
    with pytest.raises(ValueError, match="clamp"):
        nvenc_cli.VideoEncoder(tensor, frame_rate=24, value_range=(-1, 1)).to_file(tmp_path / "b.mp4")


# -- integer ranges -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def depth12() -> np.ndarray:
    """Every 12-bit code, as a depth camera stores them in uint16: 4 gray frames of 64x16."""
    return np.arange(4096, dtype=np.uint16).reshape(4, 16, 64, 1)


@pytest.mark.parametrize(
    ("ext", "codec", "pix_fmt", "decode_fmt", "extra"),
    [
        ("mkv", "ffv1", "gray16le", "gray16le", ()),
        ("mov", "png", "gray16be", "gray16be", ()),
        ("mkv", "libx265", "gray12le", "gray12le", ("-x", "x265-params=lossless=1")),
    ],
)
def test_depth_bits_round_trips_every_12_bit_code(
    tmp_path: Path, depth12: np.ndarray, ext: str, codec: str, pix_fmt: str, decode_fmt: str, extra: tuple
) -> None:
    np.save(tmp_path / "d.npy", depth12)
    out = tmp_path / f"d.{ext}"
    done = run_cli(
        "encode",
        tmp_path / "d.npy",
        "-o",
        out,
        "--depth-bits",
        "12",
        "-c",
        codec,
        "--pixel-format",
        pix_fmt,
        *extra,
    )
    assert done.returncode == 0, done.stderr.decode()
    decoded = decode(out, decode_fmt)[0].astype(np.int64)
    # A 16-bit output holds the codes scaled onto 0–65535; scaling back is exact.
    codes = decoded if pix_fmt == "gray12le" else (decoded * 4095 + 32767) // 65535
    assert np.array_equal(codes.reshape(depth12.shape), depth12)


def test_integer_value_range_maps_codes_and_refuses_strays(tmp_path: Path, depth12: np.ndarray) -> None:
    np.save(tmp_path / "d.npy", depth12)
    out = tmp_path / "v.mkv"
    done = run_cli(
        "encode",
        tmp_path / "d.npy",
        "-o",
        out,
        "--value-range",
        "0,4095",
        "-c",
        "ffv1",
        "--pixel-format",
        "gray",
    )
    assert done.returncode == 0, done.stderr.decode()
    decoded = decode(out, "gray")[0].astype(np.int64).reshape(depth12.shape)
    assert np.array_equal(decoded, (depth12.astype(np.int64) * 510 + 4095) // 8190)
    strays = run_cli("encode", tmp_path / "d.npy", "-o", out, "-y", "--value-range", "0,1000")
    assert strays.returncode == 65 and "--clamp" in strays.stderr.decode()
    clamped = run_cli("encode", tmp_path / "d.npy", "-o", out, "-y", "--value-range", "0,1000", "--clamp")
    assert clamped.returncode == 0 and "clamped 3095 samples" in clamped.stderr.decode()
    both = run_cli(
        "encode", tmp_path / "d.npy", "-o", out, "-y", "--value-range", "0,1000", "--depth-bits", "12"
    )
    assert both.returncode == 2 and "give one" in both.stderr.decode()


# -- encode() -----------------------------------------------------------------------------


def test_encode_takes_plain_values_and_matches_the_cli(tmp_path: Path, clip: np.ndarray) -> None:
    np.save(tmp_path / "c.npy", clip)
    result = nvenc_cli.encode(
        tmp_path / "c.npy",
        tmp_path / "api.mp4",
        frame_rate=24,
        crf=23,
        preset="fast",
        extra_options={"threads": 1},
    )
    cli = run_cli(
        "encode",
        tmp_path / "c.npy",
        "-o",
        tmp_path / "cli.mp4",
        "-r",
        "24",
        "--crf",
        "23",
        "--preset",
        "fast",
        "-x",
        "threads=1",
    )
    assert cli.returncode == 0
    assert (tmp_path / "api.mp4").read_bytes() == (tmp_path / "cli.mp4").read_bytes()
    assert result.frames == 12 and result.plan.fps == 24
    svt = nvenc_cli.encode(
        list(clip), tmp_path / "svt.mp4", frame_rate=30, preset=12, extra_options={"g": 2}, codec="libsvtav1"
    )
    frames, facts = decode(tmp_path / "svt.mp4")
    assert svt.frames == 12 and facts["codec"] in ("av1", "libdav1d") and psnr(frames, clip) > 30
    with pytest.raises(OSError, match="overwrite=True"):
        nvenc_cli.encode(tmp_path / "c.npy", tmp_path / "api.mp4")


@pytest.mark.parametrize(
    ("bad", "word"),
    [
        ({"crf": True}, "crf"),
        ({"preset": [1]}, "preset"),
        ({"frame_rate": "fast"}, "frame rate"),
        ({"gop": 2.5}, "gop"),
        ({"overwrite": "false"}, "overwrite"),
        ({"extra_options": "g=2"}, "extra options"),
        ({"sample": "1"}, "sample"),
    ],
)
def test_encode_refuses_bad_values_by_name(tmp_path: Path, clip: np.ndarray, bad: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        nvenc_cli.encode(clip, tmp_path / "x.mp4", **bad)
    assert not (tmp_path / "x.mp4").exists()


def test_encode_options_take_plain_values_in_jobs(tmp_path: Path, clip: np.ndarray) -> None:
    from nvenc_cli.options import EncodeOptions

    np.save(tmp_path / "c.npy", clip)
    spec = nvenc_cli.JobSpec(
        str(tmp_path / "c.npy"),
        str(tmp_path / "j.mp4"),
        EncodeOptions(fps=30, codec="libsvtav1", preset=12, extra={"g": 2}),
    )
    assert spec.options.preset == "12" and spec.options.extra == (("g", "2"),)
    from nvenc_cli.encoding import encode_path

    result = encode_path(spec.input, spec.output, spec.options)
    assert result.frames == 12 and decode(tmp_path / "j.mp4")[0].shape[0] == 12


def test_encode_runs_from_a_script_on_stdin_without_a_main_guard(tmp_path: Path, clip: np.ndarray) -> None:
    np.save(tmp_path / "c.npy", clip)
    source, out = str(tmp_path / "c.npy"), str(tmp_path / "s.mp4")
    script = f"import nvenc_cli\nr = nvenc_cli.encode({source!r}, {out!r})\nprint(r.frames)\n"
    done = subprocess.run(
        [sys.executable, "-"],
        input=script.encode(),
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "12"
    assert decode(tmp_path / "s.mp4")[0].shape[0] == 12


def test_encode_notices_are_user_warnings(tmp_path: Path, clip: np.ndarray) -> None:
    with pytest.warns(UserWarning, match="alpha channel dropped"):
        nvenc_cli.encode(np.concatenate([clip, clip[..., :1]], axis=-1), tmp_path / "a.mp4")


# -- GOP and fast decode ------------------------------------------------------------------


def _key_gaps(path: Path) -> tuple[list[int], int]:
    with av.open(str(path)) as container:
        keys = [frame.key_frame for frame in container.decode(video=0)]
    where = [i for i, key in enumerate(keys) if key]
    gaps = [b - a for a, b in zip(where, [*where[1:], len(keys)], strict=True)]
    return where, max(gaps)


@pytest.mark.parametrize(
    ("codec", "ext"),
    [
        ("libx264", "mp4"),
        ("libx265", "mp4"),
        ("libsvtav1", "mp4"),
        ("libvpx-vp9", "webm"),
        ("libvpx", "webm"),
    ],
)
@pytest.mark.parametrize("gop", [2, 5])
def test_gop_bounds_the_distance_between_keyframes(tmp_path: Path, codec: str, ext: str, gop: int) -> None:
    frames = testsrc.batch(128, 96, 24)
    np.save(tmp_path / "f.npy", frames)
    out = tmp_path / f"g.{ext}"
    done = run_cli("encode", tmp_path / "f.npy", "-o", out, "-c", codec, "--gop", str(gop))
    assert done.returncode == 0, done.stderr.decode()
    where, largest = _key_gaps(out)
    assert where[0] == 0 and largest <= gop, where
    assert len(where) >= 24 // gop
    plain = tmp_path / f"p.{ext}"
    assert run_cli("encode", tmp_path / "f.npy", "-o", plain, "-c", codec).returncode == 0
    assert _key_gaps(plain)[1] > gop  # without --gop the encoder's own interval is longer


def test_gop_contradicting_x_g_is_refused(tmp_path: Path, clip: np.ndarray) -> None:
    np.save(tmp_path / "c.npy", clip)
    done = run_cli("encode", tmp_path / "c.npy", "-o", tmp_path / "x.mp4", "--gop", "2", "-x", "g=10")
    assert done.returncode == 2 and "contradicts" in done.stderr.decode()
    assert not (tmp_path / "x.mp4").exists()


def test_fast_decode_sets_the_encoders_mode(tmp_path: Path, clip: np.ndarray) -> None:
    np.save(tmp_path / "c.npy", clip)
    out = tmp_path / "f.mp4"
    assert (
        run_cli("encode", tmp_path / "c.npy", "-o", out, "--fast-decode", "-x", "tune=film").returncode == 0
    )
    settings = out.read_bytes()  # x264 writes its settings into the stream (an SEI)
    assert b"cabac=0" in settings and b"deblock=0" in settings
    assert np.array_equal(decode(out)[0].shape, clip.shape)
    svt = tmp_path / "s.mp4"
    assert (
        run_cli("encode", tmp_path / "c.npy", "-o", svt, "-c", "libsvtav1", "--fast-decode").returncode == 0
    )
    assert psnr(decode(svt)[0], clip) > 30
    vp9 = run_cli("encode", tmp_path / "c.npy", "-o", tmp_path / "v.webm", "--fast-decode")
    assert vp9.returncode == 2 and "libvpx-vp9 has no fast-decode mode" in vp9.stderr.decode()


# -- a quiet API --------------------------------------------------------------------------


@pytest.mark.parametrize("verbose", [False, True])
def test_api_encoders_are_quiet_unless_asked(tmp_path: Path, verbose: bool) -> None:
    script = (
        "import numpy as np, nvenc_cli\n"
        "f = np.zeros((4, 64, 64, 3), np.uint8)\n"
        f"nvenc_cli.VideoEncoder(f, frame_rate=30, verbose={verbose}).to_file('a.mp4', codec='libx265')\n"
        f"nvenc_cli.VideoEncoder(f, frame_rate=30, verbose={verbose}).to_file('b.mp4', codec='libsvtav1')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr.decode()
    err = done.stderr.decode()
    if verbose:
        assert "x265 [info]" in err and "Svt[info]" in err
    else:
        assert err == ""
