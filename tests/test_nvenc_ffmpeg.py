"""The FFmpeg-nvenc route up to where a driver is needed: option mapping, the shared CPU
conversion, the probe's real test encode and its message here, and the fallback through the
real CLI when FFmpeg's nvenc cannot open."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
from test_nvenc_options import make
from test_nvenc_session import cli, clip

from nvenc_cli import ffopts
from nvenc_cli.backends import cpu, ffmpeg_nvenc, nvenc, select
from nvenc_cli.backends.nvenc_options import settings_for
from nvenc_cli.errors import UnavailableError, UsageError

REAL = ffmpeg_nvenc.probe_details()
needs_no_driver = pytest.mark.skipif(nvenc._load_library("libcuda.so.1"), reason="this machine has a driver")


def mapped(**plan_args) -> dict[str, str]:
    plan = make(**plan_args)
    return ffmpeg_nvenc.ffmpeg_options(settings_for(plan), global_header=True)


# -- options ---------------------------------------------------------------------------


def test_defaults_match_the_pynvvideocodec_route():
    assert mapped() == {
        "preset": "p4",
        "tune": "hq",
        "rc": "vbr",
        "cq": "23",
        "g": "250",
        "bf": "2",
        "gpu": "0",
        "b": "0",
    }


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("p1", "p1"), ("P7", "p7"), ("ultrafast", "p1"), ("fast", "p3"), ("medium", "p4"), ("veryslow", "p7")],
)
def test_presets(preset, expected):
    assert mapped(preset=preset)["preset"] == expected


@pytest.mark.parametrize(
    ("extra", "crf", "want"),
    [
        ({"tune": "ll"}, None, {"tune": "ll", "bf": "0"}),
        ({"tune": "ull"}, None, {"tune": "ull", "bf": "0"}),
        ({"tuning_info": "uhq"}, None, {"tune": "uhq"}),
        ({}, 30, {"rc": "vbr", "cq": "30", "b": "0"}),
        ({}, 0, {"tune": "lossless", "rc": "constqp", "qp": "0"}),
        ({"rc": "constqp", "qp": "20,22,18"}, None, {"init_qpP": "20", "init_qpB": "22", "init_qpI": "18"}),
        ({"rc": "cbr", "b": "4M"}, None, {"rc": "cbr", "b": "4000000"}),
        ({"b": "6M", "maxrate": "8M", "bufsize": "8M"}, None, {"maxrate": "8000000", "bufsize": "8000000"}),
        ({"bf": "0", "g": "30"}, None, {"bf": "0", "g": "30"}),
        ({"gpu": "1"}, None, {"gpu": "1"}),
        ({"aq": "8", "temporal-aq": "1"}, None, {"spatial-aq": "1", "aq-strength": "8", "temporal-aq": "1"}),
        ({"rc-lookahead": "16", "multipass": "qres"}, None, {"rc-lookahead": "16", "multipass": "qres"}),
        ({"slice_mode": "3", "slice_data": "4"}, None, {"slices": "4"}),
    ],
)
def test_our_names_in_ffmpegs_spelling(extra, crf, want):
    out = mapped(extra=extra, crf=crf)
    assert {key: out.get(key) for key in want} == want


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"gop": "60", "idrperiod": "120"}, "idrperiod"),
        ({"qmin": "10,12,8"}, "one qmin"),
        ({"slice_mode": "1", "slice_data": "2"}, "slices as a count"),
        ({"repeatspspps": "1"}, "parameter sets"),
    ],
)
def test_what_ffmpeg_cannot_say_is_refused(extra, message):
    with pytest.raises(UsageError, match=message):
        mapped(extra=extra)


@pytest.mark.parametrize("encoder", ["h264_nvenc", "hevc_nvenc", "av1_nvenc"])
def test_every_mapped_name_is_an_option_of_ffmpegs_encoder(encoder):
    family = encoder.removesuffix("_nvenc")
    extras = [
        {
            "aq": "4",
            "temporal-aq": "1",
            "rc-lookahead": "8",
            "multipass": "fullres",
            "qmin": "10",
            "qmax": "40",
        },
        {"rc": "constqp", "qp": "20,22,18"},
        {"b": "5M", "maxrate": "6M", "bufsize": "6M", "vbvinit": "3M", "initqp": "25"},
    ]
    for extra in extras:
        names = list(mapped(family=family, extra=extra))
        accepted = ffopts.codec_accepts(encoder, names)
        assert accepted is not None and all(accepted.values()), accepted


# -- conversion is the CPU path's ------------------------------------------------------


def test_frames_are_converted_by_the_cpu_sessions_own_code():
    session = ffmpeg_nvenc.FfmpegNvencSession
    assert issubclass(session, cpu.CpuSession)
    for name in ("convert", "encode", "flush", "_input_format"):
        assert getattr(session, name) is getattr(cpu.CpuSession, name)


# -- the probe's real test encode on this machine --------------------------------------


@needs_no_driver
def test_the_test_encode_reports_ffmpegs_own_words_here():
    code, reason = ffmpeg_nvenc.trial_encode("h264_nvenc")
    assert code == "no-driver" and "Cannot load libcuda.so.1" in reason
    assert ffmpeg_nvenc.trial_encode("hevc_nvenc")[0] == "no-driver"
    assert av.logging.get_level() is None  # the capture leaves FFmpeg's log level as it was


@needs_no_driver
def test_the_probe_stops_at_the_missing_driver_without_pyav():
    assert REAL.code == "no-driver" and REAL.reason == nvenc.probe_details().reason


@needs_no_driver
def test_opening_the_session_here_is_unavailable_with_ffmpegs_message(tmp_path):
    from nvenc_cli.frames import FrameInfo
    from nvenc_cli.mux import Muxer
    from nvenc_cli.options import resolve_color
    from nvenc_cli.plan import EncodePlan

    plan = EncodePlan(
        container="mp4",
        backend="ffmpeg_nvenc",
        encoder="h264_nvenc",
        family="h264",
        source=FrameInfo(64, 48),
        width=64,
        height=48,
        geometry=None,
        pixel_format="yuv420p",
        color=resolve_color(None, None, 48, "yuv420p"),
        fps=Fraction(30),
    )
    muxer = Muxer(str(tmp_path / "o.mp4"), "mp4")
    try:
        with pytest.raises(UnavailableError, match=r"Cannot load libcuda\.so\.1"):
            ffmpeg_nvenc.FfmpegNvencSession(plan, muxer)
    finally:
        muxer.abort()


# -- routes and fallback through the real CLI ------------------------------------------


@pytest.fixture
def ffmpeg_route_probes_fine(monkeypatch):
    """As on an L4 without PyNvVideoCodec: only FFmpeg's nvenc answers the probe."""
    monkeypatch.setattr(
        nvenc, "probe_details", lambda: nvenc.ProbeResult(False, "no-pynvvideocodec", "not installed")
    )
    ok = nvenc.ProbeResult(True, "ok", "FFmpeg's nvenc (pretend)")
    monkeypatch.setattr(ffmpeg_nvenc, "probe_details", lambda: ok)


