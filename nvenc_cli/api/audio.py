"""torchcodec's ``AudioEncoder``: a whole track of samples to a file, a file object or bytes.

Thin over ``nvenc_cli.audio``: the samples are checked by the rules of array files (finite;
louder than [-1, 1] only with a warning, as torchcodec takes them), planned by
``plan_audio`` and muxed by ``Muxer``, so a path output appears only once complete and
nothing is left behind on an error.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvenc_cli.errors import InputDataError, UsageError

if TYPE_CHECKING:
    import torch

__all__ = ["AudioEncoder"]


class AudioEncoder:
    """Encode audio samples; a drop-in for ``torchcodec.encoders.AudioEncoder``.

    Args:
        samples: float32 tensor of shape (num_channels, num_samples), or 1-D for mono, with
            values in [-1, 1]. Louder samples are encoded as given, as torchcodec does, with
            a ``UserWarning`` (PCM and FLAC clip them; float codecs take them as they are).
            numpy arrays and int16 samples are accepted too.
        sample_rate: the samples' rate in Hz; the output keeps it unless ``sample_rate``
            is given to an encoding method.

    Raises:
        InputDataError: samples that are not a tensor, not 1-D/2-D or not float32;
        UsageError: a sample rate ≤ 0 (both are ``ValueError``, as in torchcodec).
    """

    def __init__(self, samples: Any, *, sample_rate: int) -> None:
        import numpy as np

        from nvenc_cli.sources.memory import is_torch

        if not (is_torch(samples) or isinstance(samples, np.ndarray)):
            raise InputDataError(f"Expected samples to be a Tensor, got {type(samples) = }.")
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.ndim != 2:
            raise InputDataError(f"Expected 1D or 2D samples, got {tuple(samples.shape) = }.")
        dtype = str(samples.dtype).removeprefix("torch.")
        if dtype not in ("float32", "int16"):
            raise InputDataError(f"Expected float32 samples, got {samples.dtype = }.")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise UsageError(f"{sample_rate = } must be > 0.")
        self._samples = samples
        self._sample_rate = sample_rate

    def to_file(
        self,
        dest: str | Path,
        *,
        bit_rate: int | None = None,
        num_channels: int | None = None,
        sample_rate: int | None = None,
        overwrite: bool = True,
    ) -> None:
        """Encode into the file ``dest``; its extension picks the container and codec
        (``.wav`` PCM, ``.flac``, ``.mp3``, ``.ogg``, ``.opus``, ``.m4a`` AAC, or a video
        container such as ``.mp4``/``.mkv``).

        ``bit_rate`` in bits per second (0 or None: the encoder's default); ``num_channels``
        and ``sample_rate`` of the output (default: the input's).
        """
        if not isinstance(dest, (str, os.PathLike)):
            raise UsageError(f"dest must be a path (str or pathlib.Path), got {type(dest).__name__}")
        self._encode(os.fspath(dest), None, bit_rate, num_channels, sample_rate, overwrite)

    def to_tensor(
        self,
        format: str,
        *,
        bit_rate: int | None = None,
        num_channels: int | None = None,
        sample_rate: int | None = None,
    ) -> torch.Tensor:
        """Encode and return the file's bytes as a 1-D uint8 CPU tensor (``format``: "wav",
        "flac", "mp3"…)."""
        import torch

        buffer = io.BytesIO()
        self._encode(buffer, format, bit_rate, num_channels, sample_rate, False)
        return torch.frombuffer(bytearray(buffer.getbuffer()), dtype=torch.uint8)

    def to_file_like(
        self,
        file_like: Any,
        format: str,
        *,
        bit_rate: int | None = None,
        num_channels: int | None = None,
        sample_rate: int | None = None,
    ) -> None:
        """Encode into a binary file-like object with ``write`` and ``seek`` methods."""
        from nvenc_cli.api.encoder import check_file_like
        from nvenc_cli.api.video import api_errors

        with api_errors():
            check_file_like(file_like)
        self._encode(file_like, format, bit_rate, num_channels, sample_rate, False)

    def _encode(
        self,
        dest: Any,
        fmt: str | None,
        bit_rate: int | None,
        num_channels: int | None,
        sample_rate: int | None,
        overwrite: bool,
    ) -> None:
        from nvenc_cli.api.encoder import AudioSettings, audio_only_container, open_audio_track
        from nvenc_cli.api.video import api_errors
        from nvenc_cli.audio.inputs import ArrayAudio
        from nvenc_cli.mux import Muxer

        settings = AudioSettings(
            self._sample_rate, int(self._samples.shape[0]), bit_rate, num_channels, sample_rate
        )
        with api_errors():
            settings.check()
            container = audio_only_container(dest, fmt, overwrite)
            source = ArrayAudio(self._samples, self._sample_rate, "samples", lenient=True)
            track = open_audio_track(settings, container, source)
            try:
                muxer = Muxer(dest, container, None, overwrite, video=False)
            except BaseException:
                track.close()
                raise
            try:
                track.attach(muxer)
                muxer.start()
                for frame in source.frames():
                    track.write(frame)
                track.finish_pushed()
                muxer.finish()
            except BaseException:
                muxer.abort()
                raise
            finally:
                track.close()
