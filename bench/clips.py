"""Many short clips encoded in one Python process (a training loop saving samples).

Each contender turns the same list of clips (uint8 NCHW tensors made before timing) into
MP4 bytes with its defaults (H.264, libx264's default preset and crf), in one process:

* ``torchcodec``        ``VideoEncoder(clip, frame_rate=30).to_tensor("mp4")`` in a loop.
* ``nvenc``             the same call on nvenc's ``VideoEncoder`` (waits for each clip).
* ``nvenc wait=False``  ``to_tensor("mp4", wait=False)`` for every clip, then the futures'
                        results: the loop goes on while earlier clips encode.

The contenders run interleaved, the order rotated each round, each in a fresh process
(so one's thread pools and caches do not help another); the table shows median seconds
and the median over rounds of ``torchcodec s / contender s`` in the same round. Every
output is decoded and its frame count checked.

    python bench/clips.py [--clips 200] [--frames 16] [--size 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONTENDERS = ("torchcodec", "nvenc", "nvenc wait=False")


def make_clips(clips: int, frames: int, size: int) -> list:
    """``clips`` different NCHW uint8 clips of testsrc2 (made before any timing)."""
    import torch

    from nvenc_cli import testsrc

    source = testsrc.batch(size, size, clips + frames)
    return [torch.from_numpy(source[i : i + frames]).permute(0, 3, 1, 2).contiguous() for i in range(clips)]


def encode_all(name: str, clips: list) -> tuple[float, list]:
    """Encode every clip with ``name``; return the seconds and the outputs."""
    if name == "torchcodec":
        from torchcodec.encoders import VideoEncoder
    else:
        from nvenc_cli import VideoEncoder
    start = time.perf_counter()
    if name == "nvenc wait=False":
        futures = [VideoEncoder(c, frame_rate=30).to_tensor("mp4", wait=False) for c in clips]
        outputs = [f.result() for f in futures]
    else:
        outputs = [VideoEncoder(c, frame_rate=30).to_tensor("mp4") for c in clips]
    return time.perf_counter() - start, outputs


def check(outputs: list, frames: int) -> None:
    """Every output decodes to ``frames`` frames."""
    import io

    import av

    for index, data in enumerate(outputs):
        with av.open(io.BytesIO(data.numpy().tobytes())) as container:
            count = sum(1 for _ in container.decode(video=0))
        if count != frames:
            raise SystemExit(f"clip {index}: {count} frames decoded, expected {frames}")


def run_one(args: argparse.Namespace) -> None:
    """Child mode: encode with one contender and print its seconds."""
    clips = make_clips(args.clips, args.frames, args.size)
    encode_all(args.one, clips[:2])  # imports and first-use set-up outside the timing
    seconds, outputs = encode_all(args.one, clips)
    check(outputs, args.frames)
    print(f"{seconds!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args)
        return
    names = [n for n in CONTENDERS if n != "torchcodec" or importlib.util.find_spec("torchcodec")]
    times: dict[str, list[float]] = {n: [] for n in names}
    ratios: dict[str, list[float]] = {n: [] for n in names}
    common = ["--clips", str(args.clips), "--frames", str(args.frames), "--size", str(args.size)]
    print(
        f"== {args.clips} clips x {args.frames} frames {args.size}x{args.size} -> mp4 bytes in one "
        f"process, {args.rounds} rounds, {os.cpu_count()} cores =="
    )
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        this: dict[str, float] = {}
        for name in order:
            argv = [sys.executable, str(Path(__file__).resolve()), *common, "--one", name]
            out = subprocess.run(argv, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"{name}: {out.stderr.strip()[-400:]}")
            this[name] = float(out.stdout.split()[-1])
            times[name].append(this[name])
        for name in names:
            if "torchcodec" in this:
                ratios[name].append(this["torchcodec"] / this[name])
        load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
        print(f"  round {round_ + 1}: " + ", ".join(f"{n} {this[n]:.2f} s" for n in order) + f"; load {load}")
    print(f"{'contender':<18} {'median s':>9} {'s/clip':>7} {'vs torchcodec':>14} {'per round':>12}")
    for name in names:
        median = statistics.median(times[name])
        if ratios[name]:
            ratio = f"{statistics.median(ratios[name]):.2f}x"
            spread = f"{min(ratios[name]):.2f}-{max(ratios[name]):.2f}"
        else:
            ratio = spread = "-"
        print(f"{name:<18} {median:>9.2f} {median / args.clips:>7.4f} {ratio:>14} {spread:>12}")


if __name__ == "__main__":
    main()
