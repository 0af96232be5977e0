"""Every shell and Python example in README.md and docs/ runs, and what it writes decodes.

Blocks are collected from the Markdown: a fenced block tagged ``sh``/``bash``/``console`` runs
in bash (``set -euo pipefail``) with ``nvenc`` on PATH; the ``python`` blocks of one page run
in order in one interpreter, as a reader would paste them. Each page runs in a fresh folder
holding small inputs under the names the examples use (frames.npy, frames.pt, clip.mp4…).
Afterwards every video or sound file in the folder must decode to at least one frame.

A block that cannot run here says so on the line before its fence,
``<!-- skip: why -->`` (a GPU, a cluster, the network), and is skipped with that reason; one
that needs a program that is missing (a system ffmpeg) is skipped at run time, naming it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import ROOT, ffprobe

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELLS = {"sh", "bash", "console", "shell"}
MEDIA = {".mp4", ".mkv", ".webm", ".mov", ".gif", ".avi", ".ts", ".flv", ".nut", ".m4v", ".flac", ".wav"}
# Programs an example may call besides nvenc and python: skipped, named, where missing.
EXTERNAL = ("ffmpeg", "ffprobe", "ffplay", "jq", "ssh")
# Examples that do not run yet against the inputs make_inputs() writes (a fixture or a fix is
# owed); skipped by name so that the list stays short and visible. Empty it, don't grow it.
PENDING: dict[str, str] = {}
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!--\s*skip:\s*(.+?)\s*-->$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, with the skip reason written above each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        match = _FENCE.match(lines[i].strip())
        if not match:
            i += 1
            continue
        start, lang = i, match.group(1)
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        above = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        skip = _SKIP.match(above)
        found.append(Block(page, start + 1, lang, "\n".join(body) + "\n", skip.group(1) if skip else None))
        i += 1
    return found


ALL = [b for page in PAGES for b in blocks(page)]
SHELL_BLOCKS = [b for b in ALL if b.lang in SHELLS]
PYTHON_PAGES = sorted({b.page for b in ALL if b.lang == "python"})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples' inputs, made once per module (each test gets a copy)."""
    where = tmp_path_factory.mktemp("inputs")
    make_inputs(where)
    return where


def fresh_copy(inputs: Path, tmp_path: Path) -> Path:
    where = tmp_path / "work"
    shutil.copytree(inputs, where, symlinks=True)
    return where


RENDER_PY = """import sys
import numpy as np
for k in range(24):  # a renderer writing raw rgb24 frames of 640x480 to stdout
    sys.stdout.buffer.write(np.full((480, 640, 3), k * 10, np.uint8).tobytes())
"""
SAMPLE_PY = """import sys
import numpy as np
for k in range(8):  # a model writing float32 frames of 512x512 in [-1, 1] to stdout
    sys.stdout.buffer.write(np.full((512, 512, 3), k / 8 - 0.5, np.float32).tobytes())
"""


