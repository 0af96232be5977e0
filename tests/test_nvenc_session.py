"""The whole NVENC path — convert, Encode/EndEncode, split, timestamp, tag, mux — on the CPU.

``import PyNvVideoCodec`` gets tests/nvenc_double.py's emulation of the real library, which
reads the surfaces through the same DLPack hand-off and encodes them with libx264/libx265
(lossless) or SVT-AV1, returning real bytes with an encoder's lag. So these tests see what a
real NVENC run would write, down to the pixels, and fail on lost tail frames, shifted
timestamps, pitch skew or wrong tags.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import nvenc_double
import pytest
import torch

from nvenc_cli import color
from nvenc_cli.errors import EncoderError
from nvenc_cli.frames import FrameInfo
from nvenc_cli.options import EncodeOptions, container_for
from nvenc_cli.pipeline import run
from nvenc_cli.plan import make_plan


@pytest.fixture
def double(monkeypatch):
    """PyNvVideoCodec's emulation on a CPU "device"; returns the emulated library."""
    return nvenc_double.install_on_cpu(monkeypatch)


# The CLI sets these for its own process (report.py); restore them after each in-process run
# so later subprocess tests see the environment they were started with.
CLI_ENV = {
    "SVT_LOG": os.environ.get("SVT_LOG"),
    "AV_LOG_FORCE_NOCOLOR": os.environ.get("AV_LOG_FORCE_NOCOLOR"),
}


def cli(*args: str):
    from typer.testing import CliRunner

    from nvenc_cli.cli import app

    return CliRunner().invoke(app, list(args), env=CLI_ENV)


def clip(count: int, width: int, height: int) -> np.ndarray:
    """Frames whose top-left block encodes their index, over moving smooth content."""
    frames = np.zeros((count, height, width, 3), np.uint8)
    xs = np.linspace(0, 255, width, dtype=np.float64)
    for i in range(count):
        frames[i, :, :, 0] = (xs + 5 * i) % 256
        frames[i, :, :, 1] = np.linspace(40, 200, height)[:, None]
        frames[i, :, (i * 7) % width : (i * 7) % width + 12, 2] = 230
        frames[i, :8, :8] = (i * 10) % 256
    return frames


def encode(
    frames: np.ndarray | torch.Tensor,
    out: Path,
    codec: str = "h264",
    batch: int = 5,
    **options,
):
    count, height, width, channels = frames.shape
    plan = make_plan(
        EncodeOptions(device="cuda", codec=codec, batch_size=batch, **options),
        FrameInfo(width, height, channels, 16 if frames.dtype in (np.uint16, torch.uint16) else 8),
        container_for(str(out), None),
    )
    assert plan.backend == "nvenc"
    windows = (frames[i : i + batch] for i in range(0, count, batch))
    return plan, run(windows, plan, str(out))


def decode(path: Path) -> tuple[list[av.VideoFrame], SimpleNamespace]:
    """Every frame and the stream's facts, read while the file is open (PyAV 18.1 refuses
    a closed container's stream attributes)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        facts = SimpleNamespace(
            average_rate=stream.average_rate, time_base=stream.time_base, codec_context=stream.codec_context
        )
    return frames, facts


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    dtype = np.uint16 if frame.format.name.endswith("le") else np.uint8
    out = []
    for plane in frame.planes:
        data = np.frombuffer(plane, dtype=dtype).reshape(
            plane.height, plane.line_size // np.dtype(dtype).itemsize
        )
        out.append(data[:, : plane.width].astype(np.int64))
    return out


def expected_planes(frames: np.ndarray, plan) -> list[tuple[np.ndarray, ...]]:
    """The CPU path's planes: swscale's for 8-bit samples (the session repeats its integer
    steps), color.py's maths for 16-bit samples."""
    from nvenc_cli.backends.cpu import swscale_planes
    from nvenc_cli.backends.nvenc_options import settings_for

    if frames.dtype == np.uint8:
        full = plan.color.range == "pc"
        made = [swscale_planes(frame, plan.pixel_format, plan.color.matrix, full) for frame in frames]
        assert all(m is not None for m in made), plan.pixel_format
        return [tuple(m) for m in made]

    surface = settings_for(plan).surface
    spec = color.YuvSpec(plan.color.matrix, plan.color.range == "pc", surface.bits, surface.chroma)
    bits = 16 if frames.dtype == np.uint16 else 8
    y, u, v = color.rgb_to_planes(
        torch.from_numpy(frames.astype(np.int32) if bits == 16 else frames), spec, bits
    )
    return [(y[i].numpy(), u[i].numpy(), v[i].numpy()) for i in range(frames.shape[0])]


