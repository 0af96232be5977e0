"""NVENC through FFmpeg's own encoders (h264_nvenc, hevc_nvenc, av1_nvenc) in PyAV's wheels.

The second NVENC route, for machines without PyNvVideoCodec: PyAV's wheels carry FFmpeg
built with nvenc, which loads ``libcuda.so.1`` and ``libnvidia-encode.so.1`` when an
encoder opens, so a plain ``pip install`` encodes on an L4 with the driver alone.

Frames take exactly the CPU path's road — the same :class:`~nvenc_cli.backends.cpu.CpuSession`
conversion (swscale told the matrix and range, 2×2 area chroma, exact maths for 16-bit
input), the same colour tags on the codec context and on every frame — and only the encoder
differs. CUDA tensors from Python are the exception: ``devconvert`` converts them on their
GPU with color.py's maths (the same as the CPU path's to within a code) and hands NV12/P010
planes over as CUDA frames (``plan.cuda_frames``), so nothing crosses to the host; other
formats cross as finished planes. Options are resolved once, by
``nvenc_options.settings_for`` (the same checks, defaults and B-frame count as the
PyNvVideoCodec route), then spelled the way FFmpeg's nvenc.c spells them
(:func:`ffmpeg_options`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nvenc_cli.backends.base import Availability
from nvenc_cli.backends.cpu import CpuSession
from nvenc_cli.backends.nvenc import (
    ENCODERS,
    UNAVAILABLE_CODES,
    ProbeResult,
    _load_library,
    classify_encoder_error,
    driver_version,
    no_driver_reason,
)
from nvenc_cli.errors import EncoderError, UnavailableError, UsageError, brief

if TYPE_CHECKING:
    import av
    import numpy as np

    from nvenc_cli.backends.nvenc_options import NvencSettings
    from nvenc_cli.mux import Muxer
    from nvenc_cli.plan import EncodePlan

_TUNE = {
    "high_quality": "hq",
    "uhq": "uhq",
    "low_latency": "ll",
    "ultra_low_latency": "ull",
    "lossless": "lossless",
}
# NVENC reads these as 10-bit samples in the top bits of 16-bit words (P010, YUV444_10BIT).
# exact.py writes planar formats, so 16-bit input is converted to 10-bit planes there and
# swscale only moves them into place (a shift and, for P010, an interleave).
_TEN_BIT_PLANAR = {"p010le": "yuv420p10le", "p016le": "yuv420p10le", "yuv444p16le": "yuv444p10le"}
# Levels FFmpeg logs at (libavutil/log.h): errors and warnings carry the driver's words.
_LOG_ERROR, _LOG_WARNING = 16, 24


def _libav_level() -> int | None:
    """libav's own log level (``av_log_get_level``), which PyAV does not expose."""
    from nvenc_cli.ffopts import libavutil

    util = libavutil()
    return None if util is None else int(util.av_log_get_level())


def ffmpeg_options(settings: NvencSettings, global_header: bool) -> dict[str, str]:
    """PyNvVideoCodec's resolved keywords in FFmpeg's nvenc spelling.

    Same meaning both ways: ``bf`` is a B-frame count in both, ``g`` is the GOP (FFmpeg
    makes it the IDR period too), ``cq`` the constant-quality target with the bit rate
    uncapped (``b=0``). Keys with no FFmpeg twin are refused rather than dropped.
    """
    kw = dict(settings.kwargs)
    out: dict[str, str] = {
        "preset": kw["preset"].lower(),
        "tune": _TUNE[kw["tuning_info"]],
        "rc": kw["rc"],
        "g": kw["gop"],
        "bf": kw["bf"],
        "gpu": kw["gpu_id"],
        "b": kw.get("bitrate", "0"),
    }
    if kw["idrperiod"] != kw["gop"]:
        raise UsageError("-x idrperiod differing from the GOP has no equivalent in FFmpeg's nvenc")
    if "cq" in kw:
        out["cq"] = kw["cq"]
    if "constqp" in kw:
        out.update(_three_qps("init_qp", kw["constqp"]) if "," in kw["constqp"] else {"qp": kw["constqp"]})
    if "initqp" in kw:
        out.update(_three_qps("init_qp", kw["initqp"]))
    for key in ("qmin", "qmax"):
        if key in kw:
            if "," in kw[key]:
                raise UsageError(f"-x {key}=P,B,I: FFmpeg's nvenc takes one {key}")
            out[key] = kw[key]
    for ours, theirs in (
        ("maxbitrate", "maxrate"),
        ("vbvbufsize", "bufsize"),
        ("vbvinit", "rc_init_occupancy"),
    ):
        if ours in kw:
            out[theirs] = kw[ours]
    if "multipass" in kw:
        out["multipass"] = kw["multipass"]
    if "lookahead" in kw:
        out["rc-lookahead"] = kw["lookahead"]
    if "aq" in kw:
        out["spatial-aq"], out["aq-strength"] = "1", kw["aq"]
    if "temporalaq" in kw:
        out["temporal-aq"] = "1"
    if "ldkfs" in kw:
        out["ldkfs"] = "1"
    if kw.get("repeatspspps", "0" if global_header else "1") != ("0" if global_header else "1"):
        raise UsageError("-x repeatspspps: FFmpeg's nvenc places parameter sets as the container needs")
    if "slice_mode" in kw or "slice_data" in kw:
        if kw.get("slice_mode") != "3" or "slice_data" not in kw:
            raise UsageError("FFmpeg's nvenc takes slices as a count only: -x slice_mode=3 -x slice_data=N")
        out["slices"] = kw["slice_data"]
    return out


