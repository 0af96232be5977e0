"""The Python API's sound: torchcodec's ``Encoder``/``AudioEncoder`` and ``open_writer(audio=)``.

Outputs are decoded with PyAV and checked sample by sample (lossless codecs) or by a sine's
frequency and level (lossy ones).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from tests.test_audio import decode_audio, peak_and_level, sine, video_duration, write_wav

torch = pytest.importorskip("torch")

import nvenc_cli  # noqa: E402
from nvenc_cli import AudioEncoder, Encoder  # noqa: E402


def frames(count: int, size: int = 64) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8)


def tone(freq: float, rate: int, seconds: float, channels: int = 1, level: float = 0.5) -> torch.Tensor:
    return torch.from_numpy(sine(freq, rate, seconds, channels, level))


def demux_order(data: bytes | Path) -> list[tuple[str, float]]:
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with av.open(source) as container:
        return [(p.stream.type, float(p.dts * p.time_base)) for p in container.demux() if p.dts is not None]


# -- Encoder ----------------------------------------------------------------------------------
def test_encoder_video_and_audio_to_mp4(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    samples = tone(440, 16000, 1.0, channels=2, level=0.4)
    encoder = Encoder()
    video = encoder.add_video(height=64, width=64, frame_rate=30.0, crf=18)
    audio = encoder.add_audio(sample_rate=16000, num_channels=2)
    with encoder.open_file(out):
        for i in range(0, 30, 7):  # batch sizes that match nothing in particular
            video.add_frames(frames(min(7, 30 - i)))
            audio.add_samples(samples[:, i * 533 : (i + 7) * 533])
        audio.add_samples(samples[:, 35 * 533 :])
    assert video_duration(out) == pytest.approx(1.0)
    got, facts = decode_audio(out)
    assert facts["codec"] == "aac" and facts["rate"] == 16000 and facts["channels"] == 2
    assert abs(facts["duration"] - 1.0) <= 1024 / 16000
    for channel, freq in ((0, 440), (1, 880)):
        found, level = peak_and_level(got[channel], 16000)
        assert abs(found - freq) < 4
        assert abs(20 * np.log10(level / (0.4 / np.sqrt(2)))) < 0.5


def test_encoder_interleaves_whatever_the_call_order(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    encoder = Encoder()
    video = encoder.add_video(height=64, width=64, frame_rate=25.0)
    audio = encoder.add_audio(sample_rate=48000, num_channels=1)  # AC-3, Matroska's default
    encoder.open_file_like(buffer, format="mkv")
    video.add_frames(frames(50))  # all of the video first, then all of the sound
    audio.add_samples(tone(300, 48000, 2.0))
    encoder.close()
    order = demux_order(buffer.getvalue())
    assert {kind for kind, _ in order} == {"video", "audio"}
    latest = float("-inf")
    for _, when in order:
        assert when > latest - 0.5  # no packet written far behind an earlier one
        latest = max(latest, when)


def test_encoder_audio_only_wav_is_sample_exact() -> None:
    samples = np.round(sine(1000, 44100, 0.5)[0] * 32767).astype(np.int16) / 32768.0
    buffer = io.BytesIO()
    encoder = Encoder()
    audio = encoder.add_audio(sample_rate=44100, num_channels=1)
    with encoder.open_file_like(buffer, format="wav"):
        for start in range(0, len(samples), 1000):
            audio.add_samples(torch.from_numpy(samples[None, start : start + 1000].astype(np.float32)))
    with av.open(io.BytesIO(buffer.getvalue())) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "pcm_s16le"
        got = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)[0] / 32768.0
    assert np.array_equal(got, samples)


def test_encoder_out_rate_and_channels(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    encoder = Encoder()
    first = encoder.add_audio(sample_rate=16000, num_channels=1, out_sample_rate=48000, out_num_channels=2)
    with encoder.open_file(out):
        first.add_samples(tone(500, 16000, 1.0))
    got, facts = decode_audio(out)
    assert facts["rate"] == 48000 and facts["channels"] == 2
    found, _ = peak_and_level(got[0], 48000)
    assert abs(found - 500) < 4


def test_encoder_close_twice_and_exceptions_leave_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    encoder = Encoder()
    video = encoder.add_video(height=64, width=64, frame_rate=30.0)
    with pytest.raises(KeyError), encoder.open_file(out):
        video.add_frames(frames(5))
        raise KeyError("the caller failed")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    encoder.close()
    encoder.close()


def test_encoder_misuse_raises_torchcodecs_types(tmp_path: Path) -> None:
    encoder = Encoder()
    audio = encoder.add_audio(sample_rate=44100, num_channels=1)
    with pytest.raises(RuntimeError, match=r"Call open\(\) before addSamples\(\)"):
        audio.add_samples(torch.zeros(1, 10))
    encoder.open_file(tmp_path / "a.wav")
    with pytest.raises(RuntimeError, match="Expected 1 channels, got 2"):
        audio.add_samples(torch.zeros(2, 10))
    with pytest.raises(RuntimeError, match="float32"):
        audio.add_samples(torch.zeros(1, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="not finite"):
        audio.add_samples(torch.full((1, 10), float("nan")))
    assert not (tmp_path / "a.wav").exists()  # checked before encoding: still open, no file yet
    audio.add_samples(torch.zeros(1, 10))
    encoder.close()
    assert decode_audio(tmp_path / "a.wav")[0].shape == (1, 10)
    with pytest.raises(RuntimeError, match="Cannot add samples after close"):
        audio.add_samples(torch.zeros(1, 10))
    with pytest.raises(RuntimeError, match="sample_rate must be > 0"):
        Encoder().add_audio(sample_rate=0, num_channels=1)
    with pytest.raises(RuntimeError, match="Trying to encode 10 channels"):
        Encoder().add_audio(sample_rate=8000, num_channels=10)
    bad = Encoder()
    bad.add_audio(sample_rate=44100, num_channels=1, bit_rate=-1)
    with pytest.raises(RuntimeError, match="bit_rate=-1 must be >= 0"):
        bad.open_file(tmp_path / "b.mp4")
    odd = Encoder()
    odd.add_audio(sample_rate=44100, num_channels=1, out_sample_rate=10)
    with pytest.raises(ValueError, match="invalid sample rate=10"):
        odd.open_file(tmp_path / "c.mp3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


# -- AudioEncoder -----------------------------------------------------------------------------
def test_audio_encoder_flac_round_trip(tmp_path: Path) -> None:
    samples = tone(700, 22050, 0.5, channels=2, level=0.8)
    AudioEncoder(samples, sample_rate=22050).to_file(tmp_path / "a.flac")
    got, facts = decode_audio(tmp_path / "a.flac")
    assert facts["codec"] == "flac" and facts["rate"] == 22050 and facts["channels"] == 2
    assert got.shape == samples.shape
    assert np.abs(got - samples.numpy()).max() < 2**-22  # 24-bit FLAC from float input


def test_audio_encoder_to_tensor_and_file_like_match_to_file(tmp_path: Path) -> None:
    encoder = AudioEncoder(tone(440, 16000, 0.5), sample_rate=16000)
    encoder.to_file(tmp_path / "a.mp3")
    data = encoder.to_tensor("mp3")
    buffer = io.BytesIO()
    encoder.to_file_like(buffer, "mp3")
    assert data.dtype == torch.uint8 and data.ndim == 1
    assert bytes(data.numpy()) == buffer.getvalue() == (tmp_path / "a.mp3").read_bytes()
    got, facts = decode_audio(tmp_path / "a.mp3")
    assert facts["codec"] in ("mp3", "mp3float") and facts["rate"] == 16000
    found, level = peak_and_level(got[0], 16000)
    assert abs(found - 440) < 6 and abs(20 * np.log10(level / (0.5 / np.sqrt(2)))) < 0.5


def test_audio_encoder_output_rate_and_channels(tmp_path: Path) -> None:
    AudioEncoder(tone(440, 16000, 0.5), sample_rate=16000).to_file(
        tmp_path / "a.wav", sample_rate=48000, num_channels=2
    )
    got, facts = decode_audio(tmp_path / "a.wav")
    assert facts["rate"] == 48000 and facts["channels"] == 2
    assert abs(facts["duration"] - 0.5) < 0.002
    assert abs(peak_and_level(got[1], 48000)[0] - 440) < 6


class WriteOnly:
    def write(self, data: bytes) -> int:
        return len(data)


def test_audio_encoder_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Expected samples to be a Tensor"):
        AudioEncoder([0.0], sample_rate=8000)
    with pytest.raises(ValueError, match="Expected 1D or 2D samples"):
        AudioEncoder(torch.zeros(1, 2, 3), sample_rate=8000)
    with pytest.raises(ValueError, match="Expected float32 samples"):
        AudioEncoder(torch.zeros(1, 3, dtype=torch.float64), sample_rate=8000)
    with pytest.raises(ValueError, match="sample_rate = 0 must be > 0"):
        AudioEncoder(torch.zeros(1, 3), sample_rate=0)
    with pytest.raises(ValueError, match="not finite"):
        AudioEncoder(torch.full((1, 100), float("inf")), sample_rate=8000).to_file(tmp_path / "x.wav")
    with pytest.raises(OSError, match="valid path"):
        AudioEncoder(torch.zeros(1, 100), sample_rate=8000).to_file(tmp_path / "no" / "x.wav")
    with pytest.raises(RuntimeError, match="check the desired extension"):
        AudioEncoder(torch.zeros(1, 100), sample_rate=8000).to_file(tmp_path / "x.bad")
    with pytest.raises(RuntimeError, match="File like object must implement a seek method"):
        AudioEncoder(torch.zeros(1, 100), sample_rate=8000).to_file_like(WriteOnly(), "wav")
    assert list(tmp_path.iterdir()) == []


# -- open_writer(audio=) ----------------------------------------------------------------------
def test_open_writer_with_an_audio_file(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "voice.wav", sine(440, 48000, 2.0, channels=2), 48000)
    out = tmp_path / "out.mp4"
    with nvenc_cli.open_writer(out, frame_rate=24, audio=wav) as writer:
        for _ in range(12):
            writer.write(frames(1)[0])
    got, facts = decode_audio(out)
    assert facts["codec"] == "aac" and facts["channels"] == 2 and facts["rate"] == 48000
    assert abs(facts["duration"] - 0.5) <= 1024 / 48000  # cut at the video's 12/24 s
    assert abs(peak_and_level(got[0], 48000)[0] - 440) < 6


def test_open_writer_with_samples(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    samples = np.round(sine(600, 16000, 1.0)[0] * 32767).astype(np.int16)
    with nvenc_cli.open_writer(
        out, frame_rate=10, audio=samples, audio_sample_rate=16000, audio_codec="flac"
    ) as w:
        w.write(frames(5))
    got, facts = decode_audio(out)
    assert facts["codec"] == "flac" and got.shape[1] == 8000  # 5 frames at 10 fps: 0.5 s
    assert np.array_equal(np.round(got[0] * 32768).astype(np.int16), samples[:8000])


def test_open_writer_bad_audio_is_refused_before_any_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        nvenc_cli.open_writer(tmp_path / "o.mp4", frame_rate=10, audio=tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="sample rate"):
        nvenc_cli.open_writer(tmp_path / "o.mp4", frame_rate=10, audio=np.zeros(100, np.float32))
    assert list(tmp_path.iterdir()) == []


def test_api_names_load_lazily() -> None:
    code = (
        "import sys, nvenc_cli; assert 'av' not in sys.modules and 'torch' not in sys.modules;"
        "from nvenc_cli import Encoder, AudioEncoder, VideoStream, AudioStream;"
        "import nvenc_cli.api as api; assert Encoder is api.Encoder and AudioEncoder is api.AudioEncoder"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_encoder_takes_int16_samples() -> None:
    samples = np.round(sine(440, 8000, 0.5)[0] * 32767).astype(np.int16)
    buffer = io.BytesIO()
    encoder = Encoder()
    audio = encoder.add_audio(sample_rate=8000, num_channels=1)
    with encoder.open_file_like(buffer, format="wav"):
        audio.add_samples(torch.from_numpy(samples[None]))
    with av.open(io.BytesIO(buffer.getvalue())) as container:
        got = np.concatenate([f.to_ndarray() for f in container.decode(container.streams.audio[0])], axis=1)
    assert np.array_equal(got[0], samples)