CASES = [
    ("h264", "mp4"),
    ("h264", "mkv"),
    ("h264", "ts"),
    ("hevc", "mp4"),
    ("hevc", "mkv"),
    ("hevc", "ts"),
    ("av1", "mp4"),
    ("av1", "mkv"),
]


@pytest.mark.parametrize(("codec", "ext"), CASES)
def test_every_frame_lands_once_in_order_with_timestamps(double, tmp_path, codec, ext):
    frames = clip(23, 202, 66)  # 202 is not a multiple of 16 (nor of 4)
    out = tmp_path / f"out.{ext}"
    _, result = encode(frames, out, codec=codec, batch=5)
    decoded, stream = decode(out)
    assert result.frames == 23 and len(decoded) == 23
    assert (decoded[0].width, decoded[0].height) == (202, 66)
    # MPEG-TS shifts the whole timeline by the reorder delay (no negative dts): compare
    # against the first frame, as players do with the stream's start time.
    seconds = [float((f.pts - decoded[0].pts) * f.time_base) for f in decoded]
    assert seconds == pytest.approx([i / 30 for i in range(23)], abs=1e-3)
    assert stream.average_rate == 30
    markers = [int(f.to_ndarray(format="rgb24")[2:6, 2:6, 0].mean()) for f in decoded]
    tolerance = 12 if codec == "av1" else 3
    assert all(abs(m - (i * 10) % 256) <= tolerance for i, m in enumerate(markers)), markers
    assert decoded[0].key_frame
    encoder = double.created[-1]
    assert encoder.end_calls == 1 and encoder.frames == 23 and encoder.ignored == []
    assert all(
        how == "dlpack" and shape == (99, 202) and stride == (202, 1)
        for how, shape, stride, _ in encoder.inputs
    )
    assert "NVENC" in result.backend_description


@pytest.mark.parametrize(("codec", "ext"), [("h264", "mp4"), ("hevc", "mkv")])
def test_pixels_are_exactly_the_colour_maths(double, tmp_path, codec, ext):
    """Lossless: decoded Y'CbCr equals the CPU path's planes sample for sample."""
    frames = clip(9, 200, 120)
    out = tmp_path / f"out.{ext}"
    plan, _ = encode(frames, out, codec=codec, batch=4, crf=0)
    decoded, _ = decode(out)
    for frame, want in zip(decoded, expected_planes(frames, plan), strict=True):
        got = planes(frame)
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize(
    ("pixel_format", "codec", "decoded_format"),
    [
        ("p010le", "hevc", "yuv420p10le"),
        ("yuv444p", "h264", "yuv444p"),
        ("yuv444p16le", "hevc", "yuv444p10le"),
    ],
)
def test_ten_bit_and_444_surfaces(double, tmp_path, pixel_format, codec, decoded_format):
    frames = clip(6, 64, 48).astype(np.uint16) * 257
    if pixel_format == "yuv444p":
        frames = clip(6, 64, 48)
    out = tmp_path / "out.mkv"
    plan, _ = encode(frames, out, codec=codec, batch=4, pixel_format=pixel_format, crf=0)
    decoded, _ = decode(out)
    assert len(decoded) == 6 and decoded[0].format.name == decoded_format
    for frame, want in zip(decoded, expected_planes(frames, plan), strict=True):
        assert all(np.array_equal(g, w) for g, w in zip(planes(frame), want, strict=True))
    fmt = double.created[-1].fmt
    assert fmt == {"p010le": "P010", "yuv444p": "YUV444", "yuv444p16le": "YUV444_10BIT"}[pixel_format]


