"""Property-based tests of the loaders and the option parsing: whatever shape, dtype,
strides or corrupted bytes arrive, only nvenc's own documented errors come out (each
``NvencError`` carries its exit code), never a bare ``ValueError``, ``RuntimeError`` or
``struct.error`` that the CLI would have to call an internal error.

Run through the library (``open_source`` + iterating the windows, ``parse_fps``,
``parse_extra``, ``EncodeOptions``, ``make_plan``) so hundreds of examples take seconds.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from nvenc_cli.errors import NvencError, UsageError
from nvenc_cli.frames import FrameInfo
from nvenc_cli.options import CONTAINERS, EncodeOptions, container_for, parse_extra, parse_fps
from nvenc_cli.plan import make_plan
from nvenc_cli.sources import open_source

# Bounded so the whole file takes seconds in CI; NVENC_PROPERTY_SCALE=20 runs a deeper search.
SCALE = max(1, int(os.environ.get("NVENC_PROPERTY_SCALE", "1")))


def examples(count: int) -> settings:
    return settings(max_examples=count * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


FAST = examples(60)
FASTER = examples(150)


def read_all(path: Path, **kwargs: Any) -> list[np.ndarray] | NvencError:
    """Open and read every window, checking the Source contract on the way; a documented
    error is a valid outcome and is returned, anything else propagates and fails."""
    try:
        with open_source(str(path), **kwargs) as source:
            expected = source.frame_count
            info = source.info
            windows = list(source.batches(3))
    except NvencError as exc:
        assert exc.exit_code in (2, 65, 66), exc
        return exc
    for window in windows:
        assert window.ndim == 4 and window.shape[1:] == (info.height, window.shape[2], info.channels)
        assert window.shape[2] == info.width
        assert window.dtype == (np.uint16 if info.depth == 16 else np.uint8) or window.dtype in (
            np.uint8,
            np.uint16,
        )
        assert window.flags.c_contiguous
    assert info.channels in (1, 3, 4)
    total = sum(len(w) for w in windows)
    assert total >= 1
    if expected is not None:
        assert total == expected
    return windows


# --- arrays of any shape and dtype ----------------------------------------------------------

DTYPES = st.sampled_from(
    ["u1", "<u2", ">u2", "<f2", "<f4", ">f4", "<f8", "i1", "<i4", "<i8", "?", "<c8", "<M8[s]", "<U2", "S3"]
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5)


@st.composite
def frame_arrays(draw: st.DrawFn) -> np.ndarray:
    """Arrays biased towards frame-like shapes (a channel axis of 1-5 somewhere), with any
    dtype, including NaN/inf floats."""
    dtype = np.dtype(draw(DTYPES))
    shape = draw(
        st.one_of(
            SHAPES,
            st.tuples(
                st.integers(0, 4), st.integers(0, 6), st.integers(0, 6), st.sampled_from([1, 2, 3, 4, 5])
            ),
            st.tuples(
                st.integers(0, 4), st.sampled_from([1, 2, 3, 4, 5]), st.integers(0, 6), st.integers(0, 6)
            ),
        )
    )
    return draw(hnp.arrays(dtype, shape))


@FASTER
@given(array=frame_arrays(), fortran=st.booleans(), layout=st.sampled_from([None, "nhwc", "nchw"]))
def test_any_npy_gives_frames_or_a_documented_error(
    array: np.ndarray, fortran: bool, layout: str | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, np.asfortranarray(array) if fortran else array, allow_pickle=False)
        read_all(path, layout=layout)


@FAST
@given(array=frame_arrays(), compressed=st.booleans(), key=st.sampled_from([None, "frames", "other"]))
def test_any_npz_gives_frames_or_a_documented_error(
    array: np.ndarray, compressed: bool, key: str | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npz"
        (np.savez_compressed if compressed else np.savez)(path, frames=array)
        read_all(path, key=key)


TORCH_DTYPES = st.sampled_from(
    [torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int16,
     torch.bool, torch.complex64]
)  # fmt: skip


@st.composite
def strided_frames(draw: st.DrawFn) -> torch.Tensor:
    """A logical (N, H, W, C) tensor stored with arbitrary strides: a permuted, stepped
    or broadcast view of a larger buffer, exactly as ``torch.save`` keeps it."""
    n, h, w = draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    c = draw(st.sampled_from([1, 3, 4]))
    order = draw(st.permutations([0, 1, 2, 3]))
    step = draw(st.integers(1, 3))
    sizes = [n, h, w, c]
    base = torch.randint(
        0, 256, [sizes[i] * (step if i == order[-1] else 1) for i in order], dtype=torch.uint8
    )
    view = base.permute(*[order.index(i) for i in range(4)])
    if step > 1:
        index = [slice(None)] * 4
        index[order[-1]] = slice(None, None, step)
        view = view[tuple(index)]
    if draw(st.booleans()):
        view = view[:1].expand(n, h, w, c)
    assert tuple(view.shape) == (n, h, w, c)
    return view


@FAST
@given(frames=strided_frames())
def test_pt_with_any_strides_reads_back_exactly(frames: torch.Tensor) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.pt"
        torch.save(frames, path)
        windows = read_all(path, layout="nhwc")
        assert not isinstance(windows, NvencError), windows
        assert np.array_equal(np.concatenate(windows), frames.numpy())


@FAST
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=5),
    dtype=TORCH_DTYPES,
    container=st.sampled_from(["tensor", "dict", "list", "tuple", "nested-dict"]),
    key=st.sampled_from([None, "frames", "0", "x"]),
)
def test_any_pt_gives_frames_or_a_documented_error(
    shape: list[int], dtype: torch.dtype, container: str, key: str | None
) -> None:
    tensor = torch.zeros(shape, dtype=dtype)
    obj: Any = {
        "tensor": tensor,
        "dict": {"frames": tensor, "fps": 30},
        "list": [tensor],
        "tuple": (tensor, "note"),
        "nested-dict": {"out": {"frames": tensor}},
    }[container]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.pt"
        torch.save(obj, path)
        read_all(path, key=key)


# --- real files with corrupted bytes ------------------------------------------------------


@cache
def valid_files() -> dict[str, bytes]:
    """One small valid file of each kind nvenc reads, as bytes to corrupt."""
    frames = np.random.default_rng(3).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    out: dict[str, bytes] = {}
    buf = io.BytesIO()
    np.save(buf, frames)
    out[".npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, frames.astype(np.float32) / 255)
    out["float.npy"] = buf.getvalue()
    for name, method in (("stored.npz", zipfile.ZIP_STORED), ("deflated.npz", zipfile.ZIP_DEFLATED)):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as archive:
            archive.writestr("frames.npy", out[".npy"])
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    torch.save({"frames": torch.from_numpy(frames)}, buf)
    out[".pt"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save(torch.from_numpy(frames), buf, _use_new_zipfile_serialization=False)
    out["legacy.pt"] = buf.getvalue()
    for suffix, fmt in ((".png", "PNG"), (".tif", "TIFF"), (".bmp", "BMP"), (".jpg", "JPEG"),
                        (".webp", "WEBP"), (".tga", "TGA"), (".ppm", "PPM")):  # fmt: skip
        buf = io.BytesIO()
        Image.fromarray(frames[0]).save(buf, format=fmt)
        out[suffix] = buf.getvalue()
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 10, 8, "bgr0"
        for frame in frames:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="bgr0"))
            )
        container.mux(stream.encode(None))
    out[".mkv"] = buf.getvalue()
    return out


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid file hit by one of the ways files really break: cut short, bytes
    overwritten, bytes inserted, or a run of zeros (a hole from a failed download)."""
    name = draw(st.sampled_from(sorted(valid_files())))
    data = bytearray(valid_files()[name])
    how = draw(st.sampled_from(["truncate", "flip", "insert", "zero-run"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    elif how == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    else:
        at = draw(st.integers(0, len(data) - 1))
        data[at : at + draw(st.integers(1, 512))] = bytes(min(512, len(data) - at))
    return name, bytes(data)


@examples(250)
@given(case=corrupted())
def test_corrupted_files_give_frames_or_a_documented_error(case: tuple[str, bytes]) -> None:
    name, data = case
    assume(data != valid_files()[name])
    suffix = name[name.index(".") :]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's and torch's warnings are not the question here
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        read_all(path)


# --- option parsing -----------------------------------------------------------------------


def fps_text() -> st.SearchStrategy[Any]:
    numbers = st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True))
    return st.one_of(
        st.text(max_size=12),
        st.from_regex(r"\A-?\d{0,7}(\.\d{0,4})?(/-?\d{0,7})?\Z"),
        numbers,
        numbers.map(str),
        st.fractions(),
        st.sampled_from(["29.97", "23.976", "30000/1001", "1e400", "nan", "inf", "1/0", "0x1e", " 30 "]),
    )


@FASTER
@given(text=fps_text())
def test_parse_fps_gives_an_exact_positive_rate_or_a_usage_error(text: Any) -> None:
    try:
        rate = parse_fps(text)
    except UsageError as exc:
        assert exc.exit_code == 2
        return
    assert isinstance(rate, Fraction)
    assert 0 < rate <= 1_000_000 and rate.denominator <= 1_000_000


@FASTER
@given(
    pairs=st.one_of(
        st.lists(st.text(max_size=10), max_size=5), st.dictionaries(st.text(max_size=5), st.text(max_size=5))
    )
)
def test_parse_extra_gives_named_pairs_or_a_usage_error(pairs: Any) -> None:
    try:
        parsed = parse_extra(pairs)
    except UsageError:
        return
    assert all(key and isinstance(value, str) for key, value in parsed)
    assert len(parsed) == len(pairs)


def maybe(values: list[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.sampled_from(values), other)


CODECS = ["libx264", "libx265", "libvpx-vp9", "ffv1", "h264", "av1", "prores", "h264_nvenc", "aac", "png"]
PIXEL_FORMATS = ["yuv420p", "yuv444p", "yuv420p10le", "rgb24", "gray", "yuva420p", "yuvj420p", "nv12"]
OPTION_FIELDS = {
    "fps": st.one_of(st.none(), st.fractions(min_value=Fraction(1, 1000), max_value=1000)),
    "codec": maybe(CODECS, st.text(max_size=8)),
    "pixel_format": maybe(PIXEL_FORMATS, st.text(max_size=8)),
    "crf": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 80)),
    "preset": maybe(["ultrafast", "medium", "veryslow", "p4", "P7", "8", "-1", "14"], st.text(max_size=6)),
    "extra": st.lists(
        st.tuples(st.sampled_from(["g", "bf", "tune", "movflags", "x264-params", "nosuch", "crf"]),
                  st.sampled_from(["1", "60", "+faststart", "film", "", "junk"])),
        max_size=3,
    ).map(tuple),
    "device": maybe(["auto", "cpu", "cuda"], st.text(max_size=4)),
    "color_matrix": maybe(["bt601", "bt709", "bt2020"], st.text(max_size=5)),
    "color_range": maybe(["tv", "pc"], st.text(max_size=3)),
    "pad": st.booleans(),
    "crop": st.booleans(),
    "batch_size": st.integers(-2, 64),
}  # fmt: skip


