"""Which audio codecs each container carries, and the one it gets by default.

The defaults are what people expect of each container: AAC in MP4/MOV (plays everywhere),
Opus in WebM (the only modern codec WebM allows), and elsewhere the codec FFmpeg's own
muxer picks (AC-3 for Matroska, MP3 for AVI and NUT, MP2 for MPEG-TS). Whether a stream
can be copied is FFmpeg's own answer for the muxer (``avformat_query_codec``, exposed by
PyAV as ``supported_codecs``), with two corrections where that answer misleads.
"""

from __future__ import annotations

from functools import cache

from nvenc_cli.errors import UsageError

# Encoder names for the codec families FFmpeg reports as a muxer's default.
_ENCODER_FOR = {"opus": "libopus", "mp3": "libmp3lame", "vorbis": "vorbis"}

# The muxer's query only knows its default codec for MPEG-TS, which carries all of these.
_MPEGTS = frozenset({"aac", "mp2", "mp3", "ac3", "eac3", "opus"})

#: Containers that cannot hold sound at all.
SILENT_CONTAINERS = frozenset({"gif"})

#: What --audio-codec accepts as "keep the input's packets".
COPY = "copy"


@cache
def carried(container: str) -> frozenset[str]:
    """Audio codec families (FFmpeg names: aac, opus, flac, pcm_s16le…) ``container`` takes."""
    import av

    if container in SILENT_CONTAINERS:
        return frozenset()
    if container == "mpegts":
        return _MPEGTS
    import io

    with av.open(io.BytesIO(), "w", format=container) as probe:
        names = set(probe.supported_codecs)
    audio = set()
    for name in names:  # decoder names (mp3float, libopus): reported as their codec's name
        try:
            codec = av.Codec(name, "r")
        except Exception:  # a codec id FFmpeg knows but has no decoder for here
            continue
        if codec.type == "audio":
            audio.add(codec.canonical_name)
    if container == "mp4":
        # ISO 23003-5 PCM in MP4 is recent and most players refuse it; MOV carries PCM.
        audio = {name for name in audio if not name.startswith("pcm_")}
    return frozenset(audio)


def can_copy(container: str, codec: str) -> bool:
    return codec in carried(container)


def default_encoder(container: str) -> str:
    """The encoder a re-encode uses when --audio-codec does not name one."""
    if container in ("mp4", "mov", "mpegts"):
        return "aac" if container != "mpegts" else "mp2"
    if container == "webm":
        return "libopus"
    import io

    import av

    with av.open(io.BytesIO(), "w", format=container) as probe:
        family = probe.default_audio_codec
    return _ENCODER_FOR.get(family, family)


def resolve_encoder(name: str, container: str) -> tuple[str, str]:
    """(encoder, family) for ``--audio-codec NAME``; refuses video codecs and misfits."""
    import av

    try:
        codec = av.Codec(name, "w")
    except Exception:
        raise UsageError(
            f"unknown --audio-codec {name!r}: try aac, libopus, flac, libmp3lame or copy"
        ) from None
    if codec.type != "audio":
        raise UsageError(f"--audio-codec {name} is a {codec.type} codec, not an audio one")
    family = codec.canonical_name
    allowed = carried(container)
    if container in SILENT_CONTAINERS:
        raise UsageError(f"{container} files cannot carry audio: drop --audio-codec or use another container")
    if family not in allowed:
        raise UsageError(
            f"audio codec {codec.name} cannot go in {container} files: use one of "
            f"{', '.join(sorted(allowed))} (or --no-audio)"
        )
    return codec.name, family


def family_of(encoder: str) -> str:
    """FFmpeg's codec name for an encoder (libopus -> opus), as streams report it."""
    import av

    return av.Codec(encoder, "w").canonical_name


def container_table() -> dict[str, dict[str, object]]:
    """For ``nvenc info``: per muxer, the audio families it carries and its default encoder."""
    from nvenc_cli.options import CONTAINER_CODECS

    table: dict[str, dict[str, object]] = {}
    for container in sorted(CONTAINER_CODECS):
        families = sorted(carried(container))
        table[container] = {
            "audio_codecs": families,
            "default_audio_codec": default_encoder(container) if families else None,
        }
    return table


# Extension -> muxer for sound-only outputs (AudioEncoder, an Encoder without video).
AUDIO_CONTAINERS: dict[str, str] = {
    "wav": "wav",
    "flac": "flac",
    "mp3": "mp3",
    "ogg": "ogg",
    "oga": "ogg",
    "opus": "opus",
    "m4a": "ipod",
    "aac": "adts",
    "mka": "matroska",
}


def audio_container(dest: str | None, fmt: str | None) -> str | None:
    """The muxer a sound-only output gets from ``format`` or the extension; None when the
    name is not an audio container (the caller then tries the video containers)."""
    import os

    name = (fmt or os.path.splitext(str(dest or ""))[1]).lower().lstrip(".")
    return AUDIO_CONTAINERS.get(name)