@pytest.mark.parametrize(
    ("size", "matrix", "colour_range", "tags"),
    [
        ((64, 48), None, None, (6, 1, 6, 6)),  # < 720 lines: BT.601 (smpte170m), limited
        ((1280, 720), None, None, (1, 1, 1, 1)),  # 720 lines: BT.709
        ((64, 48), "bt709", "pc", (1, 2, 1, 1)),
        ((64, 48), "bt2020", None, (9, 1, 14, 9)),
    ],
)
def test_stream_is_tagged_like_the_maths(double, tmp_path, size, matrix, colour_range, tags):
    width, height = size
    out = tmp_path / "out.mp4"
    plan, _ = encode(clip(3, width, height), out, batch=3, color_matrix=matrix, color_range=colour_range)
    decoded, stream = decode(out)
    _, rng, _, space = tags
    frame = decoded[0]
    assert (frame.color_primaries, frame.color_range, frame.color_trc, frame.colorspace) == tags
    ctx = stream.codec_context
    assert (ctx.color_primaries, ctx.color_range, ctx.color_trc, ctx.colorspace) == tags
    assert plan.color.space == space and plan.color.range_code == rng


@pytest.mark.parametrize("batch", [1, 4, 30])
def test_batching_and_encoder_lag_do_not_shift_frames(double, tmp_path, batch):
    frames = clip(17, 96, 64)
    out = tmp_path / "out.mp4"
    encode(frames, out, batch=batch)
    decoded, _ = decode(out)
    assert [f.pts for f in decoded] == sorted({f.pts for f in decoded}) and len(decoded) == 17
    markers = [int(f.to_ndarray(format="rgb24")[2:6, 2:6, 0].mean()) for f in decoded]
    assert all(abs(m - (i * 10) % 256) <= 3 for i, m in enumerate(markers))


def test_pynvvideocodec_2x_dict_output(double, tmp_path):
    out = tmp_path / "out.mp4"
    encode(clip(12, 64, 48), out, codec="hevc")
    decoded, _ = decode(out)
    assert len(decoded) == 12


def test_torch_tensor_input_matches_numpy_input(double, tmp_path):
    frames = clip(7, 64, 48)
    encode(frames, tmp_path / "a.mkv", batch=3)
    encode(torch.from_numpy(frames), tmp_path / "b.mkv", batch=3)
    a, _ = decode(tmp_path / "a.mkv")
    b, _ = decode(tmp_path / "b.mkv")
    assert all(np.array_equal(x.to_ndarray(), y.to_ndarray()) for x, y in zip(a, b, strict=True))


def test_gray_and_rgba_inputs(double, tmp_path):
    gray = clip(5, 64, 48)[..., :1].copy()
    rgba = np.concatenate([clip(5, 64, 48), np.full((5, 48, 64, 1), 255, np.uint8)], axis=-1)
    for name, frames in (("gray.mp4", gray), ("rgba.mp4", rgba)):
        encode(frames, tmp_path / name)
        decoded, _ = decode(tmp_path / name)
        assert len(decoded) == 5


def test_encoder_failure_ends_session_and_leaves_no_file(double, tmp_path):
    double.gpu.encode_status_at = 6
    out = tmp_path / "out.mp4"
    with pytest.raises(EncoderError, match=r"frame 6.*returned error 20"):
        encode(clip(15, 64, 48), out, batch=4)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert double.created[-1].end_calls == 1


def test_missing_tail_frames_are_an_error(double, tmp_path, monkeypatch):
    """If the encoder drops frames at EndEncode (the sample's bug), the encode fails loudly."""

    def lossy_end(self):
        self.end_calls += 1
        return []

    monkeypatch.setattr(nvenc_double.FakeEncoder, "EndEncode", lossy_end)
    out = tmp_path / "out.mp4"
    with pytest.raises(EncoderError, match="pictures for 20 frames"):
        encode(clip(20, 64, 48), out)
    assert not out.exists()