def make_inputs(where: Path) -> None:
    """Small inputs under the names the examples use."""
    ramp = np.linspace(0, 255, 160, dtype=np.uint8)
    frames = np.empty((24, 120, 160, 3), np.uint8)
    for k in range(len(frames)):
        frames[k] = np.roll(ramp, 4 * k)[None, :, None]
        frames[k, :, :, 1] = 255 - frames[k, :, :, 0]
        frames[k, 40:80, 50:110, 2] = 30 * (k % 8)
    np.save(where / "frames.npy", frames)
    np.savez(where / "frames.npz", video=frames)
    np.save(where / "odd.npy", frames[:6, :47, :63])
    np.save(where / "samples.npy", frames.astype(np.float32) / 127.5 - 1)
    np.savez(where / "b.npz", frames=frames[:6])
    for episode in range(2):
        for camera in ("top", "wrist"):
            np.save(where / f"ep{episode}_{camera}.npy", frames[:12])
    episodes = [
        f'{{"input": "ep{e}_{c}.npy", "output": "videos/{c}/episode_{e:06d}.mp4"}}'
        for e in range(2)
        for c in ("top", "wrist")
    ]
    (where / "episodes.jsonl").write_text("\n".join(episodes) + "\n")
    (where / "render.py").write_text(RENDER_PY)
    (where / "sample.py").write_text(SAMPLE_PY)
    for folder in ("clips", "runs/a", "runs/b"):
        (where / folder).mkdir(parents=True)
    for name in ("a", "b", "c"):
        np.save(where / "clips" / f"{name}.npy", frames[:6])
        np.save(where / f"{name}.npy", frames[:6])
    np.save(where / "runs/a/frames.npy", frames[:6])
    np.save(where / "runs/b/frames.npy", frames[:6])
    (where / "renders").mkdir()
    from PIL import Image

    for k in range(6):
        Image.fromarray(frames[k]).save(where / "renders" / f"frame{k}.png")
        Image.fromarray(frames[k]).save(where / f"frame_{k + 1:05d}.png")
    try:
        import torch

        torch.save({"video": torch.from_numpy(frames), "fps": 24}, where / "frames.pt")
        wave_t = torch.sin(torch.arange(16000) / 16000 * 2 * np.pi * 330)[None] * 0.3
        torch.save({"frames": torch.from_numpy(frames), "wave": wave_t}, where / "gen.pt")
    except ImportError:
        pass
    rate, seconds = 16000, 20.0
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(rate * seconds)) / rate) * 32767).astype("<i2")
    np.savez(where / "sample.npz", video=frames, audio=tone[None, :16000], sample_rate=np.array(rate))
    # Videos long enough for the examples' --start 300 --frames 150.
    clip = np.concatenate([frames] * 20)
    with wave.open(str(where / "voice.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone.tobytes())
    _video_with_sound(where / "input.mov", clip, tone, rate)
    for name in ("input.mp4", "in.mp4", "in.mov", "in.mkv", "talk.mp4"):
        shutil.copy(where / "input.mov", where / name)
    rows = ['{"input": "a.npy", "output": "out/a.mp4"}', '{"input": "b.npy", "output": "out/b.mkv"}']
    (where / "jobs.jsonl").write_text("\n".join(rows) + "\n")
    (where / "jobs.csv").write_text("input,output,crf\na.npy,out/a.mp4,20\nb.npy,,\n")


def _video_with_sound(path: Path, frames: np.ndarray, tone: np.ndarray, rate: int) -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="mono")
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        chunk = av.AudioFrame.from_ndarray(tone[None, :], format="s16", layout="mono")
        chunk.sample_rate = rate
        for packet in audio.encode(chunk):
            out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)


def environment(bin_dir: Path) -> dict[str, str]:
    """PATH with an ``nvenc`` that runs this checkout under the test's interpreter."""
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "nvenc"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nvenc_cli "$@"\n')
    shim.chmod(0o755)
    python = bin_dir / "python"
    if not python.exists():
        python.symlink_to(sys.executable)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }


def check_outputs(where: Path, before: set[Path]) -> list[Path]:
    """Every new video or sound file decodes: at least one frame of its first stream."""
    made = [p for p in where.rglob("*") if p.suffix in MEDIA and p not in before and p.is_file()]
    for path in made:
        with av.open(str(path)) as container:
            stream = container.streams.video[0] if container.streams.video else container.streams.audio[0]
            decoded = sum(1 for _ in container.decode(stream))
        assert decoded >= 1, f"{path.name} decodes to no frames"
    return made


