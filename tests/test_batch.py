"""Many clips in one run: templates, collisions, manifests, failures, resume, shards,
Ctrl-C, the local worker pool and the Python API. Every output is decoded and compared
with its own input (frame count and PSNR), so a job writing the wrong clip fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nvenc_cli
from nvenc_cli import testsrc
from nvenc_cli.batch import JobSpec, combined_exit_code, encode_many, iter_encode_many
from nvenc_cli.batch.jobs import parse_shard, select_shard
from nvenc_cli.errors import UsageError
from nvenc_cli.options import EncodeOptions
from tests.conftest import ROOT, decode, handles_signal, psnr, reaped, run_cli, start_cli

FAST = ("--preset", "ultrafast")
W, H, N = 128, 96, 8


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return testsrc.batch(W, H, N)


def clip(base: np.ndarray, i: int) -> np.ndarray:
    """Clip ``i``: the pattern shifted by ``i`` steps, so every clip's pixels differ (by an
    even amount: testsrc2's hard colour edges sit on 4:2:0's 2x2 blocks, and so stay)."""
    return np.ascontiguousarray(np.roll(base, shift=16 * i, axis=2))


def write_clips(folder: Path, base: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    made = {}
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = clip(base, i)
        np.save(path, frames)
        made[str(path)] = frames
    return made


def assert_encodes(path: Path, source: np.ndarray, others: list[np.ndarray] = ()) -> None:
    """All frames there, close to their own source, and closer to it than to any other."""
    frames, _ = decode(path)
    assert frames.shape == source.shape, path
    own = psnr(frames, source)
    assert own > 28, f"{path}: {own:.1f} dB"
    for other in others:
        assert psnr(frames, other) < own - 6, f"{path} looks like another clip"


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


# -- templates and collisions ----------------------------------------------------------------


def test_template_placeholders_write_one_video_per_input(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["cam1/a.npy", "cam2/a.npy", "cam2/b.npy"])
    result = run_cli("encode", *clips, "-o", "out/{parent}/{stem}-{index:02d}.{ext}.mkv", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    expected = ["out/cam1/a-00.npy.mkv", "out/cam2/a-01.npy.mkv", "out/cam2/b-02.npy.mkv"]
    sources = list(clips.values())
    for i, name in enumerate(expected):
        assert_encodes(tmp_path / name, sources[i], [s for j, s in enumerate(sources) if j != i])
    assert "3 jobs: 3 ok, 0 failed" in result.stderr.decode()


def test_a_folder_output_means_stem_mp4(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["x.npy", "y.npy"])
    result = run_cli("encode", "x.npy", "y.npy", "-o", "videos/", *FAST, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    assert sorted(os.listdir(tmp_path / "videos")) == ["x.mp4", "y.mp4"]
    for name, source in clips.items():
        assert_encodes(tmp_path / "videos" / (Path(name).stem + ".mp4"), source)


def test_one_input_with_a_template_is_one_plain_encode(tmp_path: Path, base: np.ndarray) -> None:
    write_clips(tmp_path, base, ["solo.npy"])
    result = run_cli("encode", "solo.npy", "-o", "{stem}.mov", *FAST, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["output"] == "solo.mov" and "status" not in report  # today's single report
    assert_encodes(tmp_path / "solo.mov", clip(base, 0))


def test_several_inputs_without_a_placeholder_is_a_usage_error(tmp_path: Path, base: np.ndarray) -> None:
    write_clips(tmp_path, base, ["a.npy", "b.npy"])
    result = run_cli("encode", "a.npy", "b.npy", "-o", "out.mp4", cwd=tmp_path)
    assert result.returncode == 2
    text = result.stderr.decode()
    assert text.startswith("nvenc: error: 2 inputs but one output 'out.mp4'")
    for name in ("{stem}", "{name}", "{parent}", "{index}", "{ext}"):
        assert name in text
    assert not (tmp_path / "out.mp4").exists()


def test_an_unquoted_image_glob_gets_the_quote_it_hint(tmp_path: Path, base: np.ndarray) -> None:
    from PIL import Image

    for i in range(3):
        Image.fromarray(base[i]).save(tmp_path / f"frame_{i}.png")
    shell_expanded = sorted(str(p.name) for p in tmp_path.glob("*.png"))
    result = run_cli("encode", *shell_expanded, "-o", "out.mp4", cwd=tmp_path)
    assert result.returncode == 2
    text = result.stderr.decode()
    assert "the shell expanded an image glob" in text and "quote it" in text
    assert "'./*.png'" in text
    assert text.count("\n") == 1
    assert not (tmp_path / "out.mp4").exists()


def test_two_inputs_to_one_output_are_refused_before_any_work(tmp_path: Path, base: np.ndarray) -> None:
    write_clips(tmp_path, base, ["d1/same.npy", "d2/same.npy", "d2/other.npy"])
    result = run_cli(
        "encode", "d2/other.npy", "d1/same.npy", "d2/same.npy", "-o", "out/{stem}.mp4", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "d1/same.npy and d2/same.npy would both be written to out/same.mp4" in result.stderr.decode()
    assert not (tmp_path / "out").exists()  # not even the first, innocent job ran


def test_an_output_equal_to_an_input_is_refused_before_any_work(tmp_path: Path, base: np.ndarray) -> None:
    write_clips(tmp_path, base, ["a.npy"])
    (tmp_path / "b.mp4").write_bytes(b"precious")
    before = (tmp_path / "b.mp4").read_bytes()
    result = run_cli("encode", "a.npy", "b.mp4", "-o", "{stem}.mp4", "-y", cwd=tmp_path)
    assert result.returncode == 2
    assert "would overwrite the input b.mp4" in result.stderr.decode()
    assert (tmp_path / "b.mp4").read_bytes() == before
    assert not (tmp_path / "a.mp4").exists()


def test_unknown_placeholder_is_a_usage_error(tmp_path: Path, base: np.ndarray) -> None:
    write_clips(tmp_path, base, ["a.npy", "b.npy"])
    result = run_cli("encode", "a.npy", "b.npy", "-o", "{stem}_{date}.mp4", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown placeholder {date}" in result.stderr.decode()


# -- failures ---------------------------------------------------------------------------


def test_a_bad_job_among_good_ones(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["good1.npy", "good2.npy", "good3.npy"])
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY not really")
    inputs = ["good1.npy", "missing.npy", "good2.npy", "corrupt.npy", "good3.npy"]
    result = run_cli("encode", *inputs, "-o", "out/{stem}.mp4", "-j", "2", *FAST, "--json", cwd=tmp_path)
    text = result.stderr.decode()
    errors = [line for line in text.splitlines() if line.startswith("nvenc: error:")]
    assert len(errors) == 2, text
    assert any(line.startswith("nvenc: error: missing.npy:") for line in errors)
    assert any(line.startswith("nvenc: error: corrupt.npy:") for line in errors)
    assert result.returncode == 1  # 66 (missing) and 65 (bad data) differ: mixed
    for i, name in enumerate(["good1", "good2", "good3"]):
        assert_encodes(tmp_path / "out" / f"{name}.mp4", list(clips.values())[i])
    assert sorted(os.listdir(tmp_path / "out")) == ["good1.mp4", "good2.mp4", "good3.mp4"]
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    jobs = {j["input"]: j for j in lines if j["type"] == "job"}
    assert jobs["missing.npy"]["status"] == "failed" and jobs["missing.npy"]["exit_code"] == 66
    assert jobs["corrupt.npy"]["exit_code"] == 65 and "corrupt.npy" in jobs["corrupt.npy"]["error"]
    assert jobs["good2.npy"]["status"] == "ok" and jobs["good2.npy"]["frames"] == N
    assert jobs["good2.npy"]["error"] is None and jobs["good2.npy"]["codec"] == "libx264"
    assert lines[-1] == {
        **lines[-1],
        "type": "summary",
        "jobs": 5,
        "ok": 3,
        "failed": 2,
        "frames": 3 * N,
        "exit_code": 1,
    }


def test_failures_of_one_kind_exit_with_that_code(tmp_path: Path, base: np.ndarray) -> None:
    write_clips(tmp_path, base, ["a.npy"])
    result = run_cli("encode", "a.npy", "gone1.npy", "gone2.npy", "-o", "{stem}.mp4", *FAST, cwd=tmp_path)
    assert result.returncode == 66
    assert_encodes(tmp_path / "a.mp4", clip(base, 0))


def test_exit_code_rules() -> None:
    from nvenc_cli.batch import JobResult

    def results(*codes: int) -> list[JobResult]:
        return [JobResult(i, "in", "out", "ok" if c == 0 else "failed", c) for i, c in enumerate(codes)]

    assert combined_exit_code(results(0, 0)) == 0
    assert combined_exit_code(results(0, 74, 74)) == 74
    assert combined_exit_code(results(65, 74)) == 1
    assert combined_exit_code(results(65, 130, 74)) == 130


def test_an_existing_output_fails_only_its_own_job(tmp_path: Path, base: np.ndarray) -> None:
    write_clips(tmp_path, base, ["a.npy", "b.npy"])
    (tmp_path / "a.mp4").write_bytes(b"keep me")
    result = run_cli("encode", "a.npy", "b.npy", "-o", "{stem}.mp4", *FAST, cwd=tmp_path)
    assert result.returncode == 73
    assert "nvenc: error: a.npy: a.mp4: already exists (use -y to overwrite)\n" in result.stderr.decode()
    assert (tmp_path / "a.mp4").read_bytes() == b"keep me"
    assert_encodes(tmp_path / "b.mp4", clip(base, 1))


# -- manifest ---------------------------------------------------------------------------


def test_json_lines_manifest_with_per_job_options(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["a.npy", "b.npy", "c.npy"])
    lines = [
        {"input": "a.npy", "output": "o/a.mkv", "pixel-format": "yuv444p", "crf": 18},
        {"input": "b.npy", "frames": 5, "option": ["g=2"]},
        {"input": "c.npy", "output": "o/c.mp4", "start": 2, "fps": "24"},
    ]
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(line) + "\n\n" for line in lines))
    result = run_cli("batch", "jobs.jsonl", "-o", "o/{stem}-{index}.mp4", *FAST, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    a, facts_a = decode(tmp_path / "o/a.mkv")
    assert facts_a["pix_fmt"] == "yuv444p" and psnr(a, clips[str(tmp_path / "a.npy")]) > 35
    b, _ = decode(tmp_path / "o/b-1.mp4")  # the -o template filled the missing output
    assert b.shape[0] == 5 and psnr(b, clips[str(tmp_path / "b.npy")][:5]) > 28
    c, facts_c = decode(tmp_path / "o/c.mp4")
    assert c.shape[0] == N - 2 and facts_c["rate"] == 24
    assert psnr(c, clips[str(tmp_path / "c.npy")][2:]) > 28
    reports = {j["output"]: j for j in map(json.loads, result.stdout.decode().splitlines()) if "output" in j}
    assert reports["o/b-1.mp4"]["frames"] == 5
    assert reports["o/a.mkv"]["pixel_format"] == "yuv444p"


def test_csv_manifest_and_command_line_defaults(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["a.npy", "b.npy"])
    (tmp_path / "jobs.csv").write_text(
        "input,output,codec,crf,preset,option\na.npy,a.mkv,,0,ultrafast,\nb.npy,b.mkv,ffv1,,,g=1 slices=4\n"
    )
    result = run_cli("batch", "jobs.csv", "-c", "libx264", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    a, facts_a = decode(tmp_path / "a.mkv")
    assert facts_a["codec"] == "h264" and psnr(a, clips[str(tmp_path / "a.npy")]) > 40
    b, facts_b = decode(tmp_path / "b.mkv")
    assert facts_b["codec"] == "ffv1"
    assert np.array_equal(b, clips[str(tmp_path / "b.npy")])  # lossless: the row's codec won


def test_null_in_a_json_job_restores_the_option_default(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["a.npy"])
    (tmp_path / "jobs.jsonl").write_text(
        '{"input": "a.npy", "output": "a.mkv", "codec": "ffv1", "preset": null}\n'
    )
    result = run_cli("batch", "jobs.jsonl", *FAST, cwd=tmp_path)  # ffv1 has no preset
    assert result.returncode == 0, result.stderr.decode()
    frames, _ = decode(tmp_path / "a.mkv")
    assert np.array_equal(frames, clips[str(tmp_path / "a.npy")])


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        ('{"input": "a.npy", "output": "a.mp4", "jobs": 3}\n', 2, "jobs.jsonl:1: 'jobs' is not an option"),
        ('{"input": "a.npy", "output": "a.mp4", "colour": 1}\n', 2, "jobs.jsonl:1: 'colour' is not an"),
        (
            '{"input": "a.npy", "output": "a.mp4"}\n{"input": "a.npy", "output": "b.mp4", "crf": "x"}\n',
            2,
            "jobs.jsonl:2: invalid",
        ),
        ('{"input": "a.npy", "output": "a.mp4"}\nnot json\n', 65, "jobs.jsonl:2: not JSON"),
        ('["a.npy"]\n', 65, "a job must be a JSON object"),
    ],
    ids=["run-option", "unknown", "bad-value", "not-json", "not-object"],
)
def test_bad_manifests_are_refused_before_any_work(
    tmp_path: Path, base: np.ndarray, content: str, code: int, message: str
) -> None:
    write_clips(tmp_path, base, ["a.npy"])
    (tmp_path / "jobs.jsonl").write_text(content)
    result = run_cli("batch", "jobs.jsonl", cwd=tmp_path)
    assert result.returncode == code, result.stderr.decode()
    assert message in result.stderr.decode()
    assert not (tmp_path / "a.mp4").exists()


def test_missing_manifest_exits_66(tmp_path: Path) -> None:
    result = run_cli("batch", "nope.jsonl", cwd=tmp_path)
    assert result.returncode == 66
    assert result.stderr.decode() == "nvenc: error: nope.jsonl: no such manifest\n"


# -- resume and shards ------------------------------------------------------------------


def test_skip_existing_does_only_what_is_left(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["a.npy", "b.npy", "c.npy"])
    first = run_cli("encode", *clips, "-o", "out/", *FAST, cwd=tmp_path)
    assert first.returncode == 0, first.stderr.decode()
    kept = {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in ("a.mp4", "c.mp4")}
    (tmp_path / "out" / "b.mp4").unlink()
    again = run_cli("encode", *clips, "-o", "out/", *FAST, "--skip-existing", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr.decode()
    status = {
        Path(j["output"]).name: j["status"]
        for j in map(json.loads, again.stdout.decode().splitlines())
        if j["type"] == "job"
    }
    assert status == {"a.mp4": "skipped", "b.mp4": "ok", "c.mp4": "skipped"}
    assert {n: (tmp_path / "out" / n).stat().st_mtime_ns for n in kept} == kept
    assert_encodes(tmp_path / "out" / "b.mp4", list(clips.values())[1])
    assert "3 jobs: 1 ok, 0 failed, 2 skipped" in again.stderr.decode()


def test_shards_are_disjoint_complete_and_deterministic(tmp_path: Path, base: np.ndarray) -> None:
    names = [f"c{i}.npy" for i in range(5)]
    clips = write_clips(tmp_path, base, names)
    seen: dict[str, set[str]] = {}
    for k in range(2):
        result = run_cli(
            "encode", *names, "-o", f"s{k}/{{stem}}.mp4", *FAST, "--shard", f"{k}/2", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr.decode()
        seen[k] = set(os.listdir(tmp_path / f"s{k}"))
    assert seen[0] == {"c0.mp4", "c2.mp4", "c4.mp4"} and seen[1] == {"c1.mp4", "c3.mp4"}
    for k, outputs in seen.items():
        for name in outputs:
            assert_encodes(tmp_path / f"s{k}" / name, clips[str(tmp_path / name.replace(".mp4", ".npy"))])
    jobs = [JobSpec(f"{i}.npy", f"{i}.mp4", index=i) for i in range(10)]
    slices = [select_shard(jobs, (k, 3)) for k in range(3)]
    assert sorted(j.index for s in slices for j in s) == list(range(10))
    assert slices == [select_shard(jobs, (k, 3)) for k in range(3)]


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "0/0"])
def test_bad_shard_is_a_usage_error(text: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        parse_shard(text)
    result = run_cli("encode", "a.npy", "b.npy", "-o", "{stem}.mp4", "--shard", text, cwd=tmp_path)
    assert result.returncode == 2 and "--shard" in result.stderr.decode()


# -- reports ----------------------------------------------------------------------------


def test_progress_file_covers_the_whole_run(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["a.npy", "b.npy", "c.npy"])
    result = run_cli(
        "encode", *clips, "missing.npy", "-o", "{stem}.mp4", *FAST, "--progress", "p.txt", cwd=tmp_path
    )
    assert result.returncode == 66
    blocks = (tmp_path / "p.txt").read_text().strip().split("progress=")
    last = dict(line.split("=", 1) for line in blocks[-2].strip().splitlines() if "=" in line)
    assert last["jobs_total"] == "4" and last["jobs_done"] == "4" and last["jobs_failed"] == "1"
    assert last["frame"] == str(3 * N)
    assert (tmp_path / "p.txt").read_text().rstrip().endswith("progress=end")


# -- Ctrl-C and SIGTERM -----------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc), to check no worker outlives the run."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to follow the workers")
@pytest.mark.parametrize(
    ("sig", "group", "code", "message"),
    [(signal.SIGINT, True, 130, "interrupted"), (signal.SIGTERM, False, 143, "terminated")],
    ids=["ctrl-c-to-the-process-group", "sigterm-to-the-parent"],
)
def test_interrupt_stops_every_worker_and_leaves_no_temporary_file(
    tmp_path: Path, sig: signal.Signals, group: bool, code: int, message: str
) -> None:
    rng = np.random.default_rng(5)
    for i in range(4):  # noise at --preset slow: many seconds each, stopped well before
        np.save(tmp_path / f"n{i}.npy", rng.integers(0, 256, (90, 240, 320, 3), dtype=np.uint8))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "n0.mp4").write_bytes(b"previous")
    inputs = [f"n{i}.npy" for i in range(4)]
    child = start_cli(
        tmp_path, "encode", *inputs, "-o", "out/", "-y", "-j", "2", "--preset", "slow", new_session=True
    )
    with reaped(child):
        deadline = time.monotonic() + 90
        while len([p for p in temp_files(tmp_path / "out") if p.stat().st_size]) < 2:
            assert child.poll() is None, child.communicate()[1].decode()
            assert time.monotonic() < deadline, "the encodes never started"
            time.sleep(0.05)
        workers = _children(child.pid)
        assert workers, "no worker processes"
        if group:
            os.killpg(child.pid, sig)  # what a terminal does on Ctrl-C
        else:
            child.send_signal(sig)
        _, stderr = child.communicate(timeout=60)
    text = stderr.decode(errors="replace")
    assert child.returncode == code, text
    assert text.startswith(f"nvenc: error: {message}: 4 jobs: 0 ok, 0 failed, 4 not done"), text
    assert "Traceback" not in text
    assert temp_files(tmp_path) == []
    assert (tmp_path / "out" / "n0.mp4").read_bytes() == b"previous"
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}/stat").exists() and "Z" not in _state(pid)]
    assert alive == [], "workers outlived the run"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


# -- the local pool and the Python API --------------------------------------------------


def test_encode_many_reuses_long_lived_workers(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, [f"k{i}.npy" for i in range(6)])
    pids: dict[int, int] = {}
    results = nvenc_cli.encode_many(
        inputs=list(clips),
        output=str(tmp_path / "out" / "{stem}.mp4"),
        options=EncodeOptions(preset="ultrafast"),
        workers=2,
        on_event=lambda kind, *v: pids.update({v[0]: v[1]}) if kind == "start" else None,
    )
    assert [r.index for r in results] == list(range(6))
    assert all(r.status == "ok" and r.exit_code == 0 and r.frames == N for r in results)
    assert len(set(pids.values())) <= 2 and len(pids) == 6  # six jobs, two processes
    assert os.getpid() not in pids.values()
    sources = list(clips.values())
    for r in results:
        assert_encodes(Path(r.output), sources[r.index])
        assert r.report["codec"] == "libx264" and r.report["bytes"] == Path(r.output).stat().st_size


def test_iter_encode_many_yields_as_jobs_finish(tmp_path: Path, base: np.ndarray) -> None:
    write_clips(tmp_path, base, ["a.npy", "b.npy"])
    specs = [
        {
            "input": str(tmp_path / "a.npy"),
            "output": str(tmp_path / "a.mkv"),
            "codec": "ffv1",
            "preset": None,
        },
        {"input": str(tmp_path / "b.npy"), "output": str(tmp_path / "b.mp4"), "frames": 3},
        {"input": str(tmp_path / "nope.npy"), "output": str(tmp_path / "c.mp4")},
    ]
    seen = []
    for result in iter_encode_many(specs, options=EncodeOptions(preset="ultrafast"), workers=2):
        seen.append(result)
        assert Path(result.output).exists() == (result.status == "ok")
    by_index = {r.index: r for r in seen}
    assert sorted(by_index) == [0, 1, 2]
    assert by_index[0].status == "ok", by_index[0].error
    assert by_index[2].status == "failed" and by_index[2].exit_code == 66 and "nope.npy" in by_index[2].error
    a, _ = decode(tmp_path / "a.mkv")
    assert np.array_equal(a, clip(base, 0))
    b, _ = decode(tmp_path / "b.mp4")
    assert b.shape[0] == 3


def test_leaving_the_iterator_early_stops_the_rest(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, [f"e{i}.npy" for i in range(6)])
    runs = iter_encode_many(inputs=list(clips), output=str(tmp_path / "o" / "{stem}.mp4"), workers=1)
    first = next(runs)
    runs.close()
    assert first.status == "ok"
    assert temp_files(tmp_path) == []
    assert len(os.listdir(tmp_path / "o")) < 6


def test_a_killed_local_worker_is_replaced_and_its_job_retried(tmp_path: Path, base: np.ndarray) -> None:
    rng = np.random.default_rng(9)
    big = rng.integers(0, 256, (40, 240, 320, 3), dtype=np.uint8)
    np.save(tmp_path / "big.npy", big)
    clips = write_clips(tmp_path, base, ["s0.npy", "s1.npy"])
    killed: list[int] = []

    def kill_first(kind: str, *values: object) -> None:
        if kind == "progress" and values[0] == 0 and not killed:
            pid = pids[0]
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    pids: dict[int, int] = {}

    def on_event(kind: str, *values: object) -> None:
        if kind == "start":
            pids[values[0]] = values[1]  # type: ignore[index]
        kill_first(kind, *values)

    results = encode_many(
        inputs=[str(tmp_path / "big.npy"), *clips],
        output=str(tmp_path / "out" / "{stem}.mp4"),
        options=EncodeOptions(preset="medium", batch_size=2),
        workers=2,
        on_event=on_event,
    )
    assert killed, "the worker was never killed"
    assert [r.status for r in results] == ["ok", "ok", "ok"], [r.error for r in results]
    assert pids[0] != killed[0]  # the retry ran in a new worker
    frames, _ = decode(tmp_path / "out" / "big.mp4")
    assert frames.shape == big.shape
    for i, source in enumerate(clips.values()):
        assert_encodes(tmp_path / "out" / f"s{i}.mp4", source)
    assert temp_files(tmp_path) == []


def test_api_input_checks() -> None:
    with pytest.raises(UsageError, match="placeholder"):
        encode_many(inputs=["a.npy", "b.npy"], output="same.mp4")
    with pytest.raises(UsageError, match="either jobs or inputs"):
        encode_many()
    with pytest.raises(UsageError, match="unknown option 'colour'"):
        encode_many([{"input": "a.npy", "output": "a.mp4", "colour": "red"}])


def test_a_terminal_gets_one_display_for_the_run(tmp_path: Path, base: np.ndarray) -> None:
    from tests.test_cli_ux import run_tty

    write_clips(tmp_path, base, ["a.npy", "b.npy", "c.npy"])
    code, seen, stdout = run_tty(
        "encode", "a.npy", "b.npy", "c.npy", "gone.npy", "-o", "out/", *FAST, "--batch-size", "2",
        cwd=tmp_path,
    )  # fmt: skip
    text = seen.decode(errors="replace")
    assert code == 66, text
    assert "encoding" in text and "/4 jobs" in text and "failed" in text and "eta" in text
    assert "\r" in text or "\x1b[" in text  # redrawn in place
    assert text.count("gone.npy:") == 1  # the failure printed once, above the display
    assert "4 jobs: 3 ok, 1 failed" in text
    assert stdout == b""


def _peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the workers' peak RSS from /proc")
def test_a_long_lived_worker_does_not_grow_with_the_number_of_jobs(tmp_path: Path) -> None:
    frames = testsrc.batch(320, 240, 24)
    np.save(tmp_path / "clip.npy", frames)

    def peak(jobs: int) -> float:
        pids: dict[int, int] = {}
        peaks: dict[int, float] = {}

        def on_event(kind: str, *values: int) -> None:
            if kind == "start":
                pids[values[0]] = values[1]
            elif kind == "progress":
                pid = pids[values[0]]
                peaks[pid] = max(peaks.get(pid, 0.0), _peak_rss_mb(pid))

        specs = [
            {"input": str(tmp_path / "clip.npy"), "output": str(tmp_path / f"{jobs}_{i}.mp4")}
            for i in range(jobs)
        ]
        results = encode_many(specs, options=EncodeOptions(batch_size=2), workers=1, on_event=on_event)
        assert all(r.status == "ok" for r in results)
        assert len(set(pids.values())) == 1
        return max(peaks.values())

    few, many = peak(2), peak(10)
    assert many < few * 1.15 + 15, f"a worker grew from {few:.0f} MB (2 jobs) to {many:.0f} MB (10 jobs)"
    decoded, _ = decode(tmp_path / "10_9.mp4")
    assert decoded.shape == frames.shape and psnr(decoded, frames) > 30


def test_manifest_from_standard_input(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["a.npy", "b.npy"])
    (tmp_path / "jobs.jsonl").write_text('{"input": "a.npy"}\n{"input": "b.npy", "frames": 4}\n')
    with (tmp_path / "jobs.jsonl").open("rb") as jobs:
        result = run_cli("batch", "-", "-o", "v/{stem}.mp4", *FAST, cwd=tmp_path, stdin=jobs)
    assert result.returncode == 0, result.stderr.decode()
    assert_encodes(tmp_path / "v" / "a.mp4", clips[str(tmp_path / "a.npy")])
    b, _ = decode(tmp_path / "v" / "b.mp4")
    assert b.shape[0] == 4


# -- start-up: the workers' forkserver starts first, the CLI layer stays out of workers --------


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["encode", "a.npy", "b.npy", "-o", "out/", "-j", "2"], True),
        (["encode", "a.npy", "-j2", "-o", "out/{stem}.mp4"], True),
        (["encode", "a.npy", "--jobs=3", "-o", "out/"], True),
        (["batch", "jobs.jsonl"], True),
        (["encode", "a.npy", "-j", "2", "--executor", "ray"], False),
        (["batch", "jobs.jsonl", "--executor=ray"], False),
        (["encode", "a.npy", "-o", "a.mp4"], False),
        (["info"], False),
        (["--help"], False),
        ([], False),
    ],
)
def test_which_command_lines_start_the_workers_early(argv: list[str], wanted: bool) -> None:
    from nvenc_cli.batch.warmup import wants_workers

    assert wants_workers(argv) is wanted


_EARLY_START = """
import json, multiprocessing.forkserver as fs, sys
from nvenc_cli.batch.warmup import start_workers_early
start_workers_early()
server = fs._forkserver._forkserver_pid
while b"forkserver" not in open(f"/proc/{server}/cmdline", "rb").read():
    pass  # until its exec: before that /proc shows the environment this process began with
