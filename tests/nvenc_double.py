"""An emulation of PyNvVideoCodec's encoder API, for the CPU-only test suite.

:func:`install` puts :class:`FakeNvc` in ``sys.modules["PyNvVideoCodec"]``, so nvenc_cli
reaches it through its own ``import PyNvVideoCodec`` — the one seam where the library is
called. The encoder it returns behaves, at that seam, like the real one on an NVENC GPU; the
pictures themselves come from libx264/libx265/libsvtav1 through PyAV, so the bytes are real
H.264/HEVC/AV1 that the pipeline must split, time, tag and mux.

Evidence for each behaviour. Unless said otherwise it is from the wheels themselves,
``pip download --no-deps pynvvideocodec==2.2.4`` and ``==2.0.5`` (cp311 manylinux_2_28),
read in ``PyNvVideoCodec/__init__.py`` and in ``strings`` of
``PyNvVideoCodec/PyNvVideoCodec_130.cpython-311-x86_64-linux-gnu.so`` (the ``_121`` build
holds the same strings); both versions agree on every point below.

1. ``CreateEncoder(width, height, fmt, usecpuinputbuffer, **kwargs)`` (``__init__.py``):
   ``cudacontext``/``cudastream`` are popped through ``int()``; every other value goes
   through ``tostring()`` (``str()`` with ``[``/``]`` removed) into
   ``PyNvEncoder(width, height, fmt, cudacontext, cudastream, usecpuinputbuffer, params)``.
   Keys it does not know are ignored (recorded here in ``ignored``).
2. ``bf`` is the number of consecutive B-frames: ``GetNumBFrames`` is documented
   "Returns frameIntervalP - 1 (0=I, 1=IPP, 2=IBP, 3=IBBP)"; the wheel's
   ``samples/advanced/encode_reconfigure.py`` sends ``bf=0`` for ``low_latency`` and
   ``samples/utils/transcode_parser.py`` calls ``bf`` the "B-frame count". Emulated as
   frameIntervalP = int(bf) + 1, i.e. ``bf`` B-frames between references.
3. ``Encode``/``EndEncode`` return lists of dicts: docstrings "Returns list of dicts, each
   with keys: 'data' (bytes), 'timestamp' (uint64), 'picture_type' (int)" and "Flush
   encoder to retrieve bitstreams in the queue". Output lags input (the encoder's own
   lookahead here); ``EndEncode`` returns the rest, a second call nothing.
4. The hand-off: ``Encode(frame)`` calls ``frame.cuda()``, then ``frame.__dlpack__(stream)``
   with the stream as ONE positional argument (the ``.so`` looks up ``cuda``,
   ``__dlpack__`` and ``__dlpack_device__``; public callers of 2.x wrap torch tensors for
   exactly this, e.g. hmlib's ``_DLPackFrame``: "PyNvEncoder's expectation of calling
   __dlpack__(consumer_stream) with a positional argument"). torch 2.13 here declares
   ``Tensor.__dlpack__(self, *, stream=-1, ...)``: a bare tensor raises "takes 1
   positional argument but 2 were given", as it does here. When ``cuda()`` returns a list
   of planes, each is read through ``__cuda_array_interface__`` and its typestr must be
   ``|u1`` or ``|u2`` (the only typestrs in the ``.so``; "Could not encode CUDA array!
   Invalid typestr: "); torch's uint16 interface says ``<u2``.
5. Surfaces: NV12/P010 are (1.5·H, W), YUV444/YUV444_10BIT (3·H, W) ("Invalid shape: ",
   ", expected: "), rows contiguous ("Invalid strides: "), pitch = ``strides[0]`` × item
   size; 10-bit formats hold the sample in the top 10 bits of each 16-bit word
   (NV_ENC_BUFFER_FORMAT_P010 / YUV444_10BIT in nvEncodeAPI.h).
6. Failures read "<call> returned error <NVENCSTATUS number>": strings
   ``m_nvenc.nvEncOpenEncodeSessionEx(&encodeSessionExParams, &hEncoder)``,
   ``m_nvenc.nvEncEncodePicture(m_hEncoder, &picParams)``, `` returned error `` and
   ``PyNvEncoder constructor failed: ``; never the enum's name. The numbers (1/2 no or
   unsupported device, 10 out of memory = the consumer session cap, 15 invalid version =
   driver too old) are nvEncodeAPI.h's.
7. The context must be the one of the device in ``gpu_id`` and the stream must belong to
   it: "Gpu id " … " doesnt match with cuda context device ", "cudastream input argument
   does not correspond to cudacontext argument", "GPU ordinal out of range. Should be
   within [". (Handles here are :class:`FakeCuda` integers.)
8. Formats per codec: "10-bit format isn't supported by H264 encoder", "YUV444 format
   isn't supported by AV1 encoder".
9. ``GetEncoderCaps(gpuid=, codec=)`` returns a ``Dict[str, int]`` (docstring "Get the
   capabilities of encoder HW for the given input params"; keys ``num_max_bframes``,
   ``support_10bit_encode``, ``support_yuv444_encode``, ``support_lossless_encode`` among
   the strings) and raises for a codec the GPU lacks (AV1 on a T4/A10: reported by the
   review this emulation follows; its exact text could not be seen without a GPU, so the
   message below is this module's own — nvenc relies only on "it raises").
10. PyNvVideoCodec's H.264 has no VUI reorder depth (no bitstream restrictions): the
    emulation rewrites every SPS libx264 writes without its VUI.

Emulated, not reproduced: picture contents and lag are the software encoders'; H.264 is
qp 1 (qp 0 under ``tuning_info=lossless``) and HEVC lossless, so tests compare pixels with
color.py exactly; ``picture_type`` is 3 (IDR) for keyframes and 0 otherwise; the values in
:data:`GPUS` (B-frame maximum, codecs) are illustrative of the named cards.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import av
import numpy as np

VERSION = "2.2.4"
OPEN_CALL = "m_nvenc.nvEncOpenEncodeSessionEx(&encodeSessionExParams, &hEncoder)"
ENCODE_CALL = "m_nvenc.nvEncEncodePicture(m_hEncoder, &picParams)"
INIT_CALL = "m_nvenc.nvEncInitializeEncoder(m_hEncoder, &m_initializeParams)"

_FORMATS = {  # fmt -> (PyAV pixel format, bits, rows per luma row: 1.5 or 3)
    "NV12": ("yuv420p", 8, Fraction(3, 2)),
    "P010": ("yuv420p10le", 10, Fraction(3, 2)),
    "YUV444": ("yuv444p", 8, Fraction(3)),
    "YUV444_10BIT": ("yuv444p10le", 10, Fraction(3)),
}
_KNOWN_FORMATS = (
    "NV12",
    "YUV420",
    "ARGB",
    "ABGR",
    "YUV444",
    "YUV444_10BIT",
    "YUV444_16BIT",
    "P010",
    "NV16",
    "P210",
)
_ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}
# Keys the wheels read (strings of the .so); anything else is ignored silently.
KNOWN_KEYS = frozenset(
    {
        "codec", "preset", "tuning_info", "rc", "cq", "constqp", "initqp", "qmin", "qmax",
        "bitrate", "maxbitrate", "vbvbufsize", "vbvinit", "gop", "idrperiod", "bf", "fps",
        "multipass", "lookahead", "aq", "temporalaq", "ldkfs", "repeatspspps", "slice_mode",
        "slice_data", "gpu_id", "use_ivf_container", "chromaformat", "bitdepth", "profile",
        "level", "tier", "numrefl0", "numrefl1", "max_res", "maxwidth", "maxheight",
    }
)  # fmt: skip


@dataclass
class Gpu:
    """The NVENC hardware the emulation pretends to drive."""

    name: str = "NVIDIA L4"
    codecs: tuple[str, ...] = ("h264", "hevc", "av1")
    max_bframes: int = 4
    devices: int = 1
    open_status: int | None = None  # NVENCSTATUS nvEncOpenEncodeSessionEx returns
    encode_status_at: int | None = None  # frame index whose nvEncEncodePicture fails
    encode_status: int = 20  # NV_ENC_ERR_GENERIC

    def caps(self, codec: str) -> dict[str, int]:
        return {
            "num_max_bframes": self.max_bframes,
            "support_10bit_encode": int(codec != "h264"),
            "support_yuv444_encode": int(codec != "av1"),
            "support_lossless_encode": int(codec != "av1"),
            "num_encoder_engines": 1,
        }


GPUS = {
    "L4": Gpu("NVIDIA L4"),
    "T4": Gpu("Tesla T4", codecs=("h264", "hevc")),
    "A10": Gpu("NVIDIA A10", codecs=("h264", "hevc")),
    "H100": Gpu("NVIDIA H100 80GB HBM3", open_status=2),  # no engine: unsupported device
}


class FakeCuda:
    """Integer handles standing in for CUDA contexts and streams: context ``BASE + n`` is
    device ``n``'s; streams are registered to the context they were made in."""

    BASE = 0x7F00_0000

    def __init__(self) -> None:
        self.streams: dict[int, int] = {}
        self._next = 0x5000

    def context(self, device: int) -> int:
        return self.BASE + device

    def stream(self, device: int) -> int:
        self._next += 16
        self.streams[self._next] = self.context(device)
        return self._next

    def handles(self, gpu_id: int) -> dict[str, int]:
        return {"cudacontext": self.context(gpu_id), "cudastream": self.stream(gpu_id)}


