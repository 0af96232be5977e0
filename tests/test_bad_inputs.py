"""Hostile and broken inputs through the real CLI: each gets its documented exit code, one
``nvenc: error:`` line naming the problem, no traceback, no code run, and leaves the
folder exactly as it was (no output, no ``.NAME.XXXX.part`` temp file, nothing modified).

Inputs come from model outputs, downloaded datasets and other people's pipelines, so every
case here is something that really arrives: truncated downloads, pickles with payloads,
tensors of the wrong kind, broken image sequences, and commands with bad options.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import stat
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from nvenc_cli.encoding import encode_path
from nvenc_cli.errors import NvencError, OutputError
from nvenc_cli.options import EncodeOptions
from nvenc_cli.sources import open_source
from tests.conftest import ROOT, decode, run_cli

MARKER = "CODE-RAN"  # a hostile pickle creates this file if anything unpickles it fully
FRAMES = np.random.default_rng(7).integers(0, 256, (4, 24, 32, 3), dtype=np.uint8)


class Payload:
    """Pickles to a call of ``open(marker, "w")``: loading it unsafely creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


# --- builders: each writes one input under the test's folder and returns the input spec --


def npy(name: str, array: np.ndarray) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        np.save(tmp / name, array)
        return name

    return make


def npz(name: str, **arrays: np.ndarray) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        np.savez(tmp / name, **arrays)
        return name

    return make


def pt(name: str, obj: object, **save: object) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        torch.save(obj, tmp / name, **save)
        return name

    return make


def raw(name: str, data: bytes) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        (tmp / name).write_bytes(data)
        return name

    return make


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npy_header_only(
    name: str, shape: tuple[int, ...], payload: int, sparse: bool = False
) -> Callable[[Path], str]:
    """A .npy whose header promises ``shape`` but holds ``payload`` bytes (or, when
    ``sparse``, every byte it promises, as a hole that uses no disk)."""

    def make(tmp: Path) -> str:
        path = tmp / name
        with path.open("wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": shape})
            header = fh.tell()
            fh.write(b"\x01" * payload)
        if sparse:
            os.truncate(path, header + int(np.prod(shape, dtype=object)))
        return name

    return make


def pickled_npy(tmp: Path) -> str:
    """An object-dtype .npy whose pickle would create the marker when loaded."""
    array = np.empty(1, dtype=object)
    array[0] = Payload(tmp / MARKER)
    np.save(tmp / "objects.npy", array, allow_pickle=True)
    return "objects.npy"


def pickled_npz(tmp: Path) -> str:
    array = np.empty(1, dtype=object)
    array[0] = Payload(tmp / MARKER)
    np.savez(tmp / "objects.npz", frames=array)
    return "objects.npz"


def hostile_pt(tmp: Path) -> str:
    torch.save({"frames": torch.zeros(2, 8, 8, 3), "x": Payload(tmp / MARKER)}, tmp / "hostile.pt")
    return "hostile.pt"


def hostile_legacy_pt(tmp: Path) -> str:
    torch.save({"x": Payload(tmp / MARKER)}, tmp / "legacy.pt", _use_new_zipfile_serialization=False)
    return "legacy.pt"


def hostile_plain_pickle(tmp: Path) -> str:
    (tmp / "plain.pt").write_bytes(pickle.dumps(Payload(tmp / MARKER), protocol=2))
    return "plain.pt"


def quantized_pt(tmp: Path) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tensor = torch.quantize_per_tensor(torch.rand(2, 8, 8, 3), 0.1, 0, torch.quint8)
    torch.save(tensor, tmp / "quantized.pt")
    return "quantized.pt"


def nested_pt(tmp: Path) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tensor = torch.nested.nested_tensor([torch.rand(8, 8, 3), torch.rand(6, 8, 3)])
    torch.save(tensor, tmp / "nested.pt")
    return "nested.pt"


