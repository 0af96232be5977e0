"""What ``nvenc info`` reports: versions, backends (available or why not), encoders, containers.

One function, :func:`collect_info`, gathers it all into a JSON-ready dict; the CLI only
renders it. Versions come from package metadata rather than imports, so asking does not
pay for (or fail on) importing torch, PyNvVideoCodec or CV-CUDA.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import re
from pathlib import Path
from typing import Any

# Distribution names to try for each reported package (first installed wins).
_DISTRIBUTIONS = {
    "torch": ("torch",),
    "numpy": ("numpy",),
    "PyNvVideoCodec": ("pynvvideocodec", "PyNvVideoCodec"),
    "cvcuda": ("cvcuda-cu12", "cvcuda-cu13", "cvcuda-cu11", "cvcuda"),
}


def _dist_version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def torch_cuda_version() -> str | None:
    """The CUDA version torch was built for, read from torch/version.py without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return match.group(1) if match else None


def versions() -> dict[str, str | None]:
    """nvenc, Python, torch (+ its CUDA), PyAV and FFmpeg, the driver, PyNvVideoCodec, CV-CUDA."""
    import av

    from nvenc_cli import __version__
    from nvenc_cli.backends.nvenc import driver_version

    libavcodec = ".".join(str(part) for part in av.library_versions.get("libavcodec", ()))
    found = {key: _dist_version(names) for key, names in _DISTRIBUTIONS.items()}
    return {
        "nvenc": __version__,
        "python": platform.python_version(),
        "torch": found["torch"],
        "torch_cuda": torch_cuda_version(),
        "numpy": found["numpy"],
        "av": av.__version__,
        "ffmpeg": getattr(av, "ffmpeg_version_info", None) or f"libavcodec {libavcodec}",
        "libavcodec": libavcodec or None,
        "nvidia_driver": driver_version(),
        "PyNvVideoCodec": found["PyNvVideoCodec"],
        "cvcuda": found["cvcuda"],
    }


def _cpu_encoders() -> dict[str, dict[str, Any]]:
    import av

    from nvenc_cli.backends.cpu import CpuBackend

    table: dict[str, dict[str, Any]] = {}
    for name in CpuBackend().encoders():
        try:
            codec = av.Codec(name, "w")
        except Exception:  # a name FFmpeg lists but cannot open here
            continue
        if codec.name != name:  # a family name ("h264") that only resolves to an encoder
            continue
        formats = [fmt.name for fmt in (codec.video_formats or [])]
        table[name] = {"backend": "cpu", "codec": codec.canonical_name, "pixel_formats": formats}
    return table


def _nvenc_encoders() -> dict[str, dict[str, Any]]:
    from nvenc_cli.backends.nvenc import ENCODERS
    from nvenc_cli.backends.nvenc_options import SURFACES

    table = {}
    for name in ENCODERS:
        family = name.removesuffix("_nvenc")
        formats = [fmt for fmt, surface in SURFACES.items() if family != "av1" or surface.chroma == "420"]
        table[name] = {"backend": "nvenc", "codec": family, "pixel_formats": formats}
    return table


