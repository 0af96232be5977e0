"""Inputs and outputs in object storage, against a local S3 server (moto, 127.0.0.1).

Every output object is downloaded and decoded (frame count, size, PSNR against the
source); every failure is checked for its exit code, for the absence of any object it
might have left, and for temporary files left on the local disk."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nvenc_cli import storage, testsrc
from tests.conftest import ROOT, decode, psnr, run_cli

pytest.importorskip("s3fs", reason="object storage needs the cloud extra: pip install -e '.[test]'")
pytest.importorskip("moto.server", reason="the local S3 server is moto's: pip install 'moto[server]'")

from tests.moto_server import aws_env, free_port, moto_server, s3

W, H, N = 96, 64, 12
BUCKET = "clips"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture()
def store(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A fresh bucket (and the AWS_* settings pointing at the server), plus a private
    TMPDIR, so a test sees every temporary file an encode leaves behind."""
    for name, value in aws_env(endpoint).items():
        monkeypatch.setenv(name, value)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    fs = s3(endpoint)
    if fs.exists(BUCKET):
        fs.rm(BUCKET, recursive=True)
    fs.mkdir(BUCKET)
    return fs


def put_array(fs: Any, key: str, frames: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, frames)
    fs.pipe_file(f"{BUCKET}/{key}", buffer.getvalue())
    return f"s3://{BUCKET}/{key}"


def clip(shift: int = 0, n: int = N) -> np.ndarray:
    return np.ascontiguousarray(np.roll(testsrc.batch(W, H, n), shift, axis=2))


def fetch_decoded(fs: Any, key: str, tmp_path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    local = tmp_path / ("got-" + key.replace("/", "_"))
    fs.get_file(f"{BUCKET}/{key}", str(local))
    return decode(local)


def assert_same_video(fs: Any, key: str, source: np.ndarray, tmp_path: Path) -> dict[str, Any]:
    frames, facts = fetch_decoded(fs, key, tmp_path)
    assert frames.shape == source.shape
    assert psnr(frames, source) > 30
    return facts


def objects(fs: Any, prefix: str = "out") -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.find(f"{BUCKET}/{prefix}"))


def spy_ranged_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record every ranged read of input objects (small 64 KiB blocks) and fail any copy
    of an input object to the local disk; returns the list the reads are added to."""
    ranges: list[tuple[int, int]] = []
    real_open = storage.open_input

    def spied(name: str) -> tuple[Any, int]:
        fh, size = real_open(name)
        fetch = fh.cache.fetcher
        fh.cache.fetcher = lambda start, end: ranges.append((start, end)) or fetch(start, end)
        return fh, size

    def no_copy(self: Any, name: str) -> str:
        raise AssertionError(f"{name} was copied in")

    monkeypatch.setattr(storage, "open_input", spied)
    monkeypatch.setattr(storage.Staging, "local", no_copy)
    monkeypatch.setattr(storage, "CHUNK", 64 << 10)
    return ranges


def leftovers() -> list[str]:
    return sorted(os.listdir(os.environ["TMPDIR"]))


def test_npy_from_s3_to_s3(store: Any, tmp_path: Path) -> None:
    source = clip()
    url = put_array(store, "in/a.npy", source)
    done = run_cli("encode", url, "-o", f"s3://{BUCKET}/out/a.mp4", "--json", "--crf", "12")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["input"] == url and report["output"] == f"s3://{BUCKET}/out/a.mp4"
    assert report["frames"] == N
    facts = assert_same_video(store, "out/a.mp4", source, tmp_path)
    assert (facts["width"], facts["height"]) == (W, H)
    assert report["bytes"] == store.size(f"{BUCKET}/out/a.mp4")
    assert leftovers() == []


def test_api_encode_and_video_encoder_to_file(store: Any, tmp_path: Path) -> None:
    import nvenc_cli
    from nvenc_cli.api import VideoEncoder

    source = clip(8)
    url = put_array(store, "in/api.npy", source)
    nvenc_cli.encode(url, f"s3://{BUCKET}/out/api.mkv", frame_rate=24, crf=12)
    assert_same_video(store, "out/api.mkv", source, tmp_path)
    torch = pytest.importorskip("torch")
    tensor = torch.from_numpy(source).permute(0, 3, 1, 2).contiguous()
    VideoEncoder(tensor, frame_rate=24).to_file(f"s3://{BUCKET}/out/enc.mp4", crf=12)
    assert_same_video(store, "out/enc.mp4", source, tmp_path)
    with pytest.raises(OSError):
        VideoEncoder(tensor, frame_rate=24).to_file(f"s3://{BUCKET}/out/enc.mp4", overwrite=False)
    assert leftovers() == []


def test_npy_objects_are_read_in_place_by_ranged_reads(
    store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A .npy object is never copied to the local disk: each window is a ranged read."""
    from nvenc_cli.encoding import encode_path
    from nvenc_cli.options import EncodeOptions

    source = clip(n=40)
    url = put_array(store, "in/r.npy", source)
    ranges = spy_ranged_reads(monkeypatch)
    encode_path(url, str(tmp_path / "r.mp4"), EncodeOptions(crf=12), inputs=None)
    frames, _ = decode(tmp_path / "r.mp4")
    assert frames.shape == source.shape and psnr(frames, source) > 30
    assert len(ranges) > 4  # many windows, each its own request
    assert max(end - start for start, end in ranges) < source.nbytes / 4