def png_sequence(
    broken: str | None = None,
    sizes: dict[int, tuple[int, int]] | None = None,
    numbers: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
    folder: str = "seq",
) -> Callable[[Path], str]:
    """Six numbered PNGs; ``broken`` = "garbage" or "truncated" spoils frame 3, ``sizes``
    overrides some frames' (height, width)."""

    def make(tmp: Path) -> str:
        (tmp / folder).mkdir()
        for n in numbers:
            h, w = (sizes or {}).get(n, (24, 32))
            Image.fromarray(np.full((h, w, 3), n * 40, np.uint8)).save(tmp / folder / f"f_{n:03d}.png")
        victim = tmp / folder / "f_003.png"
        if broken == "garbage":
            victim.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
        elif broken == "truncated":
            data = victim.read_bytes()
            victim.write_bytes(data[: len(data) // 2])
        return folder

    return make


def bomb_png(tmp: Path) -> str:
    """A valid PNG header claiming 30000x30000 pixels: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    (tmp / "bomb.png").write_bytes(data)
    return "bomb.png"


def tiny_video(name: str) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        with av.open(str(tmp / name), "w") as container:
            stream = container.add_stream("mpeg4", rate=10)
            stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
            for i in range(4):
                frame = av.VideoFrame.from_ndarray(FRAMES[i], format="rgb24")
                container.mux(stream.encode(frame.reformat(format="yuv420p")))
            container.mux(stream.encode(None))
        return name

    return make


def truncated_video(tmp: Path) -> str:
    tiny_video("whole.mp4")(tmp)
    data = (tmp / "whole.mp4").read_bytes()
    (tmp / "whole.mp4").unlink()
    (tmp / "cut.mp4").write_bytes(data[: len(data) // 3])
    return "cut.mp4"


def audio_only(tmp: Path) -> str:
    with av.open(str(tmp / "sound.wav"), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return "sound.wav"


def good(tmp: Path) -> str:
    np.save(tmp / "good.npy", FRAMES)
    return "good.npy"


def existing_output(tmp: Path) -> str:
    (tmp / "out.mp4").write_bytes(b"previous video")
    return good(tmp)


def nothing(tmp: Path) -> str:
    return "missing.npy"


def stdin_spec(tmp: Path) -> str:
    return "-"


def empty_folder(tmp: Path) -> str:
    (tmp / "frames").mkdir()
    (tmp / "frames" / "notes.txt").write_text("no images here")
    return "frames"


def nan_frames() -> np.ndarray:
    frames = np.zeros((4, 8, 8, 3), np.float32)
    frames[2, 1, 1, 0] = np.nan
    return frames


# --- the table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """One bad input or command: what to build, how to call nvenc, what must come out."""

    id: str
    make: Callable[[Path], str]
    code: int
    fragment: str
    args: tuple[str, ...] = ("-o", "out.mp4")
    stdin: str = "devnull"  # or "closed"


CASES = [
    # .npy files
    Bad("empty-npy", raw("empty.npy", b""), 65, "empty.npy: the file is empty"),
    Bad("truncated-npy", raw("cut.npy", npy_bytes(FRAMES)[:2000]), 65, "truncated"),
    Bad("truncated-npy-header", raw("head.npy", npy_bytes(FRAMES)[:30]), 65, "not a valid .npy"),
    Bad("shape-beyond-file", npy_header_only("short.npy", (40, 24, 32, 3), 5000), 65, "truncated"),
    Bad("shape-beyond-memory", npy_header_only("vast.npy", (10**9, 1080, 1920, 3), 64), 65, "truncated"),
    Bad(
        "frame-beyond-any-encoder",
        npy_header_only("wide.npy", (2, 20000, 20000, 3), 0, sparse=True),
        65,
        "too large for any video encoder",
    ),
    Bad("object-npy-pickle", pickled_npy, 65, "pickle"),
    Bad("fortran-npy", npy("fortran.npy", np.asfortranarray(FRAMES)), 65, "Fortran order"),
    Bad("zero-frames", npy("none.npy", np.zeros((0, 24, 32, 3), np.uint8)), 65, "0 frames"),
    Bad("zero-width", npy("thin.npy", np.zeros((4, 24, 0, 3), np.uint8)), 65, "width and height"),
    Bad("five-channels", npy("five.npy", np.zeros((4, 24, 32, 5), np.uint8)), 65, "5 channels"),
    Bad("complex-npy", npy("complex.npy", np.zeros((4, 24, 32, 3), np.complex64)), 65, "complex64"),
    Bad("nan-floats", npy("nan.npy", nan_frames()), 65, "frame 2 holds NaN"),
    Bad("int32-npy", npy("int.npy", np.zeros((4, 24, 32, 3), np.int32)), 65, "unsupported dtype int32"),
    Bad("five-dims", npy("5d.npy", np.zeros((1, 4, 24, 32, 3), np.uint8)), 2, "--sample N"),
    Bad("six-dims", npy("6d.npy", np.zeros((1, 1, 4, 24, 32, 3), np.uint8)), 65, "2 to 4 dimensions"),
    Bad("start-past-end", good, 65, "past the last frame", ("-o", "out.mp4", "--start", "4")),
    # .npz archives
    Bad(
        "npz-without-key",
        npz("a.npz", video=FRAMES),
        65,
        "no array named 'frames'",
        ("-o", "out.mp4", "--key", "frames"),
    ),
    Bad("npz-ambiguous", npz("two.npz", a=FRAMES, b=FRAMES), 2, "--key"),
    Bad("npz-not-zip", raw("junk.npz", os.urandom(600)), 65, "not a valid .npz"),
    Bad("npz-object-pickle", pickled_npz, 65, "pickle"),
    # .pt files
    Bad("pt-no-tensor", pt("dict.pt", {"fps": 30, "name": "clip"}), 65, "holds no tensor"),
    Bad("pt-code-in-pickle", hostile_pt, 65, "refused"),
    Bad("pt-legacy-code-in-pickle", hostile_legacy_pt, 65, "refused"),
    Bad("pt-random-bytes", raw("noise.pt", os.urandom(4000)), 65, "noise.pt"),
    Bad("pt-zero-frames", pt("none.pt", torch.zeros(0, 24, 32, 3, dtype=torch.uint8)), 65, "0 frames"),
    Bad("pt-sparse", pt("sparse.pt", torch.zeros(4, 24, 32, 3).to_sparse()), 65, "sparse"),
    # image sequences
    Bad("png-garbage-mid-sequence", png_sequence("garbage"), 65, "f_003.png: cannot decode"),
    Bad("png-truncated-mid-sequence", png_sequence("truncated", folder="cut"), 65, "f_003.png"),
    Bad("png-mixed-sizes", png_sequence(sizes={2: (24, 34)}), 65, "f_002.png: is 34x24"),
    Bad(
        "png-pattern-gap",
        lambda t: png_sequence(numbers=(0, 1, 2, 4, 5))(t) + "/f_%03d.png",
        65,
        "f_003.png is missing",
    ),
    Bad("png-bomb", bomb_png, 65, "bomb.png: refused"),
    Bad("folder-without-images", empty_folder, 65, "holds no images"),
    Bad("glob-matches-nothing", lambda t: "renders/*.png", 66, "no file matches"),
    # video files
    Bad("video-without-video-stream", audio_only, 65, "has no video stream"),
    Bad("video-random-bytes", raw("noise.mp4", os.urandom(5000)), 65, "not a readable video"),
    Bad("video-truncated", truncated_video, 65, "cut.mp4"),
    Bad("unknown-input-extension", raw("frames.xyz", b"\x00" * 100), 65, "frames.xyz"),
    # missing inputs and outputs
    Bad("input-missing", nothing, 66, "missing.npy: no such file"),
    Bad("stdin-devnull", stdin_spec, 66, "standard input"),
    Bad("stdin-closed", stdin_spec, 66, "standard input", stdin="closed"),
    Bad("output-folder-missing", good, 73, "does not exist", ("-o", "nowhere/out.mp4")),
    Bad(
        "output-is-a-folder",
        lambda t: ((t / "dir.mp4").mkdir(), good(t))[1],
        73,
        "is a directory",
        ("-o", "dir.mp4"),
    ),
    Bad("output-exists", existing_output, 73, "already exists"),
    Bad(
        "output-is-the-input", tiny_video("clip.mp4"), 73, "same file as the input", ("-o", "clip.mp4", "-y")
    ),
    Bad("output-unknown-extension", good, 2, "unknown output extension .avx", ("-o", "out.avx")),
    # option errors from the command-line contract
    Bad("fps-text", good, 2, "invalid frame rate", ("-o", "out.mp4", "-r", "fast")),
    Bad("fps-zero", good, 2, "greater than 0", ("-o", "out.mp4", "-r", "0")),
    Bad("fps-zero-denominator", good, 2, "invalid frame rate", ("-o", "out.mp4", "-r", "30/0")),
    Bad("crf-negative", good, 2, "--crf", ("-o", "out.mp4", "--crf", "-3")),
    Bad("crf-out-of-range", good, 2, "out of range", ("-o", "out.mp4", "--crf", "80")),
    Bad("preset-unknown", good, 2, "unknown --preset", ("-o", "out.mp4", "--preset", "warp")),
    Bad("extra-without-value", good, 2, "KEY=VALUE", ("-o", "out.mp4", "-x", "g")),
    Bad("extra-unknown-key", good, 2, "unknown option -x nosuchkey", ("-o", "out.mp4", "-x", "nosuchkey=1")),
    Bad(
        "muxer-option-bad-value",
        good,
        2,
        "mp4 muxer refused its settings",
        ("-o", "out.mp4", "-x", "movflags=+nonsense"),
    ),
    Bad("codec-unknown", good, 69, "unknown codec", ("-o", "out.mp4", "-c", "nosuchcodec")),
    Bad("device-cuda-without-gpu", good, 69, "NVENC", ("-o", "out.mp4", "--device", "cuda")),
    Bad("codec-wrong-container", good, 2, "cannot go in", ("-o", "out.ts", "-c", "libvpx-vp9")),
    Bad("pixel-format-unknown", good, 2, "--pixel-format", ("-o", "out.mp4", "--pixel-format", "nosuch")),
    Bad("overwrite-and-no-overwrite", good, 2, "exclude", ("-o", "out.mp4", "-y", "-n")),
    Bad("pad-and-crop", good, 2, "exclude", ("-o", "out.mp4", "--pad", "--crop")),
    Bad("stdout-without-format", good, 2, "--format", ("-o", "-")),
    Bad("format-unknown", good, 2, "unknown --format", ("-o", "-", "-f", "nosuch")),
    Bad("batch-size-zero", good, 2, "--batch-size", ("-o", "out.mp4", "--batch-size", "0")),
    Bad("frames-zero", good, 2, "--frames", ("-o", "out.mp4", "--frames", "0")),
    Bad("start-negative", good, 2, "--start", ("-o", "out.mp4", "--start", "-1")),
    Bad("layout-unknown", good, 2, "--layout", ("-o", "out.mp4", "--layout", "hwcn")),
    Bad("key-on-npy", good, 2, "--key applies to .npz and .pt", ("-o", "out.mp4", "--key", "frames")),
    Bad("output-option-missing", good, 2, "--output", ()),
]


# Tensor files whose refusal is the loader's alone: checked through the library, since a
# CLI process per row would spend seconds importing torch to print the same mapping.
TENSOR_FILES = [
    Bad("pt-plain-pickle", hostile_plain_pickle, 65, "refused"),
    Bad("pt-complex", pt("complex.pt", torch.zeros(4, 24, 32, 3, dtype=torch.complex64)), 65, "complex"),
    Bad("pt-infinite", pt("inf.pt", torch.full((4, 24, 32, 3), float("inf"))), 65, "NaN or infinite"),
    Bad("pt-quantized", quantized_pt, 65, "quantized"),
    Bad("pt-nested", nested_pt, 65, "nested"),
    Bad("pt-meta", pt("meta.pt", torch.empty(4, 24, 32, 3, device="meta")), 65, "meta"),
    Bad("pt-float8", pt("f8.pt", torch.zeros(4, 24, 32, 3).to(torch.float8_e4m3fn)), 65, "float8"),
    Bad(
        "pt-bfloat16-nan",
        pt("bf.pt", torch.full((2, 8, 8, 3), float("nan"), dtype=torch.bfloat16)),
        65,
        "NaN",
    ),
    Bad("pt-two-tensors", pt("two.pt", [torch.zeros(2, 8, 8, 3), torch.zeros(2, 8, 8, 3)]), 2, "--key"),
    Bad(
        "pt-missing-key",
        pt("one.pt", {"video": torch.zeros(2, 8, 8, 3)}),
        65,
        "no tensor under 'frames'",
        ("--key", "frames"),
    ),
]


@dataclass(frozen=True)
class Outcome:
    """What one CLI run left behind."""

    code: int
    stdout: bytes
    stderr: str
    before: dict[str, tuple[int, str]]
    after: dict[str, tuple[int, str]]
    marker: bool


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder`` (hidden ones included) with its size and a digest;
    sparse giants are identified by size and mtime instead of being read."""
    state: dict[str, tuple[int, str]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            state[str(path.relative_to(folder)) + "/"] = (0, "dir")
            continue
        stat = path.stat()
        digest = (
            hashlib.sha256(path.read_bytes()).hexdigest()
            if stat.st_size < 16 << 20
            else f"mtime={stat.st_mtime_ns}"
        )
        state[str(path.relative_to(folder))] = (stat.st_size, digest)
    return state


def run_case(case: Bad, folder: Path) -> Outcome | BaseException:
    """Build the input in its own folder, run ``nvenc encode`` on it, record the aftermath."""
    try:
        spec = case.make(folder)
        before = snapshot(folder)
        if case.stdin == "closed":
            # The shell closes stdin and execs nvenc: a preexec_fn in a process that runs
            # these cases on threads can deadlock the forked child before its exec.
            command = [sys.executable, "-m", "nvenc_cli", "encode", spec, *case.args]
            proc = subprocess.run(
                ["sh", "-c", 'exec "$@" <&-', "sh", *command],
                cwd=folder,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=120,
            )
        else:
            proc = run_cli("encode", spec, *case.args, cwd=folder, timeout=120)
        return Outcome(
            proc.returncode,
            proc.stdout,
            proc.stderr.decode(errors="replace"),
            before,
            snapshot(folder),
            (folder / MARKER).exists(),
        )
    except BaseException as exc:  # reported by the case's own test, not the fixture
        return exc


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome | BaseException]:
    """Every CLI case, run a few at a time: each is a separate process that mostly waits
    on imports, so a small pool keeps the table to seconds without changing any result."""
    workers = min(4, (os.cpu_count() or 1) + 1)
    with ThreadPoolExecutor(workers) as pool:
        futures = {case.id: pool.submit(run_case, case, tmp_path_factory.mktemp(case.id)) for case in CASES}
    return {name: future.result() for name, future in futures.items()}


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES + TENSOR_FILES}) == len(CASES) + len(TENSOR_FILES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_fails_cleanly(case: Bad, outcomes: dict[str, Outcome | BaseException]) -> None:
    outcome = outcomes[case.id]
    if isinstance(outcome, BaseException):
        raise outcome
    stderr = outcome.stderr
    assert outcome.code == case.code, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("nvenc: error:")]
    assert len(errors) == 1, stderr
    assert case.fragment in errors[0]
    if case.code != 2:  # usage errors may add Typer's usage line and a hint
        assert stderr.strip() == errors[0], "an error is one line on stderr"
    assert outcome.stdout == b"", "stdout carries data only, and there is none"
    assert outcome.after == outcome.before, "no output, no temp file, nothing changed"
    assert not outcome.marker, "the hostile pickle ran code"