@FAST
@given(
    fields=st.fixed_dictionaries({}, optional=OPTION_FIELDS),
    size=st.tuples(st.integers(1, 4000), st.integers(1, 3000)),
    channels=st.sampled_from([1, 3, 4]),
    depth=st.sampled_from([8, 16]),
    container=st.sampled_from(sorted(set(CONTAINERS.values()))),
)
def test_any_options_give_a_plan_or_a_documented_error(
    fields: dict[str, Any], size: tuple[int, int], channels: int, depth: int, container: str
) -> None:
    """Everything a user can type reaches the plan as a checked choice or an NvencError
    (2 usage, 65 input that no option can encode, 69 unavailable) before any frame."""
    try:
        options = EncodeOptions(**fields)
        plan = make_plan(options, FrameInfo(size[0], size[1], channels, depth), container)
    except NvencError as exc:
        assert exc.exit_code in (2, 65, 69), exc
        return
    assert plan.width >= size[0] - 1 and plan.height >= size[1] - 1
    assert plan.fps > 0


@FASTER
@given(
    dest=st.one_of(
        st.text(max_size=12), st.sampled_from(["out.mp4", "a.MKV", "x.webm", "-", "noext", ".mp4"])
    ),
    fmt=st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["mp4", "matroska", ".mkv", "MP4", "gif"])),
)
def test_container_choice_is_known_or_a_usage_error(dest: str, fmt: str | None) -> None:
    try:
        container = container_for(dest, fmt)
    except UsageError:
        return
    assert container in set(CONTAINERS.values())