def _three_qps(prefix: str, value: str) -> dict[str, str]:
    parts = value.split(",")
    p, b, i = parts if len(parts) == 3 else parts * 3
    return {f"{prefix}P": p, f"{prefix}B": b, f"{prefix}I": i}


class _LogCapture:
    """FFmpeg's error and warning lines while an nvenc encoder opens or runs.

    PyAV hands its errors only "Operation not permitted"; the reason ("Cannot load
    libcuda.so.1", "OpenEncodeSessionEx failed: unsupported device (2)") is in the log.
    Capturing means PyAV's callback for a moment; afterwards the logging is put back as
    it was: PyAV's silence, or FFmpeg's own printer, which ``nvenc -v`` installs along
    with libav's VERBOSE level (the only way that level is set).
    """

    def __enter__(self) -> _LogCapture:
        import av.logging

        self._level = av.logging.get_level()
        self._libav_level = _libav_level()
        av.logging.set_level(_LOG_WARNING)
        self._capture = av.logging.Capture(True)
        self.logs = self._capture.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        import av.logging

        self._capture.__exit__(*exc)
        av.logging.set_level(self._level)
        if self._libav_level is not None:
            av.logging.set_libav_level(self._libav_level)
            if self._level is None and self._libav_level >= av.logging.VERBOSE:
                av.logging.restore_default_callback()

    def text(self, exc: BaseException) -> str:
        lines = [str(m).strip() for level, _, m in self.logs if level <= _LOG_WARNING]
        said = [line for line in dict.fromkeys(lines) if line and line != "Nvenc unloaded"]
        last = getattr(exc, "log", None)  # PyAV drops a line repeated from the last one,
        if not said and last:  # but keeps it on the error it raises
            said = [str(last[2]).strip()]
        return "; ".join(said) or brief(exc, 300)


