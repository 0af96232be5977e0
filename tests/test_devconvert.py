"""Conversion on the frames' device (devconvert.py): the same pictures as the CPU path.

Every test runs the route's torch code on torch's CPU device (the ``NVENC_DEVICE_CONVERT``
switch sends CPU tensors through it); the ``cuda`` tests run it on a GPU where one exists
(``make gpu-check``). Outputs are encoded losslessly (FFV1), decoded with PyAV and
compared pixel by pixel with the same frames encoded by the CPU path (swscale, or exact.py
for 16-bit samples).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import nvenc_cli  # noqa: E402
from nvenc_cli import color, devconvert  # noqa: E402
from nvenc_cli.errors import InputDataError, UnavailableError  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch")


def _decode(path: Path, fmt: str) -> list[list[np.ndarray]]:
    """Each frame's planes as decoded, trimmed to the picture (no line padding)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.format.name == fmt
            out.append([_plane(plane, frame) for plane in frame.planes])
    return out


def _plane(plane: av.video.plane.VideoPlane, frame: av.VideoFrame) -> np.ndarray:
    wide = frame.format.components[0].bits > 8
    dtype = np.uint16 if wide else np.uint8
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // (2 if wide else 1))
    return rows[:, : plane.width].astype(np.int32)


def _encode(frames, path: Path, switch: bool, monkeypatch, **options):
    monkeypatch.setenv(devconvert.SWITCH, "1" if switch else "0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = nvenc_cli.encode(frames, path, codec="ffv1", frame_rate=10, device="cpu", **options)
    return result, [str(w.message) for w in caught]


def _both(frames, tmp_path: Path, monkeypatch, fmt: str, **options):
    host, host_notes = _encode(frames, tmp_path / "host.mkv", False, monkeypatch, pixel_format=fmt, **options)
    dev, dev_notes = _encode(frames, tmp_path / "dev.mkv", True, monkeypatch, pixel_format=fmt, **options)
    assert host.route == "cpu" and dev.route == "torch-cpu-convert+cpu-encode"
    assert host_notes == dev_notes and host.plan.notices == dev.plan.notices
    a, b = _decode(tmp_path / "host.mkv", fmt), _decode(tmp_path / "dev.mkv", fmt)
    assert len(a) == len(b) == host.frames == dev.frames
    return host, dev, a, b


def _diff(a, b) -> tuple[int, float]:
    diffs = [np.abs(x - y) for fa, fb in zip(a, b, strict=True) for x, y in zip(fa, fb, strict=True)]
    worst = max(int(d.max()) for d in diffs)
    share = sum(int((d > 0).sum()) for d in diffs) / sum(d.size for d in diffs)
    return worst, share


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv444p", "yuv420p10le", "yuv444p10le"])
@pytest.mark.parametrize("options", [{}, {"color_range": "pc", "color_matrix": "bt2020"}])
def test_uint8_frames_equal_the_cpu_path(tmp_path, monkeypatch, fmt, options):
    """8-bit samples: the route repeats swscale's integer steps (swsmatch.py), so the
    pictures are the CPU path's to the code, in either range and any matrix."""
    gen = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (6, 3, 48, 80), dtype=torch.uint8, generator=gen)
    host, dev, a, b = _both(frames, tmp_path, monkeypatch, fmt, **options)
    assert _diff(a, b) == (0, 0.0)
    pixels = 48 * 80 * (1.5 if "420" in fmt else 3) * (2 if "10" in fmt else 1)
    assert dev.bytes_to_host == 6 * pixels and host.bytes_to_host == 0


