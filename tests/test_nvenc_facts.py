"""Each fact about the real PyNvVideoCodec, checked through its emulation (nvenc_double).

Every test here names the fact it holds nvenc to; nvenc_double.py cites where each fact
comes from (the 2.0.5 / 2.2.4 wheels). They run on the CPU: the emulation reads the
surfaces through the same hand-off and returns real bitstreams.
"""

from __future__ import annotations

import json

import av
import numpy as np
import nvenc_double
import pytest
import torch
from test_nvenc_session import cli, clip, decode, encode, expected_planes, planes

from nvenc_cli.backends import nvenc
from nvenc_cli.backends.annexb import AccessUnit, Timestamper
from nvenc_cli.errors import EncoderError, UnavailableError, UsageError


@pytest.fixture
def lib(monkeypatch):
    """An emulated L4 behind ``import PyNvVideoCodec``, on a CPU "device"."""
    return nvenc_double.install_on_cpu(monkeypatch)


def picture_types(path) -> str:
    """One letter per decoded frame in display order (AVPictureType 1 I, 2 P, 3 B)."""
    with av.open(str(path)) as container:
        return "".join("?IPB"[int(frame.pict_type)] for frame in container.decode(video=0))


def longest_b_run(types: str) -> int:
    return max(len(run) for run in types.replace("I", "P").split("P"))


# -- the hand-off: an object whose __dlpack__ takes the stream positionally -------------


def test_a_bare_torch_tensor_fails_the_positional_dlpack_call(lib):
    """The emulation is strict where the library is: torch >= 2.8 refuses the call."""
    encoder = lib.CreateEncoder(64, 48, "NV12", False, codec="h264")
    with pytest.raises(TypeError, match="positional"):
        encoder.Encode(torch.zeros((72, 64), dtype=torch.uint8))


@pytest.mark.parametrize(
    ("pixel_format", "codec", "fmt", "rows"),
    [
        ("yuv420p", "h264", "NV12", 72),
        ("p010le", "hevc", "P010", 72),
        ("yuv444p", "h264", "YUV444", 144),
        ("yuv444p16le", "hevc", "YUV444_10BIT", 144),
    ],
)
def test_every_surface_goes_through_dlpack_with_its_shape(lib, tmp_path, pixel_format, codec, fmt, rows):
    """NV12/P010 are (1.5·H, W), 4:4:4 (3·H, W); 16-bit planes keep their samples."""
    frames = clip(5, 64, 48)
    if pixel_format in ("p010le", "yuv444p16le"):
        frames = frames.astype(np.uint16) * 257
    out = tmp_path / "out.mkv"
    plan, result = encode(frames, out, codec=codec, batch=2, pixel_format=pixel_format, crf=0)
    encoder = lib.created[-1]
    assert encoder.fmt == fmt and result.frames == 5
    dtype = "torch.uint16" if pixel_format in ("p010le", "yuv444p16le") else "torch.uint8"
    assert encoder.inputs == [("dlpack", (rows, 64), (64, 1), dtype)] * 5
    decoded, _ = decode(out)
    for frame, want in zip(decoded, expected_planes(frames, plan), strict=True):
        assert all(np.array_equal(g, w) for g, w in zip(planes(frame), want, strict=True))


def test_uint16_planes_through_the_array_interface_are_refused(lib):
    """Why the hand-off is DLPack: torch's uint16 ``__cuda_array_interface__`` says ``<u2``."""
    encoder = lib.CreateEncoder(64, 48, "P010", False, codec="hevc")

    class Plane:
        @property
        def __cuda_array_interface__(self):
            return {"shape": (48, 64), "strides": None, "typestr": "<u2", "version": 3}

    class Planes:
        def cuda(self):
            return [Plane()]

    with pytest.raises(RuntimeError, match="Invalid typestr: <u2"):
        encoder.Encode(Planes())


# -- bf is the number of B-frames ------------------------------------------------------


def test_default_is_two_b_frames(lib, tmp_path):
    out = tmp_path / "out.mp4"
    encode(clip(12, 64, 48), out, batch=4)
    assert lib.created[-1].kwargs["bf"] == "2" and lib.created[-1].GetNumBFrames() == 2
    assert longest_b_run(picture_types(out)) == 2


@pytest.mark.parametrize("extra", [{"bf": "0"}, {"tune": "ll"}, {"tune": "ull"}])
def test_no_b_frames_means_none(lib, tmp_path, extra):
    out = tmp_path / "out.mp4"
    encode(clip(10, 64, 48), out, batch=5, extra=tuple(extra.items()))
    assert lib.created[-1].GetNumBFrames() == 0
    assert "B" not in picture_types(out)
    assert [f.pts for f in decode(out)[0]] == sorted(f.pts for f in decode(out)[0])


