"""Sound: kept on transcode, cut with trims, added from files and arrays, refused when bad.

Every test decodes the output (PyAV, and ffprobe where it is installed) and checks the
audio itself: codec, rate, channels, duration against the video's, and the samples — a
sine's frequency and level after lossy coding, bit-exact samples after a copy or FLAC.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.conftest import run_cli

FPS = 30


def sine(freq: float, rate: int, seconds: float, channels: int = 1, level: float = 0.5) -> np.ndarray:
    """(C, S) float32 sine; channel c is at ``freq * (c + 1)`` so channels are told apart."""
    t = np.arange(round(rate * seconds)) / rate
    return np.stack([level * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]).astype(
        np.float32
    )


def write_media(
    path: Path,
    *,
    frames: int = 30,
    audio: np.ndarray | None = None,
    rate: int = 48000,
    codec: str = "aac",
    sample_format: str | None = None,
    size: tuple[int, int] = (64, 48),
) -> Path:
    """A small video (libx264, frame i has grey level i) with ``audio`` (C, S) as its sound."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = None
        if audio is not None:
            layout = {1: "mono", 2: "stereo"}[audio.shape[0]]
            sound = out.add_stream(codec, rate=rate, layout=layout)
            fmt = sample_format or sound.codec_context.codec.audio_formats[0].name
            sound.codec_context.format = fmt
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.full((size[1], size[0], 3), (i * 8) % 256, np.uint8), format="rgb24"
            )
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            _encode_into(out, sound, audio, rate)
    return path


def _encode_into(out: Any, stream: Any, audio: np.ndarray, rate: int) -> None:
    ctx = stream.codec_context
    fmt = av.AudioFormat(ctx.format.name)
    size = ctx.frame_size or 1024
    for offset in range(0, audio.shape[1], size):
        chunk = audio[:, offset : offset + size]
        if fmt.name.startswith("s16"):
            chunk = np.round(chunk * 32767).astype(np.int16)
        elif fmt.name.startswith("s32"):
            chunk = np.round(chunk * 32767).astype(np.int32) << 16
        else:
            chunk = chunk.astype(np.float32)
        data = chunk if fmt.is_planar else chunk.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data), format=fmt.name, layout=ctx.layout.name
        )
        frame.sample_rate, frame.pts = rate, offset
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout={1: "mono", 2: "stereo"}[audio.shape[0]])
        _encode_into(out, stream, audio, rate)
    return path


