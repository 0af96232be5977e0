"""Values the shell offers on TAB for nvenc's options (``nvenc --install-completion``).

Each function is called by Typer's completion machinery with the partly parsed command line
(``ctx.params``), so presets and pixel formats follow the ``--codec`` already typed. They
import PyAV only when the shell asks, never at import time, because ``cli.py`` imports this
module and ``nvenc --help`` must stay fast.

Path arguments deliberately have no function here: when a parameter offers no candidates,
Typer's bash (``complete -o default``), zsh (``_files``) and fish scripts fall back to the
shell's own file completion, which quotes spaces and appends ``/`` to folders correctly.
"""

from __future__ import annotations

from typing import Any

from nvenc_cli.options import (
    CONTAINERS,
    CPU_ENCODER_FOR,
    DEFAULT_CODEC,
    FORMAT_ALIASES,
    NVENC_ENCODERS,
    X26X_PRESETS,
)

Candidate = tuple[str, str]

NVENC_PRESETS: tuple[str, ...] = tuple(f"p{i}" for i in range(1, 8))
SVT_AV1_PRESETS: tuple[str, ...] = tuple(str(i) for i in range(14))
# What the NVENC hardware takes as input surfaces, in FFmpeg's names; the fallback when the
# NVENC backend's own table cannot be read.
NVENC_PIXEL_FORMATS: tuple[str, ...] = ("yuv420p", "nv12", "yuv444p", "p010le", "yuv444p16le")
# Encoders whose pixel formats are offered when no --codec was typed yet: the ones people
# actually pick, so TAB does not dump every format of every legacy codec.
COMMON_ENCODERS: tuple[str, ...] = (
    "libx264",
    "libx265",
    "libsvtav1",
    "libvpx-vp9",
    "ffv1",
    "prores_ks",
    "png",
    "gif",
)
_X26X = frozenset({"libx264", "libx264rgb", "libx265", "h264", "avc", "hevc", "h265"})
_SVT = frozenset({"libsvtav1", "av1"})
_VPX = frozenset({"libvpx-vp9", "vp9", "libvpx", "vp8"})


def _matching(candidates: list[Candidate], incomplete: str) -> list[Candidate]:
    return [c for c in candidates if c[0].startswith(incomplete)]


def _typed(ctx: Any, name: str) -> str | None:
    """An option's value as already typed on the command line (None if not yet)."""
    params = getattr(ctx, "params", None) or {}
    value = params.get(name)
    if value is None:
        return None
    return str(getattr(value, "value", value)).strip().lower()


