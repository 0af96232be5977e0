"""A stand-in for PyNvVideoCodec's encoder that produces real bitstreams on the CPU.

It takes the surfaces the NVENC session hands to ``Encode()`` (NV12, P010, YUV444,
YUV444_10BIT tensors), unpacks them exactly as NVENC would read them, and encodes them with
libx264 / libx265 / libsvtav1 through PyAV — losslessly for H.264/HEVC, so tests can check
the decoded pixels against color.py bit for bit. Like NVENC it returns nothing for the
first frames (the encoder's lookahead), then whole pictures in decode order, B-frames
included, and everything left at ``EndEncode()`` as one concatenated blob.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar

import av
import numpy as np

from nvenc_cli import color

_FORMATS = {  # NVENC fmt -> (PyAV pixel format, bits, chroma)
    "NV12": ("yuv420p", 8, "420"),
    "P010": ("yuv420p10le", 10, "420"),
    "YUV444": ("yuv444p", 8, "444"),
    "YUV444_10BIT": ("yuv444p10le", 10, "444"),
}
_ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}


class FakeEncoder:
    """``CreateEncoder(width, height, fmt, usecpuinputbuffer, **kwargs)`` look-alike."""

    created: ClassVar[list[FakeEncoder]] = []
    api = "bytes"  # "bytes" like PyNvVideoCodec 1.x, "dicts" like 2.x
    fail_at: int | None = None  # raise inside Encode() for this frame index
    # x264 drops B-frames when lossless, so H.264 is near-lossless (qp 1) unless asked;
    # x265 keeps B-frames in lossless mode, so HEVC is always exact.
    h264_lossless = False

    def __init__(self, width: int, height: int, fmt: str, cpu_input: bool, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            if key in ("cudacontext", "cudastream"):
                continue
            assert isinstance(value, str), f"{key}={value!r}: PyNvVideoCodec keywords are strings"
        assert cpu_input is False
        self.width, self.height, self.fmt, self.kwargs = width, height, fmt, kwargs
        pix_fmt, bits, chroma = _FORMATS[fmt]
        self.spec = color.YuvSpec("bt709", False, bits, chroma)
        self.pix_fmt = pix_fmt
        self.codec = kwargs["codec"]
        self.bframes = int(kwargs["bf"]) - 1
        self.gop = int(kwargs["gop"])
        self.ctx = self._open()
        self.inputs: list[tuple[tuple[int, ...], tuple[int, ...], str]] = []
        self.frames = 0
        self.end_calls = 0
        FakeEncoder.created.append(self)

    def _open(self) -> av.CodecContext:
        ctx = av.CodecContext.create(_ENCODERS[self.codec], "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, self.pix_fmt
        ctx.time_base, ctx.framerate = Fraction(1, 30), Fraction(30)
        ctx.gop_size = self.gop
        ctx.max_b_frames = self.bframes
        if self.codec == "h264":
            qp = "0" if self.h264_lossless else "1"
            ctx.options = {"qp": qp, "x264-params": "b-adapt=0:b-pyramid=normal"}
        elif self.codec == "hevc":
            params = f"lossless=1:log-level=error:bframes={self.bframes}:keyint={self.gop}"
            ctx.options = {"x265-params": params}
        else:
            ctx.options = {"preset": "12", "crf": "20", "svtav1-params": f"keyint={self.gop}"}
        ctx.open()
        return ctx

    # -- PyNvVideoCodec API --------------------------------------------------------------
    def Encode(self, surface: Any) -> Any:
        assert self.end_calls == 0, "Encode() after EndEncode()"
        if self.fail_at is not None and self.frames == self.fail_at:
            raise RuntimeError("NV_ENC_ERR_GENERIC: simulated failure")
        self.inputs.append((tuple(surface.shape), tuple(surface.stride()), str(surface.dtype)))
        frame = self._frame(surface)
        frame.pts = self.frames
        self.frames += 1
        return self._result(self.ctx.encode(frame))

    def EndEncode(self) -> Any:
        self.end_calls += 1
        if self.end_calls > 1:
            return self._result([])
        return self._result(self.ctx.encode(None))

    # -- helpers -------------------------------------------------------------------------
    def _frame(self, surface: Any) -> av.VideoFrame:
        """Rebuild the picture NVENC would read from ``surface`` (pitch = width)."""
        luma, cb, cr = (p[0].numpy() for p in color.unpack(surface[None], self.spec))
        frame = av.VideoFrame(self.width, self.height, self.pix_fmt)
        dtype = np.uint8 if self.spec.out_bits == 8 else np.uint16
        for plane, data in zip(frame.planes, (luma, cb, cr), strict=True):
            view = np.frombuffer(memoryview(plane), dtype=dtype)
            view = view.reshape(plane.height, plane.line_size // view.itemsize)
            view[:, : data.shape[1]] = data
        return frame

    def _result(self, packets: list[av.Packet]) -> Any:
        if self.api == "dicts":
            return [{"data": bytes(p), "timestamp": p.pts, "picture_type": 0} for p in packets]
        return b"".join(bytes(p) for p in packets)


def factory(api: str = "bytes", fail_at: int | None = None, h264_lossless: bool = False) -> Any:
    """A ``_create_encoder`` replacement with the given behaviour."""

    def create(width: int, height: int, fmt: str, cpu_input: bool, **kwargs: Any) -> FakeEncoder:
        subclass = type(
            "Configured", (FakeEncoder,), {"api": api, "fail_at": fail_at, "h264_lossless": h264_lossless}
        )
        return subclass(width, height, fmt, cpu_input, **kwargs)

    return create
