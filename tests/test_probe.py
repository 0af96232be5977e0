"""The NVENC probe's answers, and what --device auto / cuda do with them, without a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from nvenc_cli.backends import nvenc, select
from nvenc_cli.errors import UnavailableError, UsageError

REAL = nvenc.probe_details()
needs_gpu_less = pytest.mark.skipif(REAL.ok, reason="this machine has a working NVENC")


@pytest.fixture(autouse=True)
def fresh_probe():
    nvenc.reset_probe()
    yield
    nvenc.reset_probe()


def fake_torch(cuda: str | None = "12.4", available: bool = True, name: str = "NVIDIA GeForce RTX 4090"):
    cuda_ns = types.SimpleNamespace(is_available=lambda: available, get_device_name=lambda index=0: name)
    return types.SimpleNamespace(
        __version__="2.13.0+cu124" if cuda else "2.13.0+cpu",
        version=types.SimpleNamespace(cuda=cuda),
        cuda=cuda_ns,
    )


@pytest.fixture
def gpu_machine(monkeypatch):
    """Pretend every check passes; each test then breaks exactly one."""
    monkeypatch.setattr(nvenc, "_load_library", lambda name: True)
    monkeypatch.setattr(nvenc, "driver_version", lambda: "580.95.05")
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    monkeypatch.setattr(nvenc, "_has_module", lambda name: True)
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", types.ModuleType("PyNvVideoCodec"))
    monkeypatch.setattr(nvenc, "cvcuda_available", lambda: False)
    monkeypatch.setattr(nvenc, "_try_session", lambda gpu=None: None)
    return monkeypatch


def test_all_checks_pass(gpu_machine):
    result = nvenc.probe_details()
    assert result.ok and result.code == "ok"
    assert result.gpu == "NVIDIA GeForce RTX 4090" and result.driver == "580.95.05"
    assert "torch (CV-CUDA not installed)" in result.reason
    assert nvenc.probe().ok


def test_colour_by_cvcuda_when_installed(gpu_machine):
    gpu_machine.setattr(nvenc, "cvcuda_available", lambda: True)
    result = nvenc.probe_details()
    assert result.ok and result.colour == "cvcuda" and "CV-CUDA" in result.reason


def test_no_driver(gpu_machine):
    gpu_machine.setattr(nvenc, "_load_library", lambda name: name != "libcuda.so.1")
    result = nvenc.probe_details()
    assert (result.ok, result.code) == (False, "no-driver")
    assert "libcuda.so.1" in result.reason


def test_cpu_only_torch(gpu_machine):
    gpu_machine.setitem(sys.modules, "torch", fake_torch(cuda=None))
    result = nvenc.probe_details()
    assert result.code == "no-torch-cuda" and "CPU-only build" in result.reason


def test_torch_sees_no_gpu(gpu_machine):
    gpu_machine.setitem(sys.modules, "torch", fake_torch(available=False))
    result = nvenc.probe_details()
    assert result.code == "no-torch-cuda" and "sees no usable GPU" in result.reason


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA H100 80GB HBM3",
        "NVIDIA H200",
        "NVIDIA A100-SXM4-80GB",
        "NVIDIA A30",
        "NVIDIA H20",
        "NVIDIA GH200 480GB",
        "NVIDIA B200",
        "NVIDIA B300 SXM6 AC",
        "NVIDIA GB200",
        "NVIDIA GB300",
        "NVIDIA B100",
    ],
)
def test_gpus_without_nvenc(gpu_machine, name):
    gpu_machine.setitem(sys.modules, "torch", fake_torch(name=name))
    result = nvenc.probe_details()
    assert result.code == "no-nvenc-engine" and name in result.reason and "no NVENC engine" in result.reason


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA L4",
        "NVIDIA A10G",
        "Tesla T4",
        "NVIDIA RTX A6000",
        "NVIDIA L40S",
        "NVIDIA RTX PRO 6000 Blackwell",
    ],
)
def test_gpus_with_nvenc_are_not_refused_by_name(gpu_machine, name):
    gpu_machine.setitem(sys.modules, "torch", fake_torch(name=name))
    assert nvenc.probe_details().ok


def test_no_nvenc_library(gpu_machine):
    gpu_machine.setattr(nvenc, "_load_library", lambda name: name != "libnvidia-encode.so.1")
    result = nvenc.probe_details()
    assert result.code == "no-nvenc-library" and "libnvidia-encode.so.1" in result.reason


def test_pynvvideocodec_missing(gpu_machine):
    gpu_machine.setattr(nvenc, "_has_module", lambda name: name != "PyNvVideoCodec")
    result = nvenc.probe_details()
    assert result.code == "no-pynvvideocodec" and "not installed" in result.reason


def test_pynvvideocodec_fails_to_import(gpu_machine):
    gpu_machine.setitem(sys.modules, "PyNvVideoCodec", None)  # makes `import` raise
    result = nvenc.probe_details()
    assert result.code == "no-pynvvideocodec" and "failed to load" in result.reason


OPEN = "PyNvEncoder constructor failed: m_nvenc.nvEncOpenEncodeSessionEx(&encodeSessionExParams, &hEncoder)"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (f"{OPEN} returned error 10", "session-limit"),
        (f"{OPEN} returned error 2", "no-nvenc-engine"),
        (f"{OPEN} returned error 1", "no-nvenc-engine"),
        (f"{OPEN} returned error 15", "driver-too-old"),
        (f"{OPEN} returned error 21", "encoder-failed"),
        (f"{OPEN} returned error 8", "encoder-failed"),
        ("OpenEncodeSessionEx failed: unsupported device (2)", "no-nvenc-engine"),
    ],
)
def test_encoder_errors_classified(gpu_machine, message, code):
    assert nvenc.classify_encoder_error(message)[0] == code
    gpu_machine.setattr(nvenc, "_try_session", lambda gpu=None: nvenc.classify_encoder_error(message))
    result = nvenc.probe_details()
    assert not result.ok and result.code == code and message in result.reason


def test_every_code_has_a_distinct_reason(gpu_machine):
    reasons = set()
    for breakage in (
        lambda m: m.setattr(nvenc, "_load_library", lambda name: name != "libcuda.so.1"),
        lambda m: m.setitem(sys.modules, "torch", fake_torch(cuda=None)),
        lambda m: m.setitem(sys.modules, "torch", fake_torch(name="NVIDIA H100")),
        lambda m: m.setattr(nvenc, "_load_library", lambda name: name != "libnvidia-encode.so.1"),
        lambda m: m.setattr(nvenc, "_has_module", lambda name: False),
        lambda m: m.setattr(
            nvenc, "_try_session", lambda gpu=None: nvenc.classify_encoder_error(f"{OPEN} returned error 10")
        ),
        lambda m: m.setattr(
            nvenc, "_try_session", lambda gpu=None: nvenc.classify_encoder_error(f"{OPEN} returned error 15")
        ),
    ):
        with pytest.MonkeyPatch.context() as patch:
            breakage(patch)
            nvenc.reset_probe()
            reasons.add(nvenc.probe_details().code)
    assert len(reasons) == 7


def test_probe_is_cached(gpu_machine):
    calls = []
    gpu_machine.setattr(nvenc, "_try_session", lambda gpu=None: calls.append(1))
    first = nvenc.probe_details()
    assert nvenc.probe_details() is first and len(calls) == 1
    nvenc.reset_probe()
    nvenc.probe_details()
    assert len(calls) == 2


# --- this machine, for real ------------------------------------------------------------


@needs_gpu_less
def test_this_machine_has_no_driver_and_probing_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from nvenc_cli.backends import probe_nvenc\n"
        "status = probe_nvenc()\n"
        "print(status.ok, status.reason)\n"
        "print(sorted(m for m in ('torch', 'av', 'PyNvVideoCodec', 'cvcuda') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.strip().splitlines()
    assert first.startswith("False ")
    assert second == "[]"


@needs_gpu_less
def test_auto_falls_back_with_the_reason():
    reason = nvenc.probe().reason
    for codec, explicit in [("libx264", False), ("h264", True), ("hevc", True), ("av1", True)]:
        choice = select("auto", codec, explicit=explicit)
        assert choice.backend == "cpu" and choice.fallback_reason == reason
    assert select("auto", "libx264", explicit=True).fallback_reason is None  # a CPU encoder was asked for


@needs_gpu_less
@pytest.mark.parametrize(
    ("device", "codec"), [("cuda", "h264"), ("cuda", "hevc"), ("auto", "h264_nvenc"), ("auto", "av1_nvenc")]
)
def test_cuda_or_nvenc_codec_never_falls_back(device, codec):
    with pytest.raises(UnavailableError) as info:
        select(device, codec, explicit=True)
    assert info.value.exit_code == 69 and nvenc.probe().reason in str(info.value)


def test_nvenc_codec_with_cpu_device_is_a_usage_error():
    with pytest.raises(UsageError):
        select("cpu", "hevc_nvenc", explicit=True)


@pytest.fixture(scope="module")
def frames_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "frames.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (4, 64, 96, 3), dtype=np.uint8))
    return path


@needs_gpu_less
def test_cli_device_cuda_exits_69_with_the_reason(frames_file, tmp_path):
    from conftest import run_cli

    out = tmp_path / "out.mp4"
    result = run_cli("encode", frames_file, "-o", out, "--device", "cuda")
    assert result.returncode == 69
    assert REAL.reason in result.stderr.decode()
    assert not out.exists() and list(tmp_path.iterdir()) == []
    named = run_cli("encode", frames_file, "-o", out, "-c", "hevc_nvenc")
    assert named.returncode == 69 and REAL.reason in named.stderr.decode()


@needs_gpu_less
def test_cli_device_auto_encodes_on_cpu_and_says_why(frames_file, tmp_path):
    from conftest import run_cli

    out = tmp_path / "out.mp4"
    result = run_cli("encode", frames_file, "-o", out, "--device", "auto", "--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["backend"] == "cpu" and report["fallback_reason"] == REAL.reason
    assert out.exists()
    # Without a driver the summary keeps quiet about it (every run would say so); -v says why.
    summary = run_cli("encode", frames_file, "-o", tmp_path / "again.mp4")
    assert summary.returncode == 0 and REAL.reason not in summary.stderr.decode()
    verbose = run_cli("encode", frames_file, "-o", tmp_path / "loud.mp4", "-v")
    assert verbose.returncode == 0 and REAL.reason in verbose.stderr.decode()


def test_info_reports_the_probe():
    from nvenc_cli.info import collect_info

    data = collect_info()
    nv = data["backends"]["nvenc"]
    assert nv["available"] == REAL.ok and nv["reason"] == REAL.reason and nv["code"] == REAL.code
    assert nv["encoders"] == ["av1_nvenc", "h264_nvenc", "hevc_nvenc"]
    assert data["backends"]["cpu"]["available"] is True and "libx264" in data["backends"]["cpu"]["encoders"]
    for key in ("nvenc", "torch", "av", "ffmpeg", "torch_cuda", "nvidia_driver", "PyNvVideoCodec", "cvcuda"):
        assert key in data["versions"]
    mp4 = data["containers"]["mp4"]
    assert "mp4" in mp4["extensions"] and "h264_nvenc" in mp4["encoders"]["h264"]
    assert "libx264" in mp4["encoders"]["h264"]
    assert data["encoders"]["hevc_nvenc"]["pixel_formats"] == [
        "yuv420p",
        "nv12",
        "p010le",
        "p016le",
        "yuv444p",
        "yuv444p16le",
        "yuv444p10msble",
    ]
    assert "yuv444p" not in data["encoders"]["av1_nvenc"]["pixel_formats"]
    assert "yuv420p" in data["encoders"]["libx264"]["pixel_formats"]
    assert set(data["containers"]["mpegts"]["codecs"]) == {"h264", "hevc"}
    json.dumps(data)


def test_info_cli_plain_and_json():
    from conftest import run_cli

    plain = run_cli("info")
    assert plain.returncode == 0 and b"nvenc" in plain.stdout
    as_json = run_cli("info", "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["backends"]["nvenc"]["reason"] == REAL.reason