def test_the_gpus_b_frame_maximum_is_sent_as_a_count(lib, tmp_path):
    lib.gpu.max_bframes = 1
    encode(clip(8, 64, 48), tmp_path / "out.mp4", batch=4)
    assert lib.created[-1].kwargs["bf"] == "1" and lib.created[-1].GetNumBFrames() == 1
    with pytest.raises(UsageError, match="at most 1 B-frames"):
        encode(clip(8, 64, 48), tmp_path / "again.mp4", batch=4, extra=(("bf", "3"),))


# -- Encode/EndEncode return lists of dicts --------------------------------------------


def test_list_of_dict_packets_become_every_frame(lib, tmp_path):
    out = tmp_path / "out.mkv"
    encode(clip(9, 64, 48), out, codec="hevc", batch=4)
    assert len(decode(out)[0]) == 9
    first = lib.created[-1]
    assert first.end_calls == 1 and first.frames == 9


# -- keywords, context, stream, gpu_id -------------------------------------------------


def test_keywords_are_strings_and_handles_are_the_devices(lib, tmp_path):
    encode(clip(3, 64, 48), tmp_path / "out.mp4", batch=3)
    encoder = lib.created[-1]
    assert all(isinstance(v, str) for v in encoder.kwargs.values()) and encoder.ignored == []
    assert encoder.context == lib.cuda.context(0)
    assert lib.cuda.streams[encoder.stream] == encoder.context


def test_gpu_id_picks_the_device_for_context_frames_and_caps(lib, tmp_path, monkeypatch):
    lib.gpu.devices = 2
    asked = []
    monkeypatch.setattr(nvenc, "_compute_device", lambda gpu_id: asked.append(gpu_id) or torch.device("cpu"))
    encode(clip(3, 64, 48), tmp_path / "out.mp4", batch=3, extra=(("gpu_id", "1"),))
    encoder = lib.created[-1]
    assert asked == [1] and lib.caps_calls == [(1, "h264")]
    assert encoder.kwargs["gpu_id"] == "1" and encoder.context == lib.cuda.context(1)


def test_a_gpu_id_the_machine_lacks_is_unavailable(lib, tmp_path):
    with pytest.raises(UnavailableError, match="GPU ordinal out of range"):
        encode(clip(3, 64, 48), tmp_path / "out.mp4", batch=3, extra=(("gpu_id", "3"),))
    assert not (tmp_path / "out.mp4").exists()


# -- failures carry a number -----------------------------------------------------------

OPEN = nvenc_double.OPEN_CALL


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (f"PyNvEncoder constructor failed: {OPEN} returned error 1", "no-nvenc-engine"),
        (f"PyNvEncoder constructor failed: {OPEN} returned error 2", "no-nvenc-engine"),
        (f"PyNvEncoder constructor failed: {OPEN} returned error 10", "session-limit"),
        (f"PyNvEncoder constructor failed: {OPEN} returned error 15", "driver-too-old"),
        (f"PyNvEncoder constructor failed: {OPEN} returned error 8", "encoder-failed"),
        ("OpenEncodeSessionEx failed: unsupported device (2): (no details)", "no-nvenc-engine"),
        ("OpenEncodeSessionEx failed: out of memory (10)", "session-limit"),
        (
            "Driver does not support the required nvenc API version. Required: 13.0 Found: 12.1",
            "driver-too-old",
        ),
        ("Cannot load libcuda.so.1", "no-driver"),
        ("Cannot load libnvidia-encode.so.1", "no-nvenc-library"),
    ],
)
def test_failures_are_classified_by_their_number(message, code):
    got, reason = nvenc.classify_encoder_error(message, "NVIDIA L4")
    assert got == code and message in reason


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (2, "no-nvenc-engine", "no NVENC engine"),
        (10, "session-limit", "sessions"),
        (15, "driver-too-old", "upgrade"),
    ],
)
def test_the_probe_encodes_one_real_frame_and_names_the_failure(monkeypatch, status, code, words):
    nvenc_double.install_on_cpu(monkeypatch, nvenc_double.Gpu(open_status=status), probed=None)
    got, reason = nvenc._try_session("NVIDIA Example")
    assert got == code and words in reason and f"returned error {status}" in reason


def test_the_probe_passes_only_after_a_picture_comes_back(monkeypatch):
    lib = nvenc_double.install_on_cpu(monkeypatch, probed=None)
    assert nvenc._try_session("NVIDIA L4") is None
    probe_encoder = lib.created[-1]
    assert probe_encoder.frames == 1 and probe_encoder.end_calls == 1
    assert probe_encoder.inputs == [("dlpack", (384, 256), (256, 1), "torch.uint8")]
    lib.gpu.encode_status_at = 0
    code, reason = nvenc._try_session("NVIDIA L4")
    assert code == "encoder-failed" and "returned error 20" in reason


