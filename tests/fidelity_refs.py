"""Independent references for the fidelity tests: colour formulas, plane access, probes.

Nothing here imports nvenc_cli's conversion code. The expected code values come from the
published BT.601/BT.709/BT.2020 luma coefficients and the ITU-T H.273 quantisation
rules, the decoded samples from PyAV, and the container facts from ffprobe, so a test
that compares them is a referee and not the implementation checking itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

# (Kr, Kb) from the recommendations themselves: BT.601-7 §2.5.1, BT.709-6 §3.2,
# BT.2020-2 Table 4 (non-constant luminance).
KR_KB: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}

# What ffprobe prints for the tags each matrix must carry: (space, transfer, primaries).
FFPROBE_TAGS: dict[str, tuple[str, str, str]] = {
    "bt601": ("smpte170m", "smpte170m", "smpte170m"),
    "bt709": ("bt709", "bt709", "bt709"),
    "bt2020": ("bt2020nc", "bt2020-10", "bt2020"),
}


def ycbcr(rgb: np.ndarray, matrix: str, color_range: str, bits: int = 8, in_max: int = 255) -> np.ndarray:
    """Exact (unrounded) Y'CbCr code values of R'G'B' samples, shape (..., 3).

    E'Y = Kr R + (1 - Kr - Kb) G + Kb B on [0, 1] samples; E'Cb = (B - Y) / (2 (1 - Kb)),
    E'Cr = (R - Y) / (2 (1 - Kr)). Limited ("tv") range: Y = (219 E'Y + 16) 2^(n-8),
    C = (224 E'C + 128) 2^(n-8). Full ("pc") range: Y = (2^n - 1) E'Y,
    C = (2^n - 1) E'C + 2^(n-1) (H.273, equations for VideoFullRangeFlag = 1).
    """
    kr, kb = KR_KB[matrix]
    e = rgb.astype(np.float64) / in_max
    r, g, b = e[..., 0], e[..., 1], e[..., 2]
    y = kr * r + (1.0 - kr - kb) * g + kb * b
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    if color_range == "tv":
        scale = float(1 << (bits - 8))
        out = [(219.0 * y + 16.0) * scale, (224.0 * cb + 128.0) * scale, (224.0 * cr + 128.0) * scale]
    else:
        top = float((1 << bits) - 1)
        mid = float(1 << (bits - 1))
        out = [top * y, top * cb + mid, top * cr + mid]
    return np.stack(out, axis=-1)


def plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    """One plane of a decoded frame as a (H, W) array of its native sample type."""
    data = frame.planes[index]
    wide = max(c.bits for c in frame.format.components) > 8
    dtype = np.dtype("<u2") if wide else np.dtype(np.uint8)
    rows = np.frombuffer(memoryview(data), dtype=dtype)
    rows = rows.reshape(data.height, data.line_size // dtype.itemsize)
    return rows[:, : data.width].copy()


def decode_frames(path: str | Path, decoder: str | None = None) -> list[av.VideoFrame]:
    """Every frame of the first video stream, optionally through a named decoder.

    VP9 alpha lives in Matroska BlockAdditional data that only the libvpx decoder reads;
    FFmpeg's native vp9 decoder returns the colour planes alone.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if decoder is None:
            return list(container.decode(stream))
        ctx = av.CodecContext.create(decoder, "r")
        ctx.extradata = stream.codec_context.extradata
        frames: list[av.VideoFrame] = []
        for packet in container.demux(stream):
            if packet.size:
                frames.extend(ctx.decode(packet))
        frames.extend(ctx.decode(None))
        return frames


def ffprobe_json(path: str | Path, *entries: str) -> dict[str, Any]:
    """ffprobe's JSON for the first video stream (skips when ffprobe is absent)."""
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    args = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-of", "json", *entries, str(path)]
    out = subprocess.run(args, capture_output=True, check=True, text=True)
    return json.loads(out.stdout)


def stream_facts(path: str | Path) -> dict[str, Any]:
    """Stream and format entries plus every packet's pts/duration, as ffprobe reads them."""
    data = ffprobe_json(
        path,
        "-count_frames",
        "-show_entries",
        "stream=codec_name,pix_fmt,width,height,time_base,r_frame_rate,avg_frame_rate,"
        "nb_read_frames,duration_ts,duration,start_pts,color_space,color_transfer,"
        "color_primaries,color_range:format=duration,start_time:packet=pts,dts,duration,flags",
    )
    return {"stream": data["streams"][0], "format": data["format"], "packets": data["packets"]}


def rational(text: str) -> Fraction:
    """ffprobe's ``a/b`` (or decimal) as an exact Fraction."""
    return Fraction(text)


def marked_frames(count: int, width: int = 64, height: int = 48) -> np.ndarray:
    """testsrc2 motion with the frame's index written as a gray level in a top band.

    The moving pattern makes the encoders use B-frames and lookahead as on real footage;
    the band lets a test read back which source frame each decoded frame is, so a dropped,
    duplicated or reordered frame cannot hide.
    """
    from nvenc_cli import testsrc

    frames = testsrc.batch(width, height, count)
    for index in range(count):
        frames[index, :16] = band_level(index, count)
    return frames


def band_level(index: int, count: int) -> int:
    """Gray level of frame ``index``'s band: evenly spread over 24..232."""
    return 24 + round(index * 208 / max(count - 1, 1))


def read_marks(frames: list[av.VideoFrame], count: int) -> list[int]:
    """The source index each decoded frame carries (nearest band level)."""
    levels = np.array([band_level(i, count) for i in range(count)], dtype=np.float64)
    marks = []
    for frame in frames:
        band = frame.to_ndarray(format="rgb24")[4:12, 4:-4].astype(np.float64).mean()
        marks.append(int(np.argmin(np.abs(levels - band))))
    return marks
