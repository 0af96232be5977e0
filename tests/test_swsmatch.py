"""swsmatch.py reproduces the installed swscale's 8-bit RGB → Y'CbCr, code for code.

The reference is the real thing: ``backends.cpu.swscale_planes`` converts with the CPU
path's own swscale settings through PyAV. Everything here runs on torch's CPU device; the
integer steps are the same on CUDA (tests/test_devconvert.py's CUDA case).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nvenc_cli import swsmatch  # noqa: E402
from nvenc_cli.backends.cpu import swscale_planes  # noqa: E402
from nvenc_cli.color import YuvSpec  # noqa: E402

FORMATS = ["yuv420p", "yuv444p", "yuv420p10le", "yuv444p10le", "nv12", "p010le"]
MATRICES = ["bt709", "bt601", "bt2020", "fcc"]


def _shape(fmt: str) -> tuple[int, str]:
    return (10 if "10" in fmt else 8), ("444" if "444" in fmt else "420")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_matrix_range_and_layout_equals_swscale(fmt):
    bits, chroma = _shape(fmt)
    rng = np.random.default_rng(11)
    for matrix, full, channels in itertools.product(MATRICES, (False, True), (3, 4)):
        spec = YuvSpec(matrix, full, bits, chroma)
        variant = swsmatch.variant_for(fmt, spec, channels)
        assert variant in swsmatch.VARIANTS, (matrix, full, channels)
        for height, width in ((64, 96), (4, 34), (38, 18), (6, 4)):
            frames = rng.integers(0, 256, (2, height, width, channels), dtype=np.uint8)
            mine = swsmatch.planes(torch.from_numpy(frames), spec, variant)
            for index in range(2):
                reference = swscale_planes(frames[index], fmt, matrix, full)
                for plane, ref in zip(mine, reference, strict=True):
                    assert np.array_equal(plane[index].numpy(), ref), (matrix, full, channels, height)


@pytest.mark.parametrize("full", [False, True])
def test_every_rgb_colour_equals_swscale(full):
    """All 16,777,216 colours in one 4096×4096 frame (4:4:4, so each output sample is one
    colour's)."""
    codes = np.arange(1 << 24, dtype=np.uint32)
    image = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1)
    image = image.astype(np.uint8).reshape(4096, 4096, 3)
    spec = YuvSpec("bt709", full, 8, "444")
    variant = swsmatch.variant_for("yuv444p", spec, 3)
    mine = swsmatch.planes(torch.from_numpy(image[None]), spec, variant)
    for plane, ref in zip(mine, swscale_planes(image, "yuv444p", "bt709", full), strict=True):
        assert np.array_equal(plane[0].numpy(), ref)


def test_the_float_formula_is_not_swscale():
    """Why this module exists: color.py's single rounding differs from swscale on some
    codes, so the old route's pictures were not the CPU path's."""
    from nvenc_cli import color

    frames = np.random.default_rng(3).integers(0, 256, (1, 32, 64, 3), dtype=np.uint8)
    spec = color.YuvSpec("bt709", False, 8, "420")
    floats = color.rgb_to_planes(torch.from_numpy(frames), spec)
    reference = swscale_planes(frames[0], "yuv420p", "bt709", False)
    pairs = zip(floats, reference, strict=True)
    differ = sum(int((p[0].numpy().astype(np.int32) != r).sum()) for p, r in pairs)
    assert differ > 0


def test_the_bt601_table_is_swscales_fixed_constants():
    """For its default matrix swscale replaces the derived table with rounded textbook
    weights (0.299, 0.587, 0.114; 0.169, 0.331; 0.419, 0.081), not the derived ones."""
    table = swsmatch.coefficients("bt601")
    assert table.y == (8414, 16519, 3208)
    assert table.cb == (-4865, -9528, 14392) and table.cr == (14392, -12061, -2332)
    derived = swsmatch.coefficients("bt709")
    assert derived.y == (5983, 20127, 2032)


def test_other_inputs_are_not_taken():
    """16-bit samples, gray, planes without a matrix, and 4:2:0 pictures 2 pixels high
    (where swscale's chroma is not a 2×2 mean) keep color.py's path."""
    from types import SimpleNamespace

    plan = SimpleNamespace(pixel_format="yuv420p", color=SimpleNamespace(matrix="bt709", range="tv"))
    spec = YuvSpec("bt709", False, 8, "420")
    assert swsmatch.usable(plan, spec, torch.zeros((1, 4, 4, 3), dtype=torch.uint8)) in swsmatch.VARIANTS
    assert swsmatch.usable(plan, spec, torch.zeros((1, 4, 4, 3), dtype=torch.uint16)) is None
    assert swsmatch.usable(plan, spec, torch.zeros((1, 4, 4, 1), dtype=torch.uint8)) is None
    assert swsmatch.usable(plan, spec, torch.zeros((1, 2, 8, 3), dtype=torch.uint8)) is None
    gray = SimpleNamespace(pixel_format="gray", color=SimpleNamespace(matrix=None, range="pc"))
    assert swsmatch.usable(gray, spec, torch.zeros((1, 4, 4, 3), dtype=torch.uint8)) is None