def test_auto_takes_the_ffmpeg_route_when_it_is_the_one_that_works(ffmpeg_route_probes_fine):
    choice = select("auto", "libx264", explicit=False)
    assert (choice.backend, choice.encoder, choice.may_fall_back) == ("ffmpeg_nvenc", "h264_nvenc", True)
    assert select("cuda", "hevc", explicit=True).backend == "ffmpeg_nvenc"


def test_no_route_names_both_reasons(monkeypatch):
    monkeypatch.setattr(
        nvenc, "probe_details", lambda: nvenc.ProbeResult(False, "x", "PyNvVideoCodec is not installed")
    )
    monkeypatch.setattr(
        ffmpeg_nvenc, "probe_details", lambda: nvenc.ProbeResult(False, "y", "OpenEncodeSessionEx failed (2)")
    )
    choice = select("auto", "libx264", explicit=False)
    assert choice.backend == "cpu"
    assert choice.fallback_reason == (
        "PyNvVideoCodec: PyNvVideoCodec is not installed; FFmpeg nvenc: OpenEncodeSessionEx failed (2)"
    )
    with pytest.raises(UnavailableError, match="FFmpeg nvenc: OpenEncodeSessionEx"):
        select("cuda", "h264", explicit=True)


@needs_no_driver
def test_auto_falls_back_to_the_cpu_when_ffmpegs_nvenc_cannot_open(ffmpeg_route_probes_fine, tmp_path):
    frames = clip(12, 96, 64)
    source = tmp_path / "in.npy"
    np.save(source, frames)
    out = tmp_path / "out.mp4"
    result = cli("encode", str(source), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == "cpu" and report["codec"] == "libx264"
    assert "Cannot load libcuda.so.1" in report["fallback_reason"]
    assert "Cannot load libcuda.so.1" in result.stderr
    with av.open(str(out)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    mse = np.mean((decoded.astype(float) - frames.astype(float)) ** 2)
    assert decoded.shape == frames.shape and 10 * np.log10(255**2 / mse) > 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "out.mp4"]
    cuda = cli("encode", str(source), "-o", str(tmp_path / "no.mp4"), "--device", "cuda")
    assert cuda.exit_code == 69 and "Cannot load libcuda.so.1" in cuda.stderr
    assert not (tmp_path / "no.mp4").exists()


def test_info_shows_each_route_with_its_reason(ffmpeg_route_probes_fine):
    from nvenc_cli.info import collect_info

    backends = collect_info()["backends"]
    assert backends["nvenc"]["available"] is False and backends["nvenc"]["reason"] == "not installed"
    assert backends["ffmpeg_nvenc"]["available"] is True and "pretend" in backends["ffmpeg_nvenc"]["reason"]
    shown = cli("info")
    assert shown.exit_code == 0
    section = shown.stdout.split("Backends:")[1].split("\n\n")[0]
    rows = {line.split()[0]: line for line in section.splitlines()[2:]}
    assert "not installed" in rows["nvenc"] and "pretend" in rows["ffmpeg_nvenc"]


@pytest.mark.parametrize(
    ("pixel_format", "chroma", "colour_range"),
    [("p010le", "420", "tv"), ("p010le", "420", "pc"), ("yuv444p16le", "444", "tv"), ("p016le", "420", "tv")],
)
def test_sixteen_bit_input_reaches_nvenc_as_exact_ten_bit_samples(pixel_format, chroma, colour_range):
    """The 10-bit planes in the top bits of each word equal color.py's, sample for sample."""
    import torch

    from nvenc_cli import color

    plan = make(family="hevc", pixel_format=pixel_format)
    plan = type(plan)(**{**plan.__dict__, "color": resolve(plan, colour_range), "width": 64, "height": 48})
    rgb = np.random.default_rng(3).integers(0, 65536, (48, 64, 3), dtype=np.uint16)
    frame = ffmpeg_nvenc.ten_bit_converter(plan)(rgb)
    assert frame.format.name == pixel_format
    words = [
        np.frombuffer(p, "<u2").reshape(p.height, p.line_size // 2)[:, : plan.width] for p in frame.planes
    ]
    spec = color.YuvSpec(plan.color.matrix, colour_range == "pc", 10, chroma)
    y, u, v = (
        t[0].numpy() for t in color.rgb_to_planes(torch.from_numpy(rgb[None].astype(np.int32)), spec, 16)
    )
    if chroma == "420":
        got = [words[0] >> 6, words[1][:, 0::2] >> 6, words[1][:, 1::2] >> 6]
    else:
        got = [w >> 6 for w in words]
    for mine, want in zip(got, (y, u, v), strict=True):
        assert np.array_equal(mine.astype(np.int64), want.astype(np.int64))


def resolve(plan, colour_range):
    from nvenc_cli.options import resolve_color

    return resolve_color("bt709", colour_range, plan.height, plan.pixel_format)


@needs_no_driver
def test_capturing_ffmpegs_words_leaves_verbose_logging_printing(tmp_path):
    """After the probe's capture, ``-v`` still shows FFmpeg's own lines (its default printer)."""
    import subprocess
    import sys

    frames = tmp_path / "in.npy"
    np.save(frames, clip(3, 64, 48))
    code = (
        "import sys\n"
        "from nvenc_cli.backends import ffmpeg_nvenc\n"
        "from nvenc_cli.report import Reporter\n"
        "Reporter(verbose=True, quiet=False, no_color=True, progress_path=None).ffmpeg_logging()\n"
        "ffmpeg_nvenc.trial_encode()\n"
        "import av, numpy as np\n"
        "c = av.open(sys.argv[1], 'w'); s = c.add_stream('libx264', rate=30); s.width = s.height = 64\n"
        "c.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format='rgb24')))\n"
        "c.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "o.mp4")], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert b"[libx264 @ 0x" in done.stderr