@pytest.mark.parametrize("case", TENSOR_FILES, ids=[case.id for case in TENSOR_FILES])
def test_bad_tensor_file_is_refused_by_the_loader(case: Bad, tmp_path: Path) -> None:
    spec = case.make(tmp_path)
    key = case.args[case.args.index("--key") + 1] if "--key" in case.args else None
    with pytest.raises(NvencError) as caught, open_source(str(tmp_path / spec), key=key) as source:
        for _ in source.batches(8):
            pass
    assert caught.value.exit_code == case.code
    assert case.fragment in str(caught.value)
    assert str(tmp_path / spec) in str(caught.value) or case.code == 2
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("make", [pickled_npy, hostile_pt, hostile_legacy_pt], ids=["npy", "pt", "pt-legacy"])
def test_the_hostile_payloads_are_live(make: Callable[[Path], str], tmp_path: Path) -> None:
    """Control for the refusals above: the same files do run code when unpickled fully."""
    spec = tmp_path / make(tmp_path)
    if spec.suffix == ".npy":
        np.load(spec, allow_pickle=True)
    else:
        torch.load(spec, weights_only=False)
    assert (tmp_path / MARKER).exists()


@contextmanager
def read_only_folder(folder: Path) -> Iterator[str]:
    """Make ``folder`` unwritable for this process, root included; yields how.

    Root ignores permission bits, so as root the folder is made immutable (``chattr +i``)
    or bind-mounted read-only; where neither is possible the test skips and says why.
    """
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield "chmod 0555"
        finally:
            folder.chmod(0o755)
        return
    if _quiet(["chattr", "+i", str(folder)]):
        try:
            yield "chattr +i"
        finally:
            _quiet(["chattr", "-i", str(folder)])
        return
    if _quiet(["mount", "--bind", str(folder), str(folder)]):
        try:
            if not _quiet(["mount", "-o", "remount,bind,ro", str(folder)]):
                pytest.skip("running as root: cannot remount a bind mount read-only here")
            yield "read-only bind mount"
        finally:
            _quiet(["umount", str(folder)])
        return
    pytest.skip("running as root where neither chattr +i nor a read-only bind mount works")


