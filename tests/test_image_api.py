"""torchcodec's image encoders (``JpegEncoder``, ``PngEncoder``, torchcodec ≥ 0.16) and the
numbered image sequence torchcodec lacks: every output is decoded back (PyAV's PNG/MJPEG
decoders, and Pillow) and compared with the source pixels; errors are the types and words
torchcodec uses.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from nvenc_cli import AudioEncoder, Encoder, JpegEncoder, PngEncoder, VideoEncoder, write_image_sequence
from tests.conftest import SERIAL, psnr

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def rgb() -> torch.Tensor:
    """A 48x64 RGB (C, H, W) picture: smooth gradients with a sharp square in it."""
    y, x = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")
    picture = torch.stack([x * 4, y * 5, (x + y) * 2]).clamp(0, 255).to(torch.uint8)
    picture[:, 10:20, 30:40] = torch.tensor([250, 20, 60], dtype=torch.uint8)[:, None, None]
    return picture


def _av_decode(data: bytes) -> np.ndarray:
    """The one picture in ``data``, decoded by FFmpeg (through PyAV) to (C, H, W)."""
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        gray = frame.format.name.startswith("gray")
        array = frame.to_ndarray(format="gray" if gray else "rgb24")
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


@pytest.mark.parametrize("level", [0, 6, 9])
@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trips_exactly_at_every_level(rgb: torch.Tensor, level: int, channels: int) -> None:
    source = rgb[:channels]
    data = PngEncoder(source).to_tensor(compression_level=level)
    assert data.dtype == torch.uint8 and data.ndim == 1 and data.device.type == "cpu"
    assert bytes(data[:8].tolist()) == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(_av_decode(data.numpy().tobytes()), source.numpy())


def test_png_level_trades_size_and_defaults_to_six(rgb: torch.Tensor) -> None:
    sizes = {level: PngEncoder(rgb).to_tensor(compression_level=level).numel() for level in (0, 9)}
    assert sizes[0] > sizes[9]
    assert sizes[0] >= rgb.numel()  # level 0 stores the rows as they are
    assert torch.equal(PngEncoder(rgb).to_tensor(), PngEncoder(rgb).to_tensor(compression_level=6))


def test_jpeg_quality_keeps_the_picture(rgb: torch.Tensor) -> None:
    # Floors measured on this picture (29.6, 33.0, 40.2 dB; its saturated red square is
    # what 4:2:0 chroma costs most), less a margin; better quality, closer picture.
    scores = []
    for quality, floor in ((25, 28.0), (75, 31.5), (95, 38.0)):
        data = JpegEncoder(rgb).to_tensor(quality=quality).numpy().tobytes()
        assert data[:2] == b"\xff\xd8"
        decoded = _av_decode(data)
        assert decoded.shape == tuple(rgb.shape)
        scores.append(psnr(decoded.astype(np.float64), rgb.numpy().astype(np.float64)))
        assert scores[-1] > floor, (quality, scores[-1])
    assert scores == sorted(scores)


def test_jpeg_matches_libjpeg_defaults_and_grows_with_quality(rgb: torch.Tensor) -> None:
    # torchcodec's CPU encoder is libjpeg with its defaults: Pillow's saves agree.
    ours = _av_decode(JpegEncoder(rgb).to_tensor(quality=80).numpy().tobytes()).astype(int)
    buffer = io.BytesIO()
    Image.fromarray(rgb.permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=80)
    theirs = _av_decode(buffer.getvalue()).astype(int)
    assert (np.abs(ours - theirs) <= 2).mean() >= 0.99
    small = JpegEncoder(rgb).to_tensor(quality=10).numel()
    assert JpegEncoder(rgb).to_tensor(quality=95).numel() > small


def test_jpeg_gray_stays_one_channel(rgb: torch.Tensor) -> None:
    gray = rgb[1:2]
    decoded = _av_decode(JpegEncoder(gray).to_tensor(quality=90).numpy().tobytes())
    assert decoded.shape == (1, 48, 64)
    assert psnr(decoded.astype(np.float64), gray.numpy().astype(np.float64)) > 38.0


@pytest.mark.parametrize("kind", [JpegEncoder, PngEncoder])
def test_file_file_like_and_tensor_hold_the_same_bytes(kind: type, rgb: torch.Tensor, tmp_path: Path) -> None:
    kind(rgb).to_file(tmp_path / "a")
    kind(rgb).to_file(str(tmp_path / "b"))
    buffer = io.BytesIO()
    kind(rgb).to_file_like(buffer)
    with open(tmp_path / "c", "wb") as opened:
        kind(rgb).to_file_like(opened)
    from_tensor = kind(rgb).to_tensor().numpy().tobytes()
    for name in "abc":
        assert (tmp_path / name).read_bytes() == from_tensor
    assert buffer.getvalue() == from_tensor
    assert kind(rgb.numpy()).to_tensor().numpy().tobytes() == from_tensor  # numpy (C, H, W) too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no temporary left


class _NoWrite:
    def seek(self, offset: int, whence: int = 0) -> int:
        return 0


class _NoSeek:
    def write(self, data: bytes) -> int:
        return len(data)


@pytest.mark.parametrize("kind", [JpegEncoder, PngEncoder])
@pytest.mark.parametrize(
    ("picture", "words"),
    [
        (torch.zeros(3, 8, 8), r"uint8"),
        (torch.zeros(720, 1280, dtype=torch.uint8), r"3-dimensional"),
        (torch.zeros(3, 3, 8, 8, dtype=torch.uint8), r"3-dimensional"),
        (torch.zeros(2, 8, 8, dtype=torch.uint8), r"number of channels should be 1 or 3"),
        (torch.zeros(4, 8, 8, dtype=torch.uint8), r"number of channels should be 1 or 3"),
    ],
    ids=["dtype", "2d", "4d", "2ch", "4ch"],
)
def test_bad_pictures_raise_runtime_error_in_torchcodec_words(
    kind: type, picture: torch.Tensor, words: str, tmp_path: Path
) -> None:
    for call in (
        lambda: kind(picture).to_file_like(io.BytesIO()),
        lambda: kind(picture).to_tensor(),
        lambda: kind(picture).to_file(tmp_path / "out"),
    ):
        with pytest.raises(RuntimeError, match=words) as caught:
            call()
        assert isinstance(caught.value, ValueError)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", [JpegEncoder, PngEncoder])
def test_file_likes_without_write_or_seek_are_refused(kind: type, rgb: torch.Tensor) -> None:
    for sink, method in ((_NoWrite(), "write"), (_NoSeek(), "seek"), (3, "write")):
        with pytest.raises(RuntimeError, match=f"File like object must implement a {method} method"):
            kind(rgb).to_file_like(sink)


@pytest.mark.parametrize("quality", [-1, 0, 101, 7.5, True])
def test_jpeg_quality_outside_1_to_100_is_a_value_error(rgb: torch.Tensor, quality: object) -> None:
    with pytest.raises(ValueError, match="Image quality should be a positive number between 1 and 100"):
        JpegEncoder(rgb).to_file_like(io.BytesIO(), quality=quality)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", [-1, 10])
def test_png_level_outside_0_to_9_is_a_runtime_error(rgb: torch.Tensor, level: int) -> None:
    with pytest.raises(RuntimeError, match=f"Compression level should be between 0 and 9, got {level}"):
        PngEncoder(rgb).to_file_like(io.BytesIO(), compression_level=level)


def test_to_file_keeps_an_existing_file_when_asked(rgb: torch.Tensor, tmp_path: Path) -> None:
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="already exists"):
        PngEncoder(rgb).to_file(target, overwrite=False)
    assert target.read_bytes() == b"old"
    PngEncoder(rgb).to_file(target)  # torchcodec's default: replace it
    np.testing.assert_array_equal(_av_decode(target.read_bytes()), rgb.numpy())


def _batch(count: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(32), torch.arange(40), indexing="ij")
    return torch.stack(
        [torch.stack([(x * 6 + t * 30) % 256, (y * 7) % 256, (x + y + t * 11) % 256]) for t in range(count)]
    ).to(torch.uint8)


def test_image_sequence_png_numbers_every_frame_losslessly(tmp_path: Path) -> None:
    frames = _batch(5)
    written = write_image_sequence(frames, str(tmp_path / "frame_%03d.png"), start_number=1)
    assert [p.name for p in written] == [f"frame_{i:03d}.png" for i in range(1, 6)]
    for path, frame in zip(written, frames, strict=True):
        np.testing.assert_array_equal(_av_decode(path.read_bytes()), frame.numpy())
    # FFmpeg reads the same files as a numbered image sequence, in order.
    with av.open(str(tmp_path / "frame_%03d.png"), options={"start_number": "1"}) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    np.testing.assert_array_equal(np.stack(decoded), frames.permute(0, 2, 3, 1).numpy())


def test_image_sequence_jpeg_from_a_list_matches_the_one_picture_encoder(tmp_path: Path) -> None:
    y, x = torch.meshgrid(torch.arange(32), torch.arange(40), indexing="ij")
    frames = [torch.stack([x * 3 + t * 10, y * 4, x + y]).to(torch.uint8) for t in range(3)]  # smooth
    written = write_image_sequence(frames, str(tmp_path / "f%d.jpg"), quality=90, workers=2)
    assert [p.name for p in written] == ["f0.jpg", "f1.jpg", "f2.jpg"]
    for path, frame in zip(written, frames, strict=True):
        assert path.read_bytes() == JpegEncoder(frame).to_tensor(quality=90).numpy().tobytes()
        assert psnr(_av_decode(path.read_bytes()).astype(np.float64), frame.numpy().astype(np.float64)) > 36


def test_image_sequence_refuses_before_writing_anything(tmp_path: Path) -> None:
    frames = _batch(3)
    (tmp_path / "s2.png").write_bytes(b"old")
    with pytest.raises(OSError, match="already exists"):
        write_image_sequence(frames, str(tmp_path / "s%d.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s2.png"]
    bad = frames.clone().float()
    with pytest.raises(RuntimeError, match="uint8"):
        write_image_sequence(bad, str(tmp_path / "t%d.png"))
    for pattern, words in (("no_number.png", "one frame number"), ("a%d_%d.png", "one frame number")):
        with pytest.raises(ValueError, match=words):
            write_image_sequence(frames, str(tmp_path / pattern))
    with pytest.raises(ValueError, match=r"\.png, \.jpg or \.jpeg"):
        write_image_sequence(frames, str(tmp_path / "x%d.bmp"))
    with pytest.raises(ValueError, match="Image quality"):
        write_image_sequence(frames, str(tmp_path / "x%d.jpg"), quality=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s2.png"]
    written = write_image_sequence(frames, str(tmp_path / "s%d.png"), overwrite=True)
    np.testing.assert_array_equal(_av_decode(written[2].read_bytes()), frames[2].numpy())


@cuda
def test_cuda_jpeg_comes_back_on_the_gpu(rgb: torch.Tensor) -> None:
    data = JpegEncoder(rgb.cuda()).to_tensor(quality=90)
    assert data.device.type == "cuda" and data.dtype == torch.uint8 and data.ndim == 1
    decoded = _av_decode(data.cpu().numpy().tobytes())
    assert psnr(decoded.astype(np.float64), rgb.numpy().astype(np.float64)) > 36
    buffer = io.BytesIO()
    JpegEncoder(rgb.cuda()).to_file_like(buffer, quality=90)
    assert buffer.getvalue() == data.cpu().numpy().tobytes()


@cuda
def test_cuda_jpeg_is_rgb_only_as_in_torchcodec(rgb: torch.Tensor) -> None:
    with pytest.raises(RuntimeError, match="number of channels should be 3"):
        JpegEncoder(rgb[:1].cuda()).to_file_like(io.BytesIO())


def test_video_encoder_writes_exactly_what_encoder_writes() -> None:
    frames = _batch(6)
    ours = VideoEncoder(frames, frame_rate=30).to_tensor("mp4", extra_options=SERIAL)
    buffer = io.BytesIO()
    encoder = Encoder()
    stream = encoder.add_video(height=32, width=40, frame_rate=30.0, device="cpu", extra_options=SERIAL)
    with encoder.open_file_like(buffer, format="mp4"):
        stream.add_frames(frames)
    assert ours.numpy().tobytes() == buffer.getvalue()
    with av.open(io.BytesIO(buffer.getvalue())) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == (6, 32, 40, 3)
    assert psnr(decoded.astype(np.float64), frames.permute(0, 2, 3, 1).numpy().astype(np.float64)) > 25


def test_audio_encoder_writes_exactly_what_encoder_writes() -> None:
    t = torch.arange(16_000, dtype=torch.float32) / 16_000
    samples = torch.stack([torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 660 * t)]) * 0.5
    ours = AudioEncoder(samples, sample_rate=16_000).to_tensor(format="flac")
    buffer = io.BytesIO()
    encoder = Encoder()
    stream = encoder.add_audio(sample_rate=16_000, num_channels=2)
    with encoder.open_file_like(buffer, format="flac"):
        stream.add_samples(samples)
    assert ours.numpy().tobytes() == buffer.getvalue()
    with av.open(io.BytesIO(buffer.getvalue())) as container:
        frames = list(container.decode(audio=0))
        # FLAC keeps the float samples' precision in 32-bit integers (packed channels)
        assert frames[0].format.name == "s32" and frames[0].layout.nb_channels == 2
        decoded = np.concatenate([f.to_ndarray().reshape(-1, 2).T for f in frames], axis=1)
    assert decoded.shape == (2, 16_000)
    np.testing.assert_allclose(decoded / 2.0**31, samples.numpy(), atol=1e-6)


@pytest.mark.parametrize("fmt", ["mp4", "mov", "mkv", "webm", "avi", "flv", "gif", "ts"])
def test_to_tensor_with_defaults_warns_nothing(fmt: str) -> None:
    frames = torch.randint(
        0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = VideoEncoder(frames, frame_rate=30).to_tensor(fmt)
    with av.open(io.BytesIO(data.numpy().tobytes())) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AudioEncoder(torch.rand(2, 8000) * 2 - 1, sample_rate=8000).to_tensor(format="flac")