def decode_audio(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """All samples of the first audio stream as float64 (C, S), and the stream's facts."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks, first_pts = [], None
        for frame in container.decode(stream):
            if first_pts is None:
                first_pts = Fraction(frame.pts) * frame.time_base if frame.pts is not None else None
            data = frame.to_ndarray()
            if not frame.format.is_planar:
                data = data.reshape(-1, len(frame.layout.channels)).T
            if data.dtype == np.int16:
                data = data / 32768.0
            elif data.dtype == np.int32:
                data = data / 2147483648.0
            chunks.append(data.astype(np.float64))
        ctx = stream.codec_context
        facts = {
            "codec": ctx.name,
            "rate": ctx.sample_rate,
            "channels": ctx.channels,
            "start": first_pts,
            "sample_format": ctx.format.name,
        }
    samples = np.concatenate(chunks, axis=1)
    facts["duration"] = samples.shape[1] / facts["rate"]
    return samples, facts


def video_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count / float(stream.average_rate)


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def peak_and_level(channel: np.ndarray, rate: int) -> tuple[float, float]:
    """Dominant frequency (Hz, from the windowed spectrum) and RMS of a steady stretch."""
    middle = channel[len(channel) // 4 : len(channel) * 3 // 4]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    freq = np.fft.rfftfreq(len(middle), 1 / rate)[int(np.argmax(spectrum))]
    return float(freq), float(np.sqrt(np.mean(middle**2)))


def ffprobe_streams(path: Path) -> list[dict[str, Any]]:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    )
    return json.loads(out.stdout)["streams"]


def probed_audio_duration(path: Path) -> float:
    """ffprobe's duration of the audio stream (from the container's edit list)."""
    streams = [s for s in ffprobe_streams(path) if s["codec_type"] == "audio"]
    return float(streams[0]["duration"])


def encode(*args: Any) -> tuple[subprocess.CompletedProcess, dict[str, Any] | None]:
    done = run_cli("encode", *map(str, args), "--json")
    report = json.loads(done.stdout) if done.returncode == 0 else None
    return done, report


# -- transcoding keeps the input's sound ------------------------------------------------------
def test_transcode_copies_aac_into_mp4(tmp_path: Path) -> None:
    source = write_media(tmp_path / "in.mp4", audio=sine(440, 48000, 1.2), rate=48000)
    out = tmp_path / "out.mp4"
    done, report = encode(source, "-o", out)
    assert done.returncode == 0, done.stderr
    assert report["audio"]["action"] == "copied" and report["audio"]["codec"] == "aac"
    assert report["audio"]["sample_rate"] == 48000 and report["audio"]["channels"] == 1
    assert b"audio aac 48000 Hz mono" in done.stderr and b"copied" in done.stderr
    # A copy: the very packets of the input, cut at the video's end (1 s = 30 frames).
    kept = audio_packets(out)
    assert kept == audio_packets(source)[: len(kept)]
    _samples, facts = decode_audio(out)
    assert facts["codec"] == "aac" and facts["rate"] == 48000 and facts["channels"] == 1
    assert facts["start"] == 0
    assert abs(facts["duration"] - video_duration(out)) <= 1024 / 48000
    streams = ffprobe_streams(out)
    assert [s["codec_type"] for s in streams] == ["video", "audio"]
    assert abs(float(streams[1]["duration"]) - 1.0) <= 1024 / 48000


def test_transcode_copy_of_flac_is_bit_exact(tmp_path: Path) -> None:
    tone = sine(1000, 44100, 1.0, channels=2)
    source = write_media(tmp_path / "in.mkv", audio=tone, rate=44100, codec="flac", sample_format="s16")
    out = tmp_path / "out.mkv"
    done, report = encode(source, "-o", out)
    assert done.returncode == 0, done.stderr
    assert report["audio"]["action"] == "copied" and report["audio"]["codec"] == "flac"
    got, facts = decode_audio(out)
    want, _ = decode_audio(source)
    assert facts["channels"] == 2 and facts["rate"] == 44100
    assert np.array_equal(got, want[:, : got.shape[1]])
    assert abs(facts["duration"] - 1.0) <= 4608 / 44100


def test_transcode_reencodes_for_webm_with_a_notice(tmp_path: Path) -> None:
    source = write_media(tmp_path / "in.mp4", audio=sine(440, 44100, 1.2, level=0.5), rate=44100)
    out = tmp_path / "out.webm"
    done, report = encode(source, "-o", out)
    assert done.returncode == 0, done.stderr
    assert b"audio: aac re-encoded to libopus" in done.stderr
    assert report["audio"]["action"] == "re-encoded" and report["audio"]["codec"] == "opus"
    assert any("resampled from 44100 Hz to 48000 Hz" in n for n in report["notices"])
    samples, facts = decode_audio(out)
    assert facts["codec"] == "opus" and facts["rate"] == 48000
    assert abs(facts["duration"] - video_duration(out)) <= 960 / 48000
    freq, level = peak_and_level(samples[0], 48000)
    assert abs(freq - 440) < 3
    assert abs(20 * np.log10(level / (0.5 / np.sqrt(2)))) < 0.5  # within half a dB


@pytest.mark.parametrize("flag", ["--no-audio", "-an"])
def test_no_audio_drops_the_sound(tmp_path: Path, flag: str) -> None:
    source = write_media(tmp_path / "in.mp4", audio=sine(440, 48000, 1.0))
    out = tmp_path / "out.mp4"
    done, report = encode(source, "-o", out, flag)
    assert done.returncode == 0, done.stderr
    assert report["audio"] is None
    with av.open(str(out)) as container:
        assert not container.streams.audio
        assert len(container.streams.video) == 1


def test_silent_input_gives_a_silent_output(tmp_path: Path) -> None:
    source = write_media(tmp_path / "in.mp4")
    done, report = encode(source, "-o", tmp_path / "out.mp4")
    assert done.returncode == 0, done.stderr
    assert report["audio"] is None


# -- trims cut the sound to the same span -----------------------------------------------------
def test_trim_cuts_audio_exactly(tmp_path: Path) -> None:
    tone = sine(500, 48000, 2.0, channels=1, level=0.4)
    source = write_media(
        tmp_path / "in.mkv", frames=60, audio=tone, rate=48000, codec="flac", sample_format="s16"
    )
    out = tmp_path / "out.mkv"
    done, report = encode(source, "-o", out, "--start", 15, "--frames", 30, "--audio-codec", "flac")
    assert done.returncode == 0, done.stderr
    got, facts = decode_audio(out)
    want, _ = decode_audio(source)
    assert facts["start"] == 0
    assert got.shape[1] == 48000  # exactly the video's 30 frames at 30 fps
    assert np.array_equal(got, want[:, 24000:72000])  # from 15/30 s on, sample for sample
    assert report["audio"]["duration"] == 1.0


def test_trim_reencodes_a_copy_with_a_notice(tmp_path: Path) -> None:
    source = write_media(tmp_path / "in.mp4", frames=60, audio=sine(440, 48000, 2.0), rate=48000)
    out = tmp_path / "out.mp4"
    done, report = encode(source, "-o", out, "--start", 30)
    assert done.returncode == 0, done.stderr
    assert any("re-encoded to aac" in n and "--start" in n for n in report["notices"])
    samples, facts = decode_audio(out)
    # Decoders hand out whole AAC frames; the container's edit list says where sound ends.
    assert abs(facts["duration"] - video_duration(out)) < 1024 / 48000
    assert probed_audio_duration(out) == pytest.approx(1.0, abs=1e-3)
    freq, _ = peak_and_level(samples[0], 48000)
    assert abs(freq - 440) < 3


def test_copy_with_start_trim_is_refused(tmp_path: Path) -> None:
    source = write_media(tmp_path / "in.mp4", frames=60, audio=sine(440, 48000, 2.0))
    out = tmp_path / "out.mp4"
    done, _ = encode(source, "-o", out, "--start", 10, "--audio-codec", "copy")
    assert done.returncode == 2
    assert done.stderr.decode().count("nvenc: error:") == 1 and "--start" in done.stderr.decode()
    assert not out.exists()


# -- --audio FILE -----------------------------------------------------------------------------
def test_audio_file_added_to_frames_and_cut_at_the_video_end(tmp_path: Path, npy: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", sine(880, 44100, 3.0, channels=2, level=0.3), 44100)
    out = tmp_path / "out.mp4"
    done, report = encode(npy, "-o", out, "--audio", wav)  # 12 frames at 30 fps = 0.4 s
    assert done.returncode == 0, done.stderr
    assert report["audio"]["codec"] == "aac" and report["audio"]["action"] == "re-encoded"
    assert report["audio"]["source"] == str(wav)
    samples, facts = decode_audio(out)
    assert facts["rate"] == 44100 and facts["channels"] == 2
    assert abs(facts["duration"] - 0.4) < 1024 / 44100
    assert probed_audio_duration(out) == pytest.approx(0.4, abs=1e-3)
    for channel, freq in ((0, 880), (1, 1760)):
        got, level = peak_and_level(samples[channel], 44100)
        assert abs(got - freq) < 12  # 0.2 s of analysis: bins are 5 Hz wide
        assert abs(20 * np.log10(level / (0.3 / np.sqrt(2)))) < 0.5


def test_shorter_audio_file_just_ends_early(tmp_path: Path, npy: Path) -> None:
    wav = write_wav(tmp_path / "short.wav", sine(440, 48000, 0.1), 48000)
    out = tmp_path / "out.mkv"
    done, _report = encode(npy, "-o", out, "--audio", wav, "--audio-codec", "flac")
    assert done.returncode == 0, done.stderr
    got, facts = decode_audio(out)
    want, _ = decode_audio(wav)
    assert facts["codec"] == "flac"
    assert np.array_equal(got, want)  # lossless and complete, 0.1 s against 0.4 s of video
    assert video_duration(out) == pytest.approx(0.4)


def test_audio_from_another_video(tmp_path: Path, npy: Path) -> None:
    other = write_media(tmp_path / "other.mp4", audio=sine(440, 48000, 1.0))
    out = tmp_path / "out.mov"
    done, report = encode(npy, "-o", out, "--audio", other)
    assert done.returncode == 0, done.stderr
    assert report["audio"]["action"] == "copied"
    _, facts = decode_audio(out)
    assert abs(facts["duration"] - 0.4) <= 1024 / 48000


# -- samples in array files -------------------------------------------------------------------
def test_npz_audio_entry_with_its_rate(tmp_path: Path, pattern: np.ndarray) -> None:
    tone = sine(600, 16000, 0.4, channels=2, level=0.25)
    path = tmp_path / "clip.npz"
    np.savez(path, video=pattern, audio=tone, sample_rate=np.int64(16000))
    out = tmp_path / "out.mkv"
    done, report = encode(path, "--key", "video", "--audio-key", "audio", "--audio-codec", "flac", "-o", out)
    assert done.returncode == 0, done.stderr
    got, facts = decode_audio(out)
    assert facts["rate"] == 16000 and facts["channels"] == 2 and report["audio"]["source"] == "input"
    # FLAC at 16 bits: the float samples come back to within half a 16-bit step.
    assert got.shape == tone.shape
    assert np.abs(got - tone).max() <= 1 / 32768 + 1e-9


def test_pt_int16_mono_with_audio_rate(tmp_path: Path, pattern: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    samples = np.round(sine(300, 22050, 0.3)[0] * 32767).astype(np.int16)  # (S,)
    path = tmp_path / "clip.pt"
    torch.save({"video": torch.from_numpy(pattern), "speech": torch.from_numpy(samples)}, path)
    out = tmp_path / "out.mp4"
    done, _report = encode(path, "--key", "video", "--audio-key", "speech", "--audio-rate", 22050, "-o", out)
    assert done.returncode == 0, done.stderr
    got, facts = decode_audio(out)
    assert facts["codec"] == "aac" and facts["rate"] == 22050 and facts["channels"] == 1
    assert abs(facts["duration"] - 0.3) < 1024 / 22050  # the audio is shorter than 0.4 s
    assert probed_audio_duration(out) == pytest.approx(0.3, abs=1e-3)
    freq, level = peak_and_level(got[0], 22050)
    assert abs(freq - 300) < 10
    assert abs(20 * np.log10(level / (0.5 / np.sqrt(2)))) < 0.5


def test_out_of_range_float_samples_are_refused(tmp_path: Path, pattern: np.ndarray) -> None:
    path = tmp_path / "clip.npz"
    loud = sine(600, 16000, 0.4) * 3
    np.savez(path, video=pattern, audio=loud, sample_rate=16000)
    out = tmp_path / "out.mp4"
    done, _ = encode(path, "--key", "video", "--audio-key", "audio", "-o", out)
    assert done.returncode == 65
    err = done.stderr.decode()
    assert err.count("nvenc: error:") == 1 and "[-1, 1]" in err and "clip" in err
    assert not out.exists()


@pytest.mark.parametrize("rate", ["0", "-5", "9999999"])
def test_bad_audio_rate_is_a_usage_error(tmp_path: Path, pattern: np.ndarray, rate: str) -> None:
    path = tmp_path / "clip.npz"
    np.savez(path, video=pattern, audio=sine(600, 16000, 0.4))
    out = tmp_path / "out.mp4"
    done, _ = encode(path, "--key", "video", "--audio-key", "audio", "--audio-rate", rate, "-o", out)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().count("nvenc: error:") == 1
    assert not out.exists()


def test_missing_rate_is_a_usage_error(tmp_path: Path, pattern: np.ndarray) -> None:
    path = tmp_path / "clip.npz"
    np.savez(path, video=pattern, audio=sine(600, 16000, 0.4))
    done, _ = encode(path, "--key", "video", "--audio-key", "audio", "-o", tmp_path / "out.mp4")
    assert done.returncode == 2 and b"--audio-rate" in done.stderr


# -- bad input --------------------------------------------------------------------------------
def test_audio_file_missing_is_66(tmp_path: Path, npy: Path) -> None:
    out = tmp_path / "out.mp4"
    done, _ = encode(npy, "-o", out, "--audio", tmp_path / "nope.wav")
    assert done.returncode == 66
    assert done.stderr.decode().count("nvenc: error:") == 1 and "nope.wav" in done.stderr.decode()
    assert not out.exists() and list(tmp_path.glob(".*part")) == []


def test_audio_file_without_audio_is_65(tmp_path: Path, npy: Path) -> None:
    silent = write_media(tmp_path / "silent.mp4")
    out = tmp_path / "out.mp4"
    done, _ = encode(npy, "-o", out, "--audio", silent)
    assert done.returncode == 65
    assert b"has no audio stream" in done.stderr
    assert not out.exists()


def test_channel_count_the_encoder_cannot_take_is_2(tmp_path: Path, npy: Path) -> None:
    wav = write_wav(tmp_path / "st.wav", sine(440, 48000, 0.5, channels=2), 48000)
    out = tmp_path / "out.mkv"
    done, _ = encode(npy, "-o", out, "--audio", wav, "--audio-codec", "mp2", "--audio-bitrate", "8k")
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().count("nvenc: error:") == 1
    assert not out.exists()


def test_gif_cannot_carry_asked_for_audio(tmp_path: Path, npy: Path) -> None:
    wav = write_wav(tmp_path / "t.wav", sine(440, 48000, 0.5), 48000)
    done, _ = encode(npy, "-o", tmp_path / "out.gif", "--audio", wav)
    assert done.returncode == 2 and b"cannot carry audio" in done.stderr


def test_gif_drops_the_input_sound_with_a_notice(tmp_path: Path) -> None:
    source = write_media(tmp_path / "in.mp4", audio=sine(440, 48000, 1.0))
    done, report = encode(source, "-o", tmp_path / "out.gif")
    assert done.returncode == 0, done.stderr
    assert report["audio"] is None and any("audio dropped" in n for n in report["notices"])


def test_no_audio_with_audio_file_excludes(tmp_path: Path, npy: Path) -> None:
    wav = write_wav(tmp_path / "t.wav", sine(440, 48000, 0.5), 48000)
    done, _ = encode(npy, "-o", tmp_path / "out.mp4", "--audio", wav, "-an")
    assert done.returncode == 2 and b"exclude each other" in done.stderr


# -- muxing -----------------------------------------------------------------------------------
def test_packets_are_interleaved_by_time(tmp_path: Path) -> None:
    source = write_media(tmp_path / "in.mp4", frames=90, audio=sine(440, 48000, 3.0), size=(160, 120))
    out = tmp_path / "out.mp4"
    done, _ = encode(source, "-o", out, "--batch-size", 1)
    assert done.returncode == 0, done.stderr
    with av.open(str(out)) as container:
        times = [(p.stream.type, float(p.dts * p.time_base)) for p in container.demux() if p.dts is not None]
    kinds = {kind for kind, _ in times}
    assert kinds == {"video", "audio"}
    # In file order, no packet is more than half a second behind the latest one seen.
    latest = float("-inf")
    for _, when in times:
        assert when > latest - 0.5
        latest = max(latest, when)


def test_interleaver_holds_a_bounded_number_of_packets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nvenc_cli import mux

    monkeypatch.setattr(mux, "HOLD_PACKETS", 16)
    muxer = mux.Muxer(str(tmp_path / "out.mkv"), "matroska", overwrite=True, video=False)
    lanes = []
    for _ in range(2):
        lanes.append(muxer.add_lane(lambda output: output.add_stream("pcm_s16le", rate=8000, layout="mono")))
    # All of the first track before any of the second: the worst order for an interleaver.
    ctx = av.CodecContext.create("pcm_s16le", "w")
    ctx.sample_rate, ctx.layout, ctx.format, ctx.time_base = 8000, "mono", "s16", Fraction(1, 8000)
    ctx.open()
    peak = 0
    for lane in lanes:
        for i in range(200):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 80), np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 80
            packets = list(ctx.encode(frame))
            for p in packets:
                p.time_base = Fraction(1, 8000)
            muxer.push(lane, packets)
            peak = max(peak, muxer.held)
        muxer.end_lane(lane)
    muxer.finish()
    assert peak <= 17
    with av.open(str(tmp_path / "out.mkv")) as container:
        counts = [0, 0]
        for packet in container.demux():
            if packet.size:
                counts[packet.stream.index] += 1
    assert counts == [200, 200]


def test_info_lists_audio_codecs_per_container() -> None:
    done = run_cli("info", "--json")
    assert done.returncode == 0, done.stderr
    containers = json.loads(done.stdout)["containers"]
    assert containers["mp4"]["default_audio_codec"] == "aac"
    assert containers["webm"]["default_audio_codec"] == "libopus"
    assert containers["webm"]["audio_codecs"] == ["opus", "vorbis"]
    assert "flac" in containers["matroska"]["audio_codecs"]
    assert containers["gif"]["audio_codecs"] == []
    plain = run_cli("info").stdout.decode()
    assert "Audio:" in plain and "libopus" in plain


def test_a_short_track_closes_its_lane_when_it_runs_out(tmp_path: Path) -> None:
    """Once the sound has ended the muxer must stop holding video back for it."""
    from nvenc_cli.audio import AudioOptions, AudioTrack
    from nvenc_cli.audio.inputs import ArrayAudio, MediaAudio
    from nvenc_cli.audio.plan import plan_audio
    from nvenc_cli.mux import Muxer

    for copy in (False, True):
        source: Any
        if copy:
            source = MediaAudio(str(write_wav(tmp_path / "s.wav", sine(440, 8000, 0.25), 8000)))
            options = AudioOptions()
        else:
            source = ArrayAudio(sine(440, 8000, 0.25), 8000, "short")
            options = AudioOptions(codec="flac")
        track = AudioTrack(plan_audio(options, "matroska", source, "samples"), source)
        out = tmp_path / f"a{copy}.mkv"
        muxer = Muxer(str(out), "matroska", overwrite=True, video=False)
        track.attach(muxer)
        track.pump(Fraction(1, 10))
        assert not track._lane.done
        track.pump(Fraction(1))  # past its 0.25 s
        assert track._lane.done
        track.finish(Fraction(2))
        muxer.finish()
        track.close()
        got, _ = decode_audio(out)
        assert got.shape[1] == 2000
