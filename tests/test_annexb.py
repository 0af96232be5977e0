"""Access-unit splitting and timestamps on real H.264, HEVC and AV1 streams made by PyAV."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from nvenc_cli.backends import annexb
from nvenc_cli.backends.annexb import AccessUnit, Timestamper, make_splitter, split_nal_units
from nvenc_cli.errors import EncoderError

_ENCODER = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}


def moving_frames(count: int, width: int = 160, height: int = 96) -> list[np.ndarray]:
    """Smooth moving bars: content encoders really use B-frames on (noise makes them skip)."""
    frames = []
    for i in range(count):
        img = np.zeros((height, width, 3), np.uint8)
        img[:, (i * 7) % width : (i * 7) % width + 20] = 255
        img[(i * 3) % height : (i * 3) % height + 10] = 128
        frames.append(img)
    return frames


def encode(codec: str, count: int, bframes: int, gop: int, extra: dict | None = None) -> list[av.Packet]:
    """Encode with PyAV and return its packets (decode order, pts/dts, keyframe flags)."""
    ctx = av.CodecContext.create(_ENCODER[codec], "w")
    ctx.width, ctx.height, ctx.pix_fmt = 160, 96, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 30), Fraction(30)
    ctx.gop_size, ctx.max_b_frames = gop, bframes
    if codec == "hevc":
        ctx.options = {"x265-params": f"log-level=error:bframes={bframes}:keyint={gop}", **(extra or {})}
    elif codec == "av1":
        ctx.options = {"preset": "12", "svtav1-params": f"keyint={gop}", **(extra or {})}
    else:
        ctx.options = {"x264-params": "b-adapt=0", **(extra or {})}
    ctx.open()
    packets = []
    for index, image in enumerate(moving_frames(count)):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        packets.extend(ctx.encode(frame))
    packets.extend(ctx.encode(None))
    return packets


STREAMS = {
    "h264-bframes": ("h264", 40, 3, 12, {"x264-params": "b-adapt=0:b-pyramid=normal"}),
    "h264-no-bframes": ("h264", 30, 0, 10, None),  # x264 then uses POC type 2
    "h264-one-bframe": ("h264", 25, 1, 250, None),
    "hevc-bframes": ("hevc", 40, 4, 12, None),
    "hevc-no-bframes": ("hevc", 20, 0, 8, None),
    "av1": ("av1", 30, 0, 12, None),
}


@pytest.fixture(scope="module", params=sorted(STREAMS))
def stream(request) -> tuple[str, list[av.Packet]]:
    codec, count, bframes, gop, extra = STREAMS[request.param]
    return codec, encode(codec, count, bframes, gop, extra)


def nal_payloads(data: bytes) -> list[bytes]:
    return split_nal_units(data)


def av1_obus(data: bytes) -> list[bytes]:
    """OBUs of a temporal unit without its temporal delimiter (which the splitter drops)."""
    splitter = annexb.Av1Splitter()
    return [obu for obu in splitter._obus_of(data) if (obu[0] >> 3) & 0xF != annexb.OBU_TEMPORAL_DELIMITER]


def same_unit(codec: str, ours: bytes, theirs: bytes) -> bool:
    if codec == "av1":
        return av1_obus(ours) == av1_obus(theirs)
    return nal_payloads(ours) == nal_payloads(theirs)


def run(codec: str, chunks: list[bytes]) -> list[annexb.TimedUnit]:
    splitter, timer = make_splitter(codec), Timestamper()
    timed = []
    for chunk in chunks:
        for unit in splitter.feed(chunk):
            timed += timer.push(unit, splitter.reorder)
    for unit in splitter.flush():
        timed += timer.push(unit, splitter.reorder)
    return timed + timer.flush()


def check(codec: str, timed: list[annexb.TimedUnit], packets: list[av.Packet]) -> None:
    assert len(timed) == len(packets)
    assert [t.pts for t in timed] == [p.pts for p in packets]
    assert [t.unit.keyframe for t in timed] == [p.is_keyframe for p in packets]
    for ours, theirs in zip(timed, packets, strict=True):
        assert same_unit(codec, ours.unit.data, bytes(theirs))
    dts = [t.dts for t in timed]
    assert dts == sorted(set(dts)), "dts must increase strictly"
    assert all(t.dts <= t.pts for t in timed)
    assert sorted(t.pts for t in timed) == list(range(len(timed)))


@pytest.mark.parametrize("chunk", [1, 7, 1000, None])
def test_split_any_chunking(stream, chunk):
    codec, packets = stream
    blob = b"".join(bytes(p) for p in packets)
    chunks = [blob] if chunk is None else [blob[i : i + chunk] for i in range(0, len(blob), chunk)]
    check(codec, run(codec, chunks), packets)


def test_encoder_lag_and_concatenated_tail(stream):
    """Like NVENC: nothing for the first frames, one picture per call, then one EndEncode blob."""
    codec, packets = stream
    lag, tail_from = 3, len(packets) - 6
    chunks = (
        [b""] * lag
        + [bytes(p) for p in packets[:tail_from]]
        + [b"".join(bytes(p) for p in packets[tail_from:])]
    )
    check(codec, run(codec, chunks), packets)


def test_dts_matches_the_encoders_own(stream):
    """The reorder delay read from the stream equals the delay the encoder itself used."""
    codec, packets = stream
    timed = run(codec, [b"".join(bytes(p) for p in packets)])
    assert [t.dts for t in timed] == [p.dts for p in packets]


def test_pyav_parser_agrees():
    """FFmpeg's own H.264 parser cuts the same access units."""
    packets = encode("h264", 30, 3, 12, {"x264-params": "b-adapt=0:b-pyramid=normal"})
    blob = b"".join(bytes(p) for p in packets)
    parser = av.CodecContext.create("h264", "r")
    parsed = [bytes(p) for p in parser.parse(blob)] + [bytes(p) for p in parser.parse(None)]
    ours = run("h264", [blob])
    assert [nal_payloads(t.unit.data) for t in ours] == [nal_payloads(p) for p in parsed if p]