def test_file_url_is_a_local_path(tmp_path: Path) -> None:
    source = clip()
    np.save(tmp_path / "f.npy", source)
    done = run_cli("encode", f"file://{tmp_path}/f.npy", "-o", f"file://{tmp_path}/f.mp4", "--crf", "12")
    assert done.returncode == 0, done.stderr
    frames, _ = decode(tmp_path / "f.mp4")
    assert frames.shape == source.shape and psnr(frames, source) > 30


def test_template_to_s3_with_skip_existing(store: Any, tmp_path: Path) -> None:
    sources = {f"t{i}": clip(16 * i) for i in range(3)}
    urls = [put_array(store, f"in/{name}.npy", frames) for name, frames in sources.items()]
    template = f"s3://{BUCKET}/out/{{stem}}.mp4"
    done = run_cli("encode", *urls, "-o", template, "-j", "2", "--crf", "12")
    assert done.returncode == 0, done.stderr
    assert objects(store) == [f"{BUCKET}/out/{name}.mp4" for name in sources]
    for name, frames in sources.items():
        assert_same_video(store, f"out/{name}.mp4", frames, tmp_path)
    before = {key: store.info(key)["ETag"] for key in objects(store)}
    store.rm(f"{BUCKET}/out/t1.mp4")
    again = run_cli("encode", *urls, "-o", template, "--skip-existing", "--json", "--crf", "12")
    assert again.returncode == 0, again.stderr
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    status = {Path(line["input"]).stem: line["status"] for line in lines if line["type"] == "job"}
    assert status == {"t0": "skipped", "t1": "ok", "t2": "skipped"}
    after = {key: store.info(key)["ETag"] for key in objects(store)}
    assert after[f"{BUCKET}/out/t0.mp4"] == before[f"{BUCKET}/out/t0.mp4"]
    assert_same_video(store, "out/t1.mp4", sources["t1"], tmp_path)


def test_overwrite_checks_the_remote_object(store: Any, tmp_path: Path) -> None:
    first, second = clip(0), clip(40)
    url_a, url_b = put_array(store, "in/o1.npy", first), put_array(store, "in/o2.npy", second)
    out = f"s3://{BUCKET}/out/o.mp4"
    assert run_cli("encode", url_a, "-o", out, "--crf", "12").returncode == 0
    refused = run_cli("encode", url_b, "-o", out, "--crf", "12")
    assert refused.returncode == 73
    assert refused.stderr.decode().strip() == f"nvenc: error: {out}: already exists (use -y to overwrite)"
    assert_same_video(store, "out/o.mp4", first, tmp_path)  # untouched
    replaced = run_cli("encode", url_b, "-o", out, "-y", "--crf", "12")
    assert replaced.returncode == 0, replaced.stderr
    assert_same_video(store, "out/o.mp4", second, tmp_path)
    assert leftovers() == []


