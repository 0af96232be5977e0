"""For the same YUV planes and settings, nvenc's FFmpeg encoders decide what the ffmpeg CLI
decides: nvenc opens them with FFmpeg's defaults, not PyAV's ``add_stream`` ones (bit rate
0 and a 128 kb/s tolerance, which halve an MPEG-4 file), and gives x264 the lookahead
threads that ffmpeg's own thread count implies (more lookahead threads split its analysis
and change its choices). This is what lets torchcodec's comparison with the ffmpeg CLI
differ only by the RGB→YUV conversion.

The referee is Debian's ffmpeg (another FFmpeg and x264 build than PyAV's wheel), fed the
very planes nvenc converts to, recovered from a lossless nvenc encode.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from nvenc_cli import VideoEncoder, testsrc

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI as referee")

W, H, COUNT = 640, 360, 20  # below 720 lines: BT.601 for every codec, as the CLI assumes


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, Path]:
    """RGB frames, and the yuv420p planes nvenc turns them into."""
    folder = tmp_path_factory.mktemp("parity")
    frames = testsrc.batch(W, H, COUNT)
    lossless = folder / "lossless.mkv"
    VideoEncoder(frames, frame_rate=30).to_file(lossless, codec="libx264", crf=0, pixel_format="yuv420p")
    planes = folder / "planes.yuv"
    planes.write_bytes(b"".join(plane.tobytes() for plane in decode(lossless)))
    return frames, planes


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="yuv420p") for frame in container.decode(video=0)]


@pytest.mark.parametrize(
    ("container", "cli_args", "settings"),
    [
        ("mp4", [], {}),  # libx264 medium, crf 23
        ("mkv", ["-crf", "30"], {"crf": 30}),
        ("avi", [], {}),  # mpeg4 at FFmpeg's 200 kb/s
        ("flv", [], {}),  # flv1 likewise
    ],
)
def test_same_planes_same_settings_same_pictures_as_the_ffmpeg_cli(
    tmp_path: Path, source: tuple[np.ndarray, Path], container: str, cli_args: list[str], settings: dict
) -> None:
    frames, planes = source
    theirs = tmp_path / f"cli.{container}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p",
         "-s", f"{W}x{H}", "-r", "30", "-i", str(planes), *cli_args, str(theirs)],
        check=True,
    )  # fmt: skip
    ours = tmp_path / f"nvenc.{container}"
    VideoEncoder(frames, frame_rate=30).to_file(ours, **settings)
    a, b = decode(theirs), decode(ours)
    assert len(a) == len(b) == COUNT
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        close = float(np.mean(np.abs(x.astype(np.int16) - y.astype(np.int16)) <= 2))
        assert close >= 0.99, (index, close)  # torchcodec's own criterion for this comparison
    assert ours.stat().st_size == pytest.approx(theirs.stat().st_size, rel=0.05)
