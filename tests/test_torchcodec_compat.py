"""Where torchcodec's ``VideoEncoder`` and nvenc's must agree, one test per class of case.

torchcodec's own suite (release 0.13) is the reference these were derived from: the
exception type it raises, the words its messages use, the values its encoders take, the
containers it writes. Every encode here is decoded back with PyAV and compared.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch

from nvenc_cli import VideoEncoder, testsrc
from nvenc_cli.errors import NvencError
from nvenc_cli.options import CONTAINERS
from tests.conftest import SERIAL, decode, psnr, run_cli


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    """Five 64x64 RGB frames with some structure (a gradient that moves)."""
    y, x = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    out = torch.stack(
        [torch.stack([(x * 4 + t * 9) % 256, (y * 4) % 256, (x + y + t * 20) % 256]) for t in range(5)]
    )
    return out.to(torch.uint8)


def _decode_bytes(data: bytes) -> tuple[np.ndarray, dict[str, Any]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        times = [f.time for f in av.open(io.BytesIO(data)).decode(video=0)]
        return np.stack(decoded), {"codec": stream.codec_context.name, "times": times}


def _packets(data: torch.Tensor) -> list[bytes]:
    with av.open(io.BytesIO(data.numpy().tobytes())) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def _nhwc(frames: torch.Tensor) -> np.ndarray:
    return frames.permute(0, 2, 3, 1).numpy()


class _NoWrite:
    def seek(self, offset: int, whence: int = 0) -> int:
        return 0


class _NoSeek:
    def write(self, data: bytes) -> int:
        return len(data)


# (what to call, built-in types torchcodec raises, its words, nvenc's exit code)
ERROR_CASES = [
    ("rank", (ValueError,), r"Expected 4D frames, got frames.shape = torch.Size\(\[10\]\)", 65),
    ("channels", (RuntimeError, ValueError), r"frame must have 3 channels \(R, G, B\), got 2", 65),
    ("frame_rate", (ValueError,), r"frame_rate = 0 must be > 0", 2),
    ("codec", (RuntimeError,), r"Video codec invalid_codec_name not found\.", 69),
    ("crf", (RuntimeError, ValueError), r"crf=-10 is out of valid range \[-1, 51\]", 2),
    ("preset", (RuntimeError, ValueError), r"avcodec_open2 failed: Invalid argument", 2),
    (
        "pix_unknown",
        (RuntimeError,),
        r"Unknown pixel format: invalid_pix_fmt[\s\S]*Supported pixel formats.*yuv420p",
        2,
    ),
    (
        "pix_refused",
        (RuntimeError,),
        r"Specified pixel format rgb24 is not supported[\s\S]*Supported pixel formats.*yuv420p",
        2,
    ),
    ("qp_range", (RuntimeError,), r"qp=-10 is out of valid range", 2),
    ("qp_empty", (RuntimeError,), r"Option qp expects a numeric value but got", 2),
    ("direct_pred", (RuntimeError,), r"Option direct-pred expects a numeric value but got 'a'", 2),
    ("tune", (RuntimeError,), r"avcodec_open2 failed: Invalid argument", 2),
    ("tune_number", (RuntimeError,), r"avcodec_open2 failed: Invalid argument", 2),
    (
        "extension",
        (RuntimeError,),
        r"Couldn't allocate AVFormatContext\. The destination file is .*file\.bad_extension, "
        r"check the desired extension\?",
        2,
    ),
    (
        "format",
        (RuntimeError,),
        r"Couldn't allocate AVFormatContext\. Check the desired format\? Got format=bad_format",
        2,
    ),
    (
        "folder",
        (RuntimeError, OSError),
        r"avio_open failed\. The destination file is .*/bad/path\.mp3, make sure it's a valid path\?",
        73,
    ),
    ("no_write", (RuntimeError,), r"File like object must implement a write method", 2),
    ("no_seek", (RuntimeError,), r"File like object must implement a seek method", 2),
]


def _provoke(case: str, frames: torch.Tensor, tmp_path: Path) -> None:
    out = str(tmp_path / "out.mp4")
    enc = VideoEncoder(frames, frame_rate=30) if case not in ("rank", "channels", "frame_rate") else None
    calls = {
        "rank": lambda: VideoEncoder(torch.zeros(10), frame_rate=30),
        "channels": lambda: VideoEncoder(torch.zeros((5, 2, 64, 64), dtype=torch.uint8), frame_rate=30),
        "frame_rate": lambda: VideoEncoder(frames, frame_rate=0),
        "codec": lambda: enc.to_file(out, codec="invalid_codec_name"),
        "crf": lambda: enc.to_file(out, crf=-10),
        "preset": lambda: enc.to_tensor("mp4", preset="fake_preset"),
        "pix_unknown": lambda: enc.to_file(out, pixel_format="invalid_pix_fmt"),
        "pix_refused": lambda: enc.to_file_like(io.BytesIO(), "mp4", pixel_format="rgb24"),
        "qp_range": lambda: enc.to_file(out, extra_options={"qp": -10}),
        "qp_empty": lambda: enc.to_file(out, extra_options={"qp": ""}),
        "direct_pred": lambda: enc.to_tensor("mp4", extra_options={"direct-pred": "a"}),
        "tune": lambda: enc.to_file(out, extra_options={"tune": "not_a_real_tune"}),
        "tune_number": lambda: enc.to_file(out, extra_options={"tune": 10}),
        "extension": lambda: enc.to_file(str(tmp_path / "file.bad_extension")),
        "format": lambda: enc.to_tensor(format="bad_format"),
        "folder": lambda: enc.to_file(str(tmp_path / "bad" / "path.mp3")),
        "no_write": lambda: enc.to_file_like(_NoWrite(), "mp4"),
        "no_seek": lambda: enc.to_file_like(_NoSeek(), "mp4"),
    }
    calls[case]()


@pytest.mark.parametrize(("case", "types", "words", "code"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_are_what_torchcodec_raises_in_its_words(
    case: str, types: tuple[type, ...], words: str, code: int, frames: torch.Tensor, tmp_path: Path
) -> None:
    with pytest.raises(types[0], match=words) as caught:
        _provoke(case, frames, tmp_path)
    error = caught.value
    for kind in types:
        assert isinstance(error, kind), f"{type(error).__name__} is not a {kind.__name__}"
    assert isinstance(error, NvencError) and error.exit_code == code
    assert str(error).count(re.sub(r"\\", "", words.split("[")[0])[:20]) <= 1  # worded once
    assert not list(tmp_path.glob("*.mp4")), "a refused encode left a file behind"


def test_value_errors_stay_value_errors_only(frames: torch.Tensor) -> None:
    """torchcodec raises ValueError, not RuntimeError, from its Python checks: code that
    catches RuntimeError around it must not start catching these."""
    for bad in (
        lambda: VideoEncoder(frames, frame_rate=0),
        lambda: VideoEncoder(torch.zeros(10), frame_rate=30),
    ):
        with pytest.raises(ValueError) as caught:
            bad()
        assert not isinstance(caught.value, RuntimeError)


def test_cli_messages_carry_no_torchcodec_wording(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((3, 32, 32, 3), np.uint8))
    done = run_cli("encode", tmp_path / "f.npy", "-o", tmp_path / "o.mp4", "--crf", "-10")
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "crf -10 is out of range for libx264: use -1–51" in err
    assert "valid range" not in err and "ffmpeg -h" not in err


@pytest.mark.parametrize("crf", [23, 23.5, -0.9])
def test_crf_takes_the_encoders_own_range(crf: float, frames: torch.Tensor) -> None:
    data = VideoEncoder(frames, frame_rate=30).to_tensor("mp4", crf=crf)
    decoded, facts = _decode_bytes(data.numpy().tobytes())
    assert facts["codec"] == "h264" and len(decoded) == 5
    assert psnr(decoded, _nhwc(frames)) > 25


def test_crf_changes_the_output(frames: torch.Tensor) -> None:
    low = VideoEncoder(frames, frame_rate=30).to_tensor("mp4", crf=-0.9, extra_options=SERIAL)
    high = VideoEncoder(frames, frame_rate=30).to_tensor("mp4", crf=45, extra_options=SERIAL)
    assert len(low) > len(high)


def test_integer_presets_are_x264s_own_index(frames: torch.Tensor) -> None:
    """x264 takes 0-9 for ultrafast…placebo; an int preset means that (torchcodec passes
    str(preset) on)."""
    by_number = VideoEncoder(frames, frame_rate=30).to_tensor("mp4", preset=0, extra_options=SERIAL)
    by_name = VideoEncoder(frames, frame_rate=30).to_tensor("mp4", preset="ultrafast", extra_options=SERIAL)
    medium = VideoEncoder(frames, frame_rate=30).to_tensor("mp4", preset="medium", extra_options=SERIAL)
    assert torch.equal(by_number, by_name)
    assert not torch.equal(by_name, medium)


def test_one_preset_vocabulary_maps_to_vp9_speed(frames: torch.Tensor) -> None:
    """x264's names reach libvpx as deadline/cpu-used (the same bytes as saying so)."""
    enc = VideoEncoder(frames, frame_rate=30)
    named = enc.to_tensor("webm", preset="fast")
    spelled = enc.to_tensor("webm", extra_options={"deadline": "good", "cpu-used": "5"})
    slow = enc.to_tensor("webm", preset="veryslow")
    assert _packets(named) == _packets(spelled)  # WebM's own header carries random UIDs
    assert _packets(named) != _packets(slow)
    assert _packets(enc.to_tensor("webm", preset=5)) == _packets(spelled)  # an int is cpu-used
    decoded, facts = _decode_bytes(named.numpy().tobytes())
    assert facts["codec"] == "vp9" and len(decoded) == 5


