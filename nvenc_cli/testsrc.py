"""Sample frames for demos, tests and benchmarks: FFmpeg's testsrc2 pattern.

A natural-looking pattern (gradients, moving shapes, text) rather than noise, so quality
figures such as PSNR mean what they would on real footage.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def frames(width: int, height: int, count: int, pattern: str = "testsrc2") -> Iterator[np.ndarray]:
    """Yield ``count`` RGB uint8 (H, W, 3) frames of an FFmpeg lavfi test pattern."""
    import av

    spec = f"{pattern}=size={width}x{height}:rate=30"
    with av.open(spec, format="lavfi") as container:
        stream = container.streams.video[0]
        for made, frame in enumerate(container.decode(stream), start=1):
            yield frame.to_ndarray(format="rgb24")
            if made >= count:
                return


def batch(width: int, height: int, count: int, pattern: str = "testsrc2") -> np.ndarray:
    """All ``count`` frames as one (N, H, W, 3) array (for small samples only)."""
    return np.stack(list(frames(width, height, count, pattern)))


def write(path: str, width: int, height: int, count: int, pattern: str = "testsrc2") -> None:
    """Write a sample to ``path``: .npy (streamed to disk), .pt, .npz, or a PNG folder."""
    import os

    if path.endswith(".npy"):
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, height, width, 3))
        for i, frame in enumerate(frames(width, height, count, pattern)):
            out[i] = frame
        out.flush()
        del out
    elif path.endswith(".npz"):
        np.savez(path, frames=batch(width, height, count, pattern))
    elif path.endswith((".pt", ".pth")):
        from nvenc_cli.extras import require_torch

        torch = require_torch("writing .pt sample frames")
        torch.save(torch.from_numpy(batch(width, height, count, pattern)), path)
    else:
        from PIL import Image

        os.makedirs(path, exist_ok=True)
        for i, frame in enumerate(frames(width, height, count, pattern)):
            Image.fromarray(frame).save(os.path.join(path, f"frame_{i:05d}.png"))
