"""Hostile inputs, third round: nothing of anyone else's destroyed, no path read as a
protocol, no output outside its folder, manifests typed, no stream mixed with another.

Every case runs the real CLI (or the API where the case is the API's) and checks the exit
code, the one ``nvenc: error:`` line, that no file was touched or left behind and, where
an encode succeeds, what the output decodes to.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import ROOT, decode, reaped, run_cli, start_cli
from tests.test_hostile import one_line_error

FAST = ("--preset", "ultrafast")


# --- helpers ------------------------------------------------------------------------------


def grey(value: int, frames: int = 3, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    return np.full((frames, size[1], size[0], 3), value, np.uint8)


def write_video(path: Path, value: int, frames: int = 3) -> None:
    """A lossless (FFV1) clip of one grey level, written under a plain name and then
    renamed, so the test itself never hands FFmpeg a name it could read as a protocol."""
    plain = path.with_name("plain-tmp.mkv")
    with av.open(str(plain), "w") as out:
        stream = out.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        for frame in grey(value, frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(plain, path)


def write_wav(path: Path, channels: int = 1, seconds: float = 0.2, rate: int = 48000) -> None:
    samples = (np.sin(np.arange(int(rate * seconds)) / 7.0) * 8000).astype("<i2")
    data = np.repeat(samples[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data.tobytes())


def mean_level(path: Path) -> float:
    frames, _ = decode(path)
    return float(frames.mean())


def audio_channels(path: Path) -> int | None:
    with av.open(str(path)) as container:
        streams = container.streams.audio
        return streams[0].codec_context.channels if streams else None


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links as their target text) with a digest of its bytes."""
    seen: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            full = Path(root) / name
            rel = str(full.relative_to(folder))
            if full.is_symlink():
                seen[rel] = "link:" + os.readlink(full)
            elif full.is_file():
                seen[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
            else:
                seen[rel] = "dir"
    return seen


@pytest.fixture()
def arrays(tmp_path: Path) -> Path:
    np.save(tmp_path / "a.npy", grey(60))
    np.save(tmp_path / "b.npy", grey(200))
    return tmp_path


def refused(tmp_path: Path, code: int, fragment: str, *args: str, stdin: object = subprocess.DEVNULL) -> str:
    """Run the CLI; it must fail with ``code`` and one line, and leave ``tmp_path`` as it was."""
    before = snapshot(tmp_path)
    proc = run_cli(*args, cwd=tmp_path, stdin=stdin)
    text = one_line_error(proc, code, fragment)
    assert snapshot(tmp_path) == before, text
    return text


# --- 2. a path that exists is that file; no protocol is ever opened -------------------------

PREFIXES = ["concat:", "file:", "cache:", "async:", "crypto:", "subfile:", "data:", "fd:", "pipe:", "tee:"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_an_existing_video_named_like_a_protocol_is_that_file(tmp_path: Path, prefix: str) -> None:
    write_video(tmp_path / "other.mkv", 200)  # what the protocol would read
    write_video(tmp_path / f"{prefix}other.mkv", 60)
    proc = run_cli("encode", f"{prefix}other.mkv", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert abs(mean_level(tmp_path / "out.mkv") - 60) < 2


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_missing_video_named_like_a_protocol_is_missing(tmp_path: Path, prefix: str) -> None:
    write_video(tmp_path / "other.mkv", 200)
    refused(tmp_path, 66, "no such file", "encode", f"{prefix}other.mkv", "-o", "out.mp4")


@pytest.mark.parametrize("prefix", ["concat:", "file:", "cache:", "async:", "subfile:"])
def test_an_existing_sound_file_named_like_a_protocol_is_that_file(arrays: Path, prefix: str) -> None:
    write_wav(arrays / "tone.wav", channels=2)  # the decoy: stereo
    write_wav(arrays / f"{prefix}tone.wav", channels=1)
    proc = run_cli("encode", "a.npy", "--audio", f"{prefix}tone.wav", "-o", "out.mkv", cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert audio_channels(arrays / "out.mkv") == 1


@pytest.mark.parametrize("prefix", ["concat:", "file:", "cache:", "async:", "subfile:"])
def test_a_missing_sound_file_named_like_a_protocol_is_missing(arrays: Path, prefix: str) -> None:
    write_wav(arrays / "tone.wav")
    refused(arrays, 66, "no such file", "encode", "a.npy", "--audio", f"{prefix}tone.wav", "-o", "out.mkv")


def _listener() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.5)
    return server, server.getsockname()[1]


def _connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            return count
        conn.close()
        count += 1


@pytest.mark.parametrize("scheme", ["tcp", "udp", "unix", "tls"])
@pytest.mark.parametrize("role", ["input", "audio"])
def test_a_name_like_a_socket_address_opens_no_connection(arrays: Path, scheme: str, role: str) -> None:
    server, port = _listener()
    with server:
        name = f"{scheme}:127.0.0.1:{port}"
        if role == "input":
            refused(arrays, 66, "no such file", "encode", name, "-o", "out.mp4")
        else:
            refused(arrays, 66, "no such file", "encode", "a.npy", "--audio", name, "-o", "out.mkv")
        assert _connections(server) == 0


def test_an_existing_file_named_like_a_socket_address_is_read_as_a_file(tmp_path: Path) -> None:
    server, port = _listener()
    with server:
        write_video(tmp_path / f"tcp:127.0.0.1:{port}", 90)
        proc = run_cli("encode", f"tcp:127.0.0.1:{port}", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
        assert _connections(server) == 0
    assert abs(mean_level(tmp_path / "out.mkv") - 90) < 2


@pytest.mark.parametrize("name", ["concat:out.mp4", "tcp:127.0.0.1:1.mp4", "file:out.mp4", "pipe:1.mp4"])
def test_an_output_named_like_a_protocol_is_written_as_that_file(arrays: Path, name: str) -> None:
    proc = run_cli("encode", "a.npy", "-o", name, *FAST, cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (arrays / name).is_file()
    assert abs(mean_level(arrays / name) - 60) < 3
    assert not [p for p in os.listdir(arrays) if p.endswith(".part")]


@pytest.mark.parametrize("folder", ["concat:x", "tcp:127.0.0.1:1", "cache:y"])
def test_an_output_folder_named_like_a_protocol_is_a_folder(arrays: Path, folder: str) -> None:
    (arrays / folder).mkdir()
    proc = run_cli("encode", "a.npy", "-o", f"{folder}/out.mp4", *FAST, cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert abs(mean_level(arrays / folder / "out.mp4") - 60) < 3


@pytest.mark.parametrize("fragmented", [False, True])
def test_a_fragmented_output_named_like_a_protocol_is_that_file(arrays: Path, fragmented: bool) -> None:
    extra = ("-x", "movflags=+frag_keyframe+empty_moov") if fragmented else ()
    proc = run_cli("encode", "a.npy", "-o", "concat:f.mp4", *extra, *FAST, cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(decode(arrays / "concat:f.mp4")[0]) == 3


def test_a_deep_image_named_like_a_protocol_is_that_image(tmp_path: Path) -> None:
    """16-bit PNGs are decoded through FFmpeg: the same rule holds there."""
    from PIL import Image

    for name, value in (("other.png", 60000), ("concat:other.png", 8000)):
        data = np.full((48, 64), value, np.uint16)
        Image.fromarray(data).save(tmp_path / "tmp.png")
        os.replace(tmp_path / "tmp.png", tmp_path / name)
    proc = run_cli("encode", "concat:other.png", "-o", "out.mkv", "-c", "ffv1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert abs(mean_level(tmp_path / "out.mkv") - 8000 / 257) < 3


# --- 1. nothing of anyone else's destroyed -------------------------------------------------


def _alias(folder: Path, target: str, how: str) -> str:
    """Another name for ``folder/target``: itself, ``./x``, a symbolic link or a hard link."""
    if how == "same":
        return target
    if how == "dot":
        return f"./{target}"
    alias = f"alias-{how}-{target}"
    if how == "symlink":
        os.symlink(target, folder / alias)
    else:
        os.link(folder / target, folder / alias)
    return alias


ALIASES = ["same", "dot", "symlink", "hardlink"]


@pytest.mark.parametrize("how", ALIASES)
def test_progress_naming_the_audio_file_is_refused(arrays: Path, how: str) -> None:
    write_wav(arrays / "tone.wav")
    name = _alias(arrays, "tone.wav", how)
    refused(
        arrays,
        2,
        "is the --audio file",
        "encode",
        "a.npy",
        "--audio",
        "tone.wav",
        "-o",
        "o.mkv",
        "--progress",
        name,
    )


@pytest.mark.parametrize("how", ALIASES)
def test_progress_naming_the_manifest_is_refused(arrays: Path, how: str) -> None:
    (arrays / "jobs.jsonl").write_text('{"input": "a.npy", "output": "o.mp4"}\n')
    name = _alias(arrays, "jobs.jsonl", how)
    refused(arrays, 2, "is the manifest", "batch", "jobs.jsonl", "--progress", name)


@pytest.mark.parametrize("how", ALIASES)
def test_progress_naming_a_jobs_audio_file_is_refused(arrays: Path, how: str) -> None:
    write_wav(arrays / "tone.wav")
    (arrays / "jobs.jsonl").write_text('{"input": "a.npy", "output": "o.mkv", "audio": "tone.wav"}\n')
    name = _alias(arrays, "tone.wav", how)
    refused(arrays, 2, "is the --audio file", "batch", "jobs.jsonl", "--progress", name)


@pytest.mark.parametrize("how", ALIASES)
def test_progress_naming_an_input_of_several_is_refused(arrays: Path, how: str) -> None:
    name = _alias(arrays, "b.npy", how)
    refused(arrays, 2, "is an input", "encode", "a.npy", "b.npy", "-o", "out/", "--progress", name)


@pytest.mark.parametrize("how", ["same", "dot", "symlink"])
def test_a_manifest_row_writing_the_manifest_is_refused(tmp_path: Path, how: str) -> None:
    """A JSON Lines manifest named like a video (``jobs.mkv``): a row that writes it would
    replace the job list it came from."""
    np.save(tmp_path / "a.npy", grey(60))
    (tmp_path / "jobs.mkv").write_text("")
    name = _alias(tmp_path, "jobs.mkv", how)
    (tmp_path / "jobs.mkv").write_text(json.dumps({"input": "a.npy", "output": name}) + "\n")
    refused(tmp_path, 2, "manifest", "batch", "jobs.mkv", "-y")


def test_a_manifest_row_writing_the_manifest_through_a_template_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "jobs.npy", grey(60))
    (tmp_path / "jobs.mkv").write_text(json.dumps({"input": "jobs.npy"}) + "\n")
    refused(tmp_path, 2, "manifest", "batch", "jobs.mkv", "-o", "{stem}.mkv", "-y")


@pytest.mark.parametrize("how", ALIASES)
def test_a_jobs_audio_that_is_another_jobs_output_is_refused(arrays: Path, how: str) -> None:
    write_video(arrays / "talk.mkv", 30)
    name = _alias(arrays, "talk.mkv", how)
    rows = [
        {"input": "a.npy", "output": "talk.mkv", "overwrite": True},
        {"input": "b.npy", "output": "b.mkv", "audio": name},
    ]
    (arrays / "jobs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused(arrays, 2, "--audio file", "batch", "jobs.jsonl")


@pytest.mark.parametrize("how", ALIASES)
def test_an_output_over_its_own_audio_file_is_refused(arrays: Path, how: str) -> None:
    write_video(arrays / "talk.mkv", 30)
    name = _alias(arrays, "talk.mkv", how)
    refused(arrays, 73, "same file as the input", "encode", "a.npy", "--audio", name, "-o", "talk.mkv", "-y")


def test_an_audio_file_beside_no_audio_is_refused_before_anything_is_written(arrays: Path) -> None:
    write_video(arrays / "talk.mkv", 30)
    refused(
        arrays,
        2,
        "exclude each other",
        "encode",
        "a.npy",
        "--audio",
        "talk.mkv",
        "-an",
        "-o",
        "talk.mkv",
        "-y",
    )


def test_a_failed_fragmented_encode_spares_a_file_another_run_put_there(tmp_path: Path) -> None:
    """A fragmented MP4 is written at its own path as it grows; when that encode fails, it
    removes the file it made, not a complete file another run renamed over it since."""
    from nvenc_cli.encoding import encode_path
    from nvenc_cli.errors import NvencError
    from nvenc_cli.options import EncodeOptions, parse_extra

    np.save(tmp_path / "a.npy", grey(60, frames=40))
    target = tmp_path / "live.mp4"
    other = tmp_path / "other-run.mp4"
    other.write_bytes(b"another run's complete video")

    def progress(done: int, total: int | None) -> None:
        if target.exists() and other.exists():
            os.replace(other, target)  # another run publishes its file at the same path
            raise NvencError("stopped on purpose")

    options = EncodeOptions(extra=parse_extra(["movflags=+frag_keyframe+empty_moov", "g=2"]), batch_size=2)
    with pytest.raises(NvencError, match="on purpose"):
        encode_path(str(tmp_path / "a.npy"), str(target), options, progress=progress)
    assert target.read_bytes() == b"another run's complete video"


def test_a_failed_fragmented_encode_still_removes_its_own_file(tmp_path: Path) -> None:
    from nvenc_cli.encoding import encode_path
    from nvenc_cli.errors import NvencError
    from nvenc_cli.options import EncodeOptions, parse_extra

    np.save(tmp_path / "a.npy", grey(60, frames=40))
    target = tmp_path / "live.mp4"
    seen = []

    def progress(done: int, total: int | None) -> None:
        seen.append(target.exists())
        raise NvencError("stopped on purpose")

    options = EncodeOptions(extra=parse_extra(["movflags=+frag_keyframe+empty_moov"]), batch_size=2)
    with pytest.raises(NvencError):
        encode_path(str(tmp_path / "a.npy"), str(target), options, progress=progress)
    assert seen and seen[0]  # it was live at its own path
    assert not target.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_batch_cleanup_after_sigterm_spares_another_runs_temporary_files(tmp_path: Path) -> None:
    """SIGTERM mid-run removes this run's temporary files only: another run's, for the very
    same outputs (old style, or with another run's mark), are not this run's to delete."""
    rng = np.random.default_rng(7)
    for i in range(2):
        np.save(tmp_path / f"n{i}.npy", rng.integers(0, 256, (90, 240, 320, 3), dtype=np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    foreign = [out / ".n0.mp4.abcd1234.part", out / ".n1.mp4.0badc0de-qwertyui.part", out / ".n0.mp4.x.part"]
    for path in foreign:
        path.write_bytes(b"another run is writing this")
    child = start_cli(
        tmp_path, "encode", "n0.npy", "n1.npy", "-o", "out/", "-j", "2", "--preset", "slow", new_session=True
    )
    with reaped(child):
        deadline = time.monotonic() + 90
        while len([p for p in out.glob(".*.part") if p not in foreign and p.stat().st_size]) < 2:
            assert child.poll() is None, child.communicate()[1].decode()
            assert time.monotonic() < deadline, "the encodes never started"
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 143, stderr.decode()
    assert sorted(out.iterdir()) == sorted(foreign)
    assert all(p.read_bytes() == b"another run is writing this" for p in foreign)


def test_stale_temporaries_are_this_runs_only(tmp_path: Path) -> None:
    from nvenc_cli.batch.worker import stale_temporaries
    from nvenc_cli.mux import temp_prefix

    out = tmp_path / "v.mp4"
    mine = tmp_path / (temp_prefix(out, "1a2b3c4d") + "abcdefgh.part")
    others = [
        tmp_path / ".v.mp4.abcdefgh.part",
        tmp_path / (temp_prefix(out, "ffffffff") + "abcdefgh.part"),
        tmp_path / (temp_prefix(out, "1a2b3c4d") + "abc.part"),
    ]
    for path in [mine, *others]:
        path.write_bytes(b"x")
    assert stale_temporaries(str(out), "1a2b3c4d") == [str(mine)]
    assert stale_temporaries(str(out), "") == []


# --- 3. templates: a closed set of fields, bounded, never climbing out ----------------------

BAD_TEMPLATES = [
    ("out/{stem.upper}.mp4", "unknown placeholder"),
    ("out/{stem.__class__}.mp4", "unknown placeholder"),
    ("out/{name[0]}.mp4", "unknown placeholder"),
    ("out/{parent[0]}.mp4", "unknown placeholder"),
    ("out/{index.real}.mp4", "unknown placeholder"),
    ("out/{0}.mp4", "unknown placeholder"),
    ("out/{}.mp4", "unknown placeholder"),
    ("out/{date}.mp4", "unknown placeholder"),
    ("out/{stem!r}.mp4", "conversions are not taken"),
    ("out/{stem!s}.mp4", "conversions are not taken"),
    ("out/{stem!a}.mp4", "conversions are not taken"),
    ("out/{index:>20000000}.mp4", "at most 255"),
    ("out/{index:0256d}.mp4", "at most 255"),
    ("out/{stem:.99999}.mp4", "at most 255"),
    ("out/{stem:<1000}.mp4", "at most 255"),
    ("out/{index:{stem}}.mp4", "invalid format"),
    ("out/{index:=^{index}}.mp4", "invalid format"),
    ("out/{stem:d}.mp4", "invalid output template"),
    ("out/{index:s}.mp4", "invalid output template"),
    ("out/{stem.mp4", "invalid output template"),
    ("out/stem}.mp4", "invalid output template"),
    ("out/{index:nonsense}.mp4", "invalid format"),
]


@pytest.mark.parametrize(("template", "fragment"), BAD_TEMPLATES, ids=[t for t, _ in BAD_TEMPLATES])
def test_a_template_outside_the_closed_set_is_refused(arrays: Path, template: str, fragment: str) -> None:
    refused(arrays, 2, fragment, "encode", "a.npy", "b.npy", "-o", template)


@pytest.mark.parametrize(("template", "fragment"), BAD_TEMPLATES[:12], ids=[t for t, _ in BAD_TEMPLATES[:12]])
def test_a_template_outside_the_closed_set_is_refused_for_one_input(
    arrays: Path, template: str, fragment: str
) -> None:
    refused(arrays, 2, fragment, "encode", "a.npy", "-o", template)


@pytest.mark.parametrize(("template", "fragment"), BAD_TEMPLATES[:8], ids=[t for t, _ in BAD_TEMPLATES[:8]])
def test_a_template_outside_the_closed_set_is_refused_in_a_manifest(
    arrays: Path, template: str, fragment: str
) -> None:
    (arrays / "jobs.jsonl").write_text(json.dumps({"input": "a.npy"}) + "\n")
    refused(arrays, 2, fragment, "batch", "jobs.jsonl", "-o", template)


def test_parent_of_a_relative_input_is_a_real_folder_name(tmp_path: Path) -> None:
    """``{parent}`` of ``../a.npy`` is the name of the folder holding it, not ``..``: the
    output lands inside ``out/``, never beside it."""
    (tmp_path / "data").mkdir()
    (tmp_path / "work").mkdir()
    np.save(tmp_path / "data" / "a.npy", grey(60))
    np.save(tmp_path / "b.npy", grey(200))
    proc = run_cli(
        "encode", "../data/a.npy", "../b.npy", "-o", "out/{parent}/{stem}.mp4", *FAST, cwd=tmp_path / "work"
    )
    assert proc.returncode == 0, proc.stderr.decode()
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.mp4"))
    assert made == ["work/out/data/a.mp4", f"work/out/{tmp_path.name}/b.mp4"]
    assert abs(mean_level(tmp_path / "work/out/data/a.mp4") - 60) < 3


@pytest.mark.parametrize("spec", ["..", ".", "./", "../frames/"])
def test_a_folder_input_named_by_dots_gets_its_real_name(tmp_path: Path, spec: str) -> None:
    from PIL import Image

    frames = tmp_path / "frames"
    (frames / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(grey(120, 1)[0]).save(frames / f"f_{i:03d}.png")
    cwd = frames if spec in (".", "./", "../frames/") else frames / "sub"
    if spec == "..":
        cwd = frames / "sub"
    if spec == "../frames/":
        cwd = frames / "sub"
        spec = "../../frames/"
    proc = run_cli("encode", spec, "-o", "o/{stem}-{parent}.mp4", *FAST, cwd=cwd)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (cwd / "o" / f"frames-{tmp_path.name}.mp4").is_file()
    assert [p.name for p in (cwd / "o").iterdir()] == [f"frames-{tmp_path.name}.mp4"]


@pytest.mark.parametrize(
    "template", ["o/{index:03d}.mp4", "o/{index:>5}.mp4", "o/{stem:_<8}.mp4", "o/{index:x}.mp4"]
)
def test_a_bounded_format_still_works(arrays: Path, template: str) -> None:
    proc = run_cli("encode", "a.npy", "b.npy", "-o", template, *FAST, cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(list((arrays / "o").iterdir())) == 2


def test_one_input_with_a_template_creates_its_folder(arrays: Path) -> None:
    proc = run_cli("encode", "a.npy", "-o", "new/{stem}/v.mp4", *FAST, cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert abs(mean_level(arrays / "new/a/v.mp4") - 60) < 3


def test_a_template_folder_name_too_long_is_one_line_not_a_bug(arrays: Path) -> None:
    long = "x" * 300
    refused(arrays, 73, "cannot create folder", "encode", "a.npy", "-o", f"t/{long}/{{stem}}.mp4")


def test_a_template_folder_name_too_long_fails_each_job_with_73(arrays: Path) -> None:
    long = "x" * 300
    proc = run_cli("encode", "a.npy", "b.npy", "-o", f"t/{long}/{{stem}}.mp4", cwd=arrays)
    text = proc.stderr.decode()
    assert proc.returncode == 73, text
    assert "internal error" not in text and "Traceback" not in text
    assert not list(arrays.rglob("*.mp4"))


def test_a_padded_index_too_wide_for_a_file_name_is_73(arrays: Path) -> None:
    refused(arrays, 73, "longer than this file system allows", "encode", "a.npy", "-o", "{index:>255}.mp4")


@pytest.mark.parametrize("bad", ["missing.npy", "bad.npy"])
def test_a_failed_encode_removes_the_folders_its_template_made(arrays: Path, bad: str) -> None:
    (arrays / "bad.npy").write_bytes(b"not an array at all")
    code = 66 if bad == "missing.npy" else 65
    refused(arrays, code, "", "encode", bad, "-o", "new/{stem}/deeper/v.mp4")


# --- 8/7. manifest values typed: refused, never coerced; bad rows are one line ------------

BAD_VALUES = [
    ("frames", 2.7, "expected a whole number"),
    ("frames", 3.0, "expected a whole number"),
    ("frames", "2", "expected a whole number"),
    ("frames", True, "expected a whole number"),
    ("frames", [2], "expected a whole number"),
    ("start", 0.5, "expected a whole number"),
    ("batch-size", False, "expected a whole number"),
    ("audio-rate", "48000", "expected a whole number"),
    ("crf", True, "expected a number"),
    ("crf", False, "expected a number"),
    ("crf", "20", "expected a number"),
    ("crf", {"v": 20}, "expected a number"),
    ("overwrite", "false", "expected true or false"),
    ("overwrite", "true", "expected true or false"),
    ("overwrite", 1, "expected true or false"),
    ("overwrite", 0, "expected true or false"),
    ("pad", "yes", "expected true or false"),
    ("no-audio", [], "expected true or false"),
    ("codec", 5, "expected a string"),
    ("codec", True, "expected a string"),
    ("codec", ["libx264"], "expected a string"),
    ("device", 0, "expected a string"),
    ("preset", {"p": 1}, "expected a string"),
    ("preset", True, "expected a string"),
    ("option", 5, "expected a string or a list of strings"),
    ("option", [1, 2], "expected a string or a list of strings"),
    ("option", {"g": 2}, "expected a string or a list of strings"),
    ("option", 'g="2', "No closing quotation"),
    ("fps", True, "expected a string"),
    ("fps", [30], "expected a string"),
    ("audio", 7, "expected a string"),
]


@pytest.mark.parametrize(
    ("key", "value", "fragment"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES]
)
def test_a_manifest_value_of_the_wrong_type_is_refused(
    arrays: Path, key: str, value: object, fragment: str
) -> None:
    (arrays / "jobs.jsonl").write_text(json.dumps({"input": "a.npy", "output": "o.mp4", key: value}) + "\n")
    refused(arrays, 2, fragment, "batch", "jobs.jsonl")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_manifest_crf_that_is_no_finite_number_is_refused(arrays: Path, literal: str) -> None:
    (arrays / "jobs.jsonl").write_text('{"input": "a.npy", "output": "o.mp4", "crf": ' + literal + "}\n")
    refused(arrays, 2, "expected a number", "batch", "jobs.jsonl")


@pytest.mark.parametrize("key", ["input", "output"])
@pytest.mark.parametrize("value", [5, 1.5, True, ["a.npy"], {"path": "a.npy"}])
def test_a_manifest_path_that_is_no_string_is_refused(arrays: Path, key: str, value: object) -> None:
    row = {"input": "a.npy", "output": "o.mp4", key: value}
    (arrays / "jobs.jsonl").write_text(json.dumps(row) + "\n")
    refused(arrays, 2, "expected a path string", "batch", "jobs.jsonl")


@pytest.mark.parametrize("key", ["input", "output", "audio", "option", "codec"])
def test_a_manifest_value_with_a_nul_character_is_refused(arrays: Path, key: str) -> None:
    row = {"input": "a.npy", "output": "o.mp4", key: "a\x00.npy"}
    (arrays / "jobs.jsonl").write_text(json.dumps(row) + "\n")
    refused(arrays, 2, "NUL character", "batch", "jobs.jsonl")


def test_a_csv_manifest_value_with_a_nul_character_is_refused(arrays: Path) -> None:
    (arrays / "jobs.csv").write_bytes(b"input,output\na\x00.npy,o.mp4\n")
    refused(arrays, 2, "NUL character", "batch", "jobs.csv")


@pytest.mark.parametrize("depth", [100, 5000, 200000])
def test_a_deeply_nested_manifest_row_is_bad_data(arrays: Path, depth: int) -> None:
    text = '{"input": "a.npy", "output": "o.mp4", "x": ' + "[" * depth + "]" * depth + "}\n"
    (arrays / "jobs.jsonl").write_text(text)
    code, fragment = (2, "not an option a job can set") if depth < 1000 else (65, "nested too deeply")
    refused(arrays, code, fragment, "batch", "jobs.jsonl")


@pytest.mark.parametrize(
    "text",
    [
        'input,output\n"a.npy,o.mp4\n',
        'input,output,crf\na.npy,"o.mp4,20\n',
        'input,output\na.npy,"o.mp4"x\n',
    ],
    ids=["unclosed-first", "unclosed-middle", "text-after-quote"],
)
def test_a_csv_manifest_with_broken_quoting_is_bad_data(arrays: Path, text: str) -> None:
    (arrays / "jobs.csv").write_text(text)
    refused(arrays, 65, "not a CSV manifest", "batch", "jobs.csv")


@pytest.mark.parametrize(
    "line",
    [
        '{"input": "a.npy", "output": "o.mp4"',
        '{"input": "a.npy" "output": "o.mp4"}',
        "[1, 2]",
        '"a.npy"',
        "null",
    ],
)
def test_a_malformed_json_row_is_bad_data(arrays: Path, line: str) -> None:
    (arrays / "jobs.jsonl").write_text(line + "\n")
    refused(arrays, 65, "jobs.jsonl:1", "batch", "jobs.jsonl")


def test_well_typed_manifest_values_are_honoured(arrays: Path) -> None:
    rows = [
        {"input": "a.npy", "output": "a.mp4", "frames": 2, "crf": 18.5, "fps": 15, "preset": "ultrafast"},
        {"input": "b.npy", "output": "b.mp4", "overwrite": False, "option": ["g=1"], "fps": "24000/1001"},
    ]
    (arrays / "jobs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli("batch", "jobs.jsonl", cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    frames, _ = decode(arrays / "a.mp4")
    assert len(frames) == 2
    with av.open(str(arrays / "a.mp4")) as container:
        assert container.streams.video[0].average_rate == 15
    with av.open(str(arrays / "b.mp4")) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(24000 / 1001, rel=1e-3)


def test_csv_cells_are_read_as_the_command_line_reads_them(arrays: Path) -> None:
    (arrays / "jobs.csv").write_text("input,output,frames,overwrite\na.npy,a.mp4,2,false\n")
    proc = run_cli("batch", "jobs.csv", cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(decode(arrays / "a.mp4")[0]) == 2


@pytest.mark.parametrize("cell", ["2.7", "two", "1e3"])
def test_a_csv_cell_that_is_no_whole_number_is_refused(arrays: Path, cell: str) -> None:
    (arrays / "jobs.csv").write_text(f"input,output,frames\na.npy,a.mp4,{cell}\n")
    refused(arrays, 2, "invalid 'frames'", "batch", "jobs.csv")


# --- 8. one stream per door: no video mixed into a JSON report, stdin never sent away -----


@pytest.mark.parametrize("name", ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/1"])
def test_json_and_an_output_that_is_standard_output_are_refused(arrays: Path, name: str) -> None:
    refused(arrays, 2, "standard output", "encode", "a.npy", "-o", name, "--json")


def test_json_and_an_output_that_is_the_file_stdout_goes_to_are_refused(arrays: Path) -> None:
    sink = arrays / "captured.mp4"
    with open(sink, "wb") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "nvenc_cli", "encode", "a.npy", "-o", "captured.mp4", "-y", "--json"],
            cwd=arrays,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stderr.decode()
    assert proc.stderr.decode().count("\n") == 1
    assert sink.read_bytes() == b""


@pytest.mark.parametrize("dest", ["-", "/dev/stdout", "/proc/self/fd/1"])
def test_json_and_a_manifest_row_writing_standard_output_are_refused(arrays: Path, dest: str) -> None:
    (arrays / "jobs.jsonl").write_text(
        json.dumps({"input": "a.npy", "output": dest, "format": "matroska"}) + "\n"
    )
    refused(arrays, 2, "standard output", "batch", "jobs.jsonl", "--json")


@pytest.mark.parametrize("jobs", ["1", "2", "8"])
def test_one_piped_input_with_jobs_is_encoded_here(arrays: Path, jobs: str) -> None:
    with open(arrays / "a.npy", "rb") as piped:
        proc = run_cli("encode", "-", "-o", "s.mp4", "-j", jobs, *FAST, cwd=arrays, stdin=piped)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(decode(arrays / "s.mp4")[0]) == 3


@pytest.mark.parametrize("extra", [("--shard", "0/1"), ("--skip-existing",), ("--executor", "ray")])
def test_a_piped_input_sent_to_workers_is_refused(arrays: Path, extra: tuple[str, ...]) -> None:
    with open(arrays / "a.npy", "rb") as piped:
        refused(arrays, 2, "standard input", "encode", "-", "-o", "s.mp4", *extra, stdin=piped)


@pytest.mark.parametrize("channels", [9, 13, 17, 32, 64])
def test_a_sound_file_with_more_channels_than_ffmpeg_names_is_bad_data(arrays: Path, channels: int) -> None:
    write_wav(arrays / "many.wav", channels=channels, seconds=0.05)
    refused(arrays, 65, f"{channels} audio channels", "encode", "a.npy", "--audio", "many.wav", "-o", "o.mkv")


@pytest.mark.parametrize("channels", [1, 2, 6, 8, 16, 24])
def test_a_sound_file_with_a_named_layout_is_kept(arrays: Path, channels: int) -> None:
    write_wav(arrays / "some.wav", channels=channels, seconds=0.05)
    proc = run_cli("encode", "a.npy", "--audio", "some.wav", "-o", "o.mkv", *FAST, cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert audio_channels(arrays / "o.mkv") == channels


@pytest.mark.parametrize(
    ("samples", "rate", "kind"),
    [
        ("list", 48000, "InputDataError"),
        ("3d", 48000, "InputDataError"),
        ("float64", 48000, "InputDataError"),
        ("ok", 0, "UsageError"),
        ("ok", -5, "UsageError"),
        ("ok", True, "UsageError"),
        ("ok", 44100.0, "UsageError"),
    ],
)
def test_audio_encoder_argument_errors_are_nvenc_errors(samples: str, rate: object, kind: str) -> None:
    import nvenc_cli.errors as errors
    from nvenc_cli.api.audio import AudioEncoder

    data = {
        "list": [0.0, 0.1],
        "3d": np.zeros((1, 2, 100), np.float32),
        "float64": np.zeros((2, 100), np.float64),
        "ok": np.zeros((2, 100), np.float32),
    }[samples]
    with pytest.raises(getattr(errors, kind)) as caught:
        AudioEncoder(data, sample_rate=rate)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)  # torchcodec's class, still


# --- 4. no crash, no hang ---------------------------------------------------------------------

THREADS_SCRIPT = """
import threading, sys
import numpy as np
from nvenc_cli.api.video import open_writer

for round in range(6):
    writer = open_writer(f"t{round}.mp4", frame_rate=30, preset="ultrafast")
    writer.write(np.zeros((96, 128, 3), np.uint8))
    stop = False
    def push(level):
        while not stop:
            try:
                writer.write(np.full((4, 96, 128, 3), level, np.uint8))
            except ValueError:
                return
    threads = [threading.Thread(target=push, args=(v,)) for v in (40, 120, 200)]
    for t in threads:
        t.start()
    try:
        writer.close()
    except Exception as exc:
        print(type(exc).__name__, exc, file=sys.stderr)
    stop = True
    for t in threads:
        t.join()
    print(writer.frames_written)
"""


def test_threads_writing_and_closing_one_writer_do_not_crash(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", THREADS_SCRIPT],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    counts = [int(n) for n in proc.stdout.split()]
    for i, count in enumerate(counts):
        assert len(decode(tmp_path / f"t{i}.mp4")[0]) == count  # every frame written is there


def test_threads_writing_one_writer_keep_every_frame(tmp_path: Path) -> None:
    import threading

    from nvenc_cli.api.video import open_writer

    writer = open_writer(str(tmp_path / "w.mp4"), frame_rate=30, preset="ultrafast")

    def push(level: int) -> None:
        for _ in range(10):
            writer.write(np.full((2, 48, 64, 3), level, np.uint8))

    threads = [threading.Thread(target=push, args=(v,)) for v in (30, 90, 150, 210)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    frames, _ = decode(tmp_path / "w.mp4")
    assert len(frames) == 80
    levels = sorted(round(float(f.mean())) for f in frames)
    for value in (30, 90, 150, 210):
        assert sum(abs(level - value) < 4 for level in levels) == 20


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "localhost:1", "[::1]:1"])
def test_an_unreachable_ray_address_is_one_line_not_a_hang(arrays: Path, address: str) -> None:
    pytest.importorskip("ray")
    started = time.monotonic()
    refused(
        arrays,
        69,
        "cannot reach the Ray cluster",
        "encode",
        "a.npy",
        "b.npy",
        "-o",
        "o/",
        "--executor",
        "ray",
        "--ray-address",
        address,
    )
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:0", "127.0.0.1:70000", "host:port"])
def test_a_malformed_ray_address_is_a_usage_error(arrays: Path, address: str) -> None:
    pytest.importorskip("ray")
    refused(
        arrays,
        2,
        "--ray-address",
        "encode",
        "a.npy",
        "b.npy",
        "-o",
        "o/",
        "--executor",
        "ray",
        "--ray-address",
        address,
    )


def test_a_ray_address_without_the_ray_executor_is_refused(arrays: Path) -> None:
    refused(
        arrays,
        2,
        "needs --executor ray",
        "encode",
        "a.npy",
        "b.npy",
        "-o",
        "o/",
        "--ray-address",
        "127.0.0.1:1",
    )


def test_encode_many_from_a_script_on_standard_input_finishes(arrays: Path) -> None:
    """``python - <<EOF``: the main module is no file the workers could run again."""
    script = (
        "from nvenc_cli.batch.run import encode_many\n"
        "results = encode_many(inputs=['a.npy', 'b.npy'], output='sm/{stem}.mp4', workers=2)\n"
        "print(' '.join(r.status for r in results))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-"],
        input=script.encode(),
        cwd=arrays,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().split() == ["ok", "ok"]
    assert proc.stderr.decode().count("Traceback") == 0
    assert abs(mean_level(arrays / "sm/b.mp4") - 200) < 3


# --- 6. every *-params list: an unknown key is refused, not dropped -------------------------

PARAM_CASES = [
    ("libsvtav1", "svtav1-params", "bogus=1", False),
    ("libsvtav1", "svtav1-params", "tune=0:not-a-setting=3", False),
    ("libsvtav1", "svtav1-params", "preset=abc", False),
    ("libsvtav1", "svtav1-params", "keyint=abc", False),
    ("libsvtav1", "svtav1-params", "enable-overlayz=1", False),
    ("libsvtav1", "svtav1-params", "tune=0", True),
    ("libsvtav1", "svtav1-params", "keyint=30:enable-overlays=1", True),
    ("libx264", "x264-params", "bogus=1", False),
    ("libx264", "x264-params", "keyint=abc", False),
    ("libx264", "x264-params", "keyint=30:bframes=0", True),
    ("libx265", "x265-params", "bogus=1", False),
    ("libx265", "x265-params", "keyint=30:log-level=none", True),
]


@pytest.mark.parametrize(
    ("codec", "key", "value", "ok"), PARAM_CASES, ids=[f"{k}={v}" for _, k, v, _ in PARAM_CASES]
)
def test_an_encoder_settings_list_is_checked_by_the_library(
    arrays: Path, codec: str, key: str, value: str, ok: bool
) -> None:
    args = ("encode", "a.npy", "-o", "p.mp4", "-c", codec, "-x", f"{key}={value}", "--preset", "veryfast")
    if not ok:
        refused(arrays, 2, f"{codec} rejects", *args)
        return
    proc = run_cli(*args, cwd=arrays)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(decode(arrays / "p.mp4")[0]) == 3


@pytest.mark.parametrize("value", ["bogus=1", "keyint=abc"])
def test_an_encoder_settings_list_in_a_manifest_is_checked_too(arrays: Path, value: str) -> None:
    row = {"input": "a.npy", "output": "p.mp4", "codec": "libsvtav1", "option": [f"svtav1-params={value}"]}
    (arrays / "jobs.jsonl").write_text(json.dumps(row) + "\n")
    proc = run_cli("batch", "jobs.jsonl", cwd=arrays)
    assert proc.returncode == 2, proc.stderr.decode()
    assert "libsvtav1 rejects" in proc.stderr.decode()
    assert not (arrays / "p.mp4").exists()


def test_an_encoder_settings_list_through_the_api_is_checked_too(tmp_path: Path) -> None:
    import torch

    from nvenc_cli.api import VideoEncoder

    encoder = VideoEncoder(torch.zeros(2, 3, 48, 64, dtype=torch.uint8), frame_rate=30)
    with pytest.raises(ValueError, match="libsvtav1 rejects bogus=1"):
        encoder.to_file(
            str(tmp_path / "o.mp4"), codec="libsvtav1", extra_options={"svtav1-params": "bogus=1"}
        )
    assert list(tmp_path.iterdir()) == []


# --- API jobs: typed like manifest rows -----------------------------------------------------

API_BAD = [
    {"input": 5},
    {"output": ["x.mp4"]},
    {"input": "a\x00.npy"},
    {"output": "o\x00.mp4"},
    {"frames": 2.7},
    {"frames": True},
    {"crf": True},
    {"crf": "20"},
    {"overwrite": "false"},
    {"overwrite": 1},
    {"codec": 5},
    {"batch_size": 2.0},
    {"pad": "yes"},
    {"fps": True},
]


@pytest.mark.parametrize("change", API_BAD, ids=[repr(c) for c in API_BAD])
def test_an_api_job_value_of_the_wrong_type_is_refused(arrays: Path, change: dict) -> None:
    from nvenc_cli.batch.run import encode_many
    from nvenc_cli.errors import UsageError

    before = snapshot(arrays)
    job = {"input": str(arrays / "a.npy"), "output": str(arrays / "o.mp4"), **change}
    with pytest.raises(UsageError):
        encode_many([job])
    assert snapshot(arrays) == before


@pytest.mark.parametrize(("fps", "rate"), [(30, 30), (29.97, 30000 / 1001), ("24000/1001", 24000 / 1001)])
def test_an_api_job_rate_is_read_as_everywhere_else(arrays: Path, fps: object, rate: float) -> None:
    from nvenc_cli.batch.run import encode_many

    results = encode_many([{"input": str(arrays / "a.npy"), "output": str(arrays / "o.mp4"), "fps": fps}])
    assert [r.status for r in results] == ["ok"], results[0].error
    with av.open(str(arrays / "o.mp4")) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(rate, rel=1e-3)


def test_an_api_job_takes_path_objects(arrays: Path) -> None:
    from nvenc_cli.batch.run import encode_many

    results = encode_many([{"input": arrays / "b.npy", "output": arrays / "p.mp4", "frames": 2}])
    assert [r.status for r in results] == ["ok"], results[0].error
    assert len(decode(arrays / "p.mp4")[0]) == 2


# --- 6. a stream ends where its data ends ----------------------------------------------------


@pytest.mark.parametrize("count", [2, 3])
def test_several_arrays_down_one_pipe_are_refused_not_cut(arrays: Path, count: int) -> None:
    data = b"".join((arrays / name).read_bytes() for name in ["a.npy", "b.npy", "a.npy"][:count])
    before = snapshot(arrays)
    proc = subprocess.run(
        [sys.executable, "-m", "nvenc_cli", "encode", "-", "-o", "s.mp4"],
        input=data,
        cwd=arrays,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
    one_line_error(proc, 65, "more data follows the 3 frames")
    assert snapshot(arrays) == before


@pytest.mark.parametrize("tail", [b"\n", b"\x00", b"x" * 100])
def test_bytes_after_a_piped_array_are_refused(arrays: Path, tail: bytes) -> None:
    before = snapshot(arrays)
    proc = subprocess.run(
        [sys.executable, "-m", "nvenc_cli", "encode", "-", "-o", "s.mp4"],
        input=(arrays / "a.npy").read_bytes() + tail,
        cwd=arrays,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
    one_line_error(proc, 65, "more data follows")
    assert snapshot(arrays) == before


def test_a_piped_array_read_in_part_on_request_is_encoded(arrays: Path) -> None:
    data = (arrays / "a.npy").read_bytes() + (arrays / "b.npy").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "nvenc_cli", "encode", "-", "-o", "s.mp4", "--frames", "2", *FAST],
        input=data,
        cwd=arrays,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(decode(arrays / "s.mp4")[0]) == 2


@pytest.mark.parametrize("door", ["folder", "glob"])
def test_a_numbering_gap_in_a_folder_or_glob_is_announced(tmp_path: Path, door: str) -> None:
    """The printf form refuses a gap; a folder or glob encodes what is there and says what
    is missing (the video runs on without those frames)."""
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 3, 5, 6, 9):
        Image.fromarray(np.full((16, 16, 3), i * 20, np.uint8)).save(folder / f"frame_{i:04d}.png")
    spec = str(folder) if door == "folder" else str(folder / "*.png")
    done = run_cli("encode", spec, "-o", tmp_path / "out.mp4", "--json")
    assert done.returncode == 0, done.stderr.decode()
    notices = json.loads(done.stdout)["notices"]
    assert any("3 number(s) are missing (first: frame_0004.png)" in n for n in notices), notices
    assert "frame_%04d.png refuses gaps" in done.stderr.decode()
    assert decode(tmp_path / "out.mp4")[0].shape[0] == 6
    printf = run_cli("encode", str(folder / "frame_%04d.png"), "-o", tmp_path / "p.mp4")
    assert printf.returncode == 65 and "gap" in printf.stderr.decode()
    whole = tmp_path / "whole"
    whole.mkdir()
    for i in range(1, 5):
        Image.fromarray(np.full((16, 16, 3), i * 20, np.uint8)).save(whole / f"frame_{i:04d}.png")
    quiet = run_cli("encode", whole, "-o", tmp_path / "w.mp4", "--json")
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["notices"] == []


def test_an_npz_audio_entry_left_out_is_announced(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "av.npz", video=np.zeros((30, 48, 64, 3), np.uint8),
        audio=np.zeros((1, 48000), np.float32), sample_rate=np.array(48000),
    )  # fmt: skip
    done = run_cli("encode", tmp_path / "av.npz", "--key", "video", "-o", tmp_path / "a.mp4", "--json")
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["audio"] is None
    assert any("'audio' entry is not added" in n for n in report["notices"]), report["notices"]
    taken = run_cli(
        "encode",
        tmp_path / "av.npz",
        "--key",
        "video",
        "--audio-key",
        "audio",
        "-o",
        tmp_path / "b.mp4",
        "--json",
    )
    assert taken.returncode == 0 and json.loads(taken.stdout)["audio"] is not None
    assert not any("not added" in n for n in json.loads(taken.stdout)["notices"])
