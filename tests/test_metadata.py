"""Metadata in array files (a frame rate beside the frames, nested .pt containers) and the
one-(C, H, W)-frame rule shared by the CLI and the API. Outputs are decoded and probed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import decode, psnr, run_cli


@pytest.fixture()
def clip(pattern: np.ndarray) -> np.ndarray:
    return pattern[:5]


def _rate(path: Path) -> Fraction:
    return Fraction(decode(path)[1]["rate"])


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("value", [24, 12.5, "tensor"], ids=["int", "float", "tensor"])
def test_pt_fps_entry_sets_the_rate_with_a_notice(
    tmp_path: Path, clip: np.ndarray, legacy: bool, value
) -> None:
    fps = torch.tensor(24) if value == "tensor" else value
    path = tmp_path / "clip.pt"
    torch.save({"video": torch.from_numpy(clip), "fps": fps}, path, _use_new_zipfile_serialization=not legacy)
    out = tmp_path / "out.mp4"
    done = run_cli("encode", path, "-o", out)
    assert done.returncode == 0, done.stderr
    want = Fraction(24 if value == "tensor" else value)
    assert _rate(out) == want
    assert f"frame rate {want} fps from the file's 'fps' entry" in done.stderr.decode()
    forced = run_cli("encode", path, "-o", tmp_path / "forced.mp4", "-r", "30")
    assert forced.returncode == 0, forced.stderr
    assert _rate(tmp_path / "forced.mp4") == 30
    assert "-r 30 used" in forced.stderr.decode()


def test_npz_frames_beside_scalars(tmp_path: Path, clip: np.ndarray) -> None:
    path = tmp_path / "clip.npz"
    np.savez_compressed(path, frames=clip, frame_rate=np.array(29.97), labels=np.arange(5))
    out = tmp_path / "out.mp4"
    done = run_cli("encode", path, "-o", out)
    assert done.returncode == 0, done.stderr
    assert _rate(out) == Fraction(30000, 1001)
    assert "'frame_rate' entry" in done.stderr.decode()
    decoded, _ = decode(out)
    assert len(decoded) == 5 and psnr(decoded, clip) > 35
    # A 'timestamps' entry beside them is each frame's time, kept (tests/test_timestamps.py).
    timed = tmp_path / "timed.npz"
    np.savez_compressed(timed, frames=clip, frame_rate=np.array(29.97), timestamps=np.arange(5))
    done = run_cli("encode", timed, "-o", tmp_path / "timed.mp4")
    assert done.returncode == 0 and "'timestamps' entry" in done.stderr.decode()
    _, facts = decode(tmp_path / "timed.mp4")
    assert [pts * facts["time_base"] for pts in facts["pts"]] == list(range(5))
    two = tmp_path / "two.npz"
    np.savez(two, a=clip, b=clip, fps=np.array(24))
    refused = run_cli("encode", two, "-o", tmp_path / "two.mp4")
    assert refused.returncode == 2 and "(a, b)" in refused.stderr.decode()
    picked = run_cli("encode", two, "--key", "b", "-o", tmp_path / "b.mp4")
    assert picked.returncode == 0 and _rate(tmp_path / "b.mp4") == 24


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_dotted_key_walks_nested_dicts_and_lists(tmp_path: Path, clip: np.ndarray, legacy: bool) -> None:
    frames = torch.from_numpy(clip)
    data = {"run": {"samples": [frames[:2], frames], "fps": 10}, "a.b": frames[:1]}
    path = tmp_path / "nested.pt"
    torch.save(data, path, _use_new_zipfile_serialization=not legacy)
    out = tmp_path / "out.mp4"
    done = run_cli("encode", path, "--key", "run.samples.1", "-o", out)
    assert done.returncode == 0, done.stderr
    decoded, _ = decode(out)
    assert len(decoded) == 5 and psnr(decoded, clip) > 35
    assert _rate(out) == 10  # the rate beside the list that holds the frames
    literal = run_cli("encode", path, "--key", "a.b", "-o", tmp_path / "lit.mp4")
    assert literal.returncode == 0 and len(decode(tmp_path / "lit.mp4")[0]) == 1
    for key, words in (
        ("run.samples.7", "no index 'run.samples.7'"),
        ("run.nope", "no entry 'run.nope'"),
        ("run.fps", "names a int"),
    ):
        bad = run_cli("encode", path, "--key", key, "-o", tmp_path / "bad.mp4")
        assert bad.returncode == 65 and words in bad.stderr.decode(), bad.stderr
    deep_only = tmp_path / "deep.pt"
    torch.save({"run": data["run"]}, deep_only, _use_new_zipfile_serialization=not legacy)
    top = run_cli("encode", deep_only, "-o", tmp_path / "top.mp4")
    assert top.returncode == 65 and "--key a.b.0" in top.stderr.decode()


def test_one_chw_frame_means_the_same_in_cli_and_api(tmp_path: Path, clip: np.ndarray) -> None:
    from nvenc_cli import VideoEncoder

    chw = np.ascontiguousarray(clip[0].transpose(2, 0, 1))  # (3, 240, 320)
    np.save(tmp_path / "chw.npy", chw)
    out = tmp_path / "cli.mkv"
    done = run_cli("encode", tmp_path / "chw.npy", "-o", out, "-c", "ffv1")
    assert done.returncode == 0, done.stderr
    assert "read as one RGB frame" in done.stderr.decode()
    cli_frames, facts = decode(out)
    assert len(cli_frames) == 1 and (facts["width"], facts["height"]) == (320, 240)
    assert np.array_equal(cli_frames[0], clip[0])
    for frames in (chw, torch.from_numpy(chw)):
        api_out = tmp_path / "api.mkv"
        VideoEncoder(frames, frame_rate=30).to_file(api_out, codec="ffv1")
        assert np.array_equal(decode(api_out)[0], cli_frames)
    gray_stack = tmp_path / "gray.npy"
    np.save(gray_stack, clip[:3, :, :, 0:1])  # (3, H, W, 1): three gray frames
    stacked = run_cli("encode", gray_stack, "-o", tmp_path / "gray.mkv", "-c", "ffv1")
    assert stacked.returncode == 0 and len(decode(tmp_path / "gray.mkv")[0]) == 3
