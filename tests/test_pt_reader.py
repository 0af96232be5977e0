"""The torch-free ``.pt`` reader (``sources.ptfile``): exact frames for every layout
``torch.save`` writes, the same selection rules as the torch loader, no torch import on
the way, and a clean hand-over to ``torch.load`` for everything it does not read itself.

Expected values always come from torch itself (``tensor.numpy()`` or ``torch.load``), so
the reader is checked against the format's owner, not against its own idea of it.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nvenc_cli.errors import InputDataError, NvencError, UsageError
from nvenc_cli.sources import open_source
from nvenc_cli.sources.arrays import TorchSource
from nvenc_cli.sources.ptfile import NeedsTorch, PtFrames, load_description, pick_tensor
from tests.conftest import ROOT

MARKER = "CODE-RAN"


class Payload:
    """Pickles to a call of ``open(marker, "w")``: loading it unsafely creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def clip(frames: int = 7, height: int = 6, width: int = 5, channels: int = 3) -> torch.Tensor:
    """Distinct bytes everywhere, so any misplaced element shows."""
    count = frames * height * width * channels
    return (
        (torch.arange(count, dtype=torch.int64) * 7 % 251)
        .to(torch.uint8)
        .reshape(frames, height, width, channels)
    )


def saved(tmp_path: Path, obj: object, name: str = "t.pt", **kwargs: Any) -> str:
    path = tmp_path / name
    torch.save(obj, path, **kwargs)
    return str(path)


def raw_frames(path: str, key: str | None = None, window: int = 3) -> np.ndarray:
    """Every frame through the fast reader alone, in windows, as stored (NCHW stays NCHW)."""
    reader = PtFrames(open(path, "rb"), path, key)  # noqa: SIM115 - closed below
    try:
        total = reader.shape[0]
        return np.concatenate(
            [reader.read(i, min(window, total - i), False) for i in range(0, total, window)]
        )
    finally:
        reader.close()


def encoded_windows(path: str, **kwargs: Any) -> tuple[np.ndarray, bool]:
    """The normalised NHWC frames a source yields, and whether the fast reader served them."""
    with open_source(path, **kwargs) as source:
        assert isinstance(source, TorchSource)
        fast = source._frames is not None
        return np.concatenate(list(source.batches(2))), fast


# --- exact round trips ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t,
        lambda t: t[::2],
        lambda t: t[3:],
        lambda t: t[1:6:2, 1:, ::2],
        lambda t: t.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1),  # channels-last storage
        lambda t: t.permute(1, 2, 3, 0).contiguous().permute(3, 0, 1, 2),  # frame axis innermost
        lambda t: t[:1].expand(4, -1, -1, -1),
    ],
    ids=[
        "contiguous",
        "stepped",
        "storage-offset",
        "cropped",
        "channels-last",
        "frames-innermost",
        "broadcast",
    ],
)
def test_views_read_back_exactly(tmp_path: Path, make: Any) -> None:
    """``torch.save`` keeps a view's whole storage plus its offset and strides."""
    tensor = make(clip())
    path = saved(tmp_path, tensor)
    assert np.array_equal(raw_frames(path), tensor.numpy())
    frames, fast = encoded_windows(path, layout="nhwc")
    assert fast
    assert np.array_equal(frames, tensor.numpy())


def test_channels_first_saved_is_read_as_nchw(tmp_path: Path) -> None:
    frames = clip(channels=3)
    path = saved(tmp_path, frames.permute(0, 3, 1, 2).contiguous())
    got, fast = encoded_windows(path)
    assert fast and np.array_equal(got, frames.numpy())


def test_storage_offset_of_a_single_frame(tmp_path: Path) -> None:
    tensor = clip()[4]
    path = saved(tmp_path, tensor)
    got, fast = encoded_windows(path)
    assert fast and np.array_equal(got, tensor.numpy()[np.newaxis])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint16])
def test_dtypes_read_back_exactly(tmp_path: Path, dtype: torch.dtype) -> None:
    base = clip().to(torch.float32)
    tensor = (base * 250).to(dtype) if dtype == torch.uint16 else (base / 255).to(dtype)
    path = saved(tmp_path, tensor[1::2])
    expected = tensor[1::2].to(torch.float32 if dtype == torch.bfloat16 else dtype).numpy()
    got = raw_frames(path)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    with open_source(path) as source:
        assert source._frames is not None  # type: ignore[attr-defined]
        assert source.info.depth == (16 if dtype == torch.uint16 else 8)