def test_one_preset_vocabulary_maps_to_svt_av1_numbers(frames: torch.Tensor) -> None:
    from nvenc_cli.frames import FrameInfo
    from nvenc_cli.options import EncodeOptions
    from nvenc_cli.plan import make_plan

    plan = make_plan(EncodeOptions(codec="libsvtav1", preset="medium"), FrameInfo(64, 64), "mp4")
    assert plan.preset == "6"
    data = VideoEncoder(frames, frame_rate=30).to_tensor("mkv", codec="av1", preset="ultrafast")
    decoded, facts = _decode_bytes(data.numpy().tobytes())
    assert facts["codec"] in ("libdav1d", "av1") and len(decoded) == 5


def test_meaningless_crf_and_preset_warn_in_the_api(frames: torch.Tensor) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        data = VideoEncoder(frames, frame_rate=30).to_tensor("avi", crf=30, preset="ultrafast")
    messages = [str(w.message) for w in seen if issubclass(w.category, UserWarning)]
    assert any("crf=30 ignored: mpeg4 has no crf" in m for m in messages), messages
    assert any("preset='ultrafast' ignored: mpeg4 has no presets" in m for m in messages), messages
    assert all(w.filename == __file__ for w in seen if issubclass(w.category, UserWarning))
    decoded, facts = _decode_bytes(data.numpy().tobytes())
    assert facts["codec"] == "mpeg4" and len(decoded) == 5


