"""CPU backend: FFmpeg's software encoders through PyAV.

Conversion (swscale, told the real matrix and range) and encoding are separate steps so
the pipeline can run them on different threads: both release the GIL, which is where a
2-core machine gets its speed.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from nvenc_cli.backends.base import Availability
from nvenc_cli.errors import EncoderError, SettingError, UsageError, brief, tc_open_failed
from nvenc_cli.frames import PlaneWindow, ReadyPlanes

if TYPE_CHECKING:
    import av

    from nvenc_cli.frames import FrameBatch
    from nvenc_cli.mux import Muxer
    from nvenc_cli.plan import EncodePlan

# Hardware encoders FFmpeg lists but the CPU backend does not drive.
_HARDWARE_SUFFIXES = ("_nvenc", "_vaapi", "_qsv", "_v4l2m2m", "_vulkan", "_amf", "_mf")
_SWS_MATRIX = {"bt601": "ITU601", "bt709": "ITU709", "bt2020": "BT2020", "fcc": "FCC"}
_INPUT_FORMAT = {  # (channels, depth) -> PyAV input pixel format of an NHWC frame
    (1, 8): "gray",
    (3, 8): "rgb24",
    (4, 8): "rgba",
    (1, 16): "gray16le",
    (3, 16): "rgb48le",
    (4, 16): "rgba64le",
}


class CpuBackend:
    """PyAV encoders; always available (PyAV bundles FFmpeg)."""

    name = "cpu"

    def probe(self) -> Availability:
        import av

        return Availability(True, f"PyAV {av.__version__} with FFmpeg {_ffmpeg_version()}")

    def encoders(self) -> list[str]:
        import av

        names = []
        for name in sorted(av.codecs_available):
            try:
                codec = av.Codec(name, "w")
            except Exception:
                continue
            # PyAV also resolves family names ("h264") to an encoder; list real names only.
            if codec.type == "video" and codec.name == name and not name.endswith(_HARDWARE_SUFFIXES):
                names.append(name)
        return names

    def open(self, plan: EncodePlan, muxer: Muxer) -> CpuSession:
        return CpuSession(plan, muxer)


def _ffmpeg_version() -> str:
    import av

    major, minor, micro = av.library_versions.get("libavcodec", (0, 0, 0))
    return f"libavcodec {major}.{minor}.{micro}"


# AVCodecContext's ``bt`` default: AV_CODEC_DEFAULT_BITRATE (200 kb/s) x 20. PyAV cannot
# read it back (its bit_rate_tolerance getter returns nothing), so it is stated here.
_FFMPEG_BIT_RATE_TOLERANCE = 4_000_000


def encoder_threads(encoder: str) -> int:
    """Encoder threads: 0 lets FFmpeg choose, except for x264/x265.

    Their automatic count (1.5 x cores) leaves a 2-core machine partly idle at the slower
    presets, where frame threads wait on each other and on the lookahead; 2 x cores
    (capped, since each frame thread costs a frame of memory and latency) averaged ~7 %
    faster at 1080p medium over ten interleaved runs on a 2-core machine (3 x cores was
    ~11 % faster for ~40 MB more).
    """
    if encoder not in ("libx264", "libx264rgb", "libx265"):
        return 0
    return min(2 * cores(), 16)


def cores() -> int:
    """The cores one encode sizes its threads for: ``NVENC_CORES`` when set (``-j N`` gives
    each worker its share of the machine), else every core."""
    value = os.environ.get("NVENC_CORES", "")
    return max(1, int(value)) if value.strip().isdigit() else (os.cpu_count() or 1)


def lookahead_threads() -> int:
    """Threads for x264's lookahead: as many as x264 gives it under ffmpeg's thread count.

    x264 gives the lookahead a sixth of its frame threads, and the lookahead threads split
    each frame's analysis into slices, which changes x264's decisions; the frame-thread
    count does not (on torchcodec's 720p comparison frames, 3 and 4 frame threads gave the
    same pictures as the ffmpeg CLI's, within 2, but two lookahead threads only 96 % of
    them). So nvenc keeps its own frame threads (2 per core: faster) and matches the
    lookahead that ffmpeg's automatic 1.5 threads per core implies, which makes its x264
    output agree with ffmpeg's and torchcodec's for the same planes and settings. Two
    lookahead threads would make a 1080p medium encode ~10 % faster on 2 cores (README:
    ``-x x264-params=lookahead-threads=2``).
    """
    return max(1, (3 * cores() // 2) // 6)


class CpuSession:
    """One PyAV encoder, opened on the muxer's stream so no parameters are copied twice."""

    def __init__(self, plan: EncodePlan, muxer: Muxer) -> None:
        import av

        self.plan = plan
        ctx = muxer.new_stream(plan.encoder, plan.fps).codec_context
        ctx.width, ctx.height = plan.width, plan.height
        ctx.pix_fmt = plan.pixel_format
        ctx.time_base = plan.time_base
        ctx.framerate = plan.fps
        ctx.color_range = plan.color.range_code
        ctx.color_primaries = plan.color.primaries
        ctx.color_trc = plan.color.transfer
        ctx.colorspace = plan.color.space
        ctx.thread_type = "AUTO"
        ctx.thread_count = encoder_threads(plan.encoder)
        self._rate_defaults(ctx, plan)
        ctx.options = self._codec_options(plan)
        self._open(ctx)
        unused = sorted(ctx.options) if ctx.is_open else []  # (CUDA frames: opened at frame 0)
        if unused:
            raise UsageError(f"unknown option -x {unused[0]}: {plan.encoder} has no such option")
        self.ctx = ctx
        self.description = self._describe(plan)
        #: one frame at the nominal rate, in the time base (the last frame's duration)
        self._nominal = max(1, round(1 / (plan.fps * plan.time_base)))
        #: each pending frame's duration by its pts: encoders drop it, the muxer needs the
        #: last frame's (per-frame timestamps only)
        self._durations: dict[int, int] = {}
        self._channels = plan.source.channels
        self._last_dts: int | None = None
        self._reformat_args = _reformat_args(plan)
        # One swscale context for the whole run (PyAV otherwise builds one per frame).
        self._reformatter = av.video.reformatter.VideoReformatter()
        self._palette = None
        if plan.pixel_format == "pal8":
            from nvenc_cli.backends.palette import PaletteConverter

            self._palette = PaletteConverter(plan.width, plan.height, plan.time_base)

    @functools.cached_property
    def _exact(self) -> Any:
        """The exact converter for 16-bit windows (``exact.py``), or None: made at the first
        such window, since 8-bit windows and decoded planes never need it (nor numpy)."""
        from nvenc_cli.backends.exact import exact_converter

        return exact_converter(self.plan)

    # The three steps an FFmpeg encoder of another kind (ffmpeg_nvenc.py) does its own way;
    # everything else — conversion, tags, timestamps — is shared.
    def _codec_options(self, plan: EncodePlan) -> dict[str, str]:
        options = dict(plan.codec_options)
        if plan.crf is not None:
            options.setdefault("crf", f"{plan.crf:g}")
        if plan.preset is not None:
            options.setdefault("preset", str(plan.preset))
        return options

    def _rate_defaults(self, ctx: Any, plan: EncodePlan) -> None:
        """FFmpeg's own rate defaults, which PyAV's ``add_stream`` replaces (bit_rate 0 and
        a 128 kb/s tolerance: PyAV's container/output.py). The codec's default bit rate
        (200 kb/s for mpeg4 and flv1, 0 for x264's crf) and FFmpeg's tolerance of 20x
        that default (``bt``, 4 Mb/s) are what ffmpeg and torchcodec encode with; PyAV's
        pair halves mpeg4's file at 720p (155 kB against the CLI's 333 kB for 30 frames)
        and decodes visibly worse. ``-x b=…``/``-x bt=…`` still override both."""
        import av

        ctx.bit_rate = av.CodecContext.create(plan.encoder, "w").bit_rate or 0
        ctx.bit_rate_tolerance = _FFMPEG_BIT_RATE_TOLERANCE

    def _open(self, ctx: Any) -> None:
        import av

        try:
            ctx.open()
        except (av.FFmpegError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or "Invalid argument"
            raise SettingError(
                f"{self.plan.encoder} refused these settings ({brief(exc)}): check --pixel-format, "
                "--crf, --preset and -x values",
                torchcodec=tc_open_failed(reason),
            ) from None

    def _describe(self, plan: EncodePlan) -> str:
        return f"{plan.encoder} (PyAV)"

    def convert(self, batch: FrameBatch) -> list[av.VideoFrame]:
        """Colour-convert one window into encoder-ready frames (runs off the encode thread)."""
        import av

        data = batch.data
        if isinstance(data, PlaneWindow):
            return [self._as_is(frame, batch, offset) for offset, frame in enumerate(data.frames)]
        if isinstance(data, ReadyPlanes):
            return [self._from_planes(p, data, batch, offset) for offset, p in enumerate(data.frames)]
        frames = []
        for offset in range(data.shape[0]):
            image = data[offset]
            if image.shape[2] == 1:
                image = image[:, :, 0]
            if self._palette is not None:
                frame = av.VideoFrame.from_ndarray(image, format=self._input_format(image))
                frame.pts = batch.pts_of(offset)
                frames.extend(self._palette.convert(frame))
                continue
            if self._exact is not None and image.dtype.itemsize == 2:
                out = self._exact(image)  # 16-bit samples: swscale's path is biased or dithers
            else:
                out = _convert(av, self._reformatter, image, self._input_format(image), self._reformat_args)
            # Tag only: swscale must not be told the primaries/transfer, or it runs a
            # gamut/transfer conversion on top of the matrix (see _reformat_args).
            out.color_primaries = self.plan.color.primaries
            out.color_trc = self.plan.color.transfer
            frames.append(self._timed(out, batch, offset))
        return frames

    def _as_is(self, frame: Any, batch: FrameBatch, offset: int) -> Any:
        """A decoded frame whose planes the encoder takes as they are: only its time and
        tags are set. Its picture type is cleared, or the decoder's I/P/B choices would
        force the encoder's (FFmpeg honours a frame's pict_type as a forced type)."""
        from av.video.frame import PictureType

        frame.pict_type = PictureType.NONE
        frame.color_primaries = self.plan.color.primaries
        frame.color_trc = self.plan.color.transfer
        frame.colorspace = self.plan.color.space
        frame.color_range = self.plan.color.range_code
        frame.time_base = self.plan.time_base
        return self._timed(frame, batch, offset)

    def _from_planes(self, planes: tuple[Any, ...], data: ReadyPlanes, batch: FrameBatch, offset: int) -> Any:
        """Planes converted on the frames' device (``devconvert``), wrapped as an FFmpeg
        frame where they lie — host memory, or CUDA surfaces for FFmpeg's nvenc —
        (``VideoFrame.from_dlpack`` keeps the tensor alive for as long as FFmpeg holds
        the frame): no swscale, no second conversion."""
        import av

        if data.wrap is not None:  # planes left on the GPU: devconvert makes CUDA frames
            frame = data.wrap(planes)
        else:
            frame = av.VideoFrame.from_dlpack(planes, format=data.pixel_format)
        return self._as_is(frame, batch, offset)

    def _timed(self, frame: Any, batch: FrameBatch, offset: int) -> Any:
        """Give an encoder-ready frame its time, and with per-frame timestamps its duration
        (kept by pts for the packet the encoder makes of it)."""
        frame.pts = batch.pts_of(offset)
        if batch.pts is not None:
            frame.duration = self._durations[frame.pts] = batch.duration_of(offset, self._nominal)
        return frame

    def _input_format(self, image: Any) -> str:
        """PyAV's name for an NHWC frame, from its real sample size.

        Decided per window, not from the plan's source depth: float input is scaled to
        uint16 when the output has more than 8 bits, though the source reported 8.
        """
        bits = 16 if image.dtype.itemsize == 2 else 8
        return _INPUT_FORMAT[(self._channels, bits)]

    def encode(self, frames: list[av.VideoFrame]) -> list[av.Packet]:
        packets: list[av.Packet] = []
        for frame in frames:
            packets.extend(self._encode(frame))
        return packets

    def flush(self) -> list[av.Packet]:
        packets = self.encode(self._palette.flush()) if self._palette is not None else []
        return packets + self._encode(None)

    def _encode(self, frame: av.VideoFrame | None) -> list[av.Packet]:
        import av

        try:
            packets = list(self.ctx.encode(frame))
        except av.FFmpegError as exc:
            raise EncoderError(f"{self.plan.encoder} failed: {brief(exc)}") from None
        for packet in packets:
            self._last_dts = _repair_dts(packet, self._last_dts, self.plan.max_step)
            if self._durations and packet.pts is not None:
                packet.duration = self._durations.pop(packet.pts, packet.duration)
        return packets

    def close(self) -> None:
        self.ctx = None  # type: ignore[assignment]


# Largest pts - dts an encoder's reordering can produce, in frames (x264/x265 allow 16
# B-frames; pyramids add a few more). A gap beyond this is a garbage dts, not a delay.
_MAX_REORDER = 64


def _repair_dts(packet: av.Packet, last: int | None, step: int = 1) -> int | None:
    """Replace an impossible dts and return the dts to compare the next packet with.

    libx265 (4.2, through FFmpeg 8's wrapper) sometimes hands back a lone frame with an
    uninitialised dts (e.g. -2459565876494606882): MP4 then refuses the whole file
    ("pts/dts pair unsupported"). A dts must not pass its pts, must lie within the
    reorder window and must grow; when it breaks that, the frame decodes next, so it
    gets the next decode slot (or its own pts if it is the first packet). ``step`` is the
    largest gap between frames in the time base (1 at a constant rate).
    """
    pts, dts = packet.pts, packet.dts
    if pts is None:
        return last if dts is None else dts
    if dts is not None and pts - _MAX_REORDER * step <= dts <= pts and (last is None or dts > last):
        return dts
    packet.dts = pts if last is None else last + 1
    return packet.dts


def _convert(av: Any, reformatter: Any, image: Any, fmt: str, args: dict[str, Any]) -> Any:
    """Convert one HWC frame, reading the window's rows where they lie when PyAV allows.

    Wrapping the window (``from_numpy_buffer``) saves a copy into a fresh FFmpeg frame:
    1-1.5 ms per 1080p frame, and ~9 ms where each fresh frame is page-faulted in. The
    frame holds a reference to the window, so reused window memory is never overwritten
    while an encoder still reads it (when swscale has nothing to do, the frame itself goes
    on). swscale's output does not depend on where the rows lie: frames at any alignment,
    amid any bytes, encode to the same file (tests/test_determinism.py).
    """
    try:
        frame = av.VideoFrame.from_numpy_buffer(image, format=fmt)
    except (ValueError, TypeError):  # rows not contiguous, or a format PyAV cannot wrap
        frame = av.VideoFrame.from_ndarray(image, format=fmt)
    return reformatter.reformat(frame, **args)


def _reformat_args(plan: EncodePlan) -> dict[str, Any]:
    return sws_args(plan.pixel_format, plan.color.matrix, plan.color.range == "pc")


def sws_args(pixel_format: str, matrix: str | None, full_range: bool) -> dict[str, Any]:
    """The swscale settings of every 8-bit conversion on the CPU path (``swsmatch``
    reproduces their arithmetic on other devices)."""
    from av.video.reformatter import ColorRange, Colorspace, Interpolation

    # AREA makes swscale's 2x chroma downsample the mean of each 2x2 block (within ±1 of
    # the float64 reference; PyAV's default bilinear filter is off by up to 24 on fine
    # detail). FULL_CHR_H_INP reads full-resolution chroma from the RGB input, which is
    # both exact and the fastest path (~4 ms per 1080p frame, vs ~10 with ACCURATE_RND).
    # One swscale thread: the pipeline already runs conversion beside the encoder.
    args: dict[str, Any] = {
        "format": pixel_format,
        "interpolation": Interpolation.AREA | Interpolation.FULL_CHR_H_INP,
        "threads": 1,
    }
    if matrix is not None:
        args["dst_colorspace"] = getattr(Colorspace, _SWS_MATRIX[matrix])
        args["dst_color_range"] = ColorRange.JPEG if full_range else ColorRange.MPEG
        args["src_color_range"] = ColorRange.JPEG
    # No dst_color_trc/dst_color_primaries: swscale 9 treats them as a request to convert
    # from the (untagged, assumed BT.709) input, so BT.2020 output got a gamut and transfer
    # conversion (values off the BT.2020 formula, ~5 s a frame). The matrix alone is the
    # maths the tags describe; the tags are set on each frame and the codec context.
    return args


def swscale_planes(image: Any, pixel_format: str, matrix: str, full_range: bool) -> list[Any] | None:
    """One uint8 HWC RGB(A) frame converted as the CPU path converts it: Y, Cb, Cr as
    int32 arrays (semi-planar chroma split), or None for a layout this does not unpack."""
    import av
    import numpy as np

    semi = pixel_format in ("nv12", "p010le")
    if not semi and pixel_format not in ("yuv420p", "yuv444p", "yuv420p10le", "yuv444p10le"):
        return None
    fmt = _INPUT_FORMAT[(image.shape[2], 8)]
    args = sws_args(pixel_format, matrix, full_range)
    out = _convert(av, av.video.reformatter.VideoReformatter(), image, fmt, args)
    wide = out.format.components[0].bits > 8
    planes = []
    for index, plane in enumerate(out.planes):
        data = np.frombuffer(plane, np.uint16 if wide else np.uint8)
        data = data.reshape(plane.height, plane.line_size // (2 if wide else 1)).astype(np.int32)
        planes.append(data[:, : out.width if semi and index else plane.width])
    if semi:  # interleaved Cb,Cr; P010 keeps its 10 bits at the top of each word
        planes = [planes[0], planes[1][:, 0::2], planes[1][:, 1::2]]
        planes = [p >> 6 for p in planes] if wide else planes
    return planes
