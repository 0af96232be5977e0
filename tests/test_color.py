"""color.py against a float64 reference and against swscale, plus the NVENC packings."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import ColorRange, Colorspace, Interpolation
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nvenc_cli import color
from nvenc_cli.color import KR_KB, YuvSpec

MATRICES = ("bt601", "bt709", "bt2020")
_SWS = {"bt601": Colorspace.ITU601, "bt709": Colorspace.ITU709, "bt2020": Colorspace.BT2020}


def reference(rgb: np.ndarray, spec: YuvSpec, in_bits: int) -> tuple[np.ndarray, ...]:
    """Textbook float64 maths: E'Y = Kr R + Kg G + Kb B, Cb/Cr scaled, 2x2 mean, round once."""
    kr, kb = KR_KB[spec.matrix]
    x = rgb.astype(np.float64) / ((1 << in_bits) - 1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb = (b - y) / (2 * (1 - kb))
    cr = (r - y) / (2 * (1 - kr))
    if spec.chroma == "420":
        n, h, w = cb.shape
        cb = cb.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        cr = cr.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    bits = spec.out_bits
    scale = 2.0 ** (bits - 8)
    if spec.full_range:
        top = 2.0**bits - 1
        planes = (y * top, cb * top + 2 ** (bits - 1), cr * top + 2 ** (bits - 1))
    else:
        planes = (
            (219 * y + 16) * scale,
            (224 * cb + 128) * scale,
            (224 * cr + 128) * scale,
        )
    return tuple(np.clip(np.floor(p + 0.5), 0, 2**bits - 1).astype(np.int64) for p in planes)


def ours(rgb: np.ndarray, spec: YuvSpec, in_bits: int) -> tuple[np.ndarray, ...]:
    planes = color.rgb_to_planes(torch.from_numpy(rgb), spec, in_bits)
    return tuple(p.numpy().astype(np.int64) for p in planes)


def max_error(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> int:
    return max(int(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("full_range", [False, True])
@pytest.mark.parametrize("bits", [8, 10])
@pytest.mark.parametrize("chroma", ["420", "444"])
def test_matches_float64_reference_8bit_input(noise, matrix, full_range, bits, chroma):
    spec = YuvSpec(matrix, full_range, bits, chroma)
    assert max_error(ours(noise, spec, 8), reference(noise, spec, 8)) <= 1


@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("bits", [8, 10])
def test_matches_float64_reference_16bit_input(matrix, bits):
    rgb = np.random.default_rng(3).integers(0, 65536, (1, 32, 48, 3), dtype=np.uint16)
    spec = YuvSpec(matrix, False, bits, "420")
    assert max_error(ours(rgb, spec, 16), reference(rgb, spec, 16)) <= 1


@settings(max_examples=40, deadline=None)
@given(
    rgb=arrays(
        np.uint8, st.tuples(st.just(1), st.sampled_from([2, 4, 6]), st.sampled_from([2, 8]), st.just(3))
    ),
    matrix=st.sampled_from(MATRICES),
    full_range=st.booleans(),
)
def test_reference_property(rgb, matrix, full_range):
    spec = YuvSpec(matrix, full_range, 8, "420")
    assert max_error(ours(rgb, spec, 8), reference(rgb, spec, 8)) <= 1


def _sws_planes(rgb: np.ndarray, spec: YuvSpec) -> tuple[np.ndarray, ...]:
    pix_fmt = {("420", 8): "yuv420p", ("444", 8): "yuv444p", ("420", 10): "yuv420p10le"}[
        (spec.chroma, spec.out_bits)
    ]
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=pix_fmt,
        dst_colorspace=_SWS[spec.matrix],
        dst_color_range=ColorRange.JPEG if spec.full_range else ColorRange.MPEG,
        src_color_range=ColorRange.JPEG,
        interpolation=Interpolation.AREA | Interpolation.ACCURATE_RND,
    )
    dtype = np.uint8 if spec.out_bits == 8 else np.uint16
    planes = []
    for plane in frame.planes:
        data = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype().itemsize)
        planes.append(data[:, : plane.width].astype(np.int64))
    return tuple(planes)


@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("full_range", [False, True])
@pytest.mark.parametrize(("chroma", "bits"), [("420", 8), ("444", 8), ("420", 10)])
def test_matches_swscale(noise, matrix, full_range, chroma, bits):
    """Same matrix and range as the CPU path's swscale call: within one code value."""
    spec = YuvSpec(matrix, full_range, bits, chroma)
    planes = ours(noise[:1], spec, 8)
    assert max_error(tuple(p[0] for p in planes), _sws_planes(noise[0], spec)) <= 1


@pytest.mark.parametrize(
    ("full_range", "bits", "black", "white", "neutral"),
    [(False, 8, 16, 235, 128), (True, 8, 0, 255, 128), (False, 10, 64, 940, 512), (True, 10, 0, 1023, 512)],
)
def test_levels(full_range, bits, black, white, neutral):
    rgb = np.zeros((1, 2, 4, 3), np.uint8)
    rgb[:, :, 2:] = 255
    luma, cb, cr = color.rgb_to_planes(torch.from_numpy(rgb), YuvSpec("bt709", full_range, bits, "444"))
    assert luma[0, 0, 0] == black and luma[0, 0, 3] == white
    assert (cb == neutral).all() and (cr == neutral).all()


def test_pure_colours_bt709_limited():
    rgb = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]]]], np.uint8)
    luma, cb, cr = color.rgb_to_planes(torch.from_numpy(rgb), YuvSpec("bt709", False, 8, "444"))
    assert luma[0, 0].tolist() == [63, 173, 32, 126]  # BT.709 limited-range textbook values
    assert cb[0, 0].tolist() == [102, 42, 240, 128]
    assert cr[0, 0].tolist() == [240, 26, 118, 128]