def _containers(encoders: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per muxer: its extensions, the codec families it carries and the encoders for each."""
    from nvenc_cli.audio.codecs import container_table
    from nvenc_cli.options import CONTAINER_CODECS, CONTAINERS, DEFAULT_CODEC

    audio = container_table()
    out: dict[str, dict[str, Any]] = {}
    for muxer, families in sorted(CONTAINER_CODECS.items()):
        by_family = {
            family: sorted(name for name, facts in encoders.items() if facts["codec"] == family)
            for family in sorted(families)
        }
        out[muxer] = {
            "extensions": sorted(ext for ext, name in CONTAINERS.items() if name == muxer),
            "default_codec": DEFAULT_CODEC.get(muxer, "libx264"),
            "codecs": sorted(families),
            "encoders": {family: names for family, names in by_family.items() if names},
            **audio.get(muxer, {}),
        }
    return out


def collect_info() -> dict[str, Any]:
    """Everything ``nvenc info`` shows, as plain JSON-ready data."""
    from nvenc_cli.backends import ffmpeg_nvenc
    from nvenc_cli.backends.cpu import CpuBackend
    from nvenc_cli.backends.nvenc import probe_details
    from nvenc_cli.backends.nvenc_options import PRESET_ALIASES, PRESETS, describe_keys

    cpu_encoders = _cpu_encoders()
    nvenc_encoders = _nvenc_encoders()
    nvenc = probe_details()
    ffmpeg = ffmpeg_nvenc.probe_details()
    encoders = {**cpu_encoders, **nvenc_encoders}
    return {
        "versions": versions(),
        "backends": {
            "cpu": {
                "available": True,
                "reason": CpuBackend().probe().reason,
                "encoders": sorted(cpu_encoders),
            },
            "nvenc": {
                "available": nvenc.ok,
                "reason": nvenc.reason,
                "code": nvenc.code,
                "gpu": nvenc.gpu,
                "colour_conversion": nvenc.colour if nvenc.ok else None,
                "encoders": sorted(nvenc_encoders),
                "presets": {**{p.lower(): p for p in PRESETS}, **PRESET_ALIASES},
                "options": dict(describe_keys()),
            },
            "ffmpeg_nvenc": {
                "available": ffmpeg.ok,
                "reason": ffmpeg.reason,
                "code": ffmpeg.code,
                "colour_conversion": "swscale (as the CPU path)" if ffmpeg.ok else None,
                "encoders": sorted(nvenc_encoders),
            },
        },
        "routes": routes(nvenc.ok, ffmpeg.ok),
        "encoders": encoders,
        "containers": _containers(encoders),
    }


def routes(nvenc_ok: bool, ffmpeg_ok: bool) -> dict[str, dict[str, Any]]:
    """Every way frames reach an encoder: where they are converted, what crosses to the
    host, and whether this machine can take that way (the names ``--json`` reports)."""
    from nvenc_cli.backends.nvenc import _load_library

    cuda = torch_cuda_version() is not None and _load_library("libcuda.so.1")
    return {
        "cpu": {
            "available": True,
            "when": "host frames (files, numpy, CPU tensors) to an FFmpeg CPU encoder",
            "converts": "swscale (exact maths for 16-bit samples) on the CPU",
        },
        "planes-passthrough": {
            "available": True,
            "when": "a video input whose pixel format, matrix, range and size the output keeps",
            "converts": "nothing: decoded planes go to the encoder",
        },
        "cuda-convert+cpu-encode": {
            "available": cuda,
            "when": "CUDA tensors to a CPU encoder (no NVENC on the GPU, or a CPU codec asked)",
            "converts": "color.py on the GPU; only finished planes cross to the host (pinned, async)",
        },
        "cuda-convert+ffmpeg-nvenc": {
            "available": cuda and ffmpeg_ok,
            "when": "CUDA tensors to FFmpeg's nvenc (PyAV) as NV12/P010 CUDA frames, without PyNvVideoCodec",
            "converts": "color.py on the GPU; nothing crosses to the host",
        },
        "cuda-convert+host+ffmpeg-nvenc": {
            "available": cuda and ffmpeg_ok,
            "when": "CUDA tensors to FFmpeg's nvenc in other formats, or written frame by frame",
            "converts": "color.py on the GPU; the planes cross to the host, FFmpeg uploads them",
        },
        "nvenc": {
            "available": nvenc_ok,
            "when": "any frames to PyNvVideoCodec; CUDA tensors never leave the GPU",
            "converts": "CV-CUDA or color.py on the GPU",
        },
        "ffmpeg-nvenc": {
            "available": ffmpeg_ok,
            "when": "host frames to FFmpeg's nvenc (PyAV)",
            "converts": "swscale on the CPU, as the cpu route",
        },
    }
