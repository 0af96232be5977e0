#!/usr/bin/env python3
"""Object storage against local disk: the same many-clips run, from and to a local S3
server (moto's server mode on 127.0.0.1) and from and to a local folder.

24 clips of 48 frames at 640x360 (FFmpeg's testsrc2 pattern, one ``.npy`` each) through
one ``nvenc encode CLIPS -o TEMPLATE`` with ``-j 2`` (the local worker pool) and with
``--executor ray -j 2`` (a local Ray cluster started by the run), each run one process
timed as a whole, runs interleaved, the median of ``--repeat`` reported, and the ratio
S3 / disk per executor (the goal: at most 1.15), and the CPU time the S3 server itself
used (here it shares the cores with the encoders; a real store runs elsewhere). Every
output is counted before a time is kept. Needs the ``cloud`` and ``test`` extras (s3fs,
moto[server]) and, for the Ray rows, the ``ray`` extra; a row whose part is missing is
skipped with a note.

    python bench/cloud.py [--repeat 3] [--clips 24] [--frames 48] [--size 640x360]
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nvenc_cli import testsrc  # noqa: E402
from tests.moto_server import aws_env, moto_server  # noqa: E402

BUCKET = "bench"


SERVER_PID = [0]
"""The S3 server's process: its CPU time is reported apart (on a real cluster the store
runs elsewhere; here it shares the cores with the encoders)."""


def server_cpu() -> float:
    """CPU seconds the S3 server has used so far (user + system, from /proc)."""
    try:
        fields = Path(f"/proc/{SERVER_PID[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_clips(folder: Path, fs: object, clips: int, frames: int, width: int, height: int) -> list[str]:
    """The clips on disk and the same bytes as objects; returns the clip names."""
    folder.mkdir(parents=True)
    base = testsrc.batch(width, height, frames)
    names = []
    for i in range(clips):
        name = f"c{i:02d}.npy"
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(np.roll(base, 8 * i, axis=2)))
        (folder / name).write_bytes(buffer.getvalue())
        fs.pipe_file(f"{BUCKET}/in/{name}", buffer.getvalue())  # type: ignore[attr-defined]
        names.append(name)
    return names


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.decode()[-2000:]}")
    return seconds


SERVER_CPU: dict[tuple[str, str], list[float]] = {}


def one_run(executor: str, where: str, names: list[str], work: Path, fs: Any, env: dict[str, str]) -> float:
    """One timed ``nvenc encode`` of every clip, from and to the disk or the bucket; the
    outputs are counted before the time is kept."""
    nvenc = [sys.executable, "-m", "nvenc_cli", "encode", "-q", "-j", "2"]
    if executor == "ray":
        nvenc += ["--executor", "ray"]
    out = work / "out"
    if where == "disk":
        subprocess.run(["rm", "-rf", str(out)], check=True)
        cmd = [*nvenc, *(str(work / "in" / n) for n in names), "-o", f"{out}/{{stem}}.mp4"]
    else:
        if fs.exists(f"{BUCKET}/out"):
            fs.rm(f"{BUCKET}/out", recursive=True)
        cmd = [*nvenc, *(f"s3://{BUCKET}/in/{n}" for n in names), "-o", f"s3://{BUCKET}/out/{{stem}}.mp4"]
    cpu = server_cpu()
    seconds = timed(cmd, env, work)
    SERVER_CPU.setdefault((executor, where), []).append(server_cpu() - cpu)
    fs.invalidate_cache()
    made = len(list(out.glob("*.mp4"))) if where == "disk" else len(fs.find(f"{BUCKET}/out"))
    if made != len(names):
        raise SystemExit(f"{executor}/{where}: {made} outputs of {len(names)}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--no-ray", action="store_true", help="only the local worker pool")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the S3 server on the way out
    width, height = (int(v) for v in args.size.split("x"))
    try:
        import moto.server  # noqa: F401
        import s3fs
    except ImportError as exc:
        print(f"bench/cloud.py: skipped: {exc.name} is missing (pip install -e '.[test]')", file=sys.stderr)
        return
    executors = ["local"]
    if not args.no_ray:
        try:
            import ray  # noqa: F401

            executors.append("ray")
        except ImportError:
            print("bench/cloud.py: no Ray: the ray rows are skipped", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="nvenc-bench-cloud-") as tmp:
        work = Path(tmp)
        with moto_server(work / "moto.log", on_start=lambda pid: SERVER_PID.__setitem__(0, pid)) as endpoint:
            env = {**os.environ, **aws_env(endpoint), "PYTHONPATH": str(ROOT)}
            os.environ.update(aws_env(endpoint))
            fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
            fs.mkdir(BUCKET)
            names = make_clips(work / "in", fs, args.clips, args.frames, width, height)
            runs: dict[tuple[str, str], list[float]] = {}
            print(
                f"{args.clips} clips x {args.frames} frames {width}x{height}, -j 2, "
                f"median of {args.repeat}; S3 = moto on 127.0.0.1",
                file=sys.stderr,
            )
            for round_ in range(args.repeat):
                for executor in executors:
                    for where in ("disk", "s3"):
                        seconds = one_run(executor, where, names, work, fs, env)
                        runs.setdefault((executor, where), []).append(seconds)
                        line = f"  round {round_ + 1} {executor:5} {where:4} {seconds:7.2f} s"
                        print(line, file=sys.stderr)
            print(f"{'executor':10} {'disk s':>8} {'s3 s':>8} {'s3/disk':>8} {'server cpu s':>13}")
            for executor in executors:
                disk = statistics.median(runs[(executor, "disk")])
                remote = statistics.median(runs[(executor, "s3")])
                cpu = statistics.median(SERVER_CPU[(executor, "s3")])
                print(f"{executor:10} {disk:8.2f} {remote:8.2f} {remote / disk:8.2f} {cpu:13.2f}")


if __name__ == "__main__":
    main()
