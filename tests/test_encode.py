"""End to end through the real CLI: every input kind and container decodes back to the
source frames (count, size, time base, codec, pixel format, PSNR)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import decode, psnr, run_cli

MIN_PSNR = 35.0


def encode_ok(*args: str) -> dict:
    """Run ``nvenc encode ARGS --json`` and return the JSON report."""
    proc = run_cli("encode", *args, "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().strip().splitlines()
    assert len(lines) == 1, "stdout must carry exactly one JSON object"
    return json.loads(lines[0])


def check_video(
    path: Path,
    source: np.ndarray,
    *,
    codec: str,
    pix_fmt: str = "yuv420p",
    rate: Fraction = Fraction(30),
    min_psnr: float = MIN_PSNR,
) -> dict:
    frames, facts = decode(path)
    assert frames.shape[0] == source.shape[0]
    assert (facts["width"], facts["height"]) == (source.shape[2], source.shape[1])
    assert facts["codec"] == codec
    assert facts["pix_fmt"] == pix_fmt
    assert facts["rate"] == rate
    pts_seconds = [p * facts["time_base"] for p in facts["pts"]]
    want = [Fraction(i) / rate for i in range(source.shape[0])]
    if facts["format"] == "matroska,webm":  # Matroska stores millisecond timestamps
        assert all(abs(a - b) < Fraction(1, 1000) for a, b in zip(pts_seconds, want, strict=True))
    else:
        assert pts_seconds == want
    rgb = source if source.shape[3] == 3 else np.repeat(source, 3, axis=3)
    for got, want in zip(frames, rgb, strict=True):
        assert psnr(got, want) >= min_psnr
    return facts


def test_npy_to_mp4_defaults(tmp_path: Path, npy: Path, pattern: np.ndarray) -> None:
    out = tmp_path / "out.mp4"
    report = encode_ok(str(npy), "-o", str(out))
    check_video(out, pattern, codec="h264")
    assert report["frames"] == 12 and report["codec"] == "libx264"
    assert report["fps"] == "30/1" and report["pixel_format"] == "yuv420p"
    assert report["backend"] == "cpu" and report["bytes"] == out.stat().st_size
    for key in ("input", "output", "width", "height", "seconds", "fallback_reason"):
        assert key in report


@pytest.mark.parametrize(
    ("ext", "codec"),
    [("mov", "h264"), ("mkv", "h264"), ("webm", "vp9"), ("avi", "mpeg4"), ("flv", "flv"), ("ts", "h264")],
)
def test_containers(tmp_path: Path, npy: Path, pattern: np.ndarray, ext: str, codec: str) -> None:
    out = tmp_path / f"out.{ext}"
    encode_ok(str(npy), "-o", str(out))
    frames, facts = decode(out)
    assert facts["codec"] == codec and frames.shape == pattern.shape
    # AVI's and FLV's own codecs (mpeg4, flv1) run at FFmpeg's default 200 kb/s, as in
    # ffmpeg and torchcodec: a fixed bitrate, not a quality
    floor = 24.0 if codec in ("mpeg4", "flv") else MIN_PSNR
    assert min(psnr(a, b) for a, b in zip(frames, pattern, strict=True)) >= floor


def test_nchw_gray_single_and_float(tmp_path: Path, pattern: np.ndarray) -> None:
    nchw = tmp_path / "nchw.npy"
    np.save(nchw, pattern.transpose(0, 3, 1, 2).copy())
    encode_ok(str(nchw), "-o", str(tmp_path / "nchw.mp4"))
    check_video(tmp_path / "nchw.mp4", pattern, codec="h264")

    gray = pattern.mean(axis=3).astype(np.uint8)
    np.save(tmp_path / "gray.npy", gray)
    encode_ok(str(tmp_path / "gray.npy"), "-o", str(tmp_path / "gray.mkv"))
    frames, _ = decode(tmp_path / "gray.mkv", fmt="gray")
    assert frames.shape == gray.shape
    assert min(psnr(a, b) for a, b in zip(frames, gray, strict=True)) >= MIN_PSNR

    np.save(tmp_path / "one.npy", pattern[0])
    encode_ok(str(tmp_path / "one.npy"), "-o", str(tmp_path / "one.mp4"))
    check_video(tmp_path / "one.mp4", pattern[:1], codec="h264")

    np.save(tmp_path / "float.npy", pattern.astype(np.float32) / 255.0)
    encode_ok(str(tmp_path / "float.npy"), "-o", str(tmp_path / "float.mp4"))
    check_video(tmp_path / "float.mp4", pattern, codec="h264")


def test_forced_layout_resolves_ambiguity(tmp_path: Path, pattern: np.ndarray) -> None:
    tiny = pattern[:2, :4, :4]  # (2, 4, 4, 3): axis 1 and axis 3 both look like channels
    path = tmp_path / "tiny.npy"
    np.save(path, np.ascontiguousarray(tiny))
    proc = run_cli("encode", path, "-o", tmp_path / "a.mp4")
    assert proc.returncode == 65 and b"--layout" in proc.stderr
    assert not (tmp_path / "a.mp4").exists()
    encode_ok(str(path), "-o", str(tmp_path / "b.mkv"), "--layout", "nhwc", "-c", "ffv1")
    frames, _ = decode(tmp_path / "b.mkv")
    assert np.array_equal(frames, tiny)


def test_npz_and_pt(tmp_path: Path, pattern: np.ndarray) -> None:
    np.savez(tmp_path / "one.npz", video=pattern)
    encode_ok(str(tmp_path / "one.npz"), "-o", str(tmp_path / "npz.mp4"))
    check_video(tmp_path / "npz.mp4", pattern, codec="h264")

    np.savez_compressed(tmp_path / "two.npz", a=pattern, b=pattern[:3])
    proc = run_cli("encode", tmp_path / "two.npz", "-o", tmp_path / "x.mp4")
    assert proc.returncode == 2 and b"--key" in proc.stderr
    encode_ok(str(tmp_path / "two.npz"), "--key", "b", "-o", str(tmp_path / "npzb.mp4"))
    check_video(tmp_path / "npzb.mp4", pattern[:3], codec="h264")

    torch.save(torch.from_numpy(pattern).permute(0, 3, 1, 2).contiguous(), tmp_path / "t.pt")
    encode_ok(str(tmp_path / "t.pt"), "-o", str(tmp_path / "pt.mp4"))
    check_video(tmp_path / "pt.mp4", pattern, codec="h264")

    torch.save({"frames": torch.from_numpy(pattern), "other": torch.zeros(3)}, tmp_path / "d.pt")
    encode_ok(str(tmp_path / "d.pt"), "--key", "frames", "-o", str(tmp_path / "dict.mp4"))
    check_video(tmp_path / "dict.mp4", pattern, codec="h264")


def _write_pngs(folder: Path, frames: np.ndarray, first: int = 0) -> None:
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{i + first:05d}.png")


def test_image_sequences(tmp_path: Path, pattern: np.ndarray) -> None:
    frames = pattern[:10]
    _write_pngs(tmp_path / "seq", frames, first=1)
    encode_ok(str(tmp_path / "seq"), "-o", str(tmp_path / "dir.mp4"))
    check_video(tmp_path / "dir.mp4", frames, codec="h264")
    encode_ok(str(tmp_path / "seq" / "*.png"), "-o", str(tmp_path / "glob.mp4"))
    check_video(tmp_path / "glob.mp4", frames, codec="h264")
    encode_ok(
        str(tmp_path / "seq" / "frame_%05d.png"), "--start-number", "3", "-o", str(tmp_path / "pattern.mp4")
    )
    check_video(tmp_path / "pattern.mp4", frames[2:], codec="h264")


def test_video_transcode_keeps_rate(tmp_path: Path, npy: Path, pattern: np.ndarray) -> None:
    src = tmp_path / "src.mkv"
    encode_ok(
        str(npy), "-o", str(src), "-r", "24", "-c", "libx264", "--crf", "0", "--pixel-format", "yuv444p"
    )
    out = tmp_path / "out.mp4"
    report = encode_ok(str(src), "-o", str(out))
    assert report["fps"] == "24/1"
    check_video(out, pattern, codec="h264", rate=Fraction(24))


def test_ntsc_rate_is_exact(tmp_path: Path, npy: Path, pattern: np.ndarray) -> None:
    for text in ("29.97", "30000/1001"):
        out = tmp_path / f"ntsc{text.replace('/', '_')}.mp4"
        report = encode_ok(str(npy), "-o", str(out), "-r", text)
        assert report["fps"] == "30000/1001"
        check_video(out, pattern, codec="h264", rate=Fraction(30000, 1001))


def test_stdout_fragmented_mp4(tmp_path: Path, npy: Path, pattern: np.ndarray) -> None:
    proc = run_cli("encode", npy, "-o", "-", "--format", "mp4", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    out = tmp_path / "piped.mp4"
    out.write_bytes(proc.stdout)
    assert b"moof" in proc.stdout[:4096] or b"moof" in proc.stdout
    check_video(out, pattern, codec="h264")


def test_codec_options_and_extra(tmp_path: Path, npy: Path, pattern: np.ndarray) -> None:
    out = tmp_path / "hevc.mkv"
    report = encode_ok(
        str(npy),
        "-o",
        str(out),
        "-c",
        "hevc",
        "--crf",
        "20",
        "--preset",
        "ultrafast",
        "-x",
        "g=4",
        "-x",
        "bf=0",
    )
    assert report["codec"] == "libx265"
    check_video(out, pattern, codec="hevc")
    with_faststart = tmp_path / "fast.mp4"
    encode_ok(str(npy), "-o", str(with_faststart), "-x", "movflags=+faststart")
    data = with_faststart.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "faststart puts the index first"


def test_overwrite_rules(tmp_path: Path, npy: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    proc = run_cli("encode", npy, "-o", out)
    assert proc.returncode == 73 and b"-y" in proc.stderr
    assert out.read_bytes() == b"precious"
    proc = run_cli("encode", npy, "-o", out, "-n")
    assert proc.returncode == 73 and out.read_bytes() == b"precious"
    proc = run_cli("encode", npy, "-o", out, "-y", "-q")
    assert proc.returncode == 0 and proc.stderr == b"" and proc.stdout == b""
    assert out.read_bytes() != b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.npy", "out.mp4"]


def test_pad_and_odd_sizes(tmp_path: Path, pattern: np.ndarray) -> None:
    odd = np.ascontiguousarray(pattern[:4, :239, :319])
    np.save(tmp_path / "odd.npy", odd)
    proc = run_cli("encode", tmp_path / "odd.npy", "-o", tmp_path / "odd.mp4")
    assert proc.returncode == 65 and b"--pad" in proc.stderr
    assert proc.stderr.decode().count("\n") == 1
    assert not (tmp_path / "odd.mp4").exists()
    report = encode_ok(str(tmp_path / "odd.npy"), "-o", str(tmp_path / "pad.mp4"), "--pad")
    assert (report["width"], report["height"]) == (320, 240)
    frames, _ = decode(tmp_path / "pad.mp4")
    assert psnr(frames[:, :239, :319], odd) >= MIN_PSNR
    # edge replication: the added column repeats the last one
    assert psnr(frames[:, :239, 319], odd[:, :, 318]) >= MIN_PSNR - 5


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["-c", "nosuchcodec"], 69, "unknown codec"),
        (["-c", "libvpx-vp9", "-o", "OUT.mp4"], None, None),
        (["-c", "ffv1", "-o", "OUT.mp4"], 2, "cannot go in a mp4"),
        (["--pixel-format", "yuv422p", "-c", "libvpx", "-o", "OUT.webm"], 2, "pixel format"),
        (["--crf", "99"], 2, "out of range"),
        (["--preset", "warp9"], 2, "unknown --preset"),
        (["-x", "nosuchoption=1"], 2, "unknown option -x nosuchoption"),
        (["-x", "novalue"], 2, "KEY=VALUE"),
        (["-r", "0"], 2, "greater than 0"),
        (["-r", "-5"], 2, "frame rate"),
        (["-r", "abc"], 2, "frame rate"),
        (["--device", "cuda"], 69, "NVENC"),
        (["-c", "h264_nvenc"], 69, "NVENC"),
        (["-o", "OUT.xyz"], 2, "extension"),
        (["-o", "-"], 2, "--format"),
        (["--batch-size", "0"], 2, None),
    ],
)
def test_option_errors(
    tmp_path: Path, npy: Path, args: list[str], code: int | None, fragment: str | None
) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.mp4")]
    proc = run_cli("encode", npy, *args)
    if code is None:  # valid combination, kept in the table as a control
        assert proc.returncode == 0, proc.stderr.decode()
        return
    assert proc.returncode == code, proc.stderr.decode()
    if fragment is not None:
        assert fragment in proc.stderr.decode()
        assert proc.stderr.decode().startswith("nvenc: error: ")
        assert proc.stderr.decode().count("\n") == 1
    assert proc.stdout == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.npy"]


def test_missing_input(tmp_path: Path) -> None:
    proc = run_cli("encode", tmp_path / "nope.npy", "-o", tmp_path / "out.mp4")
    assert proc.returncode == 66 and b"nope.npy" in proc.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_player_friendly_tags(tmp_path: Path, npy: Path) -> None:
    """HEVC in MP4 is tagged hvc1 (Apple players refuse hev1) and 4:2:0 chroma siting is
    declared as centre, which is where a 2x2 mean puts it."""
    from tests.conftest import ffprobe

    for codec, tag in (("libx265", "hvc1"), ("libx264", "avc1")):
        out = tmp_path / f"{codec}.mp4"
        encode_ok(str(npy), "-o", str(out), "-c", codec)
        stream = ffprobe(out)["stream"]
        assert stream["codec_tag_string"] == tag
        assert stream["chroma_location"] == "center"