def _needs(code: str) -> None:
    if re.search(r"\b(frames|gen)\.pt\b|import torch", code):
        pytest.importorskip("torch", reason="the example reads or makes torch tensors")
    for program in EXTERNAL:
        if re.search(rf"(^|[|;&(]\s*|\s){program}\s", code, re.MULTILINE) and shutil.which(program) is None:
            pytest.skip(f"the example calls {program}, which is not installed")


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.name)
def test_shell_example_runs(block: Block, inputs: Path, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(block.skip)
    if block.name in PENDING:
        pytest.skip(f"pending: {PENDING[block.name]}")
    _needs(block.code)
    work = fresh_copy(inputs, tmp_path)
    before = set(work.rglob("*"))
    script = "set -euo pipefail\n" + block.code
    done = subprocess.run(
        ["bash", "-c", script], cwd=work, env=environment(tmp_path / ".bin"),
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    failed = f"{block.name} failed ({done.returncode}):\n{block.code}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, failed
    made = check_outputs(work, before)
    if re.search(r"nvenc (encode|batch)\b", block.code) and "-o -" not in block.code.replace("-o - -f", ""):
        assert made, f"{block.name} wrote no video"


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples_run(page: Path, inputs: Path, tmp_path: Path) -> None:
    name = str(page.relative_to(ROOT))
    if name in PENDING:
        pytest.skip(f"pending: {PENDING[name]}")
    runnable = [b for b in blocks(page) if b.lang == "python" and not b.skip]
    if not runnable:
        pytest.skip("every Python example on this page is marked to skip")
    _needs("".join(b.code for b in runnable))
    work = fresh_copy(inputs, tmp_path)
    before = set(work.rglob("*"))
    script = "".join(f"# --- {b.name}\n{b.code}\n" for b in runnable)
    if "__main__" not in script and "encode_many" in script:
        script = "if __name__ == '__main__':\n" + "".join(f"    {line}\n" for line in script.splitlines())
    (work / "example.py").write_text(script)
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=work, env=environment(tmp_path / ".bin"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"{page.name}'s examples failed:\n{done.stderr[-3000:]}"
    assert check_outputs(work, before), f"{page.name}'s Python examples wrote no video"


def test_the_collector_finds_the_examples() -> None:
    """Guards the collector itself: the README's own examples are among those it runs."""
    readme = [b for b in ALL if b.page.name == "README.md"]
    assert any(b.lang == "python" and not b.skip for b in readme)
    assert any(b.lang in SHELLS and not b.skip and "nvenc encode" in b.code for b in readme)
    assert all(b.skip for b in ALL if "make demo" in b.code), "an example that installs must be skipped"


def test_ffprobe_helper_skips_without_ffprobe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On a machine without a system ffmpeg, the tests that need its referee skip, saying why."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="ffprobe is not installed"):
        ffprobe(tmp_path / "any.mp4")


def test_readme_fits_on_a_screen_or_so() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_encode_help_is_panelled_short_and_ends_with_examples() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nvenc_cli", "encode", "--help"], capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.rstrip("\n").splitlines()
    assert len(lines) <= 85, f"nvenc encode --help is {len(lines)} lines at 100 columns"
    for panel in ("Input", "Output", "Quality and codec", "Colour and geometry", "Audio", "Many clips"):
        assert re.search(rf"─ {panel} ─", done.stdout), panel
    assert "Output for people and scripts" in done.stdout
    assert "Examples:" in done.stdout and done.stdout.count("nvenc encode ") >= 3


def help_examples() -> list[tuple[str, str]]:
    """(command, example line) for every example at the end of an ``--help``."""
    import typer.main

    from nvenc_cli.cli import app

    group = typer.main.get_command(app)
    found = [("nvenc", line) for line in (group.epilog or "").splitlines()]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        found += [(name, line) for line in (command.epilog or "").splitlines()]
    return [(name, line.split("  #")[0].strip()) for name, line in found if line.startswith("  nvenc ")]


@pytest.mark.parametrize(("command", "example"), help_examples(), ids=lambda v: v)
def test_help_example_runs(command: str, example: str, inputs: Path, tmp_path: Path) -> None:
    if "$SLURM" in example:
        pytest.skip("needs a Slurm array task's environment")
    _needs(example + " ")
    work = fresh_copy(inputs, tmp_path)
    before = set(work.rglob("*"))
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + example], cwd=work, env=environment(tmp_path / ".bin"),
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"{command} --help example failed: {example}\n{done.stderr[-2000:]}"
    check_outputs(work, before)