@pytest.mark.parametrize(
    ("obj", "key"),
    [
        ({"frames": clip(), "labels": torch.arange(7), "fps": 30}, "frames"),
        ({"frames": clip(), "note": "clip"}, None),
        ([torch.zeros(3), clip()], "1"),
        ((clip(), "caption"), None),
        (__import__("collections").OrderedDict(frames=clip()), "frames"),
    ],
    ids=["dict-with-int64-labels", "dict-one-tensor", "list", "tuple", "ordered-dict"],
)
def test_containers_pick_the_same_tensor(tmp_path: Path, obj: object, key: str | None) -> None:
    """An int64 neighbour does not push the file to torch: only the picked tensor counts."""
    path = saved(tmp_path, obj)
    got, fast = encoded_windows(path, key=key)
    assert fast and np.array_equal(got, clip().numpy())


def test_shared_storage_between_tensors(tmp_path: Path) -> None:
    frames = clip()
    path = saved(tmp_path, {"all": frames, "tail": frames[4:]})
    got, fast = encoded_windows(path, key="tail")
    assert fast and np.array_equal(got, frames[4:].numpy())


# --- selection errors match the torch loader's ------------------------------------------


@pytest.mark.parametrize(
    ("obj", "key", "error", "fragment"),
    [
        (clip(), "frames", UsageError, "holds a single tensor: drop --key frames"),
        ({"a": clip(), "b": clip()}, None, UsageError, "holds several tensors (a, b): use --key"),
        ({"a": clip()}, "b", InputDataError, "no tensor under 'b'; it has a"),
        ({"fps": 30}, None, InputDataError, "holds no tensor (found dict)"),
        ([1, 2], None, InputDataError, "holds no tensor (found list)"),
    ],
)
def test_selection_errors(tmp_path: Path, obj: object, key: str | None, error: type, fragment: str) -> None:
    path = saved(tmp_path, obj)
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as archive:
        description, _ = load_description(archive, path)
    with pytest.raises(error) as caught:
        pick_tensor(description, key, path)
    assert fragment in str(caught.value)
    with pytest.raises(error) as caught:
        open_source(path, key=key)
    assert fragment in str(caught.value)


# --- byte order ---------------------------------------------------------------------------


