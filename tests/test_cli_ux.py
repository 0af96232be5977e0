"""What the CLI shows in a terminal and in a pipe, what it writes for scripts, how it exits.

Terminal runs use a real pseudo-terminal (``os.openpty``) as the child's stderr (or stdout for
``nvenc info``), so rich, Typer and FFmpeg take their own "is this a TTY?" decisions exactly
as they would in a shell.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from nvenc_cli import completion, report
from nvenc_cli.options import X26X_PRESETS
from tests.conftest import ROOT, decode, run_cli

fcntl = pytest.importorskip("fcntl")  # pseudo-terminals: POSIX only
termios = pytest.importorskip("termios")

SGR = re.compile(rb"\x1b\[[0-9;]*m")  # colour/style escape sequences
BOX = ("│", "╭", "─", "┏", "━")
KEYS = list(report.PROGRESS_KEYS)


# -- helpers -------------------------------------------------------------------------------
def frames_file(path: Path, count: int = 12, height: int = 48, width: int = 64) -> Path:
    """Small smooth RGB frames: quick to encode, enough windows for a progress bar."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], -1)
    frames = np.stack([(base + 9 * i) % 256 for i in range(count)]).astype(np.uint8)
    np.save(path, frames)
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update({"PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": "120", **extra})
    return env


