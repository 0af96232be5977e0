"""A multi-node Ray run that shares no disk: a head and two worker nodes on this machine
(Ray's own test cluster), each started in its own working folder with its own TMPDIR,
a manifest whose inputs and outputs are objects in a local S3 server (moto, 127.0.0.1).
Every output object is decoded; a worker node removed mid-run has its jobs retried on
the other node, leaves no partial object, and the report lists the retries."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nvenc_cli import testsrc
from tests.conftest import ROOT, decode, psnr

ray = pytest.importorskip("ray", reason="Ray is in the test extra: pip install -e '.[test]'")
pytest.importorskip("s3fs", reason="object storage needs the cloud extra: pip install -e '.[test]'")
pytest.importorskip("moto.server", reason="the local S3 server is moto's: pip install 'moto[server]'")

from ray.cluster_utils import Cluster  # noqa: E402

from tests.moto_server import aws_env, moto_server, s3  # noqa: E402

BUCKET = "raybucket"
W, H, N = 160, 96, 10


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    here = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The S3 server, then the cluster: its nodes inherit the AWS_* settings (the
    standard credential chain) and nvenc's path, and nothing else of this process."""
    base = tmp_path_factory.mktemp("ray-world")
    with pytest.MonkeyPatch.context() as mp, moto_server(base / "moto.log") as endpoint:
        for name, value in aws_env(endpoint).items():
            mp.setenv(name, value)
        mp.setenv("PYTHONPATH", str(ROOT))
        mp.setenv("RAY_DEDUP_LOGS", "0")
        fs = s3(endpoint)
        fs.mkdir(BUCKET)
        head_dir = base / "head"
        head_dir.mkdir()
        nodes = {}
        with chdir(head_dir):
            cluster = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": 0, "include_dashboard": False, "object_store_memory": 80 << 20},
            )
        try:
            for name in ("node-a", "node-b"):
                folder = base / name
                (folder / "tmp").mkdir(parents=True)
                with chdir(folder):  # the raylet, and the workers it starts, run here
                    nodes[name] = cluster.add_node(
                        num_cpus=1,
                        object_store_memory=80 << 20,
                        env_vars={"TMPDIR": str(folder / "tmp")},
                    )
            cluster.wait_for_nodes()
            yield {"fs": fs, "cluster": cluster, "nodes": nodes, "base": base, "endpoint": endpoint}
        finally:
            cluster.shutdown()


def put_clip(fs: Any, key: str, shift: int, n: int = N) -> np.ndarray:
    frames = np.ascontiguousarray(np.roll(testsrc.batch(W, H, n), shift, axis=2))
    buffer = io.BytesIO()
    np.save(buffer, frames)
    fs.pipe_file(f"{BUCKET}/{key}", buffer.getvalue())
    return frames


def manifest(fs: Any, prefix: str, count: int, n: int = N, **extra: Any) -> dict[str, np.ndarray]:
    sources, rows = {}, []
    for i in range(count):
        sources[f"{prefix}/out/{i}.mp4"] = put_clip(fs, f"{prefix}/in/{i}.npy", 12 * i, n)
        job = {"input": f"s3://{BUCKET}/{prefix}/in/{i}.npy", "output": f"s3://{BUCKET}/{prefix}/out/{i}.mp4"}
        rows.append(json.dumps({**job, **extra}))
    fs.pipe_file(f"{BUCKET}/{prefix}/jobs.jsonl", ("\n".join(rows) + "\n").encode())
    return sources


def start_batch(world: dict[str, Any], prefix: str, progress: Path) -> subprocess.Popen:
    """``nvenc batch`` on the cluster, from a folder of its own: the driver reads the
    manifest from the store too."""
    driver = world["base"] / f"driver-{prefix}"
    driver.mkdir()
    return subprocess.Popen(
        [sys.executable, "-m", "nvenc_cli", "batch", f"s3://{BUCKET}/{prefix}/jobs.jsonl", "--executor",
         "ray", "--ray-address", world["cluster"].address, "--json", "--progress", str(progress)],
        cwd=driver,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def check_outputs(fs: Any, sources: dict[str, np.ndarray], tmp_path: Path) -> None:
    fs.invalidate_cache()
    prefix = next(iter(sources)).split("/")[0]
    assert sorted(fs.find(f"{BUCKET}/{prefix}/out")) == sorted(f"{BUCKET}/{key}" for key in sources)
    for key, frames in sources.items():
        local = tmp_path / key.replace("/", "_")
        fs.get_file(f"{BUCKET}/{key}", str(local))
        got, facts = decode(local)
        assert got.shape == frames.shape, key
        assert (facts["width"], facts["height"]) == (W, H)
        assert psnr(got, frames) > 30, key


def node_leftovers(world: dict[str, Any]) -> list[str]:
    return [str(p) for name in ("node-a", "node-b") for p in (world["base"] / name / "tmp").iterdir()]


def test_manifest_of_objects_on_two_nodes(world: dict[str, Any], tmp_path: Path) -> None:
    sources = manifest(world["fs"], "all", 4, crf=12)
    child = start_batch(world, "all", tmp_path / "progress.txt")
    out, err = child.communicate(timeout=240)
    assert child.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    jobs = [line for line in lines if line["type"] == "job"]
    assert sorted(job["output"] for job in jobs) == sorted(f"s3://{BUCKET}/{k}" for k in sources)
    assert all(job["status"] == "ok" for job in jobs)
    check_outputs(world["fs"], sources, tmp_path)
    assert node_leftovers(world) == []


def test_a_node_removed_mid_run_has_its_jobs_retried_on_the_other(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """Slow jobs (veryslow x264 on one thread): node-b goes while one of its jobs is being
    encoded, so that job must run again on node-a."""
    sources = manifest(world["fs"], "kill", 4, n=480, crf=12, preset="veryslow", option=["threads=1"])
    progress = tmp_path / "progress.txt"
    child = start_batch(world, "kill", progress)
    try:
        deadline = time.monotonic() + 120
        while not encoding(world["base"] / "node-b" / "tmp"):  # a job under way on node-b
            assert child.poll() is None, child.communicate()[1].decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        world["cluster"].remove_node(world["nodes"]["node-b"])
        out, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err.decode()
    jobs = [json.loads(line) for line in out.decode().splitlines() if json.loads(line)["type"] == "job"]
    assert all(job["status"] == "ok" for job in jobs), jobs
    retried = [job for job in jobs if job.get("attempts", 1) > 1]
    assert retried, jobs
    for job in retried:
        note = f"{job['input']}: retried after its worker was lost (attempt {job['attempts']})"
        assert note in err.decode()
    check_outputs(world["fs"], sources, tmp_path)  # every object whole: none partial, none missing
    assert list((world["base"] / "node-a" / "tmp").iterdir()) == []


def encoding(tmp: Path) -> bool:
    """Whether a job on the node with this TMPDIR is writing its output (the muxer's
    temporary file in the run's private folder, before any upload)."""
    return any(tmp.glob("nvenc-url-*/out*/.*.part"))