def _quiet(command: list[str]) -> bool:
    """Run a set-up command; True when it worked (a missing tool counts as failure)."""
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


def _is_writable(folder: Path) -> bool:
    try:
        (folder / ".probe").write_bytes(b"")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


def test_read_only_output_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    good(tmp_path)
    target = tmp_path / "locked"
    target.mkdir()
    (target / "out.mp4").write_bytes(b"previous video")
    with read_only_folder(target) as how:
        if _is_writable(target):
            pytest.skip(f"{how} did not make the folder read-only on this filesystem")
        before = snapshot(tmp_path)
        proc = run_cli("encode", "good.npy", "-o", "locked/out.mp4", "-y", cwd=tmp_path)
        after = snapshot(tmp_path)
    stderr = proc.stderr.decode()
    assert proc.returncode == 73, stderr
    assert stderr.startswith("nvenc: error: locked/out.mp4: cannot create it") and stderr.count("\n") == 1
    assert after == before


def test_read_only_folder_that_passes_the_early_check_still_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early access() check can be wrong (a folder locked in between, ACLs, FUSE): the
    temporary file's creation is then the one that fails, and it must still be exit 73."""
    np.save(tmp_path / "good.npy", FRAMES)
    target = tmp_path / "locked"
    target.mkdir()
    with read_only_folder(target) as how:
        if _is_writable(target):
            pytest.skip(f"{how} did not make the folder read-only on this filesystem")
        monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)
        with pytest.raises(OutputError, match="cannot create it"):
            encode_path(str(tmp_path / "good.npy"), str(target / "out.mp4"), EncodeOptions())
        monkeypatch.undo()
        assert os.listdir(target) == []


