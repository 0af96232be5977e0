"""Sound: the input's first audio stream, a file's, or samples in an array, copied or
re-encoded for the output container and cut to the video's span.

``prepare_audio`` makes every decision (and every refusal) before the output exists;
``AudioTrack`` then produces packets for the muxer as the video advances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvenc_cli.audio.plan import AudioOptions, AudioPlan, describe, parse_bitrate

if TYPE_CHECKING:
    from nvenc_cli.audio.track import AudioTrack

__all__ = ["AudioOptions", "AudioPlan", "AudioTrack", "describe", "parse_bitrate", "prepare_audio"]


def __getattr__(name: str) -> Any:
    """``AudioTrack`` on first use: it brings numpy, which an encode without sound (or
    one whose sound is copied) never needs."""
    if name == "AudioTrack":
        from nvenc_cli.audio.track import AudioTrack

        return AudioTrack
    raise AttributeError(f"module 'nvenc_cli.audio' has no attribute {name!r}")


def prepare_audio(
    options: AudioOptions | None,
    container: str,
    spec: str | None,
    *,
    video_is_media: bool,
    trim_start: object = 0,
) -> tuple[AudioTrack | None, tuple[str, ...]]:
    """The track for this encode (or None) and the notices that explain it.

    An input video without sound simply gives no track; a GIF output drops the input's
    sound with a notice, and refuses sound that was asked for explicitly.
    """
    from fractions import Fraction

    from nvenc_cli.audio import codecs
    from nvenc_cli.audio.plan import open_input, plan_audio

    options = options or AudioOptions()
    if not options.enabled:
        return None, ()
    explicit = options.file is not None or options.key is not None or options.codec is not None
    if container in codecs.SILENT_CONTAINERS and not explicit:
        probe, _ = open_input(options, spec, video_is_media)
        if probe is None:
            return None, ()
        probe.close()
        return None, (f"audio dropped: {container} files cannot carry sound",)
    source, origin = open_input(options, spec, video_is_media)
    if source is None:
        return None, ()
    try:
        plan = plan_audio(options, container, source, origin, trim_start=Fraction(trim_start))  # type: ignore[arg-type]
    except BaseException:
        source.close()
        raise
    from nvenc_cli.audio.track import AudioTrack  # with sound only: it brings numpy

    return AudioTrack(plan, source), plan.notices


def writer_track(
    audio: object, sample_rate: int | None, codec: str | None, bit_rate: int | None, container: str
) -> AudioTrack | None:
    """The track ``open_writer(audio=...)`` adds: a file's sound, or samples in memory
    ((C, S) or (S,), float in [-1, 1] or int16, at ``sample_rate``); cut at the video's end."""
    import os
    from dataclasses import replace

    from nvenc_cli.audio.inputs import ArrayAudio
    from nvenc_cli.audio.plan import open_input, plan_audio
    from nvenc_cli.audio.track import AudioTrack

    if audio is None:
        return None
    options = AudioOptions(codec=codec, bitrate=bit_rate)
    if isinstance(audio, (str, os.PathLike)):
        options = replace(options, file=os.fspath(audio), rate=sample_rate)
        source, origin = open_input(options, None, False)
        assert source is not None
    else:
        source, origin = ArrayAudio(audio, sample_rate, "audio"), "samples"
    try:
        plan = plan_audio(options, container, source, origin)
    except BaseException:
        source.close()
        raise
    return AudioTrack(plan, source)
