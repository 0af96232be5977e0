"""Samples in, packets out: FFmpeg's resampler, a FIFO cut to the encoder's frame size,
and the encoder, with timestamps counted in samples (the stream's 1/rate time base)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from nvenc_cli.errors import EncoderError, brief

_SMALL_LAST_FRAME = 1 << 6  # AV_CODEC_CAP_SMALL_LAST_FRAME
_VARIABLE_FRAME_SIZE = 1 << 16  # AV_CODEC_CAP_VARIABLE_FRAME_SIZE
_DEFAULT_FRAME = 1024  # PCM-like encoders take any size; this keeps packets small


def configure(ctx: Any, rate: int, layout: str, sample_format: str, bit_rate: int | None) -> None:
    """Set an audio encoder's settings; shared by the plan's trial open and the real one, so
    what the plan accepted is exactly what the stream opens with."""
    ctx.sample_rate = rate
    ctx.layout = layout
    ctx.format = sample_format
    ctx.time_base = Fraction(1, rate)
    if bit_rate:
        ctx.bit_rate = bit_rate


def open_context(ctx: Any, rate: int, layout: str, sample_format: str, bit_rate: int | None) -> None:
    """Configure and open an audio encoder context (a stream's, so its extradata reaches
    the container's header)."""
    import av

    configure(ctx, rate, layout, sample_format, bit_rate)
    try:
        ctx.open()
    except (av.FFmpegError, ValueError) as exc:
        raise EncoderError(f"{ctx.codec.name} failed to open ({brief(exc)})") from None


class SampleEncoder:
    """One opened encoder context fed with frames of any format, rate and layout."""

    def __init__(self, ctx: Any) -> None:
        import av

        self.ctx = ctx
        self.rate: int = ctx.sample_rate
        self.format: str = ctx.format.name
        self.layout: str = ctx.layout.name
        self.channels = len(ctx.layout.channels)
        self._resampler = av.AudioResampler(format=self.format, layout=self.layout, rate=self.rate)
        self._fifo = av.AudioFifo()
        caps = ctx.codec.capabilities
        self._size = ctx.frame_size or _DEFAULT_FRAME
        self._short_last = bool(caps & (_SMALL_LAST_FRAME | _VARIABLE_FRAME_SIZE)) or not ctx.frame_size
        self.fed = 0  # samples accepted into the FIFO
        self._pts = 0

    def resample(self, frame: Any | None) -> list[Any]:
        """Convert to the encoder's format, rate and layout (``None`` drains the resampler)."""
        if frame is not None:
            frame.pts = None  # positions are counted in samples here, not taken from inputs
        return list(self._resampler.resample(frame))

    def silence(self, samples: int) -> Any:
        """A frame of ``samples`` zero samples in the encoder's format."""
        return frame_like(self.format, self.layout, self.rate, self.channels, samples)

    def write(self, frame: Any) -> list[Any]:
        """Queue a converted frame; encode every whole encoder frame now available."""
        frame.pts = None
        self._fifo.write(frame)
        self.fed += frame.samples
        packets: list[Any] = []
        while self._fifo.samples >= self._size:
            packets += self._encode(self._fifo.read(self._size))
        return packets

    def flush(self) -> list[Any]:
        """Encode what is left (a short last frame, or padded with silence where the codec
        needs whole frames) and drain the encoder."""
        packets: list[Any] = []
        left = self._fifo.samples
        if left:
            last = self._fifo.read(left)
            if not self._short_last and left < self._size:
                last = concat(last, self.silence(self._size - left))
            packets += self._encode(last)
        packets += self._encode(None)
        return packets

    def _encode(self, frame: Any | None) -> list[Any]:
        import av

        if frame is not None:
            frame.pts = self._pts
            frame.time_base = Fraction(1, self.rate)
            frame.sample_rate = self.rate
            self._pts += frame.samples
        try:
            packets = list(self.ctx.encode(frame))
        except av.FFmpegError as exc:
            raise EncoderError(f"{self.ctx.codec.name} failed: {brief(exc)}") from None
        for packet in packets:
            packet.time_base = Fraction(1, self.rate)
        return packets


def frame_like(sample_format: str, layout: str, rate: int, channels: int, samples: int) -> Any:
    import av

    fmt = av.AudioFormat(sample_format)
    dtype = _DTYPES[fmt.name.rstrip("p")]
    shape = (channels, samples) if fmt.is_planar else (1, samples * channels)
    frame = av.AudioFrame.from_ndarray(np.zeros(shape, dtype), format=sample_format, layout=layout)
    frame.sample_rate = rate
    return frame


def split(frame: Any, count: int) -> tuple[Any, Any]:
    """The first ``count`` samples of ``frame`` and the rest, as two frames."""
    import av

    data = frame.to_ndarray()
    width = count if frame.format.is_planar else count * len(frame.layout.channels)
    parts = []
    for part in (data[:, :width], data[:, width:]):
        piece = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(part), format=frame.format.name, layout=frame.layout.name
        )
        piece.sample_rate = frame.sample_rate
        parts.append(piece)
    return parts[0], parts[1]


def concat(first: Any, second: Any) -> Any:
    import av

    data = np.concatenate([first.to_ndarray(), second.to_ndarray()], axis=1)
    frame = av.AudioFrame.from_ndarray(data, format=first.format.name, layout=first.layout.name)
    frame.sample_rate = first.sample_rate
    return frame


_DTYPES = {
    "u8": np.uint8,
    "s16": np.int16,
    "s32": np.int32,
    "s64": np.int64,
    "flt": np.float32,
    "dbl": np.float64,
}