def test_uint8_frames_fall_back_to_color_py_where_swscale_is_not_reproduced(tmp_path, monkeypatch):
    """A swscale whose constants differ (another FFmpeg build) fails the first-use check:
    the route converts with color.py instead, within one code of the CPU path."""
    from nvenc_cli import swsmatch

    swsmatch.variant_for.cache_clear()
    wrong = swsmatch.Coefficients((1, 1, 1), (1, 1, 1), (1, 1, 1))
    monkeypatch.setattr(swsmatch, "coefficients", lambda matrix: wrong)
    try:
        assert swsmatch.variant_for("yuv420p", color.YuvSpec("bt709", False, 8, "420"), 3) is None
        gen = torch.Generator().manual_seed(1)
        frames = torch.randint(0, 256, (3, 3, 32, 48), dtype=torch.uint8, generator=gen)
        _, _, a, b = _both(frames, tmp_path, monkeypatch, "yuv420p")
        worst, share = _diff(a, b)
        assert worst == 1 and 0 < share < 0.1, (worst, share)
    finally:
        swsmatch.variant_for.cache_clear()


@pytest.mark.parametrize("fmt", ["yuv420p10le", "yuv444p10le"])
def test_uint16_frames_equal_the_exact_cpu_path(tmp_path, monkeypatch, fmt):
    """16-bit samples: the CPU path uses exact.py (float64), the route color.py (float32):
    the same formula, rounded once, so the codes agree but for float32's last bit."""
    gen = torch.Generator().manual_seed(2)
    frames = torch.randint(0, 65536, (4, 40, 64, 3), dtype=torch.int32, generator=gen).to(torch.uint16)
    _, _, a, b = _both(frames, tmp_path, monkeypatch, fmt, layout="nhwc")
    worst, share = _diff(a, b)
    assert worst <= 1 and share < 0.001, (worst, share)


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv420p10le"])
def test_float_frames_odd_size_padded(tmp_path, monkeypatch, fmt):
    """Float input at an odd size: value mapping and --pad run on the tensor's device.
    Mapped to 8-bit codes, the pictures are the CPU path's exactly; mapped to 16-bit
    codes for a 10-bit output, within one code (float32 against exact.py's float64)."""
    gen = torch.Generator().manual_seed(3)
    frames = torch.rand(5, 3, 37, 51, generator=gen)
    _, dev, a, b = _both(frames, tmp_path, monkeypatch, fmt, pad=True)
    assert (dev.plan.width, dev.plan.height) == (52, 38)
    worst, _ = _diff(a, b)
    assert worst <= (0 if fmt == "yuv420p" else 1), worst


def test_clamp_notices_are_the_cpu_paths(tmp_path, monkeypatch):
    frames = torch.linspace(-0.5, 1.5, 3 * 3 * 16 * 16).reshape(3, 3, 16, 16)
    _, dev, a, b = _both(frames, tmp_path, monkeypatch, "yuv444p", clamp=True)
    assert dev.plan.notices == ("clamped 1152 samples (50 %) to [0, 1], the farthest by 0.5",)
    assert _diff(a, b)[0] <= 1


def test_out_of_range_floats_are_refused_as_on_the_cpu_path(tmp_path, monkeypatch):
    frames = torch.linspace(-0.5, 1.5, 3 * 3 * 16 * 16).reshape(3, 3, 16, 16)
    monkeypatch.setenv(devconvert.SWITCH, "1")
    with pytest.raises(InputDataError, match=r"outside \[0, 1\]") as caught:
        nvenc_cli.encode(frames, tmp_path / "o.mkv", codec="ffv1", pixel_format="yuv420p", device="cpu")
    assert caught.value.exit_code == 65 and list(tmp_path.iterdir()) == []