def big_endian_copy(source: str, target: str) -> None:
    """Rewrite a little-endian file as a big-endian machine would have saved it: every
    storage byte-swapped and the ``byteorder`` record saying ``big``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = np.frombuffer(data, "<f4").byteswap().tobytes()
            new.writestr(info.filename, data)


def test_big_endian_storages_are_swapped(tmp_path: Path) -> None:
    tensor = clip().to(torch.float32) / 255
    little = saved(tmp_path, tensor)
    big = str(tmp_path / "big.pt")
    big_endian_copy(little, big)
    expected = torch.load(big, weights_only=True).numpy()  # torch's own reading of it
    assert np.array_equal(expected, tensor.numpy())
    assert np.array_equal(raw_frames(big), expected)
    assert np.array_equal(encoded_windows(big)[0], encoded_windows(little)[0])


# --- what goes to torch instead ---------------------------------------------------------


def deflated_copy(source: str, target: str) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))


def test_files_it_does_not_read_go_to_torch(tmp_path: Path) -> None:
    frames = clip()
    legacy = saved(tmp_path, frames, "legacy.pt", _use_new_zipfile_serialization=False)
    parameter = saved(tmp_path, torch.nn.Parameter(frames.to(torch.float32) / 255, False), "param.pt")
    for path in (legacy, parameter):
        with pytest.raises(NeedsTorch):
            PtFrames(open(path, "rb"), path, None)  # noqa: SIM115 - the reader closes it
        got, fast = encoded_windows(path)
        assert not fast and np.array_equal(got, frames.numpy()), path


def test_compressed_storages_stream_and_negative_views_go_to_torch(tmp_path: Path) -> None:
    """A re-zipped, deflated storage is inflated in order by the fast reader (never whole,
    see test_hostile's memory checks), and a view with metadata (negative bit) is never
    read raw: the torch loader applies it."""
    deflated = str(tmp_path / "deflated.pt")
    deflated_copy(saved(tmp_path, clip()), deflated)
    negated = saved(tmp_path, torch._neg_view(clip().to(torch.float32) / -255), "neg.pt")
    with pytest.raises(NeedsTorch):
        PtFrames(open(negated, "rb"), negated, None)  # noqa: SIM115 - the reader closes it
    got, fast = encoded_windows(deflated)
    assert fast and np.array_equal(got, clip().numpy())
    got, fast = encoded_windows(negated)
    assert not fast and np.array_equal(got, clip().numpy())


def test_bytes_and_sets_beside_frames_go_to_torch(tmp_path: Path) -> None:
    """Protocol 2 pickles bytes via ``_codecs.encode`` and sets via ``builtins.set``:
    torch's loader accepts those, so they are not refused here either."""
    path = saved(tmp_path, {"frames": clip(), "raw": b"\x00\x01", "tags": {"a"}})
    got, fast = encoded_windows(path, key="frames")
    assert not fast and np.array_equal(got, clip().numpy())


def test_a_storage_shorter_than_its_tensor_goes_to_torch(tmp_path: Path) -> None:
    """A record promising more elements than the member holds is never read past its
    member here: the file goes to the torch loader, whose verdict stands."""
    path = saved(tmp_path, clip())
    with zipfile.ZipFile(path) as old:
        entries = [(info.filename, old.read(info)) for info in old.infolist()]
    cut = str(tmp_path / "cut.pt")
    with zipfile.ZipFile(cut, "w") as new:
        for name, data in entries:
            new.writestr(name, data[: len(data) // 2] if "/data/" in name else data)
    with pytest.raises(NeedsTorch):
        PtFrames(open(cut, "rb"), cut, None)  # noqa: SIM115 - the reader closes it


# --- refusal ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["beside", "inside-list", "top"])
def test_hostile_pickle_is_refused_without_running(tmp_path: Path, where: str) -> None:
    payload = Payload(tmp_path / MARKER)
    obj = {
        "beside": {"frames": clip(), "x": payload},
        "inside-list": [clip(), [payload]],
        "top": payload,
    }[where]
    path = saved(tmp_path, obj)
    with pytest.raises(InputDataError) as caught:
        PtFrames(open(path, "rb"), path, "frames" if where == "beside" else None)  # noqa: SIM115
    message = str(caught.value)
    assert message.startswith(f"{path}: refused:") and "GLOBAL io.open" in message
    assert not (tmp_path / MARKER).exists()


def test_hostile_reduce_on_an_allowed_function_runs_nothing(tmp_path: Path) -> None:
    """A crafted ``data.pkl`` calling the stand-in rebuild with junk gets torch's verdict,
    never an exception from inside the reader."""
    body = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(X\x03\x00\x00\x00abcK\x00ctorch\nFloatStorage\n\x87R."
    )
    path = tmp_path / "crafted.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("crafted/data.pkl", body)
        archive.writestr("crafted/byteorder", b"little")
    with pytest.raises(NeedsTorch):
        PtFrames(open(path, "rb"), str(path), None)  # noqa: SIM115 - the reader closes it
    with pytest.raises(NvencError):
        open_source(str(path))


# --- no torch import ------------------------------------------------------------------------


CHECK_IMPORTS = """
import sys
sys.argv = ["nvenc", *sys.argv[1:]]
from nvenc_cli.cli import run  # the command itself: ``python -m`` leaves through os._exit
try:
    run()
except SystemExit as exc:
    code = exc.code
sys.stderr.write(f"\\ntorch-imported={'torch' in sys.modules} code={code}\\n")
"""


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bfloat16])
def test_the_cli_encodes_a_pt_without_importing_torch(tmp_path: Path, dtype: torch.dtype) -> None:
    tensor = clip(frames=4, height=16, width=16).to(dtype)
    torch.save({"frames": tensor if dtype == torch.uint8 else tensor / 255}, tmp_path / "f.pt")
    proc = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS, "encode", "f.pt", "--key", "frames", "-o", "out.mp4"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    stderr = proc.stderr.decode(errors="replace")
    assert "torch-imported=False code=0" in stderr, stderr
    assert (tmp_path / "out.mp4").stat().st_size > 0


def test_description_unpickles_protocol_4_files(tmp_path: Path) -> None:
    buf = io.BytesIO()
    torch.save({"frames": clip()}, buf, pickle_protocol=4)
    path = tmp_path / "p4.pt"
    path.write_bytes(buf.getvalue())
    got, fast = encoded_windows(str(path), key="frames")
    assert fast and np.array_equal(got, clip().numpy())
    assert pickle.HIGHEST_PROTOCOL >= 4