environ = open(f"/proc/{server}/environ", "rb").read().split(b"\\0")
from nvenc_cli.batch.run import encode_many
parents = set()
def on_event(kind, *values):
    if kind == "start":  # the worker is running this job: its parent is the one that forked it
        parents.add(int(open(f"/proc/{values[1]}/stat").read().rsplit(")", 1)[1].split()[1]))
results = encode_many(inputs=sys.argv[1:3], output=sys.argv[3], workers=2, on_event=on_event)
print(json.dumps({"server": server, "parents": sorted(parents), "ok": [r.status for r in results],
                  "blas": b"OPENBLAS_NUM_THREADS=1" in environ}))
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to follow the workers")
def test_the_pool_forks_its_workers_from_the_early_forkserver(tmp_path: Path, base: np.ndarray) -> None:
    clips = write_clips(tmp_path, base, ["a.npy", "b.npy"])
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", _EARLY_START, *clips, str(tmp_path / "out" / "{stem}.mp4")],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["ok"] == ["ok", "ok"]
    assert report["parents"] == [report["server"]], report  # not a second forkserver
    assert report["blas"], "the forkserver (so every worker) would start OpenBLAS threads"
    for name, frames in clips.items():
        assert_encodes(tmp_path / "out" / (Path(name).stem + ".mp4"), frames)