def test_matrix_choice_changes_the_result():
    rgb = torch.tensor([[[[200, 30, 90]] * 2] * 2], dtype=torch.uint8)
    lumas = {m: int(color.rgb_to_planes(rgb, YuvSpec(m, False, 8, "420"))[0][0, 0, 0]) for m in MATRICES}
    assert len(set(lumas.values())) == 3


def test_chroma_is_the_2x2_mean_not_a_point_sample():
    rgb = np.zeros((1, 2, 2, 3), np.uint8)
    rgb[0, 0, 0] = (0, 0, 255)  # one blue sample in the block
    spec = YuvSpec("bt601", False, 8, "420")
    _, cb, _ = color.rgb_to_planes(torch.from_numpy(rgb), spec)
    _, ref_cb, _ = reference(rgb, spec, 8)
    assert int(cb[0, 0, 0]) == int(ref_cb[0, 0, 0]) == 128 + round(112 / 4)


def test_gray_and_rgba_inputs():
    gray = np.random.default_rng(1).integers(0, 256, (1, 4, 6, 1), dtype=np.uint8)
    luma, cb, cr = color.rgb_to_planes(torch.from_numpy(gray), YuvSpec("bt709", False, 8, "420"))
    assert (cb == 128).all() and (cr == 128).all()
    assert (
        luma.numpy().astype(int).tolist()
        == np.floor(gray[..., 0].astype(np.float64) * 219 / 255 + 16.5).astype(int).tolist()
    )
    rgba = np.random.default_rng(2).integers(0, 256, (1, 4, 6, 4), dtype=np.uint8)
    spec = YuvSpec("bt601", False, 8, "420")
    with_alpha = color.convert(torch.from_numpy(rgba), spec)
    without = color.convert(torch.from_numpy(np.ascontiguousarray(rgba[..., :3])), spec)
    assert torch.equal(with_alpha, without)


def test_odd_sizes_rejected_for_420():
    with pytest.raises(ValueError, match="even"):
        color.convert(torch.zeros(1, 3, 4, 3, dtype=torch.uint8), YuvSpec())
    assert color.convert(torch.zeros(1, 3, 5, 3, dtype=torch.uint8), YuvSpec(chroma="444")).shape == (1, 9, 5)


def test_nv12_layout():
    rgb = np.random.default_rng(4).integers(0, 256, (2, 6, 10, 3), dtype=np.uint8)
    spec = YuvSpec("bt709", False, 8, "420")
    surface = color.convert(torch.from_numpy(rgb), spec)
    luma, cb, cr = color.rgb_to_planes(torch.from_numpy(rgb), spec)
    assert surface.shape == (2, 9, 10) and surface.dtype == torch.uint8 and surface.is_contiguous()
    assert torch.equal(surface[:, :6], luma)
    assert torch.equal(surface[:, 6:, 0::2], cb) and torch.equal(surface[:, 6:, 1::2], cr)
    assert all(torch.equal(a, b) for a, b in zip(color.unpack(surface, spec), (luma, cb, cr), strict=True))


def test_p010_layout_is_msb_aligned():
    rgb = np.random.default_rng(5).integers(0, 256, (1, 4, 8, 3), dtype=np.uint8)
    spec = YuvSpec("bt2020", False, 10, "420")
    surface = color.convert(torch.from_numpy(rgb), spec)
    luma, cb, _ = color.rgb_to_planes(torch.from_numpy(rgb), spec)
    assert surface.dtype == torch.uint16 and surface.shape == (1, 6, 8)
    words = surface.to(torch.int32)
    assert (words & 0x3F == 0).all()
    assert torch.equal(words[:, :4] >> 6, luma) and torch.equal(words[:, 4:, 0::2] >> 6, cb)


def test_yuv444_layouts():
    rgb = np.random.default_rng(6).integers(0, 256, (1, 4, 6, 3), dtype=np.uint8)
    for bits, dtype in ((8, torch.uint8), (10, torch.uint16)):
        spec = YuvSpec("bt709", True, bits, "444")
        surface = color.convert(torch.from_numpy(rgb), spec)
        assert surface.shape == (1, 12, 6) and surface.dtype == dtype
        planes = color.rgb_to_planes(torch.from_numpy(rgb), spec)
        assert all(
            torch.equal(a, b.to(torch.int32))
            for a, b in zip(color.unpack(surface, spec), planes, strict=True)
        )


def test_affine_rows_sum_as_expected():
    matrix, offset = color.affine(YuvSpec("bt709", False, 8), in_bits=8)
    assert sum(matrix[0]) * 255 == pytest.approx(219)
    assert sum(matrix[1]) == pytest.approx(0, abs=1e-12) and sum(matrix[2]) == pytest.approx(0, abs=1e-12)
    assert offset == [16.0, 128.0, 128.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch")
def test_cuda_equals_cpu(noise):
    for spec in (YuvSpec("bt709", False, 8, "420"), YuvSpec("bt601", True, 10, "444")):
        cpu = color.convert(torch.from_numpy(noise), spec)
        gpu = color.convert(torch.from_numpy(noise).cuda(), spec).cpu()
        assert (cpu.to(torch.int32) - gpu.to(torch.int32)).abs().max() <= 1
