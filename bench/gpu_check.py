#!/usr/bin/env python3
"""The prepared GPU check: CUDA tensors to a CPU encoder through ``cuda-convert+cpu-encode``.

Runs in a few minutes on one GPU with or without NVENC (an H100/H200 has none) and
installs nothing: it needs what ``pip install -e ".[gpu,test]"`` gives. It

1. runs the CUDA tests (``pytest -k cuda``: devconvert, color.py, the NVENC session);
2. encodes float32 and uint8 tensors on the GPU at 1080p with libx264 (``--device auto``,
   which picks the route by itself where NVENC is missing) and reports, for each:
   frames per second, the route taken, bytes copied device→host per frame, the GPU
   memory the encode added at its peak, and PSNR against the source;
3. against (a) ``tensor.cpu()`` then the CPU path and (b) torchcodec's ``VideoEncoder``
   on the CUDA tensor, when torchcodec is installed (on a GPU without NVENC it refuses:
   its words are reported).

Without a GPU it runs the same steps on torch's CPU device (the route is switched on for
CPU tensors) and says so: those figures are no GPU's. ``--quick`` makes everything small
(the test suite runs it that way). ``make gpu-check`` runs the full check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CUDA_TESTS = ["tests/test_devconvert.py", "tests/test_color.py", "tests/test_nvenc_gpu.py"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small frames, few of them (for tests)")
    parser.add_argument("--frames", type=int, default=None, help="frames per encode (default 120, quick 6)")
    parser.add_argument("--size", default=None, help="WxH (default 1920x1080, quick 128x72)")
    parser.add_argument("--no-tests", action="store_true", help="skip the CUDA tests")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    from nvenc_cli import devconvert

    count = args.frames or (6 if args.quick else 120)
    width, height = (int(v) for v in (args.size or ("128x72" if args.quick else "1920x1080")).split("x"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda") if cuda else torch.device("cpu")
    report: dict[str, Any] = {
        "device": _device_name(torch, cuda),
        "size": f"{width}x{height}",
        "frames": count,
    }
    if not cuda:
        os.environ[devconvert.SWITCH] = "1"  # the route on torch's CPU device
        print("gpu_check: no CUDA device: running on torch's CPU device; these are no GPU's figures")
    print(f"gpu_check: {report['device']}, {count} frames of {width}x{height}")
    if not args.no_tests:
        report["tests"] = _run_tests()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        source = _frames(width, height, count)
        _warm_up(torch, device, Path(tmp) / "warm.mp4")
        for dtype in ("float32", "uint8"):
            frames = _as(torch, source, dtype, device)
            rows.append(_route(torch, frames, source, Path(tmp) / f"route_{dtype}.mp4", dtype, cuda))
            rows.append(_host_copy(torch, frames, source, Path(tmp) / f"host_{dtype}.mp4", dtype))
            rows.append(_torchcodec(frames, source, Path(tmp) / f"tc_{dtype}.mp4", dtype))
    report["encodes"] = rows
    _print(rows)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    failed = report.get("tests", {}).get("returncode", 0) != 0
    return 1 if failed or any(r.get("error") and r["contender"] != "torchcodec" for r in rows) else 0


def _device_name(torch: Any, cuda: bool) -> str:
    if cuda:
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    return f"torch {torch.__version__} CPU device ({os.cpu_count()} cores), no GPU"


def _run_tests() -> dict[str, Any]:
    """The CUDA tests, as a child pytest (they skip themselves without a GPU)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-k", "cuda", *CUDA_TESTS],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"gpu_check: CUDA tests: {last}")
    if done.returncode not in (0, 5):
        print(done.stdout[-4000:], done.stderr[-2000:], sep="\n")
    return {
        "returncode": 0 if done.returncode == 5 else done.returncode,
        "summary": last,
        "seconds": round(time.monotonic() - started, 1),
    }


def _frames(width: int, height: int, count: int) -> np.ndarray:
    """A moving test pattern (NHWC uint8), so the encoder and PSNR see real content."""
    from nvenc_cli import testsrc

    return testsrc.batch(width, height, count)