def encoder_names() -> list[Candidate]:
    """The video encoders nvenc can use here, with FFmpeg's long name as help.

    Only encoders some container of nvenc's can carry (not FFmpeg's every name: a64multi,
    cinepak, libwebp…); the ``*_nvenc`` names only where an NVIDIA driver is present (a
    real probe would cost seconds per TAB); the family aliases (``h264``, ``hevc``…) let
    ``--device`` decide between CPU and GPU.
    """
    import av

    from nvenc_cli.backends.cpu import CpuBackend
    from nvenc_cli.options import CONTAINER_CODECS
    from nvenc_cli.report import nvidia_driver_present

    carried = set().union(*CONTAINER_CODECS.values())
    out: dict[str, str] = {}
    for name in CpuBackend().encoders():
        try:
            codec = av.Codec(name, "w")
        except Exception:
            continue
        if codec.canonical_name in carried:
            out[name] = codec.long_name or ""
    if nvidia_driver_present():
        for family, name in NVENC_ENCODERS.items():
            out[name] = f"{family.upper()} on the GPU (NVENC)"
    for alias, name in CPU_ENCODER_FOR.items():
        out.setdefault(alias, f"{alias}: NVENC when usable, else {name}")
    return sorted(out.items())


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def completion_script(shell: str) -> str:
    """The completion script ``--show-completion SHELL`` prints (Typer's own scripts)."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="nvenc", complete_var="_NVENC_COMPLETE", shell=shell)


def complete_codec(incomplete: str) -> list[Candidate]:
    """``--codec``: encoder names and family aliases."""
    return _matching(encoder_names(), incomplete)


def presets_for(codec: str | None, device: str | None = None) -> list[Candidate]:
    """Preset names the chosen encoder understands (all families when none is chosen)."""
    x26x = [(p, "x264/x265 speed preset") for p in X26X_PRESETS]
    svt = [(p, "SVT-AV1 preset (0 slowest, 13 fastest)") for p in SVT_AV1_PRESETS]
    nvenc = [(p, "NVENC preset (p1 fastest, p7 best quality)") for p in NVENC_PRESETS]
    if codec is None:
        return nvenc + x26x + svt if device == "cuda" else x26x + svt + nvenc
    if codec.endswith("_nvenc") or (device == "cuda" and codec in CPU_ENCODER_FOR):
        return nvenc
    if codec in _X26X:
        return x26x
    mapped = [(p, "x264 name, mapped to this encoder's speed") for p in X26X_PRESETS]
    if codec in _SVT:
        return svt + mapped
    if codec in _VPX:
        return mapped
    return []


def complete_preset(ctx: Any, incomplete: str) -> list[Candidate]:
    """``--preset``: depends on ``--codec`` (and ``--device cuda``) when typed before it."""
    return _matching(presets_for(_typed(ctx, "codec"), _typed(ctx, "device")), incomplete)


def encoder_pixel_formats(encoder: str) -> list[str]:
    """Pixel formats one encoder accepts, in FFmpeg's order (its preferred first)."""
    import av

    name = CPU_ENCODER_FOR.get(encoder, encoder)
    try:
        formats = [f.name for f in (av.Codec(name, "w").video_formats or [])]
    except Exception:
        formats = []
    if name.endswith("_nvenc"):
        return nvenc_pixel_formats(name) or formats or list(NVENC_PIXEL_FORMATS)
    return formats


def nvenc_pixel_formats(encoder: str) -> list[str]:
    """What nvenc's own NVENC backend takes for ``encoder`` (not FFmpeg's *_nvenc, which
    nvenc does not use), as ``nvenc info`` reports it."""
    try:
        from nvenc_cli.info import _nvenc_encoders

        return list(_nvenc_encoders().get(encoder, {}).get("pixel_formats", []))
    except Exception:  # the GPU backend's tables are optional for completion
        return []


def pixel_formats_for(codec: str | None, output: str | None = None) -> list[Candidate]:
    """Formats for the typed codec, else for the output's default codec, else common ones."""
    if codec is None and output:
        from nvenc_cli.options import container_for

        try:
            container = container_for(output, None)
        except Exception:
            container = None
        if container is not None:
            codec = DEFAULT_CODEC.get(container, "libx264")
    encoders = [codec] if codec else list(COMMON_ENCODERS)
    out: dict[str, str] = {}
    for encoder in encoders:
        for name in encoder_pixel_formats(encoder):
            out.setdefault(name, f"{encoder}")
    if codec is None:
        return sorted(out.items())
    return list(out.items())


def complete_pixel_format(ctx: Any, incomplete: str) -> list[Candidate]:
    """``--pixel-format``: the formats of ``--codec`` (or of the output's default codec)."""
    return _matching(pixel_formats_for(_typed(ctx, "codec"), _typed(ctx, "output")), incomplete)


def complete_format(incomplete: str) -> list[Candidate]:
    """``--format``: container names and the extensions that imply them."""
    names = {alias: f"{muxer} container" for alias, muxer in FORMAT_ALIASES.items()}
    names.update({ext: f"{muxer} container (.{ext})" for ext, muxer in CONTAINERS.items()})
    return _matching(sorted(names.items()), incomplete)


def complete_raw_format(incomplete: str) -> list[Candidate]:
    """``--input-pixel-format``: the packed layouts the raw-frame reader takes."""
    from nvenc_cli.sources.pipe import RAW_FORMATS

    return _matching(
        [(name, f"{fmt.channels} channels, {fmt.dtype}") for name, fmt in RAW_FORMATS.items()], incomplete
    )