def test_manifest_in_s3_with_s3_jobs(store: Any, tmp_path: Path) -> None:
    sources = [clip(24 * i) for i in range(3)]
    rows = []
    for i, frames in enumerate(sources):
        url = put_array(store, f"in/m{i}.npy", frames)
        rows.append(json.dumps({"input": url, "output": f"s3://{BUCKET}/out/m{i}.mp4", "crf": 12}))
    store.pipe_file(f"{BUCKET}/jobs.jsonl", ("\n".join(rows) + "\n").encode())
    done = run_cli("batch", f"s3://{BUCKET}/jobs.jsonl", "-j", "2")
    assert done.returncode == 0, done.stderr
    for i, frames in enumerate(sources):
        assert_same_video(store, f"out/m{i}.mp4", frames, tmp_path)
    missing = run_cli("batch", f"s3://{BUCKET}/nope.jsonl")
    assert missing.returncode == 66
    assert "nope.jsonl" in missing.stderr.decode()


def _wav(path: Path, seconds: float, rate: int = 48000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def test_audio_and_timestamps_from_s3(store: Any, tmp_path: Path) -> None:
    import av

    source = clip()
    url = put_array(store, "in/s.npy", source)
    _wav(tmp_path / "s.wav", N / 24)
    store.put_file(str(tmp_path / "s.wav"), f"{BUCKET}/in/s.wav")
    times = [i / 24 for i in range(N)]
    times[-1] += 0.5  # a held last frame: the timestamps are really read
    store.pipe_file(f"{BUCKET}/in/t.txt", "\n".join(f"{t:.6f}" for t in times).encode())
    done = run_cli(
        "encode", url, "-o", f"s3://{BUCKET}/out/s.mkv", "--crf", "12",
        "--audio", f"s3://{BUCKET}/in/s.wav", "--timestamps", f"s3://{BUCKET}/in/t.txt",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    local = tmp_path / "s.mkv"
    store.get_file(f"{BUCKET}/out/s.mkv", str(local))
    frames, facts = decode(local)
    assert frames.shape == source.shape and psnr(frames, source) > 30
    seconds = [float(p * facts["time_base"]) for p in facts["pts"]]
    assert seconds[-1] == pytest.approx(times[-1], abs=0.002)
    with av.open(str(local)) as container:
        assert len(container.streams.audio) == 1
        heard = sum(f.samples for f in container.decode(audio=0))
    assert heard > 0.9 * 48000 * N / 24
    assert leftovers() == []


def test_missing_input_object_or_bucket_is_66(store: Any) -> None:
    for url in (f"s3://{BUCKET}/in/none.npy", "s3://no-such-bucket/in/a.npy"):
        done = run_cli("encode", url, "-o", f"s3://{BUCKET}/out/x.mp4")
        assert done.returncode == 66, done.stderr
        assert done.stderr.decode() == f"nvenc: error: {url}: no such object (or bucket)\n"
    assert objects(store) == []
    assert leftovers() == []


def test_missing_output_bucket_is_73_before_reading(store: Any) -> None:
    url = put_array(store, "in/a.npy", clip())
    done = run_cli("encode", url, "-o", "s3://no-such-bucket/out/x.mp4")
    assert done.returncode == 73
    assert "no such bucket" in done.stderr.decode()
    assert not store.exists("no-such-bucket")
    assert leftovers() == []


def test_http_output_is_refused(store: Any) -> None:
    url = put_array(store, "in/a.npy", clip())
    done = run_cli("encode", url, "-o", "https://example.invalid/x.mp4")
    assert done.returncode == 2
    assert "read-only" in done.stderr.decode()


def test_bad_credentials_leave_nothing_and_hide_the_secret(tmp_path: Path, store: Any) -> None:
    secret = "Zz9SuperSecretValueZz9"
    with moto_server(tmp_path / "auth.log", auth=True) as guarded:
        env = {**aws_env(guarded, secret=secret), "TMPDIR": os.environ["TMPDIR"]}
        np.save(tmp_path / "a.npy", clip())
        read = run_cli("encode", "s3://clips/in/a.npy", "-o", str(tmp_path / "a.mp4"), "-v", env=env)
        assert read.returncode == 66
        assert "access denied" in read.stderr.decode()
        assert not (tmp_path / "a.mp4").exists()
        write = run_cli("encode", str(tmp_path / "a.npy"), "-o", "s3://clips/out/a.mp4", "-v", env=env)
        assert write.returncode == 73
        assert "access denied" in write.stderr.decode()
        for done in (read, write):
            assert secret.encode() not in done.stderr + done.stdout
    assert objects(store) == []
    assert leftovers() == []


def test_secrets_in_urls_are_redacted_everywhere(store: Any, tmp_path: Path) -> None:
    secret = "S3cr3tSignatureValue"
    url = f"s3://{BUCKET}/in/none.npy?X-Amz-Signature={secret}"
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"input": url, "output": f"s3://{BUCKET}/out/r.mp4"}) + "\n")
    progress = tmp_path / "progress.txt"
    done = run_cli("batch", str(manifest), "--json", "--progress", str(progress))
    assert done.returncode == 66
    assert secret.encode() not in done.stdout + done.stderr
    assert secret not in progress.read_text()
    assert b"X-Amz-Signature=***" in done.stdout
    assert storage.redact(f"az://c/x.npy?sv=1&sig={secret}&se=2") == "az://c/x.npy?sv=***&sig=***&se=***"