def test_create_encoder_keywords(double, tmp_path):
    encode(clip(3, 64, 48), tmp_path / "out.ts", crf=30, preset="slow")
    encoder = double.created[-1]
    kwargs = encoder.kwargs
    assert kwargs["codec"] == "h264" and kwargs["preset"] == "P5"
    assert kwargs["rc"] == "vbr" and kwargs["cq"] == "30" and kwargs["repeatspspps"] == "1"
    assert encoder.context == nvenc_double.FakeCuda.BASE and encoder.ignored == []


def test_cli_end_to_end_with_the_double(double, tmp_path, monkeypatch):
    frames = clip(10, 96, 64)
    source = tmp_path / "in.npy"
    np.save(source, frames)
    out = tmp_path / "out.mp4"
    result = cli(
        "encode", str(source), "-o", str(out), "--device", "cuda", "--json", "-x", "bf=1", "-x", "g=4"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (
        report["backend"] == "nvenc" and report["codec"] == "h264_nvenc" and report["fallback_reason"] is None
    )
    decoded, stream = decode(out)
    assert len(decoded) == 10 and stream.average_rate == Fraction(30)
    assert [f.key_frame for f in decoded] == [i % 4 == 0 for i in range(10)]
    bad = cli("encode", str(source), "-o", str(tmp_path / "x.mp4"), "--device", "cuda", "-x", "nope=1")
    assert bad.exit_code == 2 and not (tmp_path / "x.mp4").exists()


def test_cvcuda_converter_leaves_8_bit_frames_to_swscales_integer_steps(double, monkeypatch):
    """CV-CUDA's float kernels cannot give the CPU path's 8-bit planes, so CvcudaConverter
    hands uint8 frames to TorchConverter (swscale's integer steps) and runs its kernels on
    16-bit frames only, falling back to color.py when they fail.

    The CV-CUDA stand-in has only the names CvcudaConverter calls (cvcuda 0.19:
    ``as_stream`` wraps an external stream handle; ``as_tensor``, ``color_twist``,
    ``resize``); every kernel call is recorded and fails, as a CV-CUDA without a GPU does.
    """
    from contextlib import nullcontext

    from nvenc_cli.backends import nvenc
    from nvenc_cli.backends.cpu import swscale_planes

    calls: list[str] = []

    def kernel(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise RuntimeError(f"{name}: no CUDA device")

        return call

    stub = SimpleNamespace(
        as_stream=lambda handle: handle,
        as_tensor=kernel("as_tensor"),
        color_twist=kernel("color_twist"),
        resize=kernel("resize"),
        Interp=SimpleNamespace(AREA=0),
    )
    monkeypatch.setitem(__import__("sys").modules, "cvcuda", stub)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: nullcontext())  # work is in order on the CPU
    frames = clip(3, 64, 48)
    count, height, width, _ = frames.shape
    plan = make_plan(EncodeOptions(device="cuda", codec="h264"), FrameInfo(width, height), "mp4")
    spec = color.YuvSpec(plan.color.matrix, plan.color.range == "pc", 8, "420")
    converter = nvenc.CvcudaConverter(spec, SimpleNamespace(cuda_stream=0, device=torch.device("cpu")), plan)

    y, u, v = color.unpack(converter(torch.from_numpy(frames)), spec)
    assert calls == [] and not converter._failed
    for i in range(count):
        reference = swscale_planes(frames[i], plan.pixel_format, plan.color.matrix, plan.color.range == "pc")
        assert all(np.array_equal(p[i].numpy(), r) for p, r in zip((y, u, v), reference, strict=True))

    deep = torch.from_numpy(frames.astype(np.int32) * 257).to(torch.uint16)
    surfaces = converter(deep)
    assert calls and converter._failed and converter.name == "torch (CV-CUDA failed)"
    assert torch.equal(surfaces, color.convert(deep, spec, 16))