def test_parameter_sets_reported_on_first_unit():
    packets = encode("hevc", 10, 2, 250)
    splitter = make_splitter("hevc")
    units = splitter.feed(b"".join(bytes(p) for p in packets)) + splitter.flush()
    kinds = [annexb.HevcParser.nal_type(n) for n in split_nal_units(units[0].parameter_sets)]
    assert kinds == [annexb.HEVC_VPS, annexb.HEVC_SPS, annexb.HEVC_PPS]
    assert all(not u.parameter_sets for u in units[1:])
    assert splitter.reorder is not None


def test_h264_poc_type_two_and_reorder_zero():
    packets = encode("h264", 12, 0, 6)
    splitter = make_splitter("h264")
    splitter.feed(b"".join(bytes(p) for p in packets))
    splitter.flush()
    sps = next(iter(splitter.parser.sps.values()))
    assert sps.poc_type == 2 and splitter.reorder == 0


def test_av1_in_ivf_framing():
    packets = encode("av1", 20, 0, 8)
    header = b"DKIF" + (0).to_bytes(2, "little") + (32).to_bytes(2, "little") + b"AV01" + bytes(20)
    frames = b"".join(
        len(bytes(p)).to_bytes(4, "little") + p.pts.to_bytes(8, "little") + bytes(p) for p in packets
    )
    blob = header + frames
    for size in (5, 100, len(blob)):
        check("av1", run("av1", [blob[i : i + size] for i in range(0, len(blob), size)]), packets)


def test_emulation_prevention_removed():
    assert annexb.unescape(b"\x00\x00\x03\x01\x00\x00\x03\x00") == b"\x00\x00\x01\x00\x00\x00"
    reader = annexb.BitReader(b"\xa6\x60")  # 1 | 010 | 011 | 00110 | ...
    assert [reader.ue(), reader.ue(), reader.ue(), reader.ue()] == [0, 1, 2, 5]
    reader = annexb.BitReader(b"\x4e")  # 010 -> +1, 011 -> -1, 1 -> 0
    assert [reader.se(), reader.se(), reader.se()] == [1, -1, 0]


def test_garbage_is_an_encoder_error():
    with pytest.raises(EncoderError):
        run("h264", [b"\x00\x00\x01\x65\x88\x84"])  # a slice before any SPS/PPS
    with pytest.raises(EncoderError):
        run("av1", [b"\x12\x00\x32\x7f\x00"])  # an OBU whose size runs past the end


def unit(poc: int, resets: bool = False) -> AccessUnit:
    return AccessUnit(b"", resets, poc, resets)


def test_timestamper_reorders_within_the_declared_depth():
    timer = Timestamper(reorder=2)
    pocs = [0, 8, 4, 2, 6, 16, 12, 10, 14]  # I P B(ref) b b ...: a B-pyramid, POCs 2 apart
    out = []
    for index, poc in enumerate(pocs):
        out += timer.push(unit(poc, resets=index == 0))
    out += timer.flush()
    assert [t.pts for t in out] == [0, 4, 2, 1, 3, 8, 6, 5, 7]
    assert [t.dts for t in out] == [-2, -1, 0, 1, 2, 3, 4, 5, 6]


def test_timestamper_new_sequence_flushes_the_old_one():
    timer = Timestamper(reorder=1)
    out = []
    for poc, resets in [(0, True), (4, False), (2, False), (0, True), (2, False)]:
        out += timer.push(unit(poc, resets))
    out += timer.flush()
    assert [t.pts for t in out] == [0, 2, 1, 3, 4]


def test_timestamper_refuses_a_deeper_reorder_than_declared():
    timer = Timestamper(reorder=1)
    with pytest.raises(EncoderError, match="deeper"):
        for poc in [0, 6, 4, 2]:  # 2 arrives after 4 was already given its display slot
            timer.push(unit(poc, resets=poc == 0))


def _sps(reorder: int | None, poc_type: int = 0, refs: int = 3) -> annexb.H264Sps:
    return annexb.H264Sps(False, 4, poc_type, 8, False, 0, 0, [], refs, True, reorder)


@pytest.mark.parametrize(
    ("sps", "bound"),
    [
        (_sps(2), 2),
        (_sps(0), 0),
        (_sps(None, poc_type=2), 0),
        (_sps(None, refs=4), None),
        (_sps(None, refs=40), None),
    ],
)
def test_h264_reorder_bound(sps, bound):
    """Declared in the VUI, implied by POC type 2, else not declared (None): the
    timestamper then holds pictures for the spec's maximum and measures the delay."""
    assert annexb._h264_reorder_bound(sps) == bound


def test_reorder_declared_flags():
    for codec, packets in (("h264", encode("h264", 8, 2, 250)), ("hevc", encode("hevc", 8, 2, 250))):
        splitter = make_splitter(codec)
        splitter.feed(b"".join(bytes(p) for p in packets))
        splitter.flush()
        assert splitter.reorder_declared and splitter.reorder is not None
    assert annexb.Av1Splitter().reorder_declared