def test_secrets_in_http_urls_are_redacted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from nvenc_cli.encoding import encode_path
    from nvenc_cli.errors import InputMissingError
    from nvenc_cli.options import EncodeOptions

    pytest.importorskip("aiohttp")
    monkeypatch.setattr(storage, "RETRY_DELAY", 0.01)
    secret = "S3cr3tPassword"
    url = f"http://user:{secret}@127.0.0.1:{free_port()}/a.npy?token={secret}&x=1"
    with pytest.raises(InputMissingError) as caught:
        encode_path(url, str(tmp_path / "x.mp4"), EncodeOptions())
    message = str(caught.value)
    assert secret not in message
    assert message.startswith("http://***@127.0.0.1:") and "a.npy?token=***&x=1: cannot read it (" in message
    assert not (tmp_path / "x.mp4").exists()


def test_transient_errors_are_retried_a_bounded_number_of_times() -> None:
    calls, slept = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset by peer")
        return "ok"

    assert storage.with_retries(flaky, sleep=slept.append) == "ok"
    assert slept == [storage.RETRY_DELAY, 2 * storage.RETRY_DELAY]
    calls.clear()

    def down() -> None:
        calls.append(1)
        raise TimeoutError("timed out")

    with pytest.raises(TimeoutError):
        storage.with_retries(down, sleep=slept.append)
    assert len(calls) == storage.RETRIES + 1
    calls.clear()

    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("no such key")

    with pytest.raises(FileNotFoundError):
        storage.with_retries(missing, sleep=slept.append)
    assert len(calls) == 1