def run_tty(
    *args: str, cwd: Path, tty: str = "stderr", env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[int, bytes, bytes]:
    """Run ``python -m nvenc_cli ARGS`` with stderr (or stdout) on a pseudo-terminal.

    Returns (exit code, everything written to the terminal, the other stream via a pipe).
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    other = subprocess.PIPE
    proc = subprocess.Popen(
        [sys.executable, "-m", "nvenc_cli", *args],
        cwd=cwd,
        env=env or cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=slave if tty == "stdout" else other,
        stderr=slave if tty == "stderr" else other,
    )
    os.close(slave)
    seen, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side of the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    rest = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
    piped = rest[1] if tty == "stdout" else rest[0]
    return proc.returncode, seen, piped or b""


def blocks(text: str) -> list[dict[str, str]]:
    """Split --progress output into its key=value blocks (each ends with progress=…)."""
    out, current = [], {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        current[key] = value
        if key == "progress":
            out.append(current)
            current = {}
    return out


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    return frames_file(tmp_path / "frames.npy")


# -- terminal vs pipe ----------------------------------------------------------------------
def test_terminal_gets_a_progress_bar_in_colour(tmp_path: Path) -> None:
    frames_file(tmp_path / "f.npy", count=24)
    code, seen, stdout = run_tty("encode", "f.npy", "-o", "out.mp4", "--batch-size", "2", cwd=tmp_path)
    assert code == 0, seen.decode(errors="replace")
    assert b"encoding" in seen and b"\r" in seen and b"/24" in seen, seen
    assert SGR.search(seen), "no colour on a colour terminal"
    assert b"nvenc: wrote out.mp4" in seen
    assert stdout == b""


@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color"])
def test_no_color_keeps_the_bar_but_drops_every_colour(tmp_path: Path, how: str) -> None:
    frames_file(tmp_path / "f.npy", count=24)
    args = ["encode", "f.npy", "-o", "out.mp4", "--batch-size", "2"]
    env = cli_env(NO_COLOR="1") if how == "NO_COLOR" else cli_env()
    if how == "--no-color":
        args.append("--no-color")
    code, seen, _ = run_tty(*args, cwd=tmp_path, env=env)
    assert code == 0, seen
    assert b"encoding" in seen and b"\r" in seen
    assert not SGR.search(seen), SGR.findall(seen)[:5]


def test_dumb_terminal_gets_neither_bar_nor_colour(small: Path) -> None:
    code, seen, _ = run_tty("encode", small.name, "-o", "out.mp4", cwd=small.parent, env=cli_env(TERM="dumb"))
    assert code == 0
    assert b"\x1b" not in seen and b"encoding" not in seen
    assert b"nvenc: wrote out.mp4" in seen


def test_pipe_gets_a_plain_summary_and_no_escape_codes(small: Path) -> None:
    result = run_cli("encode", small.name, "-o", "out.mp4", "--batch-size", "2", cwd=small.parent)
    assert result.returncode == 0
    err = result.stderr
    assert b"\x1b" not in err and b"\r" not in err and b"encoding" not in err
    assert err.decode().startswith("nvenc: wrote out.mp4: 12 frames 64x48")
    assert result.stdout == b""


def test_error_line_is_red_on_a_terminal_and_plain_elsewhere(tmp_path: Path) -> None:
    code, seen, _ = run_tty("encode", "missing.npy", "-o", "out.mp4", cwd=tmp_path)
    assert code == 66
    assert SGR.search(seen) and b"nvenc: error:" in SGR.sub(b"", seen)
    code, seen, _ = run_tty("encode", "missing.npy", "-o", "out.mp4", cwd=tmp_path, env=cli_env(NO_COLOR="1"))
    assert code == 66 and not SGR.search(seen)
    piped = run_cli("encode", "missing.npy", "-o", "out.mp4", cwd=tmp_path)
    assert piped.stderr.decode() == "nvenc: error: missing.npy: no such file or directory\n"


def test_help_is_coloured_only_on_a_colour_terminal(tmp_path: Path) -> None:
    code, seen, _ = run_tty("encode", "--help", cwd=tmp_path, tty="stdout")
    assert code == 0 and SGR.search(seen) and b"--pixel-format" in SGR.sub(b"", seen)
    code, seen, _ = run_tty("encode", "--help", cwd=tmp_path, tty="stdout", env=cli_env(NO_COLOR="1"))
    assert code == 0 and not SGR.search(seen)
    piped = run_cli("encode", "--help")
    assert piped.returncode == 0 and b"\x1b" not in piped.stdout and b"--pixel-format" in piped.stdout


# -- quiet, verbose, stdout ----------------------------------------------------------------
def test_quiet_prints_nothing_on_success_even_on_a_terminal(small: Path) -> None:
    code, seen, stdout = run_tty("encode", small.name, "-o", "a.mp4", "-q", cwd=small.parent)
    assert (code, seen, stdout) == (0, b"", b"")
    piped = run_cli("encode", small.name, "-o", "b.mp4", "-q", cwd=small.parent)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, b"", b"")
    assert (small.parent / "a.mp4").stat().st_size > 0


def test_quiet_still_reports_failures(small: Path) -> None:
    result = run_cli("encode", "nope.npy", "-o", "a.mp4", "-q", cwd=small.parent)
    assert result.returncode == 66 and result.stderr.startswith(b"nvenc: error: ")


def test_verbose_adds_ffmpeg_log_lines_and_tracebacks(small: Path) -> None:
    ok = run_cli("encode", small.name, "-o", "a.mp4", "-v", cwd=small.parent)
    assert ok.returncode == 0
    assert re.search(rb"^\[libx264 @ 0x[0-9a-f]+\] ", ok.stderr, re.MULTILINE), ok.stderr[:500]
    assert b"\x1b" not in ok.stderr
    bad = run_cli("encode", small.name, "-o", "b.mp4", "-v", "--crf", "99", cwd=small.parent)
    assert bad.returncode == 2
    assert b"Traceback (most recent call last)" in bad.stderr and b"nvenc: error:" in bad.stderr
    terse = run_cli("encode", small.name, "-o", "b.mp4", "--crf", "99", cwd=small.parent)
    assert b"Traceback" not in terse.stderr and terse.stderr.count(b"\n") == 1


@pytest.mark.parametrize("codec", ["libx265", "libsvtav1"])
def test_encoders_that_log_on_their_own_stay_quiet_without_v(tmp_path: Path, codec: str) -> None:
    frames_file(tmp_path / "f.npy", count=4, height=64, width=64)
    quiet = run_cli("encode", "f.npy", "-o", "a.mkv", "-c", codec, "-q", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, b"")
    loud = run_cli("encode", "f.npy", "-o", "b.mkv", "-c", codec, "-v", cwd=tmp_path)
    assert loud.returncode == 0 and loud.stderr.count(b"\n") > 3


def test_stdout_carries_only_the_video(small: Path) -> None:
    result = run_cli("encode", small.name, "-o", "-", "-f", "mp4", cwd=small.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout[4:8] == b"ftyp"
    with av.open(io.BytesIO(result.stdout)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
    assert result.stderr.startswith(b"nvenc: wrote -:")


def test_json_report_is_the_only_thing_on_stdout(small: Path) -> None:
    result = run_cli("encode", small.name, "-o", "a.mp4", "--json", "-q", cwd=small.parent)
    assert result.returncode == 0 and result.stderr == b""
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["frames"] == 12 and (doc["width"], doc["height"]) == (64, 48)
    assert doc["fps"] == "30/1" and doc["duration"] == pytest.approx(0.4)
    assert doc["container"] == "mp4" and doc["codec"] == "libx264" and doc["pixel_format"] == "yuv420p"
    assert doc["bytes"] == (small.parent / "a.mp4").stat().st_size
    assert set(doc) >= {"input", "output", "backend", "fallback_reason", "seconds", "encode_fps", "notices"}


def test_video_is_never_written_to_a_terminal(small: Path) -> None:
    code, seen, err = run_tty("encode", small.name, "-o", "-", "-f", "mp4", cwd=small.parent, tty="stdout")
    assert code == 2 and b"ftyp" not in seen and err.startswith(b"nvenc: error: refusing")


def test_json_and_video_on_stdout_exclude_each_other(small: Path) -> None:
    result = run_cli("encode", small.name, "-o", "-", "-f", "mp4", "--json", cwd=small.parent)
    assert result.returncode == 2 and result.stdout == b""
    assert b"standard output" in result.stderr


# -- --progress ----------------------------------------------------------------------------
def test_progress_file_has_ffmpeg_style_blocks(tmp_path: Path) -> None:
    frames_file(tmp_path / "f.npy", count=30)
    result = run_cli(
        "encode", "f.npy", "-o", "a.mp4", "-q", "--batch-size", "3", "--progress", "p.txt", cwd=tmp_path
    )
    assert result.returncode == 0 and result.stderr == b""
    found = blocks((tmp_path / "p.txt").read_text())
    assert found, "no progress blocks"
    for block in found:
        assert list(block) == KEYS
        assert block["progress"] in ("continue", "end")
        assert re.fullmatch(r"\d+\.\d\d", block["fps"])
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}", block["out_time"])
        assert block["out_time_ms"] == block["out_time_us"]
        assert re.fullmatch(r"\d+\.\d{3}x|N/A", block["speed"])
    assert [b["progress"] for b in found].count("end") == 1 and found[-1]["progress"] == "end"
    last = found[-1]
    assert last["frame"] == "30" and last["total_frames"] == "30"
    assert last["out_time_us"] == "1000000" and last["out_time"] == "00:00:01.000000"
    frames = [int(b["frame"]) for b in found]
    assert frames == sorted(frames)


def test_progress_dash_writes_to_stderr_instead_of_a_bar(small: Path) -> None:
    code, seen, stdout = run_tty(
        "encode", small.name, "-o", "a.mp4", "-q", "--progress", "-", cwd=small.parent
    )
    assert code == 0 and stdout == b""
    text = seen.decode().replace("\r\n", "\n")
    assert b"\x1b" not in seen
    assert all(re.fullmatch(r"[a-z_]+=\S+", line) for line in text.splitlines()), text
    assert blocks(text)[-1]["progress"] == "end"


def test_progress_ends_even_when_the_run_fails(tmp_path: Path) -> None:
    result = run_cli("encode", "missing.npy", "-o", "a.mp4", "--progress", "p.txt", cwd=tmp_path)
    assert result.returncode == 66
    assert blocks((tmp_path / "p.txt").read_text())[-1]["progress"] == "end"


def test_unwritable_progress_file_fails_before_encoding(small: Path) -> None:
    result = run_cli("encode", small.name, "-o", "a.mp4", "--progress", "no/such/dir/p.txt", cwd=small.parent)
    assert result.returncode == 73 and b"progress file" in result.stderr
    assert not (small.parent / "a.mp4").exists()


def test_progress_block_formats() -> None:
    from fractions import Fraction

    text = report.progress_block(48, None, Fraction(24000, 1001), 2.0, "continue")
    block = blocks(text)[0]
    assert block["frame"] == "48" and block["fps"] == "24.00" and block["total_frames"] == "N/A"
    assert block["out_time_us"] == "2002000" and block["out_time"] == "00:00:02.002000"
    assert block["speed"] == "1.001x" and block["progress"] == "continue"
    unknown = blocks(report.progress_block(0, 10, None, 0.0, "end"))[0]
    assert unknown["out_time"] == "N/A" and unknown["speed"] == "N/A" and unknown["fps"] == "0.00"
    assert report.clock(3_723_000_001) == "01:02:03.000001"


# -- exit codes ----------------------------------------------------------------------------
def _odd_frames(path: Path) -> None:
    np.save(path / "odd.npy", np.zeros((2, 33, 33, 3), np.uint8))


@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        ("unknown option", ["encode", "frames.npy", "-o", "a.mp4", "--bogus"], 2),
        ("bad option value", ["encode", "frames.npy", "-o", "a.mp4", "--crf", "-3"], 2),
        ("bad choice", ["encode", "frames.npy", "-o", "a.mp4", "--device", "gpu"], 2),
        ("-y with -n", ["encode", "frames.npy", "-o", "a.mp4", "-y", "-n"], 2),
        ("bad input data", ["encode", "odd.npy", "-o", "a.mp4"], 65),
        ("missing input", ["encode", "missing.npy", "-o", "a.mp4"], 66),
        ("unknown codec", ["encode", "frames.npy", "-o", "a.mp4", "-c", "nosuchcodec"], 69),
        ("output exists", ["encode", "frames.npy", "-o", "exists.mp4"], 73),
        ("no such folder", ["encode", "frames.npy", "-o", "no/dir/a.mp4"], 73),
    ],
)
def test_each_failure_class_has_its_exit_code(small: Path, case: str, args: list[str], expected: int) -> None:
    _odd_frames(small.parent)
    (small.parent / "exists.mp4").write_bytes(b"keep me")
    result = run_cli(*args, cwd=small.parent)
    assert result.returncode == expected, (case, result.stderr)
    err = result.stderr.decode()
    assert err.startswith("nvenc: error: "), err
    assert not any(ch in err for ch in BOX) and "Traceback" not in err
    assert (small.parent / "exists.mp4").read_bytes() == b"keep me"
    assert not (small.parent / "a.mp4").exists()
    assert not list(small.parent.glob(".*.part"))


def test_usage_errors_show_the_usage_and_a_hint(small: Path) -> None:
    result = run_cli("encode", "frames.npy", "--bogus", cwd=small.parent)
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2
    assert lines[0].startswith("nvenc: error: ") and "--bogus" in lines[0]
    assert lines[1].startswith("Usage: nvenc encode ") and lines[2] == "Try 'nvenc encode --help' for help."


def test_write_failure_exits_74(small: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "nvenc_cli", "encode", small.name, "-o", "-", "-f", "mp4"],
            cwd=small.parent,
            env=cli_env(),
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert proc.returncode == 74 and proc.stderr.startswith(b"nvenc: error: "), proc.stderr


def test_internal_error_exits_70_with_a_hint(
    small: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import nvenc_cli.encoding
    from nvenc_cli import cli

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(nvenc_cli.encoding, "encode_path", broken)
    monkeypatch.setattr(report.Reporter, "ffmpeg_logging", lambda self: None)  # no global FFmpeg state
    monkeypatch.setattr(sys, "argv", ["nvenc", "encode", str(small), "-o", str(small.parent / "a.mp4")])
    handler = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as stop:
            cli.run()
    finally:
        signal.signal(signal.SIGINT, handler[0])
        signal.signal(signal.SIGTERM, handler[1])
    assert stop.value.code == 70
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: boom" in err and "-v" in err


@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_exits_with_its_code_and_removes_the_partial_output(
    tmp_path: Path, signum: int, expected: int
) -> None:
    # Noise at a slow preset without look-ahead: each frame takes a while, so the run is
    # still going when the signal lands.
    noise = np.random.default_rng(1).integers(0, 256, (48, 192, 256, 3), dtype=np.uint8)
    np.save(tmp_path / "noise.npy", noise)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nvenc_cli",
            "encode",
            "noise.npy",
            "-o",
            "out.mp4",
            "--progress",
            "-",
            "--preset",
            "veryslow",
            "-x",
            "rc-lookahead=0",
            "-x",
            "bf=0",
            "--batch-size",
            "1",
        ],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith(b"frame="), first
    assert list(tmp_path.glob(".out.mp4.*.part")), "the encode should be writing its temp file"
    proc.send_signal(signum)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == expected, rest
    assert b"Traceback" not in rest and b"nvenc: error: " in rest
    assert (
        blocks((first + rest).decode().split("nvenc: error:")[-1].split("\n", 1)[1])[-1]["progress"] == "end"
    )
    assert not (tmp_path / "out.mp4").exists()
    assert not list(tmp_path.glob(".out.mp4.*"))


# -- nvenc info ----------------------------------------------------------------------------
def test_info_in_a_pipe_is_aligned_plain_text() -> None:
    result = run_cli("info")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert b"\x1b" not in result.stdout and not any(ch in text for ch in BOX)
    for title in ("Versions:", "Backends:", "Containers:", "Encoders:"):
        assert title in text.splitlines(), title
    row = next(line for line in text.splitlines() if re.match(r"\s+mp4\s", line))
    assert "h264" in row or "av1" in row
    assert re.search(r"^\s+cpu\s+libx264\s+h264\s+yuv420p\b", text, re.MULTILINE)
    assert re.search(r"^\s+nvenc\s+h264_nvenc\s+h264\s+\S+", text, re.MULTILINE)


def test_info_json_lists_codecs_and_pixel_formats_per_container_and_backend() -> None:
    result = run_cli("info", "--json")
    assert result.returncode == 0 and result.stderr == b""
    data = json.loads(result.stdout)
    assert data["backends"]["cpu"]["available"] is True
    assert isinstance(data["backends"]["nvenc"]["available"], bool) and data["backends"]["nvenc"]["reason"]
    mp4 = data["containers"]["mp4"]
    assert "h264" in mp4["codecs"] and "libx264" in mp4["encoders"]["h264"]
    for names in mp4["encoders"].values():
        for name in names:
            facts = data["encoders"][name]
            assert facts["backend"] in ("cpu", "nvenc") and facts["pixel_formats"]
    assert "yuv420p" in data["encoders"]["libx264"]["pixel_formats"]


def test_info_on_a_terminal_draws_tables(tmp_path: Path) -> None:
    code, seen, _ = run_tty("info", cwd=tmp_path, tty="stdout")
    text = SGR.sub(b"", seen).decode()
    assert code == 0 and "Containers" in text and any(ch in text for ch in BOX)
    code, seen, _ = run_tty("info", "--no-color", cwd=tmp_path, tty="stdout")
    assert code == 0 and not SGR.search(seen)


def test_info_sections_survive_partial_data() -> None:
    sections = report.info_sections({"versions": {"nvenc": "1", "torch": None}, "backends": {}})
    assert [s.title for s in sections] == ["Versions"]
    assert report.render_plain(sections).splitlines() == [
        "Versions:",
        "  component  version",
        "  nvenc      1",
        "  torch      -",
    ]


# -- completion ----------------------------------------------------------------------------
class _Ctx:
    def __init__(self, **params: Any) -> None:
        self.params = params


def test_codec_completion_offers_cpu_and_nvenc_encoders() -> None:
    from nvenc_cli.report import nvidia_driver_present

    names = [name for name, _ in completion.complete_codec("")]
    assert {"libx264", "libx265", "libsvtav1", "libvpx-vp9", "ffv1", "h264"} <= set(names)
    # NVENC's names where a driver could run them; FFmpeg's unusable names never.
    assert ("h264_nvenc" in names) == nvidia_driver_present()
    assert not {"a64multi", "cinepak", "libwebp", "h264_vaapi"} & set(names)
    assert [n for n, _ in completion.complete_codec("libx26")] == ["libx264", "libx264rgb", "libx265"]


def test_preset_completion_follows_the_codec() -> None:
    def names(ctx: _Ctx, incomplete: str = "") -> list[str]:
        return [n for n, _ in completion.complete_preset(ctx, incomplete)]

    assert names(_Ctx(codec="libx264"), "ve") == ["veryfast", "veryslow"]
    assert names(_Ctx(codec="libsvtav1")) == [str(i) for i in range(14)] + list(X26X_PRESETS)
    assert names(_Ctx(codec="vp9")) == list(X26X_PRESETS)  # mapped to deadline/cpu-used
    assert names(_Ctx(codec="hevc_nvenc")) == [f"p{i}" for i in range(1, 8)]
    assert names(_Ctx(codec="h264", device="cuda")) == [f"p{i}" for i in range(1, 8)]
    assert {"medium", "8", "p4"} <= set(names(_Ctx()))


def test_pixel_format_completion_follows_the_codec_or_the_output() -> None:
    x265 = [n for n, _ in completion.complete_pixel_format(_Ctx(codec="libx265"), "yuv420")]
    assert x265[:2] == ["yuv420p", "yuv420p10le"]
    gif = [n for n, _ in completion.complete_pixel_format(_Ctx(output="a.gif"), "")]
    assert "rgb8" in gif and "yuv420p" not in gif
    assert "p010le" in [n for n, _ in completion.complete_pixel_format(_Ctx(codec="hevc_nvenc"), "")]


def test_shell_asks_for_candidates(tmp_path: Path) -> None:
    def ask(words: str, cword: int) -> list[str]:
        env = cli_env(_NVENC_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
        out = subprocess.run([sys.executable, "-m", "nvenc_cli"], env=env, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.decode().split()

    assert ask("nvenc encode x.npy -c libx26", 4) == ["libx264", "libx264rgb", "libx265"]
    assert ask("nvenc encode x.npy -c libx264 --preset ultra", 6) == ["ultrafast"]
    assert ask("nvenc encode x.npy --device c", 4) == ["cpu", "cuda"]
    assert ask("nvenc enc", 1) == ["encode"]
    # No candidates for INPUT: the script's `complete -o default` lets bash complete paths.
    assert ask("nvenc encode fr", 2) == []


def test_bash_script_from_show_completion_completes(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    launcher = tmp_path / "nvenc"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nvenc_cli "$@"\n')
    launcher.chmod(0o755)
    script = (
        "source <(nvenc --show-completion bash) && complete -p nvenc && "
        "COMP_WORDS=(nvenc encode x.npy --codec libx26) COMP_CWORD=4 && _nvenc_completion nvenc && "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = cli_env(PATH=f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    out = subprocess.run([bash, "--norc", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "-o default" in lines[0], "file-path fallback for INPUT is missing"
    assert lines[1:] == ["libx264", "libx264rgb", "libx265"]


def test_version_goes_to_stdout() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.decode().startswith("nvenc ") and result.stderr == b""


def test_one_of_a_thing_reads_singular(tmp_path: Path) -> None:
    """Counts agree with their nouns: "1 frames", "1 jobs" and "frame 0 hold" read as bugs."""
    sample = run_cli("testsrc", tmp_path / "one.npy", "-s", "64x48", "--frames", "1")
    assert sample.returncode == 0 and "wrote 1 frame of 64x48" in sample.stderr.decode()
    video = run_cli("encode", tmp_path / "one.npy", "-o", tmp_path / "one.mp4")
    assert video.returncode == 0 and ": 1 frame 64x48 @" in video.stderr.decode()
    assert len(decode(tmp_path / "one.mp4")[0]) == 1
    many = run_cli("encode", tmp_path / "one.npy", "-o", tmp_path / "out" / "{stem}.mkv", "-j", "1")
    assert many.returncode == 0 and "nvenc: 1 job: 1 ok, 0 failed; 1 frame," in many.stderr.decode()
    np.save(tmp_path / "loud.npy", np.full((1, 48, 64, 3), 2.0, np.float32))
    loud = run_cli("encode", tmp_path / "loud.npy", "-o", tmp_path / "loud.mp4")
    assert loud.returncode == 65 and "frame 0 holds float values from 2 to 2" in loud.stderr.decode()
