"""Turn an encoder's raw byte output into timed access units, in pure Python.

NVENC (through PyNvVideoCodec) hands back bytes: nothing for the first frames while its
lookahead fills, then one or more whole pictures per call, and everything still queued
concatenated at ``EndEncode()``. Nothing says where one picture ends or which frame it
shows. This module recovers both from the bitstream itself:

* :class:`AccessUnitSplitter` cuts H.264/HEVC Annex-B byte streams and AV1 OBU streams
  (low-overhead or IVF framed) into access units, however the bytes were chunked;
* it reads just enough of each parameter set and slice header to know whether a unit is
  a keyframe and its picture order count (POC), the display-order key B-frames need;
* :class:`Timestamper` turns decode-order units into packets' ``pts``/``dts`` in frame
  units: ``pts`` is the frame's index in display order (the frame index the caller fed
  in), ``dts`` the decode index shifted back by the reorder delay so ``dts <= pts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nvenc_cli.errors import EncoderError

START_CODE = b"\x00\x00\x01"

# H.264 NAL unit types (ITU-T H.264 table 7-1).
H264_IDR = 5
H264_SEI, H264_SPS, H264_PPS, H264_AUD = 6, 7, 8, 9
H264_END_SEQ, H264_END_STREAM, H264_FILLER = 10, 11, 12
_H264_VCL = frozenset({1, 2, 3, 4, 5})
# Types that, once the current unit has a picture, can only belong to the next unit.
_H264_OPENS_UNIT = frozenset({H264_SEI, H264_SPS, H264_PPS, H264_AUD, 14, 15, 16, 17, 18})

# HEVC NAL unit types (ITU-T H.265 table 7-1).
HEVC_VPS, HEVC_SPS, HEVC_PPS, HEVC_AUD = 32, 33, 34, 35
HEVC_PREFIX_SEI = 39
_HEVC_OPENS_UNIT = frozenset({HEVC_VPS, HEVC_SPS, HEVC_PPS, HEVC_AUD, HEVC_PREFIX_SEI, 41, 42, 43, 44})
_HEVC_OPENS_UNIT |= frozenset(range(48, 56))
_HEVC_IDR = frozenset({19, 20})
_HEVC_BLA = frozenset({16, 17, 18})
_HEVC_CRA = 21
_HEVC_RADL_RASL = frozenset({6, 7, 8, 9})

# AV1 OBU types (AV1 spec 6.2.2).
OBU_SEQUENCE_HEADER, OBU_TEMPORAL_DELIMITER = 1, 2
OBU_FRAME_HEADER, OBU_FRAME = 3, 6


@dataclass
class AccessUnit:
    """One coded picture (H.264/HEVC) or temporal unit (AV1), in decode order.

    ``poc`` orders pictures for display within one coded video sequence; ``resets`` is
    true where a new sequence starts (IDR/BLA), after which POC counts from zero again.
    """

    data: bytes
    keyframe: bool
    poc: int
    resets: bool
    parameter_sets: bytes = b""


# ---------------------------------------------------------------------------------------
# Bit reading
# ---------------------------------------------------------------------------------------


def unescape(payload: bytes) -> bytes:
    """Drop emulation-prevention bytes (00 00 03 → 00 00) to get the raw RBSP."""
    if b"\x00\x00\x03" not in payload:
        return payload
    out = bytearray()
    zeros = 0
    for byte in payload:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """MSB-first reader with Exp-Golomb codes, as used by H.264/HEVC headers."""

    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big") if data else 0
        self.size = len(data) * 8
        self.pos = 0

    def u(self, bits: int) -> int:
        if bits == 0:
            return 0
        if self.pos + bits > self.size:
            raise EncoderError("truncated header in the encoder's bitstream")
        self.pos += bits
        return (self.value >> (self.size - self.pos)) & ((1 << bits) - 1)

    def flag(self) -> bool:
        return bool(self.u(1))

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise EncoderError("corrupt Exp-Golomb code in the encoder's bitstream")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


def split_nal_units(data: bytes) -> list[bytes]:
    """Split a complete Annex-B buffer into NAL units (start codes and trailing zeros removed)."""
    units: list[bytes] = []
    starts = _start_code_ends(data)
    for index, begin in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        unit = data[begin:end].rstrip(b"\x00")
        if unit:
            units.append(unit)
    return units


def _start_code_ends(data: bytes, begin: int = 0) -> list[int]:
    """Offsets just past every 00 00 01 start code at or after ``begin``."""
    found = []
    pos = data.find(START_CODE, begin)
    while pos != -1:
        found.append(pos + 3)
        pos = data.find(START_CODE, pos + 3)
    return found


# ---------------------------------------------------------------------------------------
# H.264 headers
# ---------------------------------------------------------------------------------------


@dataclass
class H264Sps:
    separate_colour_plane: bool
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    delta_pic_order_always_zero: bool
    offset_for_non_ref_pic: int
    offset_for_top_to_bottom_field: int
    ref_frame_offsets: list[int]
    max_num_ref_frames: int
    frame_mbs_only: bool
    max_num_reorder: int | None


_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def parse_h264_sps(rbsp: bytes) -> tuple[int, H264Sps]:
    """Parse the fields of an H.264 SPS that picture order and reordering depend on."""
    r = BitReader(rbsp)
    profile_idc = r.u(8)
    r.u(16)  # constraint flags, level_idc
    sps_id = r.ue()
    separate = False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate = r.flag()
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():
                    _skip_scaling_list(r, 16 if index < 6 else 64)
    log2_max_frame_num = r.ue() + 4
    poc_type = r.ue()
    log2_max_poc_lsb = 0
    always_zero, non_ref, top_bottom, offsets = False, 0, 0, []
    if poc_type == 0:
        log2_max_poc_lsb = r.ue() + 4
    elif poc_type == 1:
        always_zero = r.flag()
        non_ref = r.se()
        top_bottom = r.se()
        offsets = [r.se() for _ in range(r.ue())]
    max_num_ref_frames = r.ue()
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    r.ue()  # pic_width_in_mbs_minus1
    r.ue()  # pic_height_in_map_units_minus1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    if r.flag():  # frame_cropping_flag
        for _ in range(4):
            r.ue()
    reorder = _h264_vui_reorder(r) if r.flag() else None
    sps = H264Sps(
        separate,
        log2_max_frame_num,
        poc_type,
        log2_max_poc_lsb,
        always_zero,
        non_ref,
        top_bottom,
        offsets,
        max_num_ref_frames,
        frame_mbs_only,
        reorder,
    )
    return sps_id, sps


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last, nxt = 8, 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se() + 256) % 256
        last = nxt if nxt != 0 else last


def _h264_vui_reorder(r: BitReader) -> int | None:
    """Walk the VUI to ``max_num_reorder_frames`` (None when the stream does not say)."""
    if r.flag() and r.u(8) == 255:  # aspect_ratio_info_present_flag, Extended_SAR
        r.u(32)
    if r.flag():  # overscan_info_present_flag
        r.u(1)
    if r.flag():  # video_signal_type_present_flag
        r.u(4)
        if r.flag():
            r.u(24)
    if r.flag():  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    if r.flag():  # timing_info_present_flag
        r.u(32)
        r.u(32)
        r.u(1)
    nal_hrd = r.flag()
    if nal_hrd:
        _skip_h264_hrd(r)
    vcl_hrd = r.flag()
    if vcl_hrd:
        _skip_h264_hrd(r)
    if nal_hrd or vcl_hrd:
        r.u(1)  # low_delay_hrd_flag
    r.u(1)  # pic_struct_present_flag
    if not r.flag():  # bitstream_restriction_flag
        return None
    r.u(1)
    for _ in range(4):
        r.ue()
    reorder = r.ue()
    r.ue()  # max_dec_frame_buffering
    return reorder


def _skip_h264_hrd(r: BitReader) -> None:
    count = r.ue() + 1
    r.u(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(count):
        r.ue()
        r.ue()
        r.u(1)
    r.u(20)


@dataclass
class _H264Pps:
    sps_id: int
    bottom_field_pic_order_in_frame_present: bool


def parse_h264_pps(rbsp: bytes) -> tuple[int, _H264Pps]:
    r = BitReader(rbsp)
    pps_id = r.ue()
    sps_id = r.ue()
    r.u(1)  # entropy_coding_mode_flag
    return pps_id, _H264Pps(sps_id, r.flag())


@dataclass
class _H264PocState:
    prev_msb: int = 0
    prev_lsb: int = 0
    prev_frame_num: int = 0
    prev_frame_num_offset: int = 0


class H264Parser:
    """Keeps parameter sets and POC state while reading H.264 pictures in decode order."""

    codec = "h264"

    def __init__(self) -> None:
        self.sps: dict[int, H264Sps] = {}
        self.pps: dict[int, _H264Pps] = {}
        self.state = _H264PocState()
        self.reorder: int | None = None
        self.declared = False  # whether ``reorder`` comes from the stream's own VUI

    @staticmethod
    def nal_type(unit: bytes) -> int:
        return unit[0] & 0x1F

    def is_vcl(self, unit: bytes) -> bool:
        return self.nal_type(unit) in _H264_VCL

    def opens_unit(self, unit: bytes) -> bool:
        """True when ``unit`` must start a new access unit if the current one has a picture."""
        kind = self.nal_type(unit)
        if kind in _H264_OPENS_UNIT:
            return True
        # A VCL NAL with first_mb_in_slice == 0 starts a new primary picture.
        return kind in _H264_VCL and len(unit) > 1 and BitReader(unescape(unit[1:8])).ue() == 0

    def is_parameter_set(self, unit: bytes) -> bool:
        return self.nal_type(unit) in (H264_SPS, H264_PPS)

    def observe(self, unit: bytes) -> None:
        kind = self.nal_type(unit)
        if kind == H264_SPS:
            sps_id, sps = parse_h264_sps(unescape(unit[1:]))
            self.sps[sps_id] = sps
            self.reorder = _h264_reorder_bound(sps)
            self.declared = self.reorder is not None
        elif kind == H264_PPS:
            pps_id, pps = parse_h264_pps(unescape(unit[1:]))
            self.pps[pps_id] = pps

    def picture(self, unit: bytes) -> tuple[bool, int, bool]:
        """(keyframe, poc, resets) of the picture whose first slice is ``unit``."""
        nal_ref_idc = (unit[0] >> 5) & 3
        idr = self.nal_type(unit) == H264_IDR
        r = BitReader(unescape(unit[1:64]))
        r.ue()  # first_mb_in_slice
        r.ue()  # slice_type
        pps = self.pps.get(r.ue())
        sps = self.sps.get(pps.sps_id) if pps is not None else None
        if pps is None or sps is None:
            raise EncoderError("H.264 slice refers to a parameter set the stream never sent")
        if sps.separate_colour_plane:
            r.u(2)
        frame_num = r.u(sps.log2_max_frame_num)
        if not sps.frame_mbs_only and r.flag():
            raise EncoderError("interlaced (field) H.264 pictures are not supported")
        if idr:
            r.ue()  # idr_pic_id
        poc = self._poc(r, sps, pps, frame_num, nal_ref_idc, idr)
        return idr, poc, idr

    def _poc(self, r: BitReader, sps: H264Sps, pps: _H264Pps, frame_num: int, ref_idc: int, idr: bool) -> int:
        """Picture order count per H.264 8.2.1 (frames only)."""
        state = self.state
        if sps.poc_type == 0:
            lsb = r.u(sps.log2_max_poc_lsb)
            bottom_delta = r.se() if pps.bottom_field_pic_order_in_frame_present else 0
            if idr:
                state.prev_msb = state.prev_lsb = 0
            msb = _poc_msb(lsb, state.prev_lsb, state.prev_msb, 1 << sps.log2_max_poc_lsb)
            top = msb + lsb
            if ref_idc:
                state.prev_msb, state.prev_lsb = msb, lsb
            return min(top, top + bottom_delta)
        max_frame_num = 1 << sps.log2_max_frame_num
        if idr:
            offset = 0
        elif state.prev_frame_num > frame_num:
            offset = state.prev_frame_num_offset + max_frame_num
        else:
            offset = state.prev_frame_num_offset
        state.prev_frame_num, state.prev_frame_num_offset = frame_num, offset
        if sps.poc_type == 2:
            return 0 if idr else 2 * (offset + frame_num) - (0 if ref_idc else 1)
        deltas = (0, 0)
        if not sps.delta_pic_order_always_zero:
            first = r.se()
            deltas = (first, r.se() if pps.bottom_field_pic_order_in_frame_present else 0)
        cycle = sps.ref_frame_offsets
        absolute = offset + frame_num if cycle else 0
        if ref_idc == 0 and absolute > 0:
            absolute -= 1
        expected = 0
        if absolute > 0:
            count, within = divmod(absolute - 1, len(cycle))
            expected = count * sum(cycle) + sum(cycle[: within + 1])
        if ref_idc == 0:
            expected += sps.offset_for_non_ref_pic
        top = expected + deltas[0]
        bottom = top + sps.offset_for_top_to_bottom_field + deltas[1]
        return min(top, bottom)


def _poc_msb(lsb: int, prev_lsb: int, prev_msb: int, max_lsb: int) -> int:
    """The POC most-significant part shared by H.264 (8-3) and HEVC (8-1)."""
    if lsb < prev_lsb and prev_lsb - lsb >= max_lsb // 2:
        return prev_msb + max_lsb
    if lsb > prev_lsb and lsb - prev_lsb > max_lsb // 2:
        return prev_msb - max_lsb
    return prev_msb


def _h264_reorder_bound(sps: H264Sps) -> int | None:
    """How many pictures can precede another in decode order yet follow it on screen.

    The stream's own ``max_num_reorder_frames`` when its VUI has one; 0 for POC type 2
    (output order is decode order by construction); else None: not declared, which is what
    PyNvVideoCodec's H.264 writes (its VUI has no bitstream restrictions), so the
    timestamper falls back to the limit no stream can exceed and measures the delay.
    """
    if sps.max_num_reorder is not None:
        return sps.max_num_reorder
    if sps.poc_type == 2:
        return 0
    return None


# ---------------------------------------------------------------------------------------
# HEVC headers
# ---------------------------------------------------------------------------------------


@dataclass
class HevcSps:
    separate_colour_plane: bool
    log2_max_poc_lsb: int
    max_num_reorder: int


def _skip_profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> None:
    r.u(8)  # profile space, tier, profile idc
    r.u(32)  # compatibility flags
    r.u(48)  # source flags + constraint flags
    r.u(8)  # general_level_idc
    present = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        for _ in range(max_sub_layers_minus1, 8):
            r.u(2)
    for profile_present, level_present in present:
        if profile_present:
            r.u(88)
        if level_present:
            r.u(8)


def parse_hevc_sps(rbsp: bytes) -> tuple[int, HevcSps]:
    """Parse the fields of an HEVC SPS that picture order and reordering depend on."""
    r = BitReader(rbsp)
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    r.u(1)  # temporal_id_nesting
    _skip_profile_tier_level(r, max_sub_layers_minus1)
    sps_id = r.ue()
    separate = False
    if r.ue() == 3:  # chroma_format_idc
        separate = r.flag()
    r.ue()  # pic_width_in_luma_samples
    r.ue()  # pic_height_in_luma_samples
    if r.flag():  # conformance_window_flag
        for _ in range(4):
            r.ue()
    r.ue()  # bit_depth_luma_minus8
    r.ue()  # bit_depth_chroma_minus8
    log2_max_poc_lsb = r.ue() + 4
    all_layers = r.flag()  # sps_sub_layer_ordering_info_present_flag
    reorder = 0
    for _ in range(0 if all_layers else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        r.ue()  # max_dec_pic_buffering_minus1
        reorder = r.ue()
        r.ue()  # max_latency_increase_plus1
    return sps_id, HevcSps(separate, log2_max_poc_lsb, reorder)


@dataclass
class _HevcPps:
    sps_id: int
    output_flag_present: bool
    num_extra_slice_header_bits: int


def parse_hevc_pps(rbsp: bytes) -> tuple[int, _HevcPps]:
    r = BitReader(rbsp)
    pps_id = r.ue()
    sps_id = r.ue()
    r.u(1)  # dependent_slice_segments_enabled_flag
    output_flag_present = r.flag()
    return pps_id, _HevcPps(sps_id, output_flag_present, r.u(3))


class HevcParser:
    """Keeps parameter sets and POC state while reading HEVC pictures in decode order."""

    codec = "hevc"

    def __init__(self) -> None:
        self.sps: dict[int, HevcSps] = {}
        self.pps: dict[int, _HevcPps] = {}
        self.prev_tid0_poc = 0
        self.first_picture = True
        self.reorder: int | None = None
        self.declared = True  # HEVC SPSs always carry sps_max_num_reorder_pics

    @staticmethod
    def nal_type(unit: bytes) -> int:
        return (unit[0] >> 1) & 0x3F

    def is_vcl(self, unit: bytes) -> bool:
        return self.nal_type(unit) < 32

    def opens_unit(self, unit: bytes) -> bool:
        kind = self.nal_type(unit)
        if kind in _HEVC_OPENS_UNIT:
            return True
        return kind < 32 and len(unit) > 2 and bool(unit[2] & 0x80)  # first_slice_segment_in_pic

    def is_parameter_set(self, unit: bytes) -> bool:
        return self.nal_type(unit) in (HEVC_VPS, HEVC_SPS, HEVC_PPS)

    def observe(self, unit: bytes) -> None:
        kind = self.nal_type(unit)
        if kind == HEVC_SPS:
            sps_id, sps = parse_hevc_sps(unescape(unit[2:]))
            self.sps[sps_id] = sps
            self.reorder = sps.max_num_reorder
        elif kind == HEVC_PPS:
            pps_id, pps = parse_hevc_pps(unescape(unit[2:]))
            self.pps[pps_id] = pps
        elif kind in (36, 37):  # end of sequence / bitstream: the next CRA starts afresh
            self.first_picture = True

    def picture(self, unit: bytes) -> tuple[bool, int, bool]:
        """(keyframe, poc, resets) of the picture whose first slice segment is ``unit``."""
        kind = self.nal_type(unit)
        temporal_id = (unit[1] & 7) - 1
        r = BitReader(unescape(unit[2:64]))
        r.u(1)  # first_slice_segment_in_pic_flag
        irap = 16 <= kind <= 23
        if irap:
            r.u(1)  # no_output_of_prior_pics_flag
        pps = self.pps.get(r.ue())
        sps = self.sps.get(pps.sps_id) if pps is not None else None
        if pps is None or sps is None:
            raise EncoderError("HEVC slice refers to a parameter set the stream never sent")
        r.u(pps.num_extra_slice_header_bits)
        r.ue()  # slice_type
        if pps.output_flag_present:
            r.u(1)
        if sps.separate_colour_plane:
            r.u(2)
        resets = kind in _HEVC_IDR or kind in _HEVC_BLA or (kind == _HEVC_CRA and self.first_picture)
        if kind in _HEVC_IDR:
            poc = 0
        else:
            lsb = r.u(sps.log2_max_poc_lsb)
            max_lsb = 1 << sps.log2_max_poc_lsb
            if resets:
                msb = 0
            else:
                prev_lsb = self.prev_tid0_poc & (max_lsb - 1)
                msb = _poc_msb(lsb, prev_lsb, self.prev_tid0_poc - prev_lsb, max_lsb)
            poc = msb + lsb
        sub_layer_non_ref = kind <= 14 and kind % 2 == 0
        if temporal_id == 0 and kind not in _HEVC_RADL_RASL and not sub_layer_non_ref:
            self.prev_tid0_poc = poc
        self.first_picture = False
        return irap, poc, resets


# ---------------------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------------------


class AnnexBSplitter:
    """Streaming splitter: feed byte chunks, get complete access units in decode order.

    A NAL unit is complete once the next start code arrives, and an access unit once the
    next unit's first NAL arrives, so each call may hold back the last unit until more
    bytes (or :meth:`flush`) come.
    """

    def __init__(self, codec: str) -> None:
        if codec not in ("h264", "hevc"):
            raise ValueError(f"Annex-B splitting covers h264 and hevc, not {codec}")
        self.parser: H264Parser | HevcParser = H264Parser() if codec == "h264" else HevcParser()
        self._buffer = b""
        self._units: list[bytes] = []
        self._has_picture = False

    @property
    def reorder(self) -> int | None:
        """The stream's reorder bound, known once its first SPS has been seen."""
        return self.parser.reorder

    @property
    def reorder_declared(self) -> bool:
        """False when the stream states no bound (H.264 without VUI bitstream restrictions)."""
        return self.parser.declared

    def feed(self, data: bytes) -> list[AccessUnit]:
        if not data:
            return []
        self._buffer += data
        starts = _start_code_ends(self._buffer)
        if len(starts) < 2:
            return []
        out: list[AccessUnit] = []
        for index in range(len(starts) - 1):
            unit = self._buffer[starts[index] : starts[index + 1] - 3].rstrip(b"\x00")
            out.extend(self._take(unit))
        self._buffer = self._buffer[starts[-1] - 3 :]
        return out

    def flush(self) -> list[AccessUnit]:
        """Everything still buffered, as the last access unit(s)."""
        out: list[AccessUnit] = []
        starts = _start_code_ends(self._buffer)
        if starts:
            out.extend(self._take(self._buffer[starts[0] :].rstrip(b"\x00")))
        self._buffer = b""
        if self._units:
            out.append(self._finish())
        return out

    def _take(self, unit: bytes) -> list[AccessUnit]:
        if not unit:
            return []
        done: list[AccessUnit] = []
        if self._has_picture and self.parser.opens_unit(unit):
            done.append(self._finish())
        self._units.append(unit)
        if self.parser.is_vcl(unit):
            self._has_picture = True
        return done

    def _finish(self) -> AccessUnit:
        units, self._units, self._has_picture = self._units, [], False
        first_slice = None
        params = []
        for unit in units:
            self.parser.observe(unit)
            if self.parser.is_parameter_set(unit):
                params.append(unit)
            if first_slice is None and self.parser.is_vcl(unit):
                first_slice = unit
        if first_slice is None:
            raise EncoderError("the encoder returned an access unit without a picture")
        keyframe, poc, resets = self.parser.picture(first_slice)
        data = b"".join(b"\x00\x00\x00\x01" + unit for unit in units)
        parameter_sets = b"".join(b"\x00\x00\x00\x01" + unit for unit in params)
        return AccessUnit(data, keyframe, poc, resets, parameter_sets)


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for index in range(8):
        if pos + index >= len(data):
            raise EncoderError("truncated OBU size in the encoder's AV1 bitstream")
        byte = data[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, pos + index + 1
    raise EncoderError("corrupt OBU size in the encoder's AV1 bitstream")


class Av1Splitter:
    """Streaming splitter for AV1: temporal units from low-overhead OBUs or IVF frames.

    Each temporal unit shows exactly one frame, so units come out in display order and
    their ``poc`` is simply their running index.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._obus: list[bytes] = []
        self._ivf: bool | None = None
        self._count = 0
        self._reduced_still = False
        self.reorder: int | None = 0
        self.reorder_declared = True  # one shown frame per temporal unit: never reordered

    def feed(self, data: bytes) -> list[AccessUnit]:
        self._buffer += data
        if self._ivf is None:
            if len(self._buffer) < 4:
                return []
            self._ivf = self._buffer.startswith(b"DKIF")
        return self._drain_ivf() if self._ivf else self._drain_obus()

    def flush(self) -> list[AccessUnit]:
        out = self.feed(b"")
        if self._buffer:
            raise EncoderError("the encoder's AV1 bitstream ends in the middle of an OBU")
        if self._obus:
            out.append(self._finish())
        return out

    def _drain_ivf(self) -> list[AccessUnit]:
        out: list[AccessUnit] = []
        if self._buffer.startswith(b"DKIF"):
            if len(self._buffer) < 32:
                return out
            header_size = int.from_bytes(self._buffer[6:8], "little")
            self._buffer = self._buffer[header_size:]
        while len(self._buffer) >= 12:
            size = int.from_bytes(self._buffer[:4], "little")
            if len(self._buffer) < 12 + size:
                break
            frame, self._buffer = self._buffer[12 : 12 + size], self._buffer[12 + size :]
            for obu in self._obus_of(frame):
                if (obu[0] >> 3) & 0xF != OBU_TEMPORAL_DELIMITER:
                    self._obus.append(obu)
            out.append(self._finish())
        return out

    def _drain_obus(self) -> list[AccessUnit]:
        out: list[AccessUnit] = []
        pos = 0
        while pos < len(self._buffer):
            end = self._obu_end(self._buffer, pos)
            if end is None:
                break
            obu = self._buffer[pos:end]
            pos = end
            if (obu[0] >> 3) & 0xF == OBU_TEMPORAL_DELIMITER:
                if self._obus:
                    out.append(self._finish())
                continue
            self._obus.append(obu)
        self._buffer = self._buffer[pos:]
        return out

    def _obus_of(self, frame: bytes) -> list[bytes]:
        obus, pos = [], 0
        while pos < len(frame):
            end = self._obu_end(frame, pos)
            if end is None:
                raise EncoderError("an IVF frame of the encoder's AV1 output cuts an OBU short")
            obus.append(frame[pos:end])
            pos = end
        return obus

    @staticmethod
    def _obu_end(data: bytes, pos: int) -> int | None:
        """End offset of the OBU at ``pos``; None when more bytes are needed."""
        header = data[pos]
        if header & 0x80:
            raise EncoderError("corrupt OBU header in the encoder's AV1 bitstream")
        if not header & 0x02:
            raise EncoderError("AV1 OBUs without size fields cannot be split; use low-overhead output")
        body = pos + 1 + (1 if header & 0x04 else 0)
        if body >= len(data) or not any(b < 0x80 for b in data[body : body + 8]):
            return None
        size, start = _leb128(data, body)
        end = start + size
        return end if end <= len(data) else None

    def _finish(self) -> AccessUnit:
        obus, self._obus = self._obus, []
        keyframe = False
        params = b""
        for obu in obus:
            kind = (obu[0] >> 3) & 0xF
            payload = obu[_leb128(obu, 1 + (1 if obu[0] & 0x04 else 0))[1] :]
            if kind == OBU_SEQUENCE_HEADER:
                params = obu
                self._reduced_still = bool(payload and payload[0] & 0x08)
            elif kind in (OBU_FRAME, OBU_FRAME_HEADER) and not keyframe and payload:
                keyframe = self._shows_key_frame(payload)
        index = self._count
        self._count += 1
        return AccessUnit(b"".join(obus), keyframe, index, False, params)

    def _shows_key_frame(self, payload: bytes) -> bool:
        if self._reduced_still:
            return True
        r = BitReader(payload[:2])
        if r.flag():  # show_existing_frame
            return False
        frame_type = r.u(2)
        return frame_type == 0 and r.flag()  # KEY_FRAME and show_frame


def make_splitter(codec: str) -> AnnexBSplitter | Av1Splitter:
    """The splitter for an NVENC codec family (h264, hevc or av1)."""
    return Av1Splitter() if codec == "av1" else AnnexBSplitter(codec)


# ---------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------


@dataclass
class TimedUnit:
    """An access unit with its timestamps in frame units (time base 1/fps)."""

    unit: AccessUnit
    pts: int
    dts: int


@dataclass
class _Slot:
    unit: AccessUnit
    decode_index: int
    pts: int | None = None


# No stream can hold more pictures back than its decoded picture buffer: at most 16
# frames in H.264 (max_dec_frame_buffering) and HEVC (sps_max_dec_pic_buffering).
MAX_REORDER = 16


@dataclass
class Timestamper:
    """Give decode-order access units display-order ``pts`` and monotonic ``dts``.

    A picture's ``pts`` is its rank in display order, i.e. the index of the input frame
    it shows, so frames are never shifted by the encoder's lag. The rank is final once
    more than ``bound`` later pictures have arrived (no conforming stream can still
    deliver an earlier one), or when a new sequence starts, or at :meth:`flush`; ``bound``
    is the stream's declared reorder depth, or :data:`MAX_REORDER` when it declares none.

    ``dts`` is the decode index minus ``bound``, which keeps ``dts <= pts`` (no picture
    follows more than ``bound`` pictures decoded before it) and strictly increasing.
    Nothing depends on how many B-frames were asked for: a stream that has more than
    configured is still timed right.
    """

    reorder: int | None = None
    _waiting: list[_Slot] = field(default_factory=list)
    _pending: list[_Slot] = field(default_factory=list)
    _next_pts: int = 0
    _decoded: int = 0
    _delay: int | None = None
    _last_bumped_poc: int | None = None

    def push(self, unit: AccessUnit, reorder: int | None = None) -> list[TimedUnit]:
        if reorder is not None:
            self.reorder = reorder
        bound = MAX_REORDER if self.reorder is None else self.reorder
        if self._delay is None:
            self._delay = bound
        if unit.resets:
            self._bump_all()
        elif self._last_bumped_poc is not None and unit.poc <= self._last_bumped_poc:
            raise EncoderError(
                f"the encoder reordered frames deeper than its stream declares ({bound}); "
                "timestamps cannot be assigned safely"
            )
        slot = _Slot(unit, self._decoded)
        self._decoded += 1
        self._pending.append(slot)
        self._waiting.append(slot)
        while len(self._waiting) > bound:
            self._bump()
        return self._emit()

    def flush(self) -> list[TimedUnit]:
        self._bump_all()
        return self._emit()

    @property
    def count(self) -> int:
        """Access units seen so far."""
        return self._decoded

    def _bump(self) -> None:
        slot = min(self._waiting, key=lambda s: s.unit.poc)
        self._waiting.remove(slot)
        slot.pts = self._next_pts
        self._next_pts += 1
        self._last_bumped_poc = slot.unit.poc

    def _bump_all(self) -> None:
        while self._waiting:
            self._bump()
        self._last_bumped_poc = None

    def _emit(self) -> list[TimedUnit]:
        out: list[TimedUnit] = []
        delay = self._delay or 0
        while self._pending and self._pending[0].pts is not None:
            slot = self._pending.pop(0)
            pts = int(slot.pts)  # type: ignore[arg-type]
            dts = slot.decode_index - delay
            if dts > pts:
                raise EncoderError(
                    f"frame {pts} decodes after it is shown (dts {dts}); the encoder's "
                    f"reorder depth exceeds the {delay} frames its stream allows"
                )
            out.append(TimedUnit(slot.unit, pts, dts))
        return out