def test_upload_failure_is_74_and_leaves_no_object(
    store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from nvenc_cli.encoding import encode_path
    from nvenc_cli.errors import WriteError
    from nvenc_cli.options import EncodeOptions

    url = put_array(store, "in/u.npy", clip())
    tries = []

    def broken(lpath: str, rpath: str, **kwargs: Any) -> None:
        tries.append(rpath)
        assert os.path.getsize(lpath) > 0  # the whole file was there to send
        raise ConnectionError("connection reset during upload")

    fs, _ = storage._filesystem(f"s3://{BUCKET}/out/u.mp4")  # fsspec's cached instance
    monkeypatch.setattr(fs, "put_file", broken)
    monkeypatch.setattr(storage, "RETRY_DELAY", 0.01)
    with pytest.raises(WriteError) as caught:
        encode_path(url, f"s3://{BUCKET}/out/u.mp4", EncodeOptions(fps="24"))
    assert caught.value.exit_code == 74
    assert len(tries) == storage.RETRIES + 1
    assert str(caught.value).startswith(f"s3://{BUCKET}/out/u.mp4: upload failed after 4 tries")
    assert objects(store) == []
    assert leftovers() == []


def test_server_gone_before_upload_is_74(tmp_path: Path, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store goes away while the clip is encoded: the upload fails (74), nothing is
    left in the store nor on the local disk."""
    np.save(tmp_path / "long.npy", clip(n=240))
    with moto_server(tmp_path / "gone.log") as doomed:
        env = {**aws_env(doomed), "TMPDIR": os.environ["TMPDIR"], "AWS_MAX_ATTEMPTS": "1"}
        s3(doomed).mkdir("gone")
        child = subprocess.Popen(
            [sys.executable, "-m", "nvenc_cli", "encode", str(tmp_path / "long.npy"), "-o",
             "s3://gone/out.mp4", "--preset", "veryslow", "-x", "threads=1"],
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not any(Path(os.environ["TMPDIR"]).glob("nvenc-url-*/out*/.*.part")):  # encoding
                assert child.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        except BaseException:
            child.kill()
            raise
    # the server is gone now, with the encode under way: past the output checks
    try:
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 74, err
    assert b"upload failed" in err
    assert leftovers() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_leaves_no_object(store: Any, tmp_path: Path, sig: int) -> None:
    url = put_array(store, "in/long.npy", clip(n=240))
    child = subprocess.Popen(
        [sys.executable, "-m", "nvenc_cli", "encode", url, "-o", f"s3://{BUCKET}/out/long.mp4",
         "--preset", "veryslow", "-x", "threads=1"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(Path(os.environ["TMPDIR"]).glob("nvenc-url-*/out*/.*.part")):  # encoding
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(sig)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 128 + sig, err
    assert objects(store) == []
    assert leftovers() == []


def test_peak_memory_stays_flat_for_a_large_object(store: Any, tmp_path: Path) -> None:
    """An object 3x larger costs about the same memory: it is read in windows by ranged
    requests, never held whole."""
    # Both fill several 24 MiB windows of frames: what differs is only the object's size.
    small = put_array(store, "in/small.npy", np.zeros((48, 360, 640, 3), np.uint8))
    large = put_array(store, "in/large.npy", np.zeros((160, 360, 640, 3), np.uint8))  # 111 MB
    opts = ["--preset", "ultrafast", "-x", "threads=1"]
    base, _ = _watched_run(["encode", small, "-o", f"s3://{BUCKET}/out/small.mp4", *opts], tmp_path)
    peak, largest = _watched_run(["encode", large, "-o", f"s3://{BUCKET}/out/large.mp4", *opts], tmp_path)
    print(f"npy object peak RSS: small {base} KiB, large {peak} KiB; largest temp file {largest} B")
    assert peak - base < 32 * 1024, (base, peak)  # far below the 77 MB the inputs differ by


def _write_video(path: Path, frames: np.ndarray, codec: str = "libx264", sound: bool = False) -> None:
    """A video made by PyAV's muxer as FFmpeg leaves it: an MP4's index (moov) after its
    samples, so a reader must seek to the end and back."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=24)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24" if codec == "rawvideo" else "yuv444p"
        if codec == "libx264":
            stream.options = {"crf": "0", "preset": "ultrafast"}
        audio = out.add_stream("aac", rate=48000, layout="mono") if sound else None
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
        if audio is not None:
            t = np.arange(48000 * len(frames) // 24) / 48000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[np.newaxis]
            for at in range(0, samples.shape[1], 1024):
                piece = av.AudioFrame.from_ndarray(samples[:, at : at + 1024], format="fltp", layout="mono")
                piece.sample_rate, piece.pts = 48000, at
                out.mux(audio.encode(piece))
            out.mux(audio.encode())


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_video_objects_are_read_in_place_through_file_objects(
    store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ext: str
) -> None:
    """A video object is decoded by PyAV through file objects on the store (no copy on
    disk): the output is the very output of the same file encoded from local disk."""
    source = clip(n=30)
    local = tmp_path / f"v{ext}"
    _write_video(local, source, sound=True)
    data = local.read_bytes()
    if ext == ".mp4":
        assert data.index(b"moov") > data.index(b"mdat")  # the index comes last
    store.put_file(str(local), f"{BUCKET}/in/v{ext}")
    url = f"s3://{BUCKET}/in/v{ext}"
    opts = ["--crf", "12", "-x", "threads=1"]
    ref = run_cli("encode", str(local), "-o", str(tmp_path / "ref.mkv"), *opts)
    assert ref.returncode == 0, ref.stderr
    expected, ref_facts = decode(tmp_path / "ref.mkv")
    assert expected.shape == source.shape and psnr(expected, source) > 30
    to_s3 = run_cli("encode", url, "-o", f"s3://{BUCKET}/out/v.mkv", "--json", *opts)
    assert to_s3.returncode == 0, to_s3.stderr
    assert json.loads(to_s3.stdout)["frames"] == len(source)
    frames, facts = fetch_decoded(store, "out/v.mkv", tmp_path)
    assert np.array_equal(frames, expected) and facts["pts"] == ref_facts["pts"]
    to_file = run_cli("encode", url, "-o", str(tmp_path / "got.mkv"), *opts)
    assert to_file.returncode == 0, to_file.stderr
    frames, _ = decode(tmp_path / "got.mkv")
    assert np.array_equal(frames, expected)
    import av

    with av.open(str(tmp_path / "got.mkv")) as container:  # the input's own sound came along
        assert len(container.streams.audio) == 1
        assert sum(f.samples for f in container.decode(audio=0)) > 0.9 * 48000 * len(source) / 24
    assert leftovers() == []

    # In the API too, no copy is made, and every file object opened is closed.
    from nvenc_cli.encoding import encode_path
    from nvenc_cli.options import EncodeOptions

    opened: list[Any] = []
    real = storage.media_input

    def spied(name: str) -> Any:
        got = real(name)
        opened.append(got)
        return got

    def no_copy(self: Any, name: str) -> str:
        raise AssertionError(f"{name} was copied in")

    monkeypatch.setattr(storage, "media_input", spied)
    monkeypatch.setattr(storage.Staging, "local", no_copy)
    encode_path(url, str(tmp_path / "api.mkv"), EncodeOptions(crf=12), inputs=None)
    frames, _ = decode(tmp_path / "api.mkv")
    assert frames.shape == source.shape and psnr(frames, source) > 30
    assert len(opened) >= 2 and all(fh.closed for fh in opened)  # the decode, the sound, ...


def test_missing_or_broken_video_object(store: Any) -> None:
    missing = run_cli("encode", f"s3://{BUCKET}/in/none.mp4", "-o", f"s3://{BUCKET}/out/n.mp4")
    assert missing.returncode == 66
    assert (
        missing.stderr.decode().strip()
        == f"nvenc: error: s3://{BUCKET}/in/none.mp4: no such object (or bucket)"
    )
    store.pipe_file(f"{BUCKET}/in/junk.mp4", b"not a video at all" * 100)
    junk = run_cli("encode", f"s3://{BUCKET}/in/junk.mp4", "-o", f"s3://{BUCKET}/out/n.mp4")
    assert junk.returncode == 65
    assert junk.stderr.decode().startswith(f"nvenc: error: s3://{BUCKET}/in/junk.mp4: not a readable video")
    assert objects(store) == [] and leftovers() == []


_PEAK_AT_EXIT = """
import os, runpy, sys

report, leave = sys.argv.pop(1), os._exit

def peak_then_leave(code):  # the CLI leaves by os._exit once its outcome is decided
    with open("/proc/self/status") as status, open(report, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
    leave(code)

os._exit = peak_then_leave
sys.argv[0] = "nvenc"
runpy.run_module("nvenc_cli", run_name="__main__")
"""


def _watched_run(args: list[str], tmp_path: Path) -> tuple[int, int]:
    """(peak resident memory in KiB, largest file seen in TMPDIR meanwhile) of one CLI
    run. The peak is the process's own ``VmHWM`` read as it exits: ``ru_maxrss`` of a
    child started by this large test process counts this process's memory at the fork."""
    scratch = Path(os.environ["TMPDIR"])
    report = tmp_path / "peak.txt"
    child = subprocess.Popen(
        [sys.executable, "-c", _PEAK_AT_EXIT, str(report), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    largest = 0
    while child.poll() is None:
        for found in scratch.rglob("*"):
            with contextlib.suppress(OSError):  # a file removed meanwhile
                largest = max(largest, found.stat().st_size)
        time.sleep(0.02)
    err = child.stderr.read() if child.stderr else b""
    child.stderr.close()  # type: ignore[union-attr]
    assert child.returncode == 0, err
    return int(report.read_text()), largest


def test_video_object_memory_stays_flat_and_nothing_is_copied(store: Any, tmp_path: Path) -> None:
    """A video object 3x larger costs about the same memory, and no file near its size
    appears in the temporary folder while it is encoded: it is never copied to disk."""
    rng = np.random.default_rng(3)
    sizes = {}
    for name, count in (("small", 48), ("large", 160)):  # rawvideo in NUT: large and cheap
        frames = rng.integers(0, 256, (count, 360, 640, 3), np.uint8)
        _write_video(tmp_path / f"{name}.nut", frames, codec="rawvideo")
        sizes[name] = (tmp_path / f"{name}.nut").stat().st_size
        store.put_file(str(tmp_path / f"{name}.nut"), f"{BUCKET}/in/{name}.nut")
    assert sizes["large"] > 80 << 20
    opts = ["--preset", "ultrafast", "-x", "threads=1"]
    base, _ = _watched_run(
        ["encode", f"s3://{BUCKET}/in/small.nut", "-o", str(tmp_path / "s.mp4"), *opts], tmp_path
    )
    peak, largest = _watched_run(
        ["encode", f"s3://{BUCKET}/in/large.nut", "-o", str(tmp_path / "l.mp4"), *opts], tmp_path
    )
    print(f"video object peak RSS: small {base} KiB, large {peak} KiB; largest temp file {largest} B")
    assert largest < sizes["large"] // 8
    assert peak - base < 32 * 1024, (base, peak)  # far below the ~77 MB the inputs differ by
    frames, _ = decode(tmp_path / "l.mp4")
    assert frames.shape == (160, 360, 640, 3)


def _samples(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


@pytest.mark.parametrize("deflated", [False, True])
def test_npz_objects_are_read_in_place_by_ranged_reads(
    store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deflated: bool
) -> None:
    """A .npz object is read where it lies: zipfile over ranged reads, its frames member
    read a window at a time, its sound entry beside them too; no copy on disk."""
    grain = np.random.default_rng(5).integers(-6, 7, (40, H, W, 3))  # not squeezed away by deflate
    source = np.clip(clip(n=40) + grain, 0, 255).astype(np.uint8)
    t = np.arange(48000 * 40 // 24) / 48000
    tone = (0.25 * np.sin(2 * np.pi * 600 * t)).astype(np.float32)[np.newaxis]
    buffer = io.BytesIO()
    (np.savez_compressed if deflated else np.savez)(
        buffer, video=source, audio=tone, sample_rate=np.int64(48000)
    )
    store.pipe_file(f"{BUCKET}/in/z.npz", buffer.getvalue())
    url = f"s3://{BUCKET}/in/z.npz"
    args = ["--key", "video", "--audio-key", "audio", "--audio-codec", "flac", "--crf", "12"]
    done = run_cli("encode", url, "-o", f"s3://{BUCKET}/out/z.mkv", "--json", *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frames"] == len(source)
    frames, _ = fetch_decoded(store, "out/z.mkv", tmp_path)
    np.savez(tmp_path / "z.npz", video=source, audio=tone, sample_rate=np.int64(48000))
    ref = run_cli("encode", str(tmp_path / "z.npz"), "-o", str(tmp_path / "ref.mkv"), *args)
    assert ref.returncode == 0, ref.stderr
    expected, _ = decode(tmp_path / "ref.mkv")
    assert frames.shape == source.shape and psnr(frames, source) > 30 and np.array_equal(frames, expected)
    heard, kept = (_samples(tmp_path / name) for name in ("got-out_z.mkv", "ref.mkv"))
    assert np.array_equal(heard, kept)  # the sound as from local disk (cut to the video's length)
    level = heard / 2.0**31  # FLAC at 16 bits comes back as s32
    assert heard.shape[1] > 48000 and np.abs(level - tone[:, : heard.shape[1]]).max() < 1e-4
    assert leftovers() == []

    from nvenc_cli.encoding import InputOptions, encode_path
    from nvenc_cli.options import EncodeOptions

    ranges = spy_ranged_reads(monkeypatch)
    encode_path(url, str(tmp_path / "r.mp4"), EncodeOptions(crf=12), inputs=InputOptions(key="video"))
    frames, _ = decode(tmp_path / "r.mp4")
    assert frames.shape == source.shape and psnr(frames, source) > 30
    assert len(ranges) > 4  # many windows, each its own request
    assert max(end - start for start, end in ranges) < source.nbytes / 4


def test_audio_object_is_read_in_place(store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--audio`` naming a sound object: FFmpeg reads it through a file object, the
    same sound comes out as from the local file, and nothing is copied in."""
    from nvenc_cli.audio.plan import AudioOptions
    from nvenc_cli.encoding import encode_path
    from nvenc_cli.options import EncodeOptions

    source = clip()
    _wav(tmp_path / "s.wav", N / 24)
    store.put_file(str(tmp_path / "s.wav"), f"{BUCKET}/in/s.wav")
    np.save(tmp_path / "a.npy", source)

    def no_copy(self: Any, name: str) -> str:
        raise AssertionError(f"{name} was copied in")

    def run(sound: str, out: str) -> np.ndarray:
        audio = AudioOptions(file=sound, codec="flac")
        encode_path(str(tmp_path / "a.npy"), str(tmp_path / out), EncodeOptions(fps="24", audio=audio))
        return _samples(tmp_path / out)

    expected = run(str(tmp_path / "s.wav"), "ref.mkv")
    monkeypatch.setattr(storage.Staging, "local", no_copy)
    heard = run(f"s3://{BUCKET}/in/s.wav", "got.mkv")
    assert heard.shape[1] == N * 48000 // 24 and np.array_equal(heard, expected)


def test_y4m_object_header_and_cut(store: Any, tmp_path: Path) -> None:
    """A y4m object's own header (its rate) and size (a cut-off last frame) are read from
    the store as from a file."""
    source = clip()
    import av

    local = tmp_path / "v.y4m"

    with av.open(str(local), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        for frame in source:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    data = local.read_bytes()
    store.pipe_file(f"{BUCKET}/in/v.y4m", data)
    store.pipe_file(f"{BUCKET}/in/cut.y4m", data[:-100])
    done = run_cli(
        "encode", f"s3://{BUCKET}/in/v.y4m", "-o", str(tmp_path / "v.mkv"), "--json", "--crf", "12"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    frames, facts = decode(tmp_path / "v.mkv")
    assert report["frames"] == N and frames.shape == source.shape and psnr(frames, source) > 30
    assert facts["rate"] == 24
    cut = run_cli("encode", f"s3://{BUCKET}/in/cut.y4m", "-o", str(tmp_path / "c.mkv"))
    assert cut.returncode == 65
    assert f"s3://{BUCKET}/in/cut.y4m: the y4m stream ends inside frame {N - 1}" in cut.stderr.decode()
    assert not (tmp_path / "c.mkv").exists()
