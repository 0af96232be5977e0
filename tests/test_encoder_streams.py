"""torchcodec's ``Encoder`` beyond one video stream: several video streams in one file,
fragmented MP4 readable while it is written, loud samples encoded as torchcodec encodes
them, and float frame rates as decoders report them.

Every output is decoded with PyAV and compared with what was fed in.
"""

from __future__ import annotations

import io
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nvenc_cli import AudioEncoder, Encoder, VideoEncoder  # noqa: E402


def gradient(count: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth moving frames (PSNR-friendly for any codec), distinct per seed."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((count, 3, height, width), np.uint8)
    for i in range(count):
        out[i, 0] = (x * 255 // max(1, width - 1) + 9 * i + seed) % 256
        out[i, 1] = (y * 255 // max(1, height - 1) + 5 * i) % 256
        out[i, 2] = (x + y + 40 * seed) % 256
    return torch.from_numpy(out)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def decode_stream(source: Path | bytes, index: int) -> tuple[np.ndarray, list[float]]:
    """RGB frames (N, 3, H, W) and their times in seconds, of the stream at ``index``."""
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
        stream = container.streams[index]
        assert stream.type == "video"
        got = [(f.to_ndarray(format="rgb24"), float(f.pts * f.time_base)) for f in container.decode(stream)]
    return np.stack([g.transpose(2, 0, 1) for g, _ in got]), [t for _, t in got]


@pytest.mark.parametrize("method", ["file", "file_like"])
def test_two_video_streams_and_sound_in_one_file(tmp_path: Path, method: str) -> None:
    big, small = gradient(6, 64, 80, 1), gradient(9, 32, 48, 2)
    rate = 16000
    samples = torch.from_numpy(0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate, dtype=np.float32)[None])
    encoder = Encoder()
    first = encoder.add_video(height=64, width=80, frame_rate=10.0, pixel_format="yuv444p", crf=0)
    second = encoder.add_video(height=32, width=48, frame_rate=25.0, pixel_format="yuv444p", crf=0)
    audio = encoder.add_audio(sample_rate=rate, num_channels=1)
    buffer = io.BytesIO()
    out = tmp_path / "two.mp4"
    encoder.open_file(out) if method == "file" else encoder.open_file_like(buffer, format="mp4")
    first.add_frames(big[:2])
    second.add_frames(small[:5])
    audio.add_samples(samples[:, : rate // 2])
    first.add_frames(big[2:])
    audio.add_samples(samples[:, rate // 2 :])
    second.add_frames(small[5:])
    encoder.close()
    source: Path | bytes = out if method == "file" else buffer.getvalue()

    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
        assert [s.type for s in container.streams] == ["video", "video", "audio"]
        sizes = [(s.codec_context.width, s.codec_context.height) for s in container.streams.video]
    assert sizes == [(80, 64), (48, 32)]
    for index, sent, fps in ((0, big, 10), (1, small, 25)):
        got, times = decode_stream(source, index)
        assert got.shape == tuple(sent.shape)
        assert times == pytest.approx([i / fps for i in range(len(sent))])
        assert psnr(got, sent.numpy()) > 38  # lossless x264 4:4:4; only the RGB<->YUV rounding
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
        sound = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    assert abs(sound.shape[1] - rate) <= 2048  # AAC priming and padding


def test_a_failing_second_stream_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "two.mp4"
    encoder = Encoder()
    first = encoder.add_video(height=32, width=32, frame_rate=30.0)
    second = encoder.add_video(height=16, width=16, frame_rate=30.0)
    with pytest.raises(RuntimeError, match="same dimensions"), encoder.open_file(out):
        first.add_frames(gradient(3, 32, 32, 0))
        second.add_frames(gradient(3, 32, 32, 0))  # the first stream's size, not its own
    assert list(tmp_path.iterdir()) == []


FRAGMENTED = {
    "movflags": "+frag_every_frame+empty_moov",
    "flush_packets": "1",
    "threads": "1",
    "tune": "zerolatency",
}


def test_fragmented_mp4_can_be_read_at_its_path_while_it_is_written(tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    frames = gradient(10, 64, 64, 3)
    encoder = Encoder()
    video = encoder.add_video(
        height=64, width=64, frame_rate=30.0, crf=0, pixel_format="yuv444p", extra_options=FRAGMENTED
    )
    encoder.open_file(out)
    video.add_frames(frames[:5])
    assert out.exists() and not [p for p in tmp_path.iterdir() if p != out]  # no hidden copy beside it
    so_far, _ = decode_stream(out, 0)
    assert 1 <= len(so_far) <= 5
    assert psnr(so_far, frames[: len(so_far)].numpy()) > 38
    video.add_frames(frames[5:])
    encoder.close()
    got, times = decode_stream(out, 0)
    assert len(got) == 10 and times == pytest.approx([i / 30 for i in range(10)])
    assert psnr(got, frames.numpy()) > 38


def test_fragmented_mp4_is_removed_when_the_encode_fails(tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    encoder = Encoder()
    video = encoder.add_video(height=64, width=64, frame_rate=30.0, extra_options=FRAGMENTED)
    with pytest.raises(KeyError), encoder.open_file(out):
        video.add_frames(gradient(4, 64, 64, 0))
        assert out.exists()
        raise KeyError("the caller failed")
    assert list(tmp_path.iterdir()) == []


def test_unfragmented_mp4_still_appears_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "plain.mp4"
    encoder = Encoder()
    video = encoder.add_video(height=64, width=64, frame_rate=30.0, extra_options={"movflags": "+faststart"})
    encoder.open_file(out)
    video.add_frames(gradient(4, 64, 64, 0))
    assert not out.exists()
    encoder.close()
    assert len(decode_stream(out, 0)[0]) == 4


def test_loud_samples_warn_once_and_integer_codecs_clip_them() -> None:
    loud = torch.tensor([[0.5, 1.5, -2.0, 0.25]] * 1, dtype=torch.float32)
    buffer = io.BytesIO()
    encoder = Encoder()
    audio = encoder.add_audio(sample_rate=8000, num_channels=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with encoder.open_file_like(buffer, format="wav"):
            audio.add_samples(loud)
            audio.add_samples(loud)
    assert [str(w.message) for w in caught if "outside [-1, 1]" in str(w.message)] == [str(caught[0].message)]
    assert caught[0].category is UserWarning and "sample 1 of channel 0 is 1.5" in str(caught[0].message)
    with av.open(io.BytesIO(buffer.getvalue())) as container:
        got = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)[0]
    assert got.tolist() == [16384, 32767, -32768, 8192] * 2


def test_audio_encoder_takes_loud_samples_like_torchcodec(tmp_path: Path) -> None:
    loud = torch.tensor([[0.5, 1.5, -2.0, 0.25] * 50], dtype=torch.float32)
    with pytest.warns(UserWarning, match=r"outside \[-1, 1\]"):
        AudioEncoder(loud, sample_rate=8000).to_file(tmp_path / "x.flac")
    with av.open(str(tmp_path / "x.flac")) as container:
        stream = container.streams.audio[0]
        full_scale = 2.0 ** (8 * stream.codec_context.format.bytes - 1)
        got = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)[0] / full_scale
    assert got[:4] == pytest.approx([0.5, 1.0, -1.0, 0.25], abs=1e-6)  # 1.5 and -2.0 clipped


@pytest.mark.parametrize("rate", [30000 / 1001, 24000 / 1001, 60000 / 1001, 12.5])
def test_a_float_rate_from_a_decoder_is_the_fraction_it_stands_for(tmp_path: Path, rate: float) -> None:
    out = tmp_path / "rate.mp4"
    VideoEncoder(gradient(3, 32, 32, 0), frame_rate=rate).to_file(out)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == Fraction(rate).limit_denominator(1001)
