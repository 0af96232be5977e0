"""The Python API's VideoEncoder: torchcodec's contract, plus what nvenc adds to it."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import nvenc_cli
from nvenc_cli import VideoEncoder, testsrc
from nvenc_cli.backends import probe_nvenc
from nvenc_cli.sources.memory import describe
from tests.conftest import ROOT, SERIAL, PipeSink, decode, psnr, run_cli

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device (torch.cuda.is_available() is False)")


@pytest.fixture(scope="module")
def nhwc() -> np.ndarray:
    """8 frames of testsrc2 at 64x48, channels last (how images usually arrive)."""
    return testsrc.batch(64, 48, 8)


@pytest.fixture(scope="module")
def nchw(nhwc: np.ndarray) -> torch.Tensor:
    """The same frames as torchcodec wants them: a contiguous (N, 3, H, W) uint8 tensor."""
    return torch.from_numpy(nhwc).permute(0, 3, 1, 2).contiguous()


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


# --- outputs ------------------------------------------------------------------------------


def test_three_outputs_hold_the_same_frames(tmp_path: Path, nchw: torch.Tensor, nhwc: np.ndarray) -> None:
    encoder = VideoEncoder(nchw, frame_rate=30)
    encoder.to_file(tmp_path / "file.mp4", extra_options=SERIAL)
    sink = io.BytesIO()
    encoder.to_file_like(sink, "mp4", extra_options=SERIAL)
    (tmp_path / "like.mp4").write_bytes(sink.getvalue())
    tensor = encoder.to_tensor("mp4", extra_options=SERIAL)
    (tmp_path / "tensor.mp4").write_bytes(tensor.numpy().tobytes())

    decoded = [decode(tmp_path / name)[0] for name in ("file.mp4", "like.mp4", "tensor.mp4")]
    assert decoded[0].shape == nhwc.shape
    np.testing.assert_array_equal(decoded[0], decoded[1])
    np.testing.assert_array_equal(decoded[0], decoded[2])
    assert psnr(decoded[0], nhwc) > 28


def test_to_tensor_is_a_1d_uint8_cpu_tensor_of_the_file_bytes(tmp_path: Path, nchw: torch.Tensor) -> None:
    # mp4 rather than mkv: FFmpeg's matroska muxer writes a random segment UID.
    encoder = VideoEncoder(nchw, frame_rate=24)
    out = encoder.to_tensor("mp4", crf=30, extra_options=SERIAL)
    assert out.dtype == torch.uint8 and out.ndim == 1 and out.device.type == "cpu"
    encoder.to_file(tmp_path / "same.mp4", crf=30, extra_options=SERIAL)
    assert out.numpy().tobytes() == _bytes(tmp_path / "same.mp4")


def test_channels_last_and_contiguous_give_identical_files(
    tmp_path: Path, nchw: torch.Tensor, nhwc: np.ndarray
) -> None:
    channels_last = nchw.contiguous(memory_format=torch.channels_last)
    assert not channels_last.is_contiguous() and channels_last.shape == nchw.shape
    inputs = {
        "contiguous": nchw,
        "channels_last": channels_last,
        "nhwc_tensor": torch.from_numpy(nhwc),
        "nhwc_numpy": nhwc,
        "nchw_numpy": np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)),
    }
    for name, frames in inputs.items():
        VideoEncoder(frames, frame_rate=30).to_file(tmp_path / f"{name}.mp4", extra_options=SERIAL)
    reference = _bytes(tmp_path / "contiguous.mp4")
    for name in inputs:
        assert _bytes(tmp_path / f"{name}.mp4") == reference, name


@pytest.mark.parametrize(
    ("api_kwargs", "cli_args", "ext"),
    [
        ({"extra_options": SERIAL}, ["-x", "threads=1"], "mp4"),
        (
            {
                "crf": 18,
                "preset": "fast",
                "pixel_format": "yuv444p",
                "extra_options": {"g": 6, **SERIAL},
                "color_matrix": "bt709",
                "color_range": "pc",
            },
            [
                "--crf",
                "18",
                "--preset",
                "fast",
                "--pixel-format",
                "yuv444p",
                "-x",
                "g=6",
                "-x",
                "threads=1",
                "--color-matrix",
                "bt709",
                "--color-range",
                "pc",
            ],
            "mov",
        ),
    ],
    ids=["defaults", "settings"],
)
def test_to_file_matches_the_cli_byte_for_byte(
    tmp_path: Path, pattern: np.ndarray, api_kwargs: dict[str, Any], cli_args: list[str], ext: str
) -> None:
    np.save(tmp_path / "frames.npy", pattern)
    cli_out, api_out = tmp_path / f"cli.{ext}", tmp_path / f"api.{ext}"
    done = run_cli(
        "encode",
        tmp_path / "frames.npy",
        "-o",
        cli_out,
        "-r",
        "24000/1001",
        "--device",
        "cpu",
        "-q",
        *cli_args,
    )
    assert done.returncode == 0, done.stderr.decode()
    # The API side runs in a fresh interpreter, as the CLI does: after many other encodes in
    # this test process it has (rarely) produced a first frame that differs by a few bytes.
    script = (
        "import json, sys, numpy, torch; from fractions import Fraction; "
        "from nvenc_cli import VideoEncoder; "
        "frames = torch.from_numpy(numpy.load(sys.argv[1])).permute(0, 3, 1, 2); "
        "VideoEncoder(frames, frame_rate=Fraction(24000, 1001), device='cpu')"
        ".to_file(sys.argv[2], **json.loads(sys.argv[3]))"
    )
    api = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "frames.npy"), str(api_out), json.dumps(api_kwargs)],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert api.returncode == 0, api.stderr.decode()
    assert _bytes(api_out) == _bytes(cli_out)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (30, Fraction(30)),
        (29.97, Fraction(30000, 1001)),
        (Fraction(24000, 1001), Fraction(24000, 1001)),
        ("60000/1001", Fraction(60000, 1001)),
        (12.5, Fraction(25, 2)),
    ],
)
def test_fractional_frame_rates_are_exact(
    tmp_path: Path, nchw: torch.Tensor, rate: Any, expected: Fraction
) -> None:
    VideoEncoder(nchw[:3], frame_rate=rate).to_file(tmp_path / "rate.mp4")
    _, facts = decode(tmp_path / "rate.mp4")
    assert Fraction(facts["rate"]) == expected


def test_to_file_overwrites_like_torchcodec_unless_told_not_to(tmp_path: Path, nchw: torch.Tensor) -> None:
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"old")
    VideoEncoder(nchw, frame_rate=30).to_file(str(dest))
    assert decode(dest)[0].shape[0] == nchw.shape[0]
    with pytest.raises(OSError, match="already exists"):
        VideoEncoder(nchw, frame_rate=30).to_file(dest, overwrite=False)


def test_non_seekable_file_like_gets_fragmented_mp4(nchw: torch.Tensor, tmp_path: Path) -> None:

    pipe = PipeSink()
    VideoEncoder(nchw, frame_rate=30).to_file_like(pipe, "mp4")
    (tmp_path / "piped.mp4").write_bytes(bytes(pipe.data))
    assert b"moof" in pipe.data
    assert decode(tmp_path / "piped.mp4")[0].shape[0] == nchw.shape[0]


def test_gray_rgba_uint16_and_float_frames(tmp_path: Path, nhwc: np.ndarray) -> None:
    VideoEncoder(nhwc, frame_rate=30).to_file(tmp_path / "u8.mp4")
    VideoEncoder(nhwc.astype(np.float32) / 255, frame_rate=30).to_file(tmp_path / "f32.mp4")
    assert _bytes(tmp_path / "f32.mp4") == _bytes(tmp_path / "u8.mp4")
    VideoEncoder(torch.from_numpy(nhwc).float().div(255).permute(0, 3, 1, 2), frame_rate=30).to_file(
        tmp_path / "torch_f32.mp4"
    )
    assert _bytes(tmp_path / "torch_f32.mp4") == _bytes(tmp_path / "u8.mp4")

    gray = torch.from_numpy(nhwc[..., :1]).permute(0, 3, 1, 2)
    VideoEncoder(gray, frame_rate=30).to_file(tmp_path / "gray.mkv", codec="ffv1")
    np.testing.assert_array_equal(decode(tmp_path / "gray.mkv", "gray")[0], nhwc[..., 0])

    rgba = np.concatenate([nhwc, np.full((*nhwc.shape[:3], 1), 200, np.uint8)], axis=3)
    VideoEncoder(rgba, frame_rate=30).to_file(tmp_path / "rgba.mkv", codec="ffv1")
    np.testing.assert_array_equal(decode(tmp_path / "rgba.mkv", "rgba")[0], rgba)

    deep = nhwc.astype(np.uint16) * 257
    VideoEncoder(deep, frame_rate=30).to_file(tmp_path / "deep.mkv")
    _, facts = decode(tmp_path / "deep.mkv")
    assert facts["pix_fmt"] == "yuv420p10le"


def test_odd_sizes_pad_or_crop_on_request(tmp_path: Path, nchw: torch.Tensor) -> None:
    odd = nchw[:, :, :47, :63]
    with pytest.raises(ValueError, match=r"63x47.*pad=True.*crop=True"):
        VideoEncoder(odd, frame_rate=30).to_file(tmp_path / "odd.mp4")
    VideoEncoder(odd, frame_rate=30).to_file(tmp_path / "pad.mp4", pad=True)
    VideoEncoder(odd, frame_rate=30).to_file(tmp_path / "crop.mp4", crop=True)
    assert decode(tmp_path / "pad.mp4")[0].shape[1:3] == (48, 64)
    assert decode(tmp_path / "crop.mp4")[0].shape[1:3] == (46, 62)


def test_one_frame_as_a_3d_array(tmp_path: Path, nchw: torch.Tensor) -> None:
    VideoEncoder(nchw[0], frame_rate=1).to_file(tmp_path / "still.mp4")
    assert decode(tmp_path / "still.mp4")[0].shape == (1, 48, 64, 3)


def test_ambiguous_shapes_follow_torchcodec_for_tensors_and_images_for_numpy() -> None:
    shape = (2, 3, 8, 3)
    assert describe(torch.zeros(shape, dtype=torch.uint8)).layout.kind == "nchw"
    assert describe(np.zeros(shape, np.uint8)).layout.kind == "nhwc"
    assert describe(np.zeros(shape, np.uint8), "nchw").layout.kind == "nchw"


# --- errors, as torchcodec documents them ---------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "named"),
    [
        ([[1, 2, 3]], "list"),
        (torch.zeros(48, 64, dtype=torch.uint8), r"\(48, 64\)"),
        (torch.zeros(1, 2, 3, 48, 64, dtype=torch.uint8), r"\(1, 2, 3, 48, 64\)"),
        (torch.zeros(2, 2, 48, 64, dtype=torch.uint8), r"\(2, 2, 48, 64\)"),
        (torch.zeros(2, 5, 48, 64, dtype=torch.uint8), r"\(2, 5, 48, 64\)"),
        (torch.zeros(2, 3, 48, 64, dtype=torch.int32), "int32"),
        (torch.zeros(2, 3, 48, 64, dtype=torch.bool), "bool"),
        (np.zeros((2, 48, 64, 3), np.int64), "int64"),
        (torch.zeros(0, 3, 48, 64, dtype=torch.uint8), "0 frames"),
    ],
    ids=["not-an-array", "2d", "5d", "2-channels", "5-channels", "int32", "bool", "int64", "empty"],
)
def test_bad_frames_raise_value_error_naming_them(frames: Any, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        VideoEncoder(frames, frame_rate=30)


def test_tensors_without_pixel_data_are_refused() -> None:
    with pytest.raises(ValueError, match="meta"):
        VideoEncoder(torch.zeros(2, 3, 48, 64, dtype=torch.uint8, device="meta"), frame_rate=30)
    with pytest.raises(ValueError, match="sparse"):
        VideoEncoder(torch.zeros(2, 3, 48, 64, dtype=torch.uint8).to_sparse(), frame_rate=30)


def test_messages_use_the_python_argument_names(tmp_path: Path, nchw: torch.Tensor) -> None:
    encoder = VideoEncoder(nchw, frame_rate=30)
    with pytest.raises(ValueError, match=r"^crf 80 is out of range") as bad_crf:
        encoder.to_file(tmp_path / "out.mp4", crf=80)
    with pytest.raises(ValueError, match=r"unknown extra_options key 'nope'") as bad_key:
        encoder.to_file(tmp_path / "out.mp4", extra_options={"nope": 1})
    with pytest.raises(ValueError, match=r"unknown format 'wmv'"):
        encoder.to_tensor("wmv")
    for caught in (bad_crf, bad_key):
        assert "--" not in str(caught.value) and "-x" not in str(caught.value)


def test_layout_override_refuses_a_shape_without_channels_there() -> None:
    with pytest.raises(ValueError, match="8 channels"):
        VideoEncoder(torch.zeros(2, 8, 48, 3, dtype=torch.uint8), frame_rate=30, layout="nchw")


@pytest.mark.parametrize("rate", [0, -1, 0.0, math.nan, math.inf, "fast", None, True])
def test_bad_frame_rate_raises_value_error_naming_it(nchw: torch.Tensor, rate: Any) -> None:
    with pytest.raises(ValueError, match=str(rate) if rate not in (None, True) else repr(rate)):
        VideoEncoder(nchw, frame_rate=rate)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"pixel_format": "yuv999p"}, "yuv999p"),
        ({"crf": 80}, "80"),
        ({"crf": "high"}, "high"),
        ({"preset": "warp"}, "warp"),
        ({"extra_options": {"no_such_option": 1}}, "no_such_option"),
        ({"color_matrix": "bt123"}, "bt123"),
        ({"color_range": "wide"}, "wide"),
    ],
)
def test_bad_settings_raise_value_error_and_write_nothing(
    tmp_path: Path, nchw: torch.Tensor, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        VideoEncoder(nchw, frame_rate=30).to_file(tmp_path / "out.mp4", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("dest", "named"), [("out", "out"), ("out.xyz", "xyz"), (io.BytesIO(), "BytesIO")])
def test_to_file_refuses_destinations_it_cannot_name_a_container_for(
    tmp_path: Path, nchw: torch.Tensor, dest: Any, named: str
) -> None:
    target = dest if not isinstance(dest, str) else tmp_path / dest
    with pytest.raises(ValueError, match=named):
        VideoEncoder(nchw, frame_rate=30).to_file(target)


def test_unknown_format_raises_value_error(nchw: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="wmv"):
        VideoEncoder(nchw, frame_rate=30).to_tensor("wmv")


@pytest.mark.parametrize("missing", ["write", "seek"])
def test_file_like_without_write_or_seek_is_refused_before_encoding(nchw: torch.Tensor, missing: str) -> None:
    calls: list[str] = []

    class Half:
        def write(self, data: bytes) -> int:
            calls.append("write")
            return len(data)

        def seek(self, offset: int, whence: int = 0) -> int:
            calls.append("seek")
            return 0

    obj = Half()
    setattr(obj, missing, None)
    with pytest.raises(ValueError, match=rf"Half lacks {missing}\(\)"):
        VideoEncoder(nchw, frame_rate=30).to_file_like(obj, "mp4")
    assert calls == []


@pytest.mark.usefixtures("broken_encoder")
def test_encoder_failure_raises_runtime_error_and_leaves_no_file(tmp_path: Path, nchw: torch.Tensor) -> None:
    with pytest.raises(RuntimeError, match="encoder on fire"):
        VideoEncoder(nchw, frame_rate=30).to_file(tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


def test_unknown_codec_raises_runtime_error(tmp_path: Path, nchw: torch.Tensor) -> None:
    with pytest.raises(RuntimeError, match="no_such_codec"):
        VideoEncoder(nchw, frame_rate=30).to_file(tmp_path / "out.mkv", codec="no_such_codec")


def test_bad_device_raises_value_error(nchw: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="tpu"):
        VideoEncoder(nchw, frame_rate=30, device="tpu")


@pytest.mark.skipif(probe_nvenc().ok, reason="NVENC is available here")
def test_device_cuda_without_nvenc_raises_runtime_error(tmp_path: Path, nchw: torch.Tensor) -> None:
    with pytest.raises(RuntimeError, match="NVENC"):
        VideoEncoder(nchw, frame_rate=30, device="cuda").to_file(tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


# --- CUDA tensors (skipped without a GPU) ----------------------------------------------------


@needs_cuda
def test_cuda_frames_encoded_on_the_cpu_match_cpu_frames(tmp_path: Path, nchw: torch.Tensor) -> None:
    VideoEncoder(nchw, frame_rate=30).to_file(tmp_path / "host.mp4")
    VideoEncoder(nchw.cuda(), frame_rate=30, device="cpu").to_file(tmp_path / "gpu.mp4")
    assert _bytes(tmp_path / "gpu.mp4") == _bytes(tmp_path / "host.mp4")


@needs_cuda
def test_cuda_frames_pick_nvenc_or_say_how_to_use_the_cpu(tmp_path: Path, nchw: torch.Tensor) -> None:
    encoder = VideoEncoder(nchw.cuda(), frame_rate=30)
    if not probe_nvenc().ok:
        with pytest.raises(RuntimeError, match="device='cpu'"):
            encoder.to_file(tmp_path / "out.mp4")
        return
    encoder.to_file(tmp_path / "out.mp4")
    frames, facts = decode(tmp_path / "out.mp4")
    assert frames.shape[0] == nchw.shape[0] and facts["codec"] == "h264"


@needs_cuda
def test_cuda_windows_stay_on_the_gpu_for_nvenc(nchw: torch.Tensor) -> None:
    from nvenc_cli.sources.memory import to_backend

    frames = nchw.cuda().contiguous(memory_format=torch.channels_last)
    described = describe(frames)
    window = to_backend(frames[:4], described.layout, 8, 0, "nvenc")
    assert window.is_cuda and window.is_contiguous() and window.shape == (4, 48, 64, 3)
    host = to_backend(frames[:4], described.layout, 8, 0, "cpu")
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(window.cpu().numpy(), host)


# --- packaging -----------------------------------------------------------------------------


def test_import_stays_light_and_exports_are_lazy() -> None:
    code = (
        "import sys, nvenc_cli\n"
        "heavy = [m for m in ('torch', 'av', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert 'VideoEncoder' in dir(nvenc_cli)\n"
        "from nvenc_cli import VideoEncoder, VideoWriter, open_writer\n"
        "print(VideoEncoder.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("nvenc_cli.api")
    with pytest.raises(AttributeError, match="no_such_name"):
        nvenc_cli.no_such_name  # noqa: B018


def test_api_guide_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = [ROOT / "docs" / "api" / name for name in ("index.md", "writer.md", "audio.md")]
    section = "\n".join(page.read_text() for page in pages)
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the Python API guide has no examples"
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(blocks), "docs/api (Python API guide)", "exec"), {})
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["narrated.mp4", "ntsc.mov", "out.mp4", "rollout.mp4", "speech.flac", "talk.mp4"]
    assert decode(tmp_path / "rollout.mp4")[0].shape == (48, 128, 128, 3)


def test_every_public_name_has_a_docstring() -> None:
    for name in nvenc_cli.__all__:
        obj = getattr(nvenc_cli, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name
    for cls in (nvenc_cli.VideoEncoder, nvenc_cli.VideoWriter):
        for attr, value in vars(cls).items():
            if not attr.startswith("_") and (callable(value) or isinstance(value, property)):
                assert (value.__doc__ or "").strip(), f"{cls.__name__}.{attr}"
