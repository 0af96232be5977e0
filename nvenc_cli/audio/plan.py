"""Decide, before anything is written, what happens to the sound: copy, re-encode or none.

Every refusal (a file without audio, a codec the container cannot carry, a rate or channel
count the encoder cannot take) happens here, so a bad command leaves no output behind.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nvenc_cli.audio import codecs
from nvenc_cli.audio.inputs import ARRAY_EXTENSIONS, ArrayAudio, MediaAudio, check_rate, layout_for
from nvenc_cli.errors import UsageError, brief

AudioInput = MediaAudio | ArrayAudio


@dataclass(frozen=True)
class AudioOptions:
    """What the user asked of the sound (None = choose for me)."""

    enabled: bool = True
    codec: str | None = None  # an encoder name, or "copy"
    bitrate: int | None = None
    file: str | None = None  # --audio FILE
    key: str | None = None  # --audio-key: samples in an .npz/.pt
    rate: int | None = None  # --audio-rate: the samples' rate when the file does not say
    out_rate: int | None = None  # the API's out_sample_rate
    out_channels: int | None = None  # the API's out_num_channels

    def __post_init__(self) -> None:
        if self.bitrate is not None and (isinstance(self.bitrate, bool) or self.bitrate < 0):
            raise UsageError(
                f"invalid --audio-bitrate {self.bitrate}: it must be ≥ 0 (0 = the encoder's default)"
            )
        if not self.enabled and (self.file or self.key or self.codec):
            given = "--audio" if self.file else "--audio-key" if self.key else "--audio-codec"
            raise UsageError(f"--no-audio and {given} exclude each other")


@dataclass(frozen=True)
class AudioPlan:
    """The resolved audio track: what the muxer gets and what the report says."""

    origin: str  # "input", a file name, or "samples"
    action: str  # "copy" or "encode"
    codec: str  # codec of the output stream (aac, opus, flac…)
    encoder: str | None  # the encoder for a re-encode
    rate: int
    channels: int
    layout: str
    sample_format: str | None
    bit_rate: int | None
    source_codec: str | None
    offset: Fraction  # input time shown at output time 0
    notices: tuple[str, ...] = ()

    @property
    def copied(self) -> bool:
        return self.action == "copy"


def parse_bitrate(text: str | int | None) -> int | None:
    """``128k``, ``1.5M`` or ``96000`` bits per second (FFmpeg's spelling)."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(text))
    if not match:
        raise UsageError(f"invalid --audio-bitrate {text!r}: use e.g. 128k, 1.5M or 96000")
    scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2).lower()]
    return round(float(match.group(1)) * scale)


def open_input(
    options: AudioOptions, spec: str | None, video_is_media: bool
) -> tuple[AudioInput | None, str]:
    """The audio input the options name, and its origin for the report."""
    if options.file is not None:
        ext = os.path.splitext(options.file)[1].lower()
        if ext in ARRAY_EXTENSIONS:
            from nvenc_cli.audio.inputs import open_array_audio

            return open_array_audio(options.file, options.key, options.rate), options.file
        if options.key is not None:
            raise UsageError(f"--audio-key picks samples in an .npz/.pt file, not in {options.file}")
        return MediaAudio(options.file), options.file
    if options.key is not None:
        if spec is None or os.path.splitext(spec)[1].lower() not in ARRAY_EXTENSIONS:
            raise UsageError("--audio-key picks samples in an .npz/.pt input: give one, or --audio FILE")
        from nvenc_cli.audio.inputs import open_array_audio

        return open_array_audio(spec, options.key, options.rate), "input"
    if options.rate is not None:
        raise UsageError("--audio-rate is the rate of samples in an array: use it with --audio-key")
    if video_is_media and spec is not None:
        found = MediaAudio(spec, required=False)
        if not found.present:
            return None, "input"
        return found, "input"
    return None, "input"


