"""Video inputs whose planes the output keeps go to the encoder as they are.

A transcode that keeps the pixel format, size and colour used to decode to RGB and
convert back: CPU time and a generation of chroma and rounding loss. These tests decode
the output and compare its Y'CbCr planes with the input's, sample for sample where the
encode is lossless.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from nvenc_cli import testsrc
from tests.conftest import ffprobe, run_cli


def write_video(
    path: Path, frames: np.ndarray, codec: str, options: dict[str, str], space: str | None
) -> None:
    """Encode RGB frames to yuv420p with PyAV (swscale's maths), tagged ``space`` or not."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.options = options
        if space is not None:
            stream.codec_context.colorspace = {"bt709": 1, "bt601": 6}[space]
            stream.codec_context.color_primaries = {"bt709": 1, "bt601": 6}[space]
            stream.codec_context.color_trc = {"bt709": 1, "bt601": 6}[space]
            stream.codec_context.color_range = 1
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def planes_of(path: Path) -> tuple[list[np.ndarray], list[av.video.frame.PictureType], int]:
    """Every frame's Y, U and V planes (stacked), the picture types and the colour matrix."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    stacked = [
        np.concatenate([np.asarray(p).reshape(-1) for p in (f.to_ndarray(format="yuv420p"),)]) for f in frames
    ]
    return stacked, [f.key_frame for f in frames], int(frames[0].colorspace)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return testsrc.batch(160, 96, 20)


def test_lossless_transcode_keeps_every_sample(tmp_path: Path, clip: np.ndarray) -> None:
    source = tmp_path / "in.mkv"
    write_video(source, clip, "ffv1", {}, "bt709")
    out = tmp_path / "out.mkv"
    done = run_cli("encode", source, "-o", out, "-c", "ffv1", "--pixel-format", "yuv420p")
    assert done.returncode == 0, done.stderr.decode()
    want, _, _ = planes_of(source)
    got, _, space = planes_of(out)
    assert len(got) == 20 and all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert space == 1  # the input's BT.709 kept (96 lines would otherwise be tagged BT.601)
    x264 = tmp_path / "x.mp4"
    assert run_cli("encode", source, "-o", x264, "--crf", "0").returncode == 0
    got, _, _ = planes_of(x264)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_other_maths_asked_for_is_converted_and_tagged(tmp_path: Path, clip: np.ndarray) -> None:
    source = tmp_path / "in.mkv"
    write_video(source, clip, "ffv1", {}, "bt709")
    out = tmp_path / "601.mkv"
    args = ("-c", "ffv1", "--pixel-format", "yuv420p", "--color-matrix", "bt601")
    assert run_cli("encode", source, "-o", out, *args).returncode == 0
    got, _, space = planes_of(out)
    want, _, _ = planes_of(source)
    assert space == 6 and not np.array_equal(got[0], want[0])  # converted, not relabelled
    rgb_in = np.stack([f.to_ndarray(format="rgb24") for f in av.open(str(source)).decode(video=0)])
    rgb_out = np.stack([f.to_ndarray(format="rgb24") for f in av.open(str(out)).decode(video=0)])
    assert np.abs(rgb_in.astype(int) - rgb_out).mean() < 2  # the same colours, other maths


def test_untagged_input_is_tagged_by_the_usual_rule(tmp_path: Path) -> None:
    source = tmp_path / "in.y4m"
    frames = testsrc.batch(1280, 720, 3)
    with av.open(str(source), "w") as container:
        stream = container.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
    out = tmp_path / "out.mp4"
    done = run_cli("encode", source, "-o", out, "--crf", "0")
    assert done.returncode == 0, done.stderr.decode()
    want, _, _ = planes_of(source)
    got, _, space = planes_of(out)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert space == 1 and ffprobe(out)["stream"]["color_space"] == "bt709"


def test_the_decoders_picture_types_do_not_force_the_encoders(tmp_path: Path, clip: np.ndarray) -> None:
    source = tmp_path / "intra.mp4"
    write_video(source, clip, "libx264", {"g": "1", "crf": "10"}, "bt601")
    assert all(planes_of(source)[1])  # every input frame a keyframe
    out = tmp_path / "out.mp4"
    assert run_cli("encode", source, "-o", out).returncode == 0
    keys = planes_of(out)[1]
    assert keys[0] and sum(keys) == 1  # x264's own choice: one keyframe in 20 frames


def test_resize_or_another_pixel_format_still_converts(tmp_path: Path, clip: np.ndarray) -> None:
    source = tmp_path / "in.mkv"
    write_video(source, clip, "ffv1", {}, "bt709")
    for args, size, pix in (
        (("--resize", "80x48"), (80, 48), "yuv420p"),
        (("--pixel-format", "yuv444p"), (160, 96), "yuv444p"),
    ):
        out = tmp_path / f"{pix}{size[0]}.mp4"
        assert run_cli("encode", source, "-o", out, *args).returncode == 0
        with av.open(str(out)) as container:
            ctx = container.streams.video[0].codec_context
            assert (ctx.width, ctx.height, ctx.pix_fmt) == (*size, pix)


def test_planes_pass_through_a_pipe(tmp_path: Path, clip: np.ndarray) -> None:
    source = tmp_path / "in.nut"
    write_video(source, clip, "ffv1", {}, "bt709")
    out = tmp_path / "piped.mkv"
    with open(source, "rb") as fh:
        done = run_cli("encode", "-", "-o", out, "-c", "ffv1", "--pixel-format", "yuv420p", stdin=fh)
    assert done.returncode == 0, done.stderr.decode()
    got, want = planes_of(out)[0], planes_of(source)[0]
    assert len(got) == 20 and all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert Fraction(av.open(str(out)).streams.video[0].average_rate) == 30