def _as(torch: Any, source: np.ndarray, dtype: str, device: Any) -> Any:
    """The frames as a model would hand them over: NCHW, on the device."""
    nchw = torch.from_numpy(source).permute(0, 3, 1, 2).contiguous().to(device)
    return nchw.float() / 255.0 if dtype == "float32" else nchw


def _warm_up(torch: Any, device: Any, out: Path) -> None:
    """One small encode first, so no contender pays for the imports and first set-ups."""
    import nvenc_cli

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nvenc_cli.encode(torch.zeros(2, 3, 64, 64, device=device), out, **_SETTINGS)


def _route(torch: Any, frames: Any, source: np.ndarray, out: Path, dtype: str, cuda: bool) -> dict[str, Any]:
    """Encode with ``--device auto``: where NVENC is missing the route is chosen by itself."""
    import nvenc_cli

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else 0
    row = _timed("nvenc route", dtype, lambda: nvenc_cli.encode(frames, out, **_SETTINGS), len(frames))
    if "result" in row:
        result = row.pop("result")
        row["route"] = result.route
        row["host_bytes_per_frame"] = result.bytes_to_host // max(1, result.frames)
        row["psnr_db"] = _psnr(out, source)
    if cuda:
        row["gpu_peak_added_mb"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
    return row


def _host_copy(torch: Any, frames: Any, source: np.ndarray, out: Path, dtype: str) -> dict[str, Any]:
    """(a) what code does without the route: the whole RGB tensor to the host, then encode."""
    import nvenc_cli

    switch = os.environ.pop("NVENC_DEVICE_CONVERT", None)
    try:
        row = _timed(
            ".cpu() + cpu path", dtype, lambda: nvenc_cli.encode(frames.cpu(), out, **_SETTINGS), len(frames)
        )
    finally:
        if switch is not None:
            os.environ["NVENC_DEVICE_CONVERT"] = switch
    if "result" in row:
        result = row.pop("result")
        row["route"] = result.route
        row["host_bytes_per_frame"] = frames[0].numel() * frames.element_size()
        row["psnr_db"] = _psnr(out, source)
    return row


def _torchcodec(frames: Any, source: np.ndarray, out: Path, dtype: str) -> dict[str, Any]:
    """(b) torchcodec's VideoEncoder on the same tensor (uint8 only, as it takes)."""
    try:
        from torchcodec.encoders import VideoEncoder
    except Exception as exc:
        return {"contender": "torchcodec", "dtype": dtype, "error": f"not installed ({exc})"}
    data = frames if dtype == "uint8" else (frames * 255).round().to(dtype=__import__("torch").uint8)
    row = _timed(
        "torchcodec", dtype, lambda: VideoEncoder(data, frame_rate=30).to_file(str(out), crf=23), len(data)
    )
    row.pop("result", None)
    if "error" not in row:
        row["psnr_db"] = _psnr(out, source)
    return row


_SETTINGS = {"frame_rate": 30, "codec": "libx264", "preset": "ultrafast", "crf": 23, "overwrite": True}


def _timed(name: str, dtype: str, call: Any, count: int) -> dict[str, Any]:
    row: dict[str, Any] = {"contender": name, "dtype": dtype}
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row["result"] = call()
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return row
    seconds = time.monotonic() - started
    row["seconds"] = round(seconds, 3)
    row["fps"] = round(count / seconds, 1)
    return row


def _psnr(path: Path, source: np.ndarray) -> float | None:
    """PSNR of the decoded RGB against the source RGB, over every frame."""
    import av

    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    if decoded.shape != source.shape:
        return None
    mse = float(np.mean((decoded.astype(np.float64) - source.astype(np.float64)) ** 2))
    return round(10 * np.log10(255.0**2 / mse), 2) if mse else float("inf")


def _print(rows: list[dict[str, Any]]) -> None:
    heads = (
        "contender",
        "dtype",
        "route",
        "fps",
        "host_bytes_per_frame",
        "psnr_db",
        "gpu_peak_added_mb",
        "error",
    )
    print("\t".join(heads))
    for row in rows:
        print("\t".join(str(row.get(h, "")) for h in heads))


if __name__ == "__main__":
    sys.exit(main())