def plan_audio(
    options: AudioOptions,
    container: str,
    audio: AudioInput,
    origin: str,
    *,
    trim_start: Fraction = Fraction(0),
) -> AudioPlan:
    """Copy when the container carries the input's codec and nothing needs cutting inside a
    packet; otherwise re-encode with the container's usual codec (or --audio-codec)."""
    if container in codecs.SILENT_CONTAINERS:
        raise UsageError(f"{container} files cannot carry audio: add --no-audio or pick another container")
    from_input = origin == "input" and isinstance(audio, MediaAudio)
    # The input's own sound is cut where --start cuts its frames, whether it is a media
    # file's track or samples stored beside the frames in an array file.
    if origin == "input":
        offset = (audio.video_start() if from_input else audio.start) + trim_start
    else:
        offset = audio.start
    changes = options.out_rate is not None or options.out_channels is not None or bool(options.bitrate)
    copyable = audio.codec is not None and codecs.can_copy(container, audio.codec)
    wants_copy = options.codec == codecs.COPY
    label = "the input's audio" if from_input else audio.path
    if wants_copy:
        if audio.codec is None:
            raise UsageError(f"--audio-codec copy needs coded audio; {label} is raw samples")
        if not copyable:
            allowed = ", ".join(sorted(codecs.carried(container))) or "none"
            raise UsageError(
                f"--audio-codec copy: {container} files cannot carry {audio.codec} (it takes {allowed}); "
                "drop --audio-codec to re-encode"
            )
        if from_input and trim_start > 0:
            raise UsageError(
                "--audio-codec copy cannot cut the audio exactly at --start (packets span several "
                "samples): drop --audio-codec copy to re-encode the cut"
            )
        if changes:
            raise UsageError(
                "--audio-codec copy keeps the audio as it is: drop the bit rate, rate or channel options"
            )
    trimmed = from_input and trim_start > 0
    if options.codec is None and copyable and not trimmed and not changes:
        return AudioPlan(
            origin=origin,
            action="copy",
            codec=audio.codec or "",
            encoder=None,
            rate=audio.rate,
            channels=audio.channels,
            layout=audio.layout,
            sample_format=None,
            bit_rate=None,
            source_codec=audio.codec,
            offset=offset,
            notices=(f"audio: {audio.codec} {audio.rate} Hz {audio.layout} copied from {label}",),
        )
    if wants_copy:
        return AudioPlan(
            origin, "copy", audio.codec or "", None, audio.rate, audio.channels, audio.layout,
            None, None, audio.codec, offset,
            (f"audio: {audio.codec} {audio.rate} Hz {audio.layout} copied from {label}",),
        )  # fmt: skip
    if options.codec is not None:
        encoder, family = codecs.resolve_encoder(options.codec, container)
        why = f"--audio-codec {options.codec}"
    else:
        encoder = codecs.default_encoder(container)
        family = codecs.family_of(encoder)
        if audio.codec is None:
            why = ""
        elif trimmed:
            why = "to cut it exactly at --start"
        elif changes:
            why = "for the asked rate, channels or bit rate"
        else:
            why = f"{container} files cannot carry {audio.codec}"
    rate, rate_note = _fit_rate(
        encoder, options.out_rate or audio.rate, explicit=options.out_rate is not None
    )
    channels = options.out_channels if options.out_channels is not None else audio.channels
    layout = audio.layout if channels == audio.channels else _layout(channels)
    sample_format = _sample_format(encoder, audio)
    bit_rate = options.bitrate or None
    _try_open(encoder, rate, layout, sample_format, bit_rate, channels)
    notes = []
    if audio.codec is not None or why:
        source = f"{audio.codec} " if audio.codec else ""
        reason = f" ({why})" if why else ""
        notes.append(f"audio: {source}re-encoded to {encoder} {rate} Hz {layout}{reason}")
    if rate_note:
        notes.append(rate_note)
    return AudioPlan(
        origin=origin,
        action="encode",
        codec=family,
        encoder=encoder,
        rate=rate,
        channels=channels,
        layout=layout,
        sample_format=sample_format,
        bit_rate=bit_rate,
        source_codec=audio.codec,
        offset=offset,
        notices=tuple(notes),
    )


def _layout(channels: int) -> str:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1 or channels > 64:
        raise UsageError(f"invalid number of audio channels {channels!r}: use 1–8 (e.g. 1 mono, 2 stereo)")
    return layout_for(channels)


def _fit_rate(encoder: str, wanted: int, explicit: bool) -> tuple[int, str | None]:
    """The encoder's nearest rate at or above ``wanted`` (a notice says so), or refusal."""
    import av

    wanted = check_rate(wanted, "audio")
    rates = sorted(av.Codec(encoder, "w").audio_rates or [])
    if not rates or wanted in rates:
        return wanted, None
    choices = ", ".join(str(r) for r in rates)
    if explicit:
        raise UsageError(f"{encoder} cannot encode at {wanted} Hz: choose one of {choices}")
    above = [r for r in rates if r >= wanted]
    chosen = above[0] if above else rates[-1]
    return chosen, f"audio resampled from {wanted} Hz to {chosen} Hz: {encoder} takes only {choices} Hz"


def _sample_format(encoder: str, audio: AudioInput) -> str:
    """The encoder's format closest to the input's: float for float input, else the deepest
    integer one the input needs (FLAC keeps 16-bit input at 16 bits)."""
    import av

    formats = [f.name for f in (av.Codec(encoder, "w").audio_formats or [])]
    if not formats:
        return "fltp"
    source = getattr(audio, "sample_format", "fltp") or "fltp"
    bits = av.AudioFormat(source).bits
    if source.rstrip("p") in ("flt", "dbl"):
        for name in ("fltp", "flt"):
            if name in formats:
                return name
    same = [
        f
        for f in formats
        if av.AudioFormat(f).bits == bits and av.AudioFormat(f).is_planar == source.endswith("p")
    ]
    if same:
        return same[0]
    deeper = sorted(
        (f for f in formats if av.AudioFormat(f).bits >= bits), key=lambda f: av.AudioFormat(f).bits
    )
    return deeper[0] if deeper else formats[0]


def _try_open(
    encoder: str, rate: int, layout: str, sample_format: str, bit_rate: int | None, channels: int
) -> None:
    """Open the encoder once with these settings so refusals come before any output exists."""
    import av

    from nvenc_cli.audio.encoder import configure

    ctx = av.CodecContext.create(encoder, "w")
    try:
        configure(ctx, rate, layout, sample_format, bit_rate)
        ctx.open()
    except (av.FFmpegError, ValueError) as exc:
        raise UsageError(
            f"{encoder} cannot encode {channels} channel{'s' if channels != 1 else ''} ({layout}) at "
            f"{rate} Hz{f', {bit_rate} b/s' if bit_rate else ''} ({brief(exc)})"
        ) from None
    finally:
        del ctx


def describe(plan: AudioPlan, duration: float | None) -> dict[str, Any]:
    """The ``--json`` report's "audio" object."""
    return {
        "codec": plan.codec,
        "action": "copied" if plan.copied else "re-encoded",
        "encoder": plan.encoder,
        "source": plan.origin,
        "source_codec": plan.source_codec,
        "sample_rate": plan.rate,
        "channels": plan.channels,
        "layout": plan.layout,
        "bit_rate": plan.bit_rate,
        "duration": None if duration is None else round(duration, 6),
    }
