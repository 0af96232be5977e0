"""GIF: a palette built from the frames, at least as good as ffmpeg's palettegen.

Referee: Debian's ffmpeg CLI with the usual two-pass palettegen/paletteuse recipe on the
same frames; PSNR is of the decoded RGB against the source.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import decode, psnr, run_cli


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    from nvenc_cli import testsrc

    return testsrc.batch(320, 240, 30)


def test_gif_palette_beats_ffmpeg_palettegen(tmp_path: Path, clip: np.ndarray) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    np.save(tmp_path / "clip.npy", clip)
    ours = tmp_path / "ours.gif"
    done = run_cli("encode", tmp_path / "clip.npy", "-o", ours)
    assert done.returncode == 0, done.stderr
    assert "gif pal8" in done.stderr.decode()
    theirs = tmp_path / "theirs.gif"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "320x240", "-r", "30",
         "-i", "-", "-filter_complex", "[0:v]split[a][b];[a]palettegen[p];[b][p]paletteuse", str(theirs)],
        input=clip.tobytes(), check=True,
    )  # fmt: skip
    decoded, facts = decode(ours)
    reference, _ = decode(theirs)
    assert len(decoded) == 30 and facts["codec"] == "gif"
    ours_db, theirs_db = psnr(decoded, clip), psnr(reference, clip)
    assert ours_db >= theirs_db, (ours_db, theirs_db)  # 43.8 against 43.2 dB here
    assert ours.stat().st_size < 1.6 * theirs.stat().st_size  # 270 against 194 kB here
    fixed = tmp_path / "fixed.gif"
    plain = run_cli("encode", tmp_path / "clip.npy", "-o", fixed, "--pixel-format", "rgb8")
    assert plain.returncode == 0, plain.stderr
    assert psnr(decode(fixed)[0], clip) + 10 < ours_db  # the fixed palette: ~30 dB


def test_pal8_png_and_the_api(tmp_path: Path, clip: np.ndarray) -> None:
    from nvenc_cli import VideoEncoder

    np.save(tmp_path / "clip.npy", clip[:6])
    out = tmp_path / "pal.nut"
    done = run_cli("encode", tmp_path / "clip.npy", "-o", out, "-c", "png", "--pixel-format", "pal8")
    assert done.returncode == 0, done.stderr
    decoded, facts = decode(out)
    assert len(decoded) == 6 and facts["pix_fmt"] == "pal8" and psnr(decoded, clip[:6]) > 38
    api = tmp_path / "api.gif"
    VideoEncoder(clip[:6], frame_rate=10).to_file(api)
    frames, _ = decode(api)
    assert len(frames) == 6 and psnr(frames, clip[:6]) > 38