def test_meaningless_crf_is_refused_by_the_cli_with_a_hint(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((3, 32, 32, 3), np.uint8))
    done = run_cli("encode", tmp_path / "f.npy", "-o", tmp_path / "o.avi", "--crf", "20")
    assert done.returncode == 2
    assert "mpeg4 has no --crf" in done.stderr.decode() and "-x b=8M" in done.stderr.decode()
    assert not (tmp_path / "o.avi").exists()


@pytest.mark.parametrize("ext", sorted(CONTAINERS))
def test_every_container_round_trips_with_its_default_codec(
    ext: str, frames: torch.Tensor, tmp_path: Path
) -> None:
    expected = {"avi": "mpeg4", "flv": "flv", "gif": "gif", "webm": "vp9"}.get(ext, "h264")
    path = tmp_path / f"out.{ext}"
    VideoEncoder(frames, frame_rate=25).to_file(path)
    decoded, facts = decode(path)
    assert facts["codec"] == expected
    assert len(decoded) == 5
    times = [float(p * facts["time_base"]) for p in facts["pts"]]
    assert times == sorted(times) and len(set(times)) == 5, times
    assert psnr(decoded, _nhwc(frames)) > (12 if ext == "gif" else 22)


def test_avi_default_is_read_back_in_order(frames: torch.Tensor, tmp_path: Path) -> None:
    """libx264's B-frames in AVI come back out of order; FFmpeg's mpeg4 default does not."""
    path = tmp_path / "out.avi"
    VideoEncoder(frames, frame_rate=30).to_file(path)
    _, facts = decode(path)
    assert facts["codec"] == "mpeg4"
    gaps = np.diff([float(p * facts["time_base"]) for p in facts["pts"]])
    assert np.allclose(gaps, 1 / 30)


