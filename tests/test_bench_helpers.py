"""The benchmark's own helpers: ratios, labels, PSNR and the command lines it builds.

No timing is asserted here (speed depends on the machine); these check that what the
benchmark reports is computed from the right numbers and that every contender is asked
for the same encode.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import cases

import bench


def test_round_ratios_pair_rounds_and_skip_failed_ones() -> None:
    nvenc = [2.0, 4.0, None, 1.0]
    peer = [3.0, 2.0, 5.0, None]
    assert cases.round_ratios(nvenc, peer) == [1.5, 0.5]


def test_rotated_starts_each_round_one_place_further() -> None:
    items = ["a", "b", "c"]
    assert [cases.rotated(items, n) for n in range(4)] == [  # type: ignore[arg-type]
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]


@pytest.mark.parametrize(
    ("text", "short"),
    [("5.1.9-0+deb12u1", "5.1"), ("n9.0.2-17-g2a571b6068-20260930", "9.0"), ("N-12345-gabc", "N-12345-gabc")],
)
def test_short_version(text: str, short: str) -> None:
    assert cases.short_version(text) == short


def test_encoder_versions_read_from_stream_and_log() -> None:
    stream = b"\x00\x00\x01\x06\x05x264 - core 165 r3222 - H.264/MPEG-4 AVC codec"
    log = "Svt[info]: SVT [version]:\tSVT-AV1 Encoder Lib v4.3.0\nSvt[info]: SVT [build]"
    assert cases.encoder_versions(stream, log) == "x264 core 165, SVT-AV1 v4.3.0"
    assert cases.encoder_versions(b"", "") == "x264 core ?, SVT-AV1 ?"


def test_parse_options() -> None:
    assert cases.parse_options("") == {}
    assert cases.parse_options("g=2,tune=film") == {"g": "2", "tune": "film"}


def test_plane_psnr_matches_the_definition() -> None:
    assert cases.plane_psnr(0.0, 100) == math.inf
    # every sample off by 1: MSE 1, PSNR = 20 log10(255)
    assert cases.plane_psnr(100.0, 100) == pytest.approx(20 * math.log10(255))


def write_clip(path: Path, planes: list[np.ndarray], codec: str, options: dict[str, str]) -> None:
    """Encode yuv420p frames (packed (H*3/2, W) arrays) with PyAV."""
    height, width = planes[0].shape[0] * 2 // 3, planes[0].shape[1]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        for packed in planes:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(packed, format="yuv420p")))
        out.mux(stream.encode(None))


def test_psnr_from_decoded_planes(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    planes = [rng.integers(16, 236, size=(48, 64), dtype=np.uint8) for _ in range(4)]
    reference = tmp_path / "ref.mkv"
    write_clip(reference, planes, "ffv1", {})
    assert cases.psnr(reference, reference) == (math.inf, math.inf, math.inf)

    lossy = tmp_path / "lossy.mp4"
    write_clip(lossy, planes, "libx264", {"crf": "35", "preset": "ultrafast"})
    got = cases.psnr(lossy, reference)
    assert got is not None
    with av.open(str(lossy)) as container:
        decoded = [f.to_ndarray() for f in container.decode(video=0)]
    pairs = zip(decoded, planes, strict=True)
    luma_error = sum(float(np.square(d[:32].astype(int) - p[:32].astype(int)).sum()) for d, p in pairs)
    assert got[0] == pytest.approx(cases.plane_psnr(luma_error, 4 * 32 * 64))
    assert all(10 < value < 60 for value in got)

    shorter = tmp_path / "short.mkv"
    write_clip(shorter, planes[:3], "ffv1", {})
    assert cases.psnr(shorter, reference) is None  # frame counts differ


def test_every_contender_gets_the_same_encode(tmp_path: Path) -> None:
    case = cases.Case("c", 640, 480, 300, "libsvtav1", "8", 30, (("g", "2"),))
    inputs = cases.Inputs(tmp_path / "in.npy", tmp_path / "in.yuv")
    found = cases.entrants(case, inputs, ["nvenc"], tmp_path)
    names = [e.name for e in found]
    assert names[0] == "nvenc"
    assert "pyav floor" in names
    nvenc = found[0].argv
    assert nvenc[nvenc.index("-c") + 1] == "libsvtav1"
    assert nvenc[nvenc.index("--preset") + 1] == "8"
    assert nvenc[nvenc.index("--crf") + 1] == "30"
    assert nvenc[nvenc.index("-x") + 1] == "g=2"
    for entrant in found[1:]:
        argv = entrant.argv
        if "--floor" in argv:
            assert argv[argv.index("--options") + 1] == "g=2"
            assert argv[argv.index("--peer-preset") + 1] == "8"
            continue
        assert argv[argv.index("-c:v") + 1] == "libsvtav1"
        assert argv[argv.index("-preset") + 1] == "8"
        assert argv[argv.index("-crf") + 1] == "30"
        assert argv[argv.index("-g") + 1] == "2"
        source = argv[argv.index("-i") + 1]
        assert source == ("-" if entrant.name.endswith("pipe") else str(inputs.yuv))
    outputs = [cases.output_path(e) for e in found]
    assert len(set(outputs)) == len(outputs)  # no two contenders write the same file


def test_transcode_case_runs_the_plain_commands(tmp_path: Path) -> None:
    case = cases.Case("d", 1920, 1080, 60, "libx264", "ultrafast", 23, transcode=True)
    inputs = cases.Inputs(tmp_path / "in.y4m", tmp_path / "in.yuv")
    found = cases.entrants(case, inputs, ["nvenc"], tmp_path)
    assert found[0].argv == ["nvenc", "encode", str(inputs.source), "-o", str(cases.output_path(found[0])),
                             "--preset", "ultrafast", "-y", "-q"]  # fmt: skip
    clis = [e for e in found[1:] if e.what == "y4m -> CLI"]
    for entrant in clis:
        argv = entrant.argv
        assert argv[argv.index("-i") + 1] == str(inputs.source)
        assert argv[argv.index("-c:v") + 1 : argv.index("-c:v") + 4] == ["libx264", "-preset", "ultrafast"]
        assert "-crf" not in argv  # ffmpeg's own default, as a user would run it


def test_many_static_command_uses_the_wheel_binary(tmp_path: Path) -> None:
    static = bench.static_ffmpeg()
    if static is None:
        pytest.skip("imageio-ffmpeg not installed")
    command = bench.many_command(
        "xargs -P2 ffmpeg-static", ["nvenc"], tmp_path, tmp_path, "medium", 23, "64x48"
    )
    assert static in command and "xargs -0 -n1 -P2" in command and "-preset medium -crf 23" in command
    assert bench.many_ffmpeg("xargs -P2 ffmpeg-static") == "ffmpeg-static"
    assert bench.many_ffmpeg("ffmpeg loop") == "ffmpeg"