def test_open_failures_are_unavailable_not_a_session_limit(lib, tmp_path):
    lib.gpu.open_status = 2
    with pytest.raises(UnavailableError, match="no NVENC engine"):
        encode(clip(3, 64, 48), tmp_path / "out.mp4", batch=3)
    lib.gpu.open_status = 15
    with pytest.raises(UnavailableError, match="driver is too old"):
        encode(clip(3, 64, 48), tmp_path / "out.mp4", batch=3)
    assert list(tmp_path.iterdir()) == []


# -- GetEncoderCaps raises for a codec the GPU lacks -----------------------------------


def test_a_codec_the_gpu_lacks_is_unavailable(monkeypatch, tmp_path):
    lib = nvenc_double.install_on_cpu(monkeypatch, nvenc_double.GPUS["T4"], probed="emulated T4")
    source = tmp_path / "in.npy"
    np.save(source, clip(4, 64, 48))
    out = tmp_path / "out.mkv"
    result = cli("encode", str(source), "-o", str(out), "-c", "av1_nvenc")
    assert result.exit_code == 69 and "cannot encode av1" in result.output
    assert not out.exists() and lib.created == []
    ok = cli("encode", str(source), "-o", str(out), "-c", "hevc_nvenc")
    assert ok.exit_code == 0, ok.output


# -- H.264 without a VUI reorder depth -------------------------------------------------


def test_timestamps_never_rest_on_the_configured_b_frames():
    """With no declared depth the session passes none, whatever ``bf`` was asked."""
    from types import SimpleNamespace

    session = nvenc.NvencSession.__new__(nvenc.NvencSession)
    session._splitter = SimpleNamespace(reorder=None, reorder_declared=False)
    for bframes in (0, 2):
        session.settings = SimpleNamespace(bframes=bframes)
        timer = Timestamper()
        out = []
        for index, poc in enumerate([0, 6, 2, 4, 12, 8, 10]):  # I P B B P B B: B-frames
            out += timer.push(AccessUnit(b"", index == 0, poc, index == 0), session._reorder())
        out += timer.flush()
        assert [t.pts for t in out] == [0, 3, 1, 2, 6, 4, 5]
        assert all(t.dts <= t.pts for t in out) and [t.dts for t in out] == sorted({t.dts for t in out})


@pytest.mark.parametrize("bf", ["1", "3"])
def test_h264_b_frames_without_vui_land_in_order(lib, tmp_path, bf):
    frames = clip(21, 64, 48)
    out = tmp_path / "out.mp4"
    encode(frames, out, batch=4, extra=(("bf", bf), ("g", "30")))
    decoded, _ = decode(out)
    assert len(decoded) == 21 and longest_b_run(picture_types(out)) == int(bf)
    markers = [int(f.to_ndarray(format="rgb24")[2:6, 2:6, 0].mean()) for f in decoded]
    assert all(abs(m - (i * 10) % 256) <= 3 for i, m in enumerate(markers)), markers


# -- --crf 0: what is exact -------------------------------------------------------------


def test_crf_zero_says_what_it_keeps_and_needs_lossless_support(lib, tmp_path):
    plan, _ = encode(clip(3, 64, 48), tmp_path / "out.mp4", batch=3, crf=0)
    assert any("lossless in Y'CbCr only" in n and "4:2:0" in n for n in plan.notices)
    assert lib.created[-1].kwargs["tuning_info"] == "lossless" and lib.created[-1].kwargs["constqp"] == "0"
    lib.gpu.caps = lambda codec: {"support_lossless_encode": 0, "num_max_bframes": 4}
    with pytest.raises(UnavailableError, match="losslessly"):
        encode(clip(3, 64, 48), tmp_path / "again.mp4", batch=3, crf=0)


def test_json_names_the_route(lib, tmp_path):
    source = tmp_path / "in.npy"
    np.save(source, clip(4, 64, 48))
    result = cli("encode", str(source), "-o", str(tmp_path / "o.mp4"), "--device", "cuda", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["backend"] == "nvenc"


def test_mid_way_failure_is_74_with_no_file(lib, tmp_path):
    lib.gpu.encode_status_at = 5
    with pytest.raises(EncoderError, match="frame 5"):
        encode(clip(12, 64, 48), tmp_path / "out.mp4", batch=4)
    assert list(tmp_path.iterdir()) == []