def trial_encode(encoder: str = "h264_nvenc", gpu: int = 0) -> tuple[str, str] | None:
    """Encode one 256x256 black frame with FFmpeg's ``encoder``; None when a packet comes
    back, else (code, reason) from FFmpeg's own message."""
    from fractions import Fraction

    import av

    with _LogCapture() as log:
        try:
            ctx = av.CodecContext.create(encoder, "w")
            ctx.width, ctx.height, ctx.pix_fmt = 256, 256, "yuv420p"
            ctx.time_base, ctx.framerate = Fraction(1, 30), Fraction(30)
            ctx.options = {"gpu": str(gpu), "bf": "0", "preset": "p1"}
            ctx.open()
            frame = av.VideoFrame(256, 256, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.pts = 0
            packets = list(ctx.encode(frame)) + list(ctx.encode(None))
        except (av.FFmpegError, ValueError, OSError) as exc:
            return classify_encoder_error(log.text(exc))
    if not packets:
        return "encoder-failed", f"{encoder} accepted a test frame but returned no packet for it"
    return None


@functools.cache
def probe_details() -> ProbeResult:
    """Whether FFmpeg's nvenc can encode here (cached per process): the driver libraries
    first, without importing anything, then a real one-frame test encode."""
    driver = driver_version()
    if not _load_library("libcuda.so.1"):
        return ProbeResult(False, "no-driver", no_driver_reason(driver))
    import av

    if "h264_nvenc" not in av.codecs_available:
        return ProbeResult(
            False, "no-nvenc-library", "this PyAV's FFmpeg has no nvenc encoders", driver=driver
        )
    failure = trial_encode()
    if failure is not None:
        return ProbeResult(False, failure[0], failure[1], driver=driver, colour="swscale")
    return ProbeResult(
        True,
        "ok",
        f"FFmpeg's nvenc in PyAV {av.__version__}, driver {driver or '?'}",
        None,
        driver,
        "swscale",
    )


def probe() -> Availability:
    return probe_details().availability()


def reset_probe() -> None:
    probe_details.cache_clear()


class FfmpegNvencBackend:
    """FFmpeg's nvenc encoders through PyAV, fed by the CPU path's conversion."""

    name = "ffmpeg_nvenc"

    def probe(self) -> Availability:
        return probe()

    def encoders(self) -> list[str]:
        return list(ENCODERS)

    def open(self, plan: EncodePlan, muxer: Muxer) -> FfmpegNvencSession:
        return FfmpegNvencSession(plan, muxer)


def ten_bit_converter(plan: EncodePlan) -> Callable[[np.ndarray], av.VideoFrame] | None:
    """Exact conversion of 16-bit RGB to the 10-bit surfaces NVENC reads, where swscale's
    16-bit input path is biased (see exact.py); None for other formats."""
    from nvenc_cli.backends.exact import exact_converter

    planar = _TEN_BIT_PLANAR.get(plan.pixel_format)
    exact = exact_converter(replace(plan, pixel_format=planar)) if planar else None
    if exact is None:
        return None
    import av.video.reformatter

    reformatter = av.video.reformatter.VideoReformatter()

    def convert(image: np.ndarray) -> av.VideoFrame:
        return reformatter.reformat(exact(image), format=plan.pixel_format)

    return convert


class FfmpegNvencSession(CpuSession):
    """A CPU session whose encoder is FFmpeg's nvenc: same frames, NVENC's options."""

    def __init__(self, plan: EncodePlan, muxer: Muxer) -> None:
        super().__init__(plan, muxer)
        self._exact = ten_bit_converter(plan) or self._exact

    def _codec_options(self, plan: EncodePlan) -> dict[str, str]:
        from nvenc_cli.backends.nvenc import _global_header
        from nvenc_cli.backends.nvenc_options import settings_for

        global_header = _global_header(plan.container)
        self.settings = settings_for(plan, global_header)
        return ffmpeg_options(self.settings, global_header)

    def _rate_defaults(self, ctx: Any, plan: EncodePlan) -> None:
        """NVENC's rate control comes whole from ``settings_for``; FFmpeg's 2 Mb/s default
        for ``*_nvenc`` would cap its constant-quality modes."""

    def _open(self, ctx: Any) -> None:
        import av

        if self.plan.cuda_frames:
            # CUDA surfaces from devconvert: PyAV opens the encoder at the first frame,
            # taking that frame's CUDA frames context (av/codec/context.py,
            # ``_prepare_and_time_rebase_frames_for_encode``); a failure then is the
            # first encode's, before any packet, which --device auto falls back from.
            ctx.pix_fmt = "cuda"
            return
        with _LogCapture() as log:
            try:
                ctx.open()
            except (av.FFmpegError, ValueError) as exc:
                code, reason = classify_encoder_error(log.text(exc))
                if code in UNAVAILABLE_CODES:
                    raise UnavailableError(reason) from None
                raise EncoderError(
                    f"{self.plan.encoder} refused {self.plan.width}x{self.plan.height} "
                    f"{self.plan.pixel_format}: {reason}"
                ) from None

    def _describe(self, plan: EncodePlan) -> str:
        colour = "CUDA frames converted on the GPU" if plan.cuda_frames else "colour by swscale"
        return f"{plan.encoder} (NVENC via FFmpeg in PyAV, {self.settings.kwargs['preset']}, {colour})"