def test_gray_frames_pass_unchanged(tmp_path, monkeypatch):
    frames = torch.arange(4 * 24 * 32, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(4, 1, 24, 32)
    _, _, a, b = _both(frames, tmp_path, monkeypatch, "gray")
    assert _diff(a, b)[0] == 0
    assert np.array_equal(b[2][0], frames[2, 0].numpy().astype(np.int32))


def test_semiplanar_planes_are_swscales_nv12_and_p010():
    """NV12/P010 planes (what FFmpeg's nvenc is handed) are the CPU path's swscale output
    for those formats, split at the luma rows, and PyAV's from_dlpack (its 2-plane path)
    takes them as they are."""
    from nvenc_cli.backends.cpu import swscale_planes

    gen = torch.Generator().manual_seed(4)
    frames = torch.randint(0, 256, (2, 16, 24, 3), dtype=torch.uint8, generator=gen)
    for fmt, bits in (("nv12", 8), ("p010le", 10)):
        plan = _plan(fmt, 24, 16)
        y, uv = devconvert.to_planes(frames, plan)
        assert y.dtype == uv.dtype == (torch.uint8 if bits == 8 else torch.uint16)
        for index in range(2):
            reference = swscale_planes(frames[index].numpy(), fmt, "bt601", False)
            words = torch.cat((y[index], uv[index])).to(torch.int32) >> (16 - bits if bits > 8 else 0)
            luma, pairs = words[:16].numpy(), words[16:].numpy()
            assert np.array_equal(luma, reference[0])
            assert np.array_equal(pairs[:, 0::2], reference[1])
            assert np.array_equal(pairs[:, 1::2], reference[2])
        frame = av.VideoFrame.from_dlpack((y[0].clone(), uv[0].clone()), format=fmt)
        assert (frame.format.name, frame.width, frame.height) == (fmt, 24, 16)


def _plan(fmt: str, width: int, height: int):
    from nvenc_cli.frames import FrameInfo
    from nvenc_cli.options import EncodeOptions
    from nvenc_cli.plan import make_plan

    # p010le is an NVENC surface no CPU encoder takes: the plan is made for nv12 and renamed.
    codec = "libx264" if fmt in ("nv12", "p010le") else "ffv1"
    asked = "nv12" if fmt == "p010le" else fmt
    options = EncodeOptions(fps=Fraction(10), codec=codec, pixel_format=asked, device="cpu")
    return replace(make_plan(options, FrameInfo(width, height), "matroska"), pixel_format=fmt)


def test_ring_bounds_host_buffers(tmp_path, monkeypatch):
    """However many windows, the pinned ring holds RING chunks; each frame's planes are
    its own copy (FFmpeg may keep a frame after encode returns)."""
    plan = _plan("yuv420p", 32, 16)
    convert = devconvert.DeviceConverter(plan, torch.device("cpu"))
    gen = torch.Generator().manual_seed(5)
    seen = []
    for _ in range(5):
        window = torch.randint(0, 256, (9, 16, 32, 3), dtype=torch.uint8, generator=gen)
        planes = convert(window)
        seen.append((window, planes))
    slots = [s for s in convert.ring._slots if s is not None]
    assert len(slots) == devconvert.RING
    assert all(s[0].shape[0] == devconvert.CHUNK for s in slots)
    for window, planes in seen:  # earlier windows' frames were not overwritten by later ones
        y = devconvert.to_planes(window, plan)[0]
        assert all(torch.equal(planes.frames[i][0], y[i]) for i in range(9))
    assert convert.bytes_to_host == 5 * 9 * 32 * 16 * 3 // 2


def test_out_of_memory_is_one_line_and_exit_69(tmp_path, monkeypatch):
    """A CUDA OOM (torch's real exception class) while converting: UnavailableError (69),
    one line, no output left behind."""

    def exhausted(*_a, **_k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")

    monkeypatch.setattr(devconvert, "to_planes", exhausted)
    monkeypatch.setenv(devconvert.SWITCH, "1")
    out = tmp_path / "oom.mkv"
    with pytest.raises(UnavailableError) as caught:
        nvenc_cli.encode(torch.rand(3, 3, 16, 16), out, codec="ffv1", pixel_format="yuv420p", device="cpu")
    assert caught.value.exit_code == 69 and "\n" not in str(caught.value)
    assert "ran out of memory" in str(caught.value) and "batch" in str(caught.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_out_of_memory_in_value_mapping_is_one_line(tmp_path, monkeypatch):
    """The range map runs on the device too: its OOM is the same one line, exit 69."""
    from nvenc_cli.sources import memory

    def exhausted(*_a, **_k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 8.00 GiB (GPU 0; 79.1 GiB total)")

    monkeypatch.setattr(memory, "_torch_to_nhwc", exhausted)
    monkeypatch.setenv(devconvert.SWITCH, "1")
    said = r"^cpu ran out of memory converting frames \(CUDA out"
    with pytest.raises(UnavailableError, match=said) as caught:
        nvenc_cli.encode(torch.rand(3, 3, 16, 16), tmp_path / "o.mkv", codec="ffv1", device="cpu")
    assert caught.value.exit_code == 69 and list(tmp_path.iterdir()) == []


def test_cpu_inputs_report_the_cpu_route(tmp_path):
    """Frames read from a file go the CPU path; --json names the route."""
    np.save(tmp_path / "f.npy", np.zeros((2, 16, 16, 3), np.uint8))
    result = run_cli("encode", tmp_path / "f.npy", "-o", tmp_path / "o.mkv", "-c", "ffv1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["route"] == "cpu"


def test_unsupported_format_takes_the_host_path(tmp_path, monkeypatch):
    """yuv422p is no format of this route: the RGB window crosses and swscale converts."""
    result, _ = _encode(
        torch.rand(2, 3, 16, 16), tmp_path / "o.mkv", True, monkeypatch, pixel_format="yuv422p"
    )
    assert result.route == "cpu" and result.bytes_to_host == 0 and result.frames == 2


@CUDA
def test_cuda_planes_equal_cpu_device_planes():
    """The route's operations on a GPU give the CPU device's planes (integer steps for
    8-bit input: equal), on the encode's own stream with pinned buffers."""
    gen = torch.Generator().manual_seed(6)
    frames = torch.randint(0, 256, (6, 64, 96, 3), dtype=torch.uint8, generator=gen)
    for fmt in ("yuv420p", "yuv444p10le", "nv12", "p010le"):
        plan = _plan(fmt, 96, 64)
        on_cpu = devconvert.DeviceConverter(plan, torch.device("cpu"))(frames)
        gpu = devconvert.DeviceConverter(plan, torch.device("cuda"))
        assert gpu.ops.stream is not None and gpu.ops.cuda
        on_gpu = gpu(frames.cuda())
        assert all(s.is_pinned() for s in gpu.ring._slots[0])
        for a, b in zip(on_cpu.frames, on_gpu.frames, strict=True):
            for pa, pb in zip(a, b, strict=True):
                assert pb.device.type == "cpu"
                assert torch.equal(pa, pb)


@CUDA
def test_cuda_tensor_end_to_end_route(tmp_path):
    frames = torch.rand(8, 3, 64, 96, device="cuda")
    result = nvenc_cli.encode(frames, tmp_path / "c.mkv", codec="ffv1", pixel_format="yuv420p", device="cpu")
    assert result.route == "cuda-convert+cpu-encode"
    assert result.bytes_to_host == 8 * 96 * 64 * 3 // 2
    assert len(_decode(tmp_path / "c.mkv", "yuv420p")) == 8


def test_passthrough_and_info_name_their_routes(tmp_path):
    """A transcode whose planes pass through says so in --json and in the summary;
    ``nvenc info --json`` lists every route by the name reports use."""
    from nvenc_cli import testsrc
    from tests.test_planes import write_video

    source = tmp_path / "in.mkv"
    write_video(source, testsrc.batch(64, 48, 4), "ffv1", {}, "bt709")
    done = run_cli(
        "encode", source, "-o", tmp_path / "o.mkv", "-c", "ffv1", "--pixel-format", "yuv420p", "--json"
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["route"] == "planes-passthrough"
    done = run_cli("encode", source, "-o", tmp_path / "p.mkv", "-c", "ffv1", "--pixel-format", "yuv420p")
    assert "route planes-passthrough]" in done.stderr.decode()
    info = json.loads(run_cli("info", "--json").stdout)
    assert set(info["routes"]) >= {
        "cpu",
        "planes-passthrough",
        "cuda-convert+cpu-encode",
        "nvenc",
        "ffmpeg-nvenc",
    }
    assert info["routes"]["cpu"]["available"] is True


def test_gpu_check_runs_on_the_cpu_device(tmp_path):
    """bench/gpu_check.py, quick, on torch's CPU device: it says so, takes the route, and
    its figures are the encodes' own (bytes per frame, PSNR of the decoded output)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "check.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--quick", "--no-tests", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no CUDA device: running on torch's CPU device" in done.stdout or torch.cuda.is_available()
    report = json.loads(out.read_text())
    rows = {(r["contender"], r["dtype"]): r for r in report["encodes"]}
    for dtype, size in (("float32", 4), ("uint8", 1)):
        route, host = rows[("nvenc route", dtype)], rows[(".cpu() + cpu path", dtype)]
        assert route["route"].endswith("-convert+cpu-encode") and host["route"] == "cpu"
        assert route["host_bytes_per_frame"] == 128 * 72 * 3 // 2
        assert host["host_bytes_per_frame"] == 128 * 72 * 3 * size
        assert route["psnr_db"] > 30 and abs(route["psnr_db"] - host["psnr_db"]) < 0.5
        assert route["fps"] > 0


# -- CUDA frames for FFmpeg's nvenc, through the emulation of PyAV's import ------------------


def _cuda_frames_plan(fmt: str, width: int, height: int, **extra):
    return replace(_plan(fmt, width, height), cuda_frames=True, **extra)


@pytest.mark.parametrize("fmt", ["nv12", "p010le"])
def test_cuda_frames_call_passes_the_wheels_checks(fmt):
    """Our from_dlpack call, checked as av/video/frame.py checks it: planes stay on the
    device (nothing crosses), one CudaContext per encode on the frames' device."""
    from tests.cuda_double import AvDouble, CudaContext, VideoFrame

    plan = _cuda_frames_plan(fmt, 24, 16)
    ops = devconvert.DeviceOps(torch.device("cpu"))
    convert = devconvert.DeviceConverter(plan, ops.device, ops, devconvert.CudaFrames(ops, AvDouble))
    frames = torch.randint(
        0, 256, (5, 16, 24, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(7)
    )
    ready = convert(frames)
    VideoFrame.calls.clear()
    made = [ready.wrap(planes) for planes in ready.frames]
    assert convert.bytes_to_host == 0 and all(p.device.type == "cpu" for f in ready.frames for p in f)
    assert [(f.format.name, f.width, f.height) for f in made] == [(fmt, 24, 16)] * 5
    assert {id(c["context"]) for c in VideoFrame.calls} == {id(convert.cuda_frames.context)}
    assert isinstance(convert.cuda_frames.context, CudaContext) and VideoFrame.calls[0]["device_id"] == 0
    want = _swscale_surfaces(frames, fmt)
    assert all(torch.equal(torch.cat(ready.frames[i], dim=0), want[i]) for i in range(5))


def _swscale_surfaces(frames, fmt: str):
    """The CPU path's swscale output for each frame, packed as the NVENC surface (NV12 or
    P010: color.py's packing)."""
    from nvenc_cli.backends.cpu import swscale_planes

    planes = [swscale_planes(frame.numpy(), fmt, "bt601", False) for frame in frames]
    y, cb, cr = (torch.from_numpy(np.stack([p[k] for p in planes])) for k in range(3))
    surfaces = color.pack_semiplanar(y.to(torch.uint8), cb.to(torch.uint8), cr.to(torch.uint8), 8)
    return surfaces if fmt == "nv12" else color.pack_semiplanar(y, cb, cr, 10)


BAD_CALLS = {
    "three planes": lambda y, uv: ((y, uv, uv), "nv12"),
    "odd width": lambda y, uv: ((y[:, :-1], uv), "nv12"),
    "16-bit planes as nv12": lambda y, uv: ((y.to(torch.uint16), uv.to(torch.uint16)), "nv12"),
    "8-bit planes as p010le": lambda y, uv: ((y, uv), "p010le"),
    "strided rows": lambda y, uv: ((y.t().contiguous().t(), uv), "nv12"),
    "uv of half width": lambda y, uv: ((y, uv[:, ::2].contiguous()), "nv12"),
    "3-D y": lambda y, uv: ((y[None], uv), "nv12"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_the_double_refuses_what_the_wheel_refuses(case):
    """Checks the CPU and CUDA branches share: the double and the real wheel raise the
    same error with the same words, so the double cannot drift from frame.py."""
    from tests.cuda_double import VideoFrame

    y, uv = torch.zeros(16, 24, dtype=torch.uint8), torch.zeros(8, 24, dtype=torch.uint8)
    planes, fmt = BAD_CALLS[case](y, uv)
    with pytest.raises((ValueError, TypeError)) as real:
        av.VideoFrame.from_dlpack(planes, format=fmt)
    with pytest.raises(type(real.value)) as double:
        VideoFrame.from_dlpack(planes, format=fmt)
    assert str(double.value) == str(real.value)


def test_cuda_context_checks_are_the_wheels():
    from tests.cuda_double import CudaContext

    for kwargs in ({"device_id": 1, "cuda_stream": 1234}, {"current_ctx": True}, {"cuda_stream": -1}):
        with pytest.raises((ValueError, TypeError)) as real:
            av.video.frame.CudaContext(**kwargs)
        with pytest.raises(type(real.value), match=str(real.value)[:40]):
            CudaContext(**kwargs)
    assert av.video.frame.CudaContext(device_id=0, primary_ctx=True, cuda_stream=None).device_id == 0


def test_ffmpeg_nvenc_session_opens_on_the_first_cuda_frame(tmp_path):
    """With CUDA frames the context is set up as ``cuda`` and left for PyAV to open on
    the first frame's frames context (nothing is opened here, so no GPU is needed)."""
    from nvenc_cli.backends.ffmpeg_nvenc import FfmpegNvencSession
    from nvenc_cli.mux import Muxer

    plan = _cuda_frames_plan(
        "nv12", 64, 48, backend="ffmpeg_nvenc", encoder="h264_nvenc", crf=None, preset=None, codec_options={}
    )
    muxer = Muxer(str(tmp_path / "o.mp4"), "mp4", {}, False)
    try:
        session = FfmpegNvencSession(plan, muxer)
        assert session.ctx.pix_fmt == "cuda" and not session.ctx.is_open
        assert "CUDA frames converted on the GPU" in session.description
    finally:
        muxer.abort()
    assert devconvert.route_name("cuda:0", plan) == "cuda-convert+ffmpeg-nvenc"
    assert (
        devconvert.route_name("cuda:0", replace(plan, cuda_frames=False)) == "cuda-convert+host+ffmpeg-nvenc"
    )


def test_cuda_frames_encode_end_to_end_losslessly(tmp_path, monkeypatch):
    """Frames made by the emulated import reach an encoder (x264, qp 0, nv12) and decode
    to the CPU path's swscale planes exactly."""
    from nvenc_cli.pipeline import Job
    from tests import cuda_double

    def made_with_double(self, ops, av_module=None):
        original(self, ops, cuda_double.AvDouble)

    original = devconvert.CudaFrames.__init__
    monkeypatch.setattr(devconvert.CudaFrames, "__init__", made_with_double)
    monkeypatch.setenv(devconvert.SWITCH, "1")
    plan = _cuda_frames_plan("nv12", 48, 32, codec_options={"qp": "0"}, crf=None)
    frames = torch.randint(
        0, 256, (6, 32, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(8)
    )
    job = Job(plan, str(tmp_path / "o.mkv"))
    job.write(frames)
    result = job.finish()
    assert result.frames == 6 and result.bytes_to_host == 0
    want = _swscale_surfaces(frames, "nv12")
    with av.open(str(tmp_path / "o.mkv")) as container:
        got = [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]
    assert len(got) == 6
    for i, picture in enumerate(got):
        surface = want[i].numpy()
        assert np.array_equal(picture[:32], surface[:32])
        assert np.array_equal(picture[32:40].reshape(-1), surface[32:, 0::2].reshape(-1))