def test_vp9_crf_0_yuv444p_is_lossless(frames: torch.Tensor, tmp_path: Path) -> None:
    path = tmp_path / "out.webm"
    VideoEncoder(frames, frame_rate=30).to_file(path, crf=0, pixel_format="yuv444p")
    decoded, facts = decode(path, fmt="yuv444p")
    assert facts["codec"] == "vp9" and facts["pix_fmt"] == "yuv444p"
    # x264's crf 0 is lossless: both must hand back the very planes they were given
    reference = tmp_path / "x264.mkv"
    VideoEncoder(frames, frame_rate=30).to_file(reference, crf=0, pixel_format="yuv444p")
    expected, _ = decode(reference, fmt="yuv444p")
    assert np.array_equal(decoded, expected)
    assert psnr(decode(path)[0], _nhwc(frames)) > 40


def test_frame_rate_2000_encodes_where_the_container_can_hold_it(
    frames: torch.Tensor, tmp_path: Path
) -> None:
    path = tmp_path / "fast.mp4"
    VideoEncoder(frames, frame_rate=2000).to_file(path)
    decoded, facts = decode(path)
    assert len(decoded) == 5
    times = [p * facts["time_base"] for p in facts["pts"]]
    assert np.allclose(np.diff([float(t) for t in times]), 1 / 2000)


@pytest.mark.parametrize("ext", ["mkv", "webm", "flv", "avi", "gif"])
def test_frame_rate_too_fast_for_the_container_is_a_clear_error(
    ext: str, frames: torch.Tensor, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"frame rate 2000 is too high for a \w+ file: .* at most \d+ fps"):
        VideoEncoder(frames, frame_rate=2000).to_file(tmp_path / f"fast.{ext}")
    assert not list(tmp_path.iterdir())


def test_zero_frames_is_a_clear_error(tmp_path: Path) -> None:
    """torchcodec writes files no decoder reads back (an MP4 without a video stream's
    samples, a Matroska file that ends at its header); nvenc refuses up front."""
    with pytest.raises(ValueError, match="0 frames: nothing to encode"):
        VideoEncoder(torch.zeros((0, 3, 64, 64), dtype=torch.uint8), frame_rate=30)