def _tostring(value: Any) -> str:
    """The wheel's ``tostring``: ``str()`` without brackets."""
    return str(value).replace("]", "").replace("[", "")


class FakeEncoder:
    """``PyNvEncoder``: validates what the real constructor validates, then encodes."""

    def __init__(
        self, lib: FakeNvc, width: int, height: int, fmt: str, ctx: int, stream: int, params: dict
    ) -> None:
        self.lib, self.width, self.height, self.fmt, self.kwargs = lib, width, height, fmt, params
        self.context, self.stream = ctx, stream
        self.ignored = sorted(set(params) - KNOWN_KEYS)
        self.inputs: list[tuple[str, tuple[int, ...], tuple[int, ...], str]] = []
        self.frames = 0
        self.end_calls = 0
        self._check()
        gpu = lib.gpu
        if gpu.open_status is not None:
            raise RuntimeError(
                f"PyNvEncoder constructor failed: {OPEN_CALL} returned error {gpu.open_status}"
            )
        if self.codec not in gpu.codecs or self.bframes > gpu.max_bframes:
            raise RuntimeError(f"PyNvEncoder constructor failed: {INIT_CALL} returned error 8")
        self.ctx = self._open()

    # -- what the constructor checks -----------------------------------------------------
    def _check(self) -> None:
        params, gpu = self.kwargs, self.lib.gpu
        if self.fmt not in _KNOWN_FORMATS:
            raise RuntimeError(f"PyNvEncoder constructor failed: Unknown format: {self.fmt}")
        if self.fmt not in _FORMATS:
            raise NotImplementedError(f"the emulation does not encode {self.fmt}")
        self.codec = params.get("codec", "h264")
        if self.codec not in _ENCODERS:
            raise RuntimeError("PyNvEncoder constructor failed: Invalid codec given.")
        gpu_id = int(params.get("gpu_id", "0"))
        if not 0 <= gpu_id < gpu.devices:
            raise RuntimeError(f"GPU ordinal out of range. Should be within [0, {gpu.devices - 1}]")
        if self.context:
            device = self.context - FakeCuda.BASE
            if device != gpu_id:
                raise RuntimeError(f"Gpu id {gpu_id} doesnt match with cuda context device {device}")
        if self.stream and self.lib.cuda.streams.get(self.stream) != self.context:
            raise RuntimeError("cudastream input argument does not correspond to cudacontext argument")
        bits = _FORMATS[self.fmt][1]
        if self.codec == "h264" and bits > 8:
            raise RuntimeError(
                "PyNvEncoder constructor failed: 10-bit format isn't supported by H264 encoder"
            )
        if self.codec == "av1" and self.fmt.startswith("YUV444"):
            raise RuntimeError("PyNvEncoder constructor failed: YUV444 format isn't supported by AV1 encoder")
        self.gop = int(params.get("gop", "250"))
        self.frame_interval_p = int(params.get("bf", "0")) + 1
        self.bframes = self.frame_interval_p - 1
        self.lossless = params.get("tuning_info") == "lossless"

    def _open(self) -> av.CodecContext:
        pix_fmt = _FORMATS[self.fmt][0]
        ctx = av.CodecContext.create(_ENCODERS[self.codec], "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, pix_fmt
        ctx.time_base, ctx.framerate = Fraction(1, 30), Fraction(30)
        ctx.gop_size = self.gop
        ctx.max_b_frames = self.bframes
        if self.codec == "h264":
            pyramid = "normal" if self.bframes >= 2 else "none"
            params = f"b-adapt=0:b-pyramid={pyramid}:keyint={self.gop}:min-keyint={self.gop}:scenecut=0"
            ctx.options = {"qp": "0" if self.lossless else "1", "x264-params": params}
        elif self.codec == "hevc":
            params = (
                f"lossless=1:log-level=error:bframes={self.bframes}:keyint={self.gop}:min-keyint={self.gop}"
            )
            ctx.options = {"x265-params": params + ":scenecut=0:b-adapt=0"}
        else:
            # crf 10: the tests read 4x4 markers back; SVT-AV1 4.3 (PyAV 18.1.1) at crf 20
            # blurred one by 13 levels. The double's picture quality is no NVENC fact.
            ctx.options = {"preset": "12", "crf": "10", "svtav1-params": f"keyint={self.gop}"}
        ctx.open()
        return ctx

    # -- PyNvEncoder API -----------------------------------------------------------------
    def GetNumBFrames(self) -> int:
        return self.frame_interval_p - 1

    def Encode(self, frame: Any, *pic_params: Any) -> list[dict[str, Any]]:
        if self.end_calls:
            raise RuntimeError("Encoder device not initialized")
        gpu = self.lib.gpu
        if gpu.encode_status_at is not None and self.frames == gpu.encode_status_at:
            raise RuntimeError(f"{ENCODE_CALL} returned error {gpu.encode_status}")
        planes = self._read(frame)
        picture = self._picture(planes)
        picture.pts = self.frames
        self.frames += 1
        return self._result(self.ctx.encode(picture))

    def EndEncode(self) -> list[dict[str, Any]]:
        self.end_calls += 1
        if self.end_calls > 1:
            return []
        return self._result(self.ctx.encode(None))

    # -- the hand-off --------------------------------------------------------------------
    def _read(self, frame: Any) -> np.ndarray:
        """The surface as rows × width samples, read the way NVENC reads it."""
        import torch

        if not (isinstance(frame, torch.Tensor) and frame.device.type == "cpu"):
            frame = frame.cuda()  # (a CPU tensor stands for a CUDA one in these tests)
        if isinstance(frame, list):
            return self._read_planes(frame)
        if not hasattr(frame, "__dlpack__"):
            raise RuntimeError("Could not encode CUDA array! Array has no attribute __cuda_array_interface__")
        capsule = frame.__dlpack__(self.stream)  # ONE positional argument, as the library
        tensor = torch.from_dlpack(capsule)
        self.inputs.append(("dlpack", tuple(tensor.shape), tuple(tensor.stride()), str(tensor.dtype)))
        return self._check_surface(tensor.numpy(), tuple(tensor.shape), tuple(tensor.stride()))

    def _read_planes(self, planes: list[Any]) -> np.ndarray:
        rows = []
        for plane in planes:
            cai = plane.__cuda_array_interface__
            if cai["typestr"] not in ("|u1", "|u2"):
                raise RuntimeError(f"Could not encode CUDA array! Invalid typestr: {cai['typestr']}")
            rows.append(np.asarray(plane).reshape(-1, self.width))
            self.inputs.append(
                ("planes", tuple(cai["shape"]), tuple(cai.get("strides") or ()), cai["typestr"])
            )
        return np.concatenate(rows)

    def _check_surface(
        self, data: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...]
    ) -> np.ndarray:
        _, bits, factor = _FORMATS[self.fmt]
        want = (int(self.height * factor), self.width)
        if len(shape) != 2 or shape != want:
            raise RuntimeError(f"Invalid shape: {shape}, expected: {want}")
        if strides[1] != 1 or strides[0] < self.width:
            raise RuntimeError(f"Invalid strides: {strides}")
        if data.dtype != (np.uint8 if bits == 8 else np.uint16):
            raise RuntimeError(f"Could not encode CUDA array! Invalid typestr: {data.dtype.str}")
        return data

    def _picture(self, surface: np.ndarray) -> av.VideoFrame:
        pix_fmt, bits, _ = _FORMATS[self.fmt]
        h, w = self.height, self.width
        values = surface.astype(np.uint16) >> (16 - bits) if bits > 8 else surface
        if self.fmt in ("NV12", "P010"):
            uv = values[h:].reshape(h // 2, w // 2, 2)
            planes = (values[:h], uv[..., 0], uv[..., 1])
        else:
            planes = (values[:h], values[h : 2 * h], values[2 * h :])
        frame = av.VideoFrame(w, h, pix_fmt)
        dtype = np.uint8 if bits == 8 else np.uint16
        for plane, data in zip(frame.planes, planes, strict=True):
            view = np.frombuffer(memoryview(plane), dtype=dtype)
            view = view.reshape(plane.height, plane.line_size // view.itemsize)
            view[:, : data.shape[1]] = data
        return frame

    def _result(self, packets: list[av.Packet]) -> list[dict[str, Any]]:
        out = []
        for packet in packets:
            data = bytes(packet)
            if self.codec == "h264":
                data = strip_h264_vui(data)
            out.append({"data": data, "timestamp": 0, "picture_type": 3 if packet.is_keyframe else 0})
        return out


class FakeNvc(types.ModuleType):
    """The ``PyNvVideoCodec`` module: ``CreateEncoder`` and ``GetEncoderCaps``."""

    created: ClassVar[list[FakeEncoder]]

    def __init__(self, gpu: Gpu | None = None) -> None:
        super().__init__("PyNvVideoCodec")
        self.__version__ = VERSION
        self.gpu = gpu or Gpu()
        self.cuda = FakeCuda()
        self.created: list[FakeEncoder] = []
        self.caps_calls: list[tuple[int, str]] = []

    def CreateEncoder(
        self, width: int, height: int, fmt: str, usecpuinputbuffer: bool, **kwargs: Any
    ) -> FakeEncoder:
        context = int(kwargs.pop("cudacontext", 0))
        stream = int(kwargs.pop("cudastream", 0))
        params = {key: _tostring(value) for key, value in kwargs.items()}
        encoder = FakeEncoder(self, width, height, fmt, context, stream, params)
        self.created.append(encoder)
        return encoder

    def GetEncoderCaps(self, gpuid: int = 0, codec: str = "h264") -> dict[str, int]:
        self.caps_calls.append((gpuid, codec))
        if not 0 <= gpuid < self.gpu.devices:
            raise RuntimeError(f"GPU ordinal out of range. Should be within [0, {self.gpu.devices - 1}]")
        if codec not in self.gpu.codecs:
            raise RuntimeError(f"GetEncoderCaps: {codec} encoding is not supported on this GPU")
        return self.gpu.caps(codec)


def install(monkeypatch: Any, gpu: Gpu | None = None) -> FakeNvc:
    """Make ``import PyNvVideoCodec`` return a fresh emulation for the rest of a test."""
    lib = FakeNvc(gpu)
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", lib)
    return lib


def install_on_cpu(monkeypatch: Any, gpu: Gpu | None = None, probed: str | None = "emulated L4") -> FakeNvc:
    """``install``, plus the two CUDA seams nvenc reaches outside the library pointed at this
    machine: the compute device is the CPU and the context/stream handles are the emulated
    context's. With ``probed``, the probe reports that GPU usable without its test encode
    (``None`` leaves the probe to run against the emulation)."""
    import torch

    from nvenc_cli.backends import nvenc

    lib = install(monkeypatch, gpu)
    if probed is not None:
        monkeypatch.setattr(nvenc, "probe_details", lambda: nvenc.ProbeResult(True, "ok", probed))
    monkeypatch.setattr(nvenc, "_compute_device", lambda gpu_id: torch.device("cpu"))
    monkeypatch.setattr(nvenc, "_cuda_handles", lambda gpu_id, device, stream: lib.cuda.handles(gpu_id))
    return lib


# -- H.264 without VUI ------------------------------------------------------------------


@dataclass
class _Bits:
    data: bytes
    pos: int = 0
    value: int = field(init=False)

    def __post_init__(self) -> None:
        self.value = int.from_bytes(self.data, "big")

    def u(self, n: int) -> int:
        self.pos += n
        return (self.value >> (len(self.data) * 8 - self.pos)) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def _unescape(data: bytes) -> bytes:
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps_without_vui(nal: bytes) -> bytes:
    """ITU-T H.264 7.3.2.1.1 read up to vui_parameters_present_flag, which becomes 0."""
    rbsp = _unescape(nal[1:])
    r = _Bits(rbsp)
    profile = r.u(8)
    r.u(16)
    r.ue()
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = r.ue()
        if chroma == 3:
            r.u(1)
        r.ue()
        r.ue()
        r.u(1)
        if r.u(1):
            for index in range(8 if chroma != 3 else 12):
                if r.u(1):
                    last = nxt = 8
                    for _ in range(16 if index < 6 else 64):
                        if nxt:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt or last
    r.ue()
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()
    r.u(1)
    r.ue()
    r.ue()
    if not r.u(1):
        r.u(1)
    r.u(1)
    if r.u(1):
        for _ in range(4):
            r.ue()
    keep = r.pos  # vui_parameters_present_flag is the next bit
    bits = (r.value >> (len(rbsp) * 8 - keep)) << 2 | 0b01  # flag 0, then the stop bit
    total = keep + 2
    pad = -total % 8
    body = (bits << pad).to_bytes((total + pad) // 8, "big")
    return nal[:1] + _escape(body)


def strip_h264_vui(data: bytes) -> bytes:
    """Rewrite each SPS of an Annex-B H.264 access unit without its VUI."""
    parts = data.split(b"\x00\x00\x01")
    out = []
    for part in parts:
        trailing = len(part) - len(part.rstrip(b"\x00"))
        nal = part[: len(part) - trailing] if trailing else part
        if nal and nal[0] & 0x1F == 7:
            part = _sps_without_vui(nal) + b"\x00" * trailing
        out.append(part)
    return b"\x00\x00\x01".join(out)