def test_a_worker_sets_up_without_the_command_line_layer() -> None:
    script = (
        "import multiprocessing as mp, sys\n"
        "from nvenc_cli.batch import worker\n"
        "reader, writer = mp.Pipe(duplex=False)\n"
        "worker.init_pool_worker(writer, mp.RawValue('i', 0), 1, False)\n"
        "print(reader.recv()[0], 'nvenc_cli.cli' in sys.modules, 'av' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    # Typer's whole CLI module costs each worker ~0.04 s of CPU for nothing; PyAV is loaded
    # (FFmpeg's log level is set there), so it belongs in the forkserver's preload.
    assert done.stdout.decode().split() == ["hello", "False", "True"]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the handlers go in")
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.2, 0.3, 0.45, 0.7])
def test_ctrl_c_while_the_workers_start_prints_one_line(tmp_path: Path, delay: float) -> None:
    """Ctrl-C reaches the whole process group: the forkserver still importing and a worker
    still saying hello must go quietly, leaving the parent's one line alone on stderr."""
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", rng.integers(0, 256, (30, 96, 128, 3), dtype=np.uint8))
    child = start_cli(
        tmp_path, "encode", "a.npy", "b.npy", "-o", "out/", "-j", "2", "--preset", "slow", new_session=True
    )
    with reaped(child):
        deadline = time.monotonic() + 60  # nvenc's handlers first: before them only the
        while not handles_signal(child.pid, signal.SIGTERM) and time.monotonic() < deadline:  # interpreter
            time.sleep(0.001)  # itself starts, which no program's code can cover
        time.sleep(delay)
        os.killpg(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    text = stderr.decode(errors="replace")
    if child.returncode == 0:  # finished before the signal came: nothing to check
        return
    assert child.returncode == 130, text
    assert text.startswith("nvenc: error: interrupted"), text
    for other in ("Traceback", "Fatal Python error", "Exception in initializer"):
        assert other not in text, text
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to follow the workers")
def test_workers_end_when_the_run_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves the parent no time to stop anything: the workers see it go and
    unwind (no temporary file left), and their forkserver ends with them."""
    rng = np.random.default_rng(9)
    for i in range(4):
        np.save(tmp_path / f"n{i}.npy", rng.integers(0, 256, (90, 240, 320, 3), dtype=np.uint8))
    inputs = [f"n{i}.npy" for i in range(4)]
    child = start_cli(  # no pipes: left-over processes would hold one open
        tmp_path, "encode", *inputs, "-o", "out/", "-j", "2", "--preset", "slow",
        new_session=True, output=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while len([p for p in temp_files(tmp_path / "out") if p.stat().st_size]) < 2:
            assert child.poll() is None, "the run ended before its encodes started"
            assert time.monotonic() < deadline, "the encodes never started"
            time.sleep(0.05)
        left = _children(child.pid)
        assert len(left) >= 3, left  # two workers and their forkserver at least
        child.kill()
        child.wait()
        deadline = time.monotonic() + 20
        while any("Z" not in _state(pid) for pid in left) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [pid for pid in left if "Z" not in _state(pid)]
    finally:
        if child.poll() is None:  # an assertion failed before the kill
            for pid in _children(child.pid):
                os.kill(pid, signal.SIGKILL)
            child.kill()
            child.wait()
    for pid in alive:  # do not leave them running for the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert alive == [], "processes outlived the killed run"
    assert temp_files(tmp_path) == []
