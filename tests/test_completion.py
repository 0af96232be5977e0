"""Shell completion: --show-completion SHELL prints that shell's script, and -c <TAB>
offers only encoders that really encode here (each one is tried)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, decode, run_cli


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("zsh", "#compdef nvenc"),
        ("fish", "complete --command nvenc"),
        ("bash", "complete -o default -F _nvenc_completion nvenc"),
    ],
)
def test_show_completion_prints_the_named_shells_script(shell: str, marker: str) -> None:
    for args in (["--show-completion", shell], [f"--show-completion={shell}"]):
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
        assert marker in done.stdout.decode()


def test_unknown_shell_is_a_usage_error() -> None:
    done = run_cli("--show-completion", "tcsh")
    assert done.returncode == 2 and "unknown shell 'tcsh'" in done.stderr.decode()


def _tab(words: str) -> list[str]:
    """What bash would offer for the last word of ``words`` (Typer's completion protocol)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "_NVENC_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    done = subprocess.run(
        [sys.executable, "-m", "nvenc_cli"], env=env, capture_output=True, text=True, timeout=60
    )
    return done.stdout.split()


def test_codec_tab_offers_only_encoders_that_encode(tmp_path: Path) -> None:
    from nvenc_cli.options import CONTAINER_CODECS, CPU_ENCODER_FOR

    offered = _tab("nvenc encode in.npy -c ")
    assert {"libx264", "libx265", "libvpx-vp9", "libsvtav1", "ffv1", "h264", "hevc"} <= set(offered)
    assert not {"a64multi", "cinepak", "libwebp", "amv", "h264_vaapi"} & set(offered)
    assert _tab("nvenc encode in.npy -c libx26") == ["libx264", "libx264rgb", "libx265"]
    frames = tmp_path / "f.npy"
    np.save(frames, np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8))
    import av

    for name in offered:
        if name in CPU_ENCODER_FOR or name.endswith("_nvenc"):
            continue  # aliases resolve to the encoders tried here; NVENC needs its GPU
        family = av.Codec(name, "w").canonical_name
        container = next(c for c in CONTAINER_CODECS if family in CONTAINER_CODECS[c])
        out = tmp_path / f"{name}.out"
        done = run_cli("encode", frames, "-o", out, "-f", container, "-c", name)
        assert done.returncode == 0, (name, done.stderr)
        assert len(decode(out)[0]) == 2, name
