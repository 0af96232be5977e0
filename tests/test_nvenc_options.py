"""EncodePlan → PyNvVideoCodec CreateEncoder keywords: every accepted and refused option."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nvenc_cli.backends import nvenc_options as no
from nvenc_cli.errors import UsageError
from nvenc_cli.frames import FrameInfo
from nvenc_cli.options import resolve_color
from nvenc_cli.plan import EncodePlan


def make(
    family: str = "h264",
    pixel_format: str = "yuv420p",
    crf: float | None = None,
    preset: str | None = None,
    extra: dict[str, str] | None = None,
    fps: Fraction = Fraction(30),
    container: str = "mp4",
) -> EncodePlan:
    return EncodePlan(
        container=container,
        backend="nvenc",
        encoder=f"{family}_nvenc",
        family=family,
        source=FrameInfo(1920, 1080),
        width=1920,
        height=1080,
        geometry=None,
        pixel_format=pixel_format,
        color=resolve_color(None, None, 1080, pixel_format),
        fps=fps,
        crf=crf,
        preset=preset,
        codec_options=dict(extra or {}),
    )


def kwargs(**plan_args) -> dict[str, str]:
    return no.settings_for(make(**plan_args)).kwargs


def test_defaults_are_explicit():
    settings = no.settings_for(make())
    assert settings.kwargs == {
        "codec": "h264",
        "preset": "P4",
        "tuning_info": "high_quality",
        "rc": "vbr",
        "cq": "23",
        "gop": "250",
        "idrperiod": "250",
        "bf": "2",  # a B-frame count: two B-frames between references
        "fps": "30",
        "repeatspspps": "0",
        "gpu_id": "0",
    }
    assert settings.bframes == 2 and settings.gop == 250 and settings.gpu_id == 0
    assert all(isinstance(v, str) for v in settings.kwargs.values())


def test_in_band_parameter_sets_without_global_header():
    assert no.settings_for(make(container="mpegts"), global_header=False).kwargs["repeatspspps"] == "1"


def test_av1_specifics():
    settings = no.settings_for(make(family="av1"))
    assert settings.kwargs["codec"] == "av1" and settings.kwargs["use_ivf_container"] == "0"
    assert "repeatspspps" not in settings.kwargs


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("p1", "P1"),
        ("P7", "P7"),
        (" p4 ", "P4"),
        ("fast", "P3"),
        ("medium", "P4"),
        ("slow", "P5"),
        ("ultrafast", "P1"),
        ("veryfast", "P2"),
        ("slower", "P6"),
        ("veryslow", "P7"),
        ("placebo", "P7"),
        (None, "P4"),
    ],
)
def test_presets(given, expected):
    assert kwargs(preset=given)["preset"] == expected


@pytest.mark.parametrize("bad", ["p0", "p8", "hq", "default", "4", ""])
def test_bad_presets(bad):
    with pytest.raises(UsageError, match="preset"):
        kwargs(preset=bad)


def test_crf_is_constant_quality():
    out = kwargs(crf=28.0)
    assert out["rc"] == "vbr" and out["cq"] == "28"
    assert "bitrate" not in out and "maxbitrate" not in out


def test_crf_zero_is_lossless():
    out = kwargs(crf=0)
    assert out["tuning_info"] == "lossless" and out["rc"] == "constqp" and out["constqp"] == "0"
    assert "cq" not in out


@pytest.mark.parametrize(
    ("crf", "extra", "message"),
    [
        (23.5, {}, "whole-number"),
        (23, {"bitrate": "5M"}, "exclude"),
        (23, {"maxbitrate": "5M"}, "exclude"),
        (23, {"cq": "20"}, "same thing"),
        (23, {"rc": "cbr"}, "rc=cbr"),
        (23, {"rc": "constqp"}, "rc=constqp"),
        (0, {"rc": "vbr"}, "lossless"),
        (0, {"tuning_info": "low_latency"}, "lossless"),
    ],
)
def test_crf_conflicts(crf, extra, message):
    with pytest.raises(UsageError, match=message):
        kwargs(crf=crf, extra=extra)


def test_bitrate_modes():
    out = kwargs(extra={"bitrate": "8M", "maxbitrate": "12M", "vbvbufsize": "16M", "vbvinit": "8M"})
    assert out["rc"] == "vbr" and "cq" not in out
    assert (out["bitrate"], out["maxbitrate"], out["vbvbufsize"], out["vbvinit"]) == (
        "8000000",
        "12000000",
        "16000000",
        "8000000",
    )
    cbr = kwargs(extra={"rc": "cbr", "b": "2500k"})
    assert cbr["rc"] == "cbr" and cbr["bitrate"] == "2500000"
    qp = kwargs(extra={"rc": "constqp", "constqp": "20,24,18"})
    assert qp["rc"] == "constqp" and qp["constqp"] == "20,24,18" and "cq" not in qp
    assert kwargs(extra={"rc": "constqp"})["constqp"] == "23"
    assert kwargs(extra={"cq": "30"})["cq"] == "30"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rc": "cbr"}, "needs -x bitrate"),
        ({"rc": "constqp", "bitrate": "1M"}, "ignores bitrate"),
        ({"constqp": "20"}, "needs -x rc=constqp"),
        ({"cq": "20", "bitrate": "1M"}, "exclude"),
        ({"rc": "abr"}, "choose vbr, cbr, constqp"),
    ],
)
def test_rate_control_conflicts(extra, message):
    with pytest.raises(UsageError, match=message):
        kwargs(extra=extra)


def test_gop_and_bframes():
    out = no.settings_for(make(extra={"gop": "60", "bf": "3"}))
    assert out.kwargs["gop"] == "60" and out.kwargs["idrperiod"] == "60" and out.kwargs["bf"] == "3"
    assert out.bframes == 3
    assert kwargs(extra={"bf": "0"})["bf"] == "0"
    assert kwargs(extra={"g": "1"})["bf"] == "0"  # all-intra: no B-frames by default
    assert kwargs(extra={"gop": "100", "idrperiod": "300"})["idrperiod"] == "300"
    assert kwargs(extra={"tune": "ll"})["bf"] == "0"  # low latency: no reordering
    assert kwargs(extra={"tune": "ull"})["bf"] == "0"
    with pytest.raises(UsageError, match="GOP longer"):
        kwargs(extra={"gop": "2", "bf": "2"})


ACCEPTED = [
    ("bitrate", "1000000", "bitrate", "1000000"),
    ("bitrate", "1.5M", "bitrate", "1500000"),
    ("maxbitrate", "2G", "maxbitrate", "2000000000"),
    ("vbvbufsize", "800k", "vbvbufsize", "800000"),
    ("vbvinit", "400k", "vbvinit", "400000"),
    ("cq", "1", "cq", "1"),
    ("cq", "51", "cq", "51"),
    ("initqp", "25", "initqp", "25"),
    ("qmin", "10,12,8", "qmin", "10,12,8"),
    ("qmax", "40", "qmax", "40"),
    ("gop", "30", "gop", "30"),
    ("idrperiod", "90", "idrperiod", "90"),
    ("bf", "4", "bf", "4"),
    ("tuning_info", "low_latency", "tuning_info", "low_latency"),
    ("tuning_info", "ULTRA_LOW_LATENCY", "tuning_info", "ultra_low_latency"),
    ("tuning_info", "uhq", "tuning_info", "uhq"),
    ("tune", "hq", "tuning_info", "high_quality"),
    ("multipass", "qres", "multipass", "qres"),
    ("multipass", "fullres", "multipass", "fullres"),
    ("lookahead", "20", "lookahead", "20"),
    ("rc-lookahead", "8", "lookahead", "8"),
    ("aq", "8", "aq", "8"),
    ("spatial-aq", "1", "aq", "1"),
    ("temporalaq", "1", "temporalaq", "1"),
    ("temporal-aq", "true", "temporalaq", "1"),
    ("ldkfs", "on", "ldkfs", "1"),
    ("repeatspspps", "1", "repeatspspps", "1"),
    ("slice_mode", "3", "slice_mode", "3"),
    ("slice_data", "4", "slice_data", "4"),
    ("gpu_id", "1", "gpu_id", "1"),
    ("gpu", "2", "gpu_id", "2"),
    ("b", "3M", "bitrate", "3000000"),
    ("maxrate", "6M", "maxbitrate", "6000000"),
    ("bufsize", "6M", "vbvbufsize", "6000000"),
    ("g", "48", "gop", "48"),
]


@pytest.mark.parametrize(("key", "value", "sent", "expected"), ACCEPTED)
def test_accepted_keys(key, value, sent, expected):
    assert kwargs(extra={key: value})[sent] == expected


def test_every_documented_key_is_covered():
    covered = {sent for _, _, sent, _ in ACCEPTED} | {"rc", "constqp"}
    assert covered == set(no.NVENC_KEYS)


@pytest.mark.parametrize("key", ["temporalaq", "ldkfs"])
def test_switches_set_to_off_are_not_sent(key):
    """PyNvVideoCodec turns these on when the key is merely present."""
    assert key not in kwargs(extra={key: "0"})
    assert "aq" not in kwargs(extra={"aq": "0"})


def test_repeat_sps_pps_off_is_kept():
    assert (
        no.settings_for(make(extra={"repeatspspps": "0"}), global_header=False).kwargs["repeatspspps"] == "0"
    )


REFUSED = [
    ("bitrate", "fast", "bit/s"),
    ("bitrate", "0", "out of range"),
    ("bitrate", "5T", "bit/s"),
    ("maxbitrate", "-1", "bit/s"),
    ("cq", "0", "1–51"),
    ("cq", "52", "1–51"),
    ("cq", "x", "whole number"),
    ("constqp", "52", "0–51"),
    ("qmin", "1,2", "P,B,I"),
    ("qmax", "1,2,300", "0–51"),
    ("gop", "0", "≥ 1"),
    ("idrperiod", "-5", "≥ 1"),
    ("bf", "8", "0–7"),
    ("bf", "two", "whole number"),
    ("tuning_info", "best", "choose"),
    ("multipass", "2pass", "choose"),
    ("lookahead", "256", "0–255"),
    ("aq", "16", "strength"),
    ("temporalaq", "maybe", "1 or 0"),
    ("repeatspspps", "2", "0–1"),
    ("slice_mode", "4", "0–3"),
    ("gpu_id", "-1", "≥ 0"),
]


@pytest.mark.parametrize(("key", "value", "message"), REFUSED)
def test_refused_values(key, value, message):
    with pytest.raises(UsageError, match=message):
        kwargs(extra={key: value})


@pytest.mark.parametrize("key", sorted(no.RESERVED_KEYS))
def test_reserved_keys(key):
    with pytest.raises(UsageError, match="not accepted for NVENC"):
        kwargs(extra={key: "1"})


@pytest.mark.parametrize("key", ["crf_max", "x264-params", "profile", "level", "b_ref_mode", "zerolatency"])
def test_unknown_keys(key):
    with pytest.raises(UsageError, match="unknown NVENC option"):
        kwargs(extra={key: "1"})


def test_duplicate_through_alias():
    with pytest.raises(UsageError, match="twice"):
        kwargs(extra={"bitrate": "1M", "b": "2M"})


def test_av1_ranges():
    assert kwargs(family="av1", extra={"cq": "63"})["cq"] == "63"
    assert kwargs(family="av1", extra={"rc": "constqp", "constqp": "200"})["constqp"] == "200"
    with pytest.raises(UsageError, match="AV1"):
        kwargs(family="av1", extra={"slice_mode": "1"})


@pytest.mark.parametrize(
    ("pixel_format", "nvenc_format", "stream_format", "bits", "chroma"),
    [
        ("yuv420p", "NV12", "yuv420p", 8, "420"),
        ("nv12", "NV12", "yuv420p", 8, "420"),
        ("p010le", "P010", "yuv420p10le", 10, "420"),
        ("p016le", "P010", "yuv420p10le", 10, "420"),
        ("yuv444p", "YUV444", "yuv444p", 8, "444"),
        ("yuv444p16le", "YUV444_10BIT", "yuv444p10le", 10, "444"),
    ],
)
def test_surfaces(pixel_format, nvenc_format, stream_format, bits, chroma):
    surface = no.settings_for(make(family="hevc", pixel_format=pixel_format)).surface
    assert (surface.nvenc_format, surface.stream_pix_fmt, surface.bits, surface.chroma) == (
        nvenc_format,
        stream_format,
        bits,
        chroma,
    )


@pytest.mark.parametrize("pixel_format", ["bgr0", "rgb0", "gbrp", "nv16", "p210le", "cuda"])
def test_refused_surfaces(pixel_format):
    with pytest.raises(UsageError, match="not available on the NVENC path"):
        no.settings_for(make(pixel_format=pixel_format))


def test_av1_refuses_444():
    with pytest.raises(UsageError, match="4:2:0 only"):
        no.settings_for(make(family="av1", pixel_format="yuv444p"))


def test_fractional_fps_is_sent_as_decimal():
    assert kwargs(fps=Fraction(30000, 1001))["fps"] == "29.97"
    assert kwargs(fps=Fraction(25))["fps"] == "25"


def test_codec_family_checked():
    with pytest.raises(UsageError, match="NVENC encodes"):
        no.settings_for(make(family="vp9"))