def test_output_to_a_device_writes_through_it_and_keeps_the_node(tmp_path: Path) -> None:
    """``-o /dev/null -y`` must not rename a temporary file over the device node, which
    as root would leave a regular file where /dev/null was (tested on a private node)."""
    good(tmp_path)
    null = tmp_path / "null"
    if not _quiet(["mknod", str(null), "c", "1", "3"]):
        pytest.skip("cannot create a device node here (needs root)")
    proc = run_cli("encode", "good.npy", "-o", "null", "-y", "-f", "mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert stat.S_ISCHR(null.lstat().st_mode), "the device node was replaced"
    assert sorted(os.listdir(tmp_path)) == ["good.npy", "null"]


def test_output_to_a_fifo_streams_into_it(tmp_path: Path) -> None:
    """A named pipe gets the video streamed into it (fragmented MP4, as for stdout) and
    stays a pipe, instead of being replaced by a regular file nobody reads."""
    good(tmp_path)
    fifo = tmp_path / "video.pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    with ThreadPoolExecutor(1) as pool:
        reader = pool.submit(lambda: received.append(fifo.read_bytes()))
        proc = run_cli("encode", "good.npy", "-o", "video.pipe", "-y", "-f", "mp4", cwd=tmp_path)
        if proc.returncode != 0:  # unblock the reader before reporting
            with contextlib.suppress(OSError), open(fifo, "wb"):
                pass
        reader.result(timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    with av.open(io.BytesIO(received[0])) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(FRAMES)
    assert sorted(os.listdir(tmp_path)) == ["good.npy", "video.pipe"]


@pytest.mark.parametrize("closed", [(2,), (1,), (0, 1, 2)], ids=["stderr", "stdout", "all"])
def test_closed_standard_streams_keep_the_exit_codes(tmp_path: Path, closed: tuple[int, ...]) -> None:
    """Started with stdin/stdout/stderr closed (``2>&-``, some daemons), nvenc still exits
    with the documented code, and no file it opens lands on a standard descriptor."""

    def close_them() -> None:
        for fd in closed:
            os.close(fd)

    good(tmp_path)
    command = [sys.executable, "-m", "nvenc_cli", "encode"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args, code in ((["missing.npy", "-o", "bad.mp4"], 66), (["good.npy", "-o", "out.mp4", "--json"], 0)):
        proc = subprocess.run(
            [*command, *args], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, preexec_fn=close_them, timeout=120,
        )  # fmt: skip
        assert proc.returncode == code, proc.stderr.decode()
    assert sorted(os.listdir(tmp_path)) == ["good.npy", "out.mp4"]
    frames, _ = decode(tmp_path / "out.mp4")
    assert len(frames) == len(FRAMES)
