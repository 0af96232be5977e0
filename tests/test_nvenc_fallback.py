"""``--device auto`` is never worse than the CPU: NVENC failing before its first packet
re-runs the whole encode on the CPU; after it, or with ``--device cuda``, it is an error.

NVENC here is PyNvVideoCodec's emulation (nvenc_double) told to fail where a real GPU
fails: at open (no engine, session cap) or on frame 0.
"""

from __future__ import annotations

import json

import av
import numpy as np
import nvenc_double
import pytest
import torch
from test_nvenc_session import cli, clip


@pytest.fixture
def lib(monkeypatch):
    return nvenc_double.install_on_cpu(monkeypatch)


@pytest.fixture
def source(tmp_path):
    frames = clip(40, 96, 64)
    path = tmp_path / "in.npy"
    np.save(path, frames)
    return path, frames


def psnr(path, frames: np.ndarray) -> float:
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == frames.shape
    mse = np.mean((decoded.astype(np.float64) - frames.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


def stream_facts(path) -> tuple[str, int, list[float]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream)]
        return stream.codec_context.name, len(times), times


@pytest.mark.parametrize(
    ("breakage", "words"),
    [
        (lambda gpu: setattr(gpu, "encode_status_at", 0), "frame 0"),
        (lambda gpu: setattr(gpu, "open_status", 10), "sessions"),
    ],
)
def test_auto_reencodes_on_the_cpu_when_nvenc_fails_at_the_start(lib, source, tmp_path, breakage, words):
    path, frames = source
    breakage(lib.gpu)
    out = tmp_path / "out.mp4"
    result = cli("encode", str(path), "-o", str(out), "--json", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == "cpu" and report["codec"] == "libx264"
    assert "NVENC failed before its first packet" in report["fallback_reason"]
    assert words in report["fallback_reason"]
    assert "NVENC not used" in result.stderr and words in result.stderr
    codec, count, times = stream_facts(out)
    assert codec == "h264" and count == 40
    assert times == pytest.approx([i / 30 for i in range(40)], abs=1e-3)
    assert psnr(out, frames) > 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "out.mp4"]


def test_the_fallback_video_is_the_cpu_video(lib, source, tmp_path):
    """What ``--device cpu`` writes: same codec, format, tags and frames.

    Frame for frame within 40 dB rather than bit-exact: repeated x264 encodes in one
    process are not always bit-identical (they are across processes).
    """
    from conftest import run_cli

    path, _ = source
    lib.gpu.encode_status_at = 0
    fell = tmp_path / "fell.mkv"
    assert cli("encode", str(path), "-o", str(fell), "--batch-size", "3").exit_code == 0
    direct = tmp_path / "direct.mkv"
    assert run_cli("encode", path, "-o", direct, "--device", "cpu", "--batch-size", "3").returncode == 0
    with av.open(str(fell)) as a, av.open(str(direct)) as b:
        sa, sb = a.streams.video[0].codec_context, b.streams.video[0].codec_context
        assert (sa.name, sa.pix_fmt, sa.colorspace, sa.color_range) == (
            sb.name,
            sb.pix_fmt,
            sb.colorspace,
            sb.color_range,
        )
        for x, y in zip(a.decode(video=0), b.decode(video=0), strict=True):
            mse = np.mean((x.to_ndarray().astype(float) - y.to_ndarray().astype(float)) ** 2)
            assert x.pts == y.pts and (mse == 0 or 10 * np.log10(255**2 / mse) > 40)


def test_no_fallback_once_a_packet_reached_the_muxer(lib, source, tmp_path):
    path, _ = source
    lib.gpu.encode_status_at = 30  # H.264's first packet leaves after 17 pictures
    out = tmp_path / "out.mp4"
    result = cli("encode", str(path), "-o", str(out), "--batch-size", "2")
    assert result.exit_code == 74 and "frame 30" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


@pytest.mark.parametrize("args", [["--device", "cuda"], ["-c", "h264_nvenc"]])
def test_cuda_and_named_nvenc_codecs_never_fall_back(lib, source, tmp_path, args):
    path, _ = source
    out = tmp_path / "out.mp4"
    lib.gpu.encode_status_at = 0
    failed = cli("encode", str(path), "-o", str(out), *args)
    assert failed.exit_code == 74 and "frame 0" in failed.stderr
    lib.gpu.encode_status_at, lib.gpu.open_status = None, 2
    unavailable = cli("encode", str(path), "-o", str(out), *args)
    assert unavailable.exit_code == 69 and "no NVENC engine" in unavailable.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


@pytest.fixture
def host_stands_for_cuda(monkeypatch):
    """The API uploads NVENC windows to CUDA; here a CPU tensor stands in for it."""
    from nvenc_cli.api import video
    from nvenc_cli.sources import memory

    real = memory.to_backend

    def to_backend(raw, layout, depth, first, backend, value_range=None):
        out = real(raw, layout, depth, first, "cpu", value_range)
        return torch.from_numpy(out) if backend == "nvenc" else out

    monkeypatch.setattr(memory, "to_backend", to_backend)
    monkeypatch.setattr(video, "to_backend", to_backend)


def test_python_api_falls_back_and_warns(lib, tmp_path, host_stands_for_cuda):
    from nvenc_cli.api import VideoEncoder

    frames = torch.from_numpy(clip(10, 96, 64)).permute(0, 3, 1, 2).contiguous()
    lib.gpu.encode_status_at = 0
    out = tmp_path / "api.mp4"
    with pytest.warns(RuntimeWarning, match="NVENC failed before its first packet"):
        VideoEncoder(frames, frame_rate=30, device="auto").to_file(str(out))
    assert stream_facts(out)[1] == 10 and psnr(out, clip(10, 96, 64)) > 25


def test_python_writer_falls_back_and_warns(lib, tmp_path, host_stands_for_cuda):
    from nvenc_cli.api import open_writer

    lib.gpu.encode_status_at = 0
    out = tmp_path / "writer.mkv"
    frames = clip(12, 96, 64)
    with (
        pytest.warns(RuntimeWarning, match="encoded on the CPU instead"),
        open_writer(str(out), frame_rate=30, device="auto") as writer,
    ):
        for i in range(0, 12, 3):
            writer.write(torch.from_numpy(frames[i : i + 3]).permute(0, 3, 1, 2))
    assert stream_facts(out)[1] == 12 and psnr(out, frames) > 25


def test_working_nvenc_keeps_no_copies_after_its_first_packet(lib, source, tmp_path):
    from nvenc_cli.encoding import InputOptions, prepare
    from nvenc_cli.options import EncodeOptions
    from nvenc_cli.pipeline import Job

    path, frames = source
    src, plan = prepare(str(path), str(tmp_path / "o.mkv"), EncodeOptions(), InputOptions())
    src.close()
    assert plan.backend == "nvenc" and plan.fallback is not None and plan.fallback.backend == "cpu"
    job = Job(plan, str(tmp_path / "o.mkv"))
    for i in range(0, 40, 4):
        job.write(frames[i : i + 4])
    assert job._held is None and job.plan is plan
    result = job.finish()
    assert result.plan.backend == "nvenc" and result.frames == 40 and not result.fell_back
