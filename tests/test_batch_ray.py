"""Jobs as Ray tasks on a real local Ray cluster (2 CPUs, one for the whole module): good
and bad jobs, the CLI on an existing cluster and on one it starts, and a worker killed
mid-job, which Ray retries and which leaves neither a partial output nor a temporary file."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nvenc_cli import testsrc
from nvenc_cli.batch import encode_many
from nvenc_cli.options import EncodeOptions
from tests.conftest import decode, psnr, reaped, run_cli, start_cli

ray = pytest.importorskip("ray", reason="Ray is in the test extra: pip install -e '.[test]'")

W, H, N = 128, 96, 8


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local cluster of 2 CPUs; its address lets a CLI process join it."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        object_store_memory=100 * 1024 * 1024,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("clips")
    base = testsrc.batch(W, H, N)
    made = {}
    for i in range(3):
        frames = np.ascontiguousarray(np.roll(base, 16 * i, axis=2))
        np.save(folder / f"c{i}.npy", frames)
        made[str(folder / f"c{i}.npy")] = frames
    return made


def assert_encodes(path: Path, source: np.ndarray) -> None:
    frames, _ = decode(path)
    assert frames.shape == source.shape
    assert psnr(frames, source) > 28


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_jobs_run_as_ray_tasks_and_a_bad_one_fails_alone(
    cluster: str, clips: dict[str, np.ndarray], tmp_path: Path
) -> None:
    inputs = [*clips, str(tmp_path / "missing.npy")]
    results = encode_many(
        inputs=inputs,
        output=str(tmp_path / "out" / "{stem}.mp4"),
        options=EncodeOptions(preset="ultrafast"),
        executor="ray",
    )
    assert [r.status for r in results] == ["ok", "ok", "ok", "failed"]
    assert results[3].exit_code == 66 and "missing.npy" in (results[3].error or "")
    for result, source in zip(results, clips.values(), strict=False):
        assert result.frames == N and result.report["backend"] == "cpu"
        assert_encodes(Path(result.output), source)
    assert sorted(os.listdir(tmp_path / "out")) == ["c0.mp4", "c1.mp4", "c2.mp4"]


def test_cli_on_an_existing_cluster_with_relative_paths(
    cluster: str, clips: dict[str, np.ndarray], tmp_path: Path
) -> None:
    for name, frames in clips.items():
        np.save(tmp_path / Path(name).name, frames)
    names = [Path(n).name for n in clips]
    result = run_cli(
        "encode", *names, "-o", "out/", "--preset", "ultrafast", "--executor", "ray",
        "--ray-address", cluster, "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    jobs = [j for j in lines if j["type"] == "job"]
    assert sorted(j["output"] for j in jobs) == ["out/c0.mp4", "out/c1.mp4", "out/c2.mp4"]
    assert lines[-1]["type"] == "summary" and lines[-1]["ok"] == 3
    for name, source in zip(names, clips.values(), strict=True):
        assert_encodes(tmp_path / "out" / name.replace(".npy", ".mp4"), source)


def test_cli_starts_a_local_cluster_when_no_address_is_given(
    clips: dict[str, np.ndarray], tmp_path: Path
) -> None:
    first = next(iter(clips))
    result = run_cli(
        "encode", first, str(tmp_path / "missing.npy"), "-o", str(tmp_path / "{stem}.mkv"),
        "--preset", "ultrafast", "--executor", "ray", "-j", "1", cwd=tmp_path,
        env={"RAY_ADDRESS": ""},
    )  # fmt: skip
    text = result.stderr.decode()
    assert result.returncode == 66, text
    assert "nvenc: error: " + str(tmp_path / "missing.npy") in text
    assert "2 jobs: 1 ok, 1 failed" in text and "[ray, local cluster]" in text
    assert_encodes(tmp_path / "c0.mkv", clips[first])


def _ray_job_pids() -> list[int]:
    """Processes running an nvenc job: Ray titles a worker ``ray::<task name>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::nvenc-job"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the Ray worker through /proc")
def test_a_worker_killed_mid_job_is_retried_and_leaves_nothing_partial(cluster: str, tmp_path: Path) -> None:
    frames = np.random.default_rng(3).integers(0, 256, (48, 240, 320, 3), dtype=np.uint8)
    np.save(tmp_path / "noise.npy", frames)
    out = tmp_path / "out"
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["results"] = encode_many(
            inputs=[str(tmp_path / "noise.npy")],
            output=str(out / "{stem}.mp4"),
            options=EncodeOptions(preset="slow", batch_size=2),
            executor="ray",
        )

    runner = threading.Thread(target=run)
    runner.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and runner.is_alive():
        pids = _ray_job_pids()
        if temp_files(tmp_path) and pids:  # the muxer has opened its temporary file
            time.sleep(1.0)  # mid-job: x264's lookahead holds packets back for a few seconds
            assert runner.is_alive() and temp_files(tmp_path), "the job ended before the kill"
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.05)
    runner.join(timeout=300)
    assert killed is not None, "the job was never caught mid-encode"
    results = outcome["results"]
    assert [r.status for r in results] == ["ok"], [r.error for r in results]
    decoded, _ = decode(out / "noise.mp4")
    assert decoded.shape == frames.shape  # the retry wrote the whole clip
    assert os.listdir(out) == ["noise.mp4"]  # the dead attempt's temporary file is gone
    assert killed not in _ray_job_pids()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the Ray workers through /proc")
def test_ctrl_c_cancels_the_tasks_and_leaves_no_temporary_file(cluster: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    for i in range(2):
        np.save(tmp_path / f"n{i}.npy", rng.integers(0, 256, (48, 240, 320, 3), dtype=np.uint8))
    child = start_cli(
        tmp_path, "encode", "n0.npy", "n1.npy", "-o", "out/", "--preset", "slow", "--executor", "ray",
        "--ray-address", cluster,
    )  # fmt: skip
    with reaped(child):
        deadline = time.monotonic() + 120
        while not (temp_files(tmp_path) and _ray_job_pids()):
            assert child.poll() is None, child.communicate()[1].decode()
            assert time.monotonic() < deadline, "the tasks never started"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=90)
    text = stderr.decode(errors="replace")
    assert child.returncode == 130, text
    assert text.startswith("nvenc: error: interrupted: 2 jobs:"), text
    assert "Traceback" not in text
    assert temp_files(tmp_path) == []
    assert not (tmp_path / "out" / "n0.mp4").exists() or decode(tmp_path / "out" / "n0.mp4")[0].shape[0] == 48
    deadline = time.monotonic() + 30
    while _ray_job_pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ray_job_pids() == [], "a task kept running after the run was interrupted"