@pytest.mark.parametrize(
    ("colorspace", "matrix", "tag"),
    [("bt709", "bt709", "bt709"), ("bt470bg", "bt601", "bt470bg"), ("fcc", "fcc", "fcc")],
)
def test_colorspace_extra_option_converts_with_that_matrix(
    colorspace: str, matrix: str, tag: str, frames: torch.Tensor, tmp_path: Path
) -> None:
    """torchcodec's users tag colour with FFmpeg's options; nvenc converts with that
    matrix and range, so the tag is true of the pixels."""
    from nvenc_cli.color import KR_KB

    path = tmp_path / "out.mkv"
    VideoEncoder(frames, frame_rate=30).to_file(
        path, crf=0, pixel_format="yuv444p", extra_options={"colorspace": colorspace, "color_range": "pc"}
    )
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        planes = [f.to_ndarray(format="yuv444p") for f in container.decode(stream)]
    facts = json.loads(_probe(path))["streams"][0]
    assert facts["color_space"] == tag and facts["color_range"] == "pc"
    kr, kb = KR_KB[matrix]
    rgb = _nhwc(frames).astype(np.float64)
    luma = kr * rgb[..., 0] + (1 - kr - kb) * rgb[..., 1] + kb * rgb[..., 2]
    assert np.abs(np.stack(planes)[:, 0].astype(np.float64) - luma).max() <= 1.0


def _probe(path: Path) -> str:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)]
    return subprocess.run(cmd, capture_output=True, check=True, text=True).stdout


def test_colorspace_nvenc_cannot_convert_with_is_refused(frames: torch.Tensor) -> None:
    with pytest.raises(RuntimeError, match=r"nvenc converts with .*bt709"):
        VideoEncoder(frames, frame_rate=30).to_tensor("mp4", extra_options={"colorspace": "ycgco"})


@pytest.mark.parametrize("ext", ["avi", "flv"])
def test_codecs_without_colour_tags_convert_as_decoders_read_them(ext: str, tmp_path: Path) -> None:
    """MPEG-4 part 2 in AVI and FLV1 carry no colour matrix: decoders assume BT.601, so
    that is what 720p frames are converted with (BT.709 would come back tinted)."""
    colours = torch.tensor([[230, 40, 40], [40, 200, 60], [50, 60, 220], [200, 200, 40]], dtype=torch.uint8)
    frames = colours[:, :, None, None].expand(4, 3, 720, 1280).contiguous()
    path = tmp_path / f"flat.{ext}"
    VideoEncoder(frames, frame_rate=30).to_file(path)
    decoded, _ = decode(path)  # PyAV/swscale: BT.601 for an untagged stream, as every decoder
    centre = decoded[:, 300:420, 560:720].reshape(4, -1, 3).astype(np.float64).mean(axis=1)
    assert np.abs(centre - colours.numpy()).max() < 4, centre


def test_codecs_without_colour_tags_refuse_another_matrix(frames: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="mpeg4 cannot record its colour matrix"):
        VideoEncoder(frames, frame_rate=30).to_tensor("avi", color_matrix="bt709")
    with pytest.raises(ValueError, match="flv1 cannot record its colour matrix"):
        VideoEncoder(frames, frame_rate=30).to_tensor("flv", color_range="pc")


@pytest.mark.parametrize("ext", ["avi", "flv"])
def test_codecs_without_crf_say_what_rate_they_get(ext: str, tmp_path: Path) -> None:
    """mpeg4/flv1 at FFmpeg's 200 kb/s are torchcodec's (and ffmpeg's) default, kept for
    parity; the CLI says so, and -x b= raises it (the note goes, the file grows)."""
    frames = testsrc.batch(640, 360, 60)
    np.save(tmp_path / "f.npy", frames)
    default, faster = tmp_path / f"d.{ext}", tmp_path / f"b.{ext}"
    done = run_cli("encode", tmp_path / "f.npy", "-o", default)
    assert done.returncode == 0 and "encodes at FFmpeg's default 200 kb/s" in done.stderr.decode()
    done = run_cli("encode", tmp_path / "f.npy", "-o", faster, "-x", "b=8M")
    assert done.returncode == 0 and "200 kb/s" not in done.stderr.decode()
    assert len(decode(default)[0]) == len(decode(faster)[0]) == 60
    assert faster.stat().st_size > 2 * default.stat().st_size
    assert psnr(decode(faster)[0], frames) > psnr(decode(default)[0], frames) + 2
