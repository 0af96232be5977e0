"""One audio track of an output: packets copied or encoded, cut to the video's span.

The pipeline calls :meth:`AudioTrack.pump` with the video time reached so far, so audio is
produced (and read) only as far as the video has got: memory stays flat and the muxer can
interleave the two by time. :meth:`AudioTrack.finish` cuts the track at the video's end:
exactly to the sample when re-encoding, within one packet when copying.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from nvenc_cli.audio.encoder import SampleEncoder, open_context, split
from nvenc_cli.errors import InputDataError

if TYPE_CHECKING:
    from nvenc_cli.audio.plan import AudioInput, AudioPlan
    from nvenc_cli.mux import Muxer

# Raw float PCM codecs, whose copied packets are checked for NaN as decoded samples are.
_FLOAT_PCM = {"pcm_f32le": "<f4", "pcm_f32be": ">f4", "pcm_f64le": "<f8", "pcm_f64be": ">f8"}

# MP4/MOV store an edit list, so a copied packet that starts before 0 (AAC priming) keeps
# its place there; other muxers would shift every stream to make it non-negative.
_EDIT_LIST_MUXERS = ("mp4", "mov")


class AudioTrack:
    """Produce one track's packets for a muxer lane, up to a given output time."""

    def __init__(self, plan: AudioPlan, source: AudioInput) -> None:
        self.plan = plan
        self.source = source
        self._muxer: Muxer | None = None
        self._lane: Any = None
        self._encoder: SampleEncoder | None = None
        self._packets: Iterator[Any] | None = None
        self._frames: Iterator[Any] | None = None
        self._held: Any = None  # a copied packet past the last cut, kept for the next pump
        self._ready: deque[Any] = deque()  # converted frames not yet fed to the encoder
        self._skip = 0  # converted samples still to drop (audio that starts before 0)
        self._started = False
        self._exhausted = False
        self._finished = False
        self.samples = 0  # samples in the output so far (re-encode)
        self.end_time = Fraction(0)  # output time the last packet reaches
        self._read = 0  # samples per channel read from the input so far
        self.clipped = 0  # float samples outside [-1, 1] an integer encoder clips

    # -- wiring --------------------------------------------------------------------------
    def attach(self, muxer: Muxer) -> None:
        """Reserve the track's stream; it is created when the container's header is due."""
        self._muxer = muxer
        self._keep_negative = muxer.container_name in _EDIT_LIST_MUXERS
        self._lane = muxer.add_lane(self._make_stream)

    def _make_stream(self, output: Any) -> Any:
        plan = self.plan
        if plan.copied:
            stream = output.add_stream_from_template(self.source.stream)
            return stream
        stream = output.add_stream(plan.encoder, rate=plan.rate, layout=plan.layout)
        open_context(
            stream.codec_context, plan.rate, plan.layout, plan.sample_format or "fltp", plan.bit_rate
        )
        stream.time_base = Fraction(1, plan.rate)
        self._encoder = SampleEncoder(stream.codec_context)
        return stream

    @property
    def ready(self) -> bool:
        """The muxer has (or can now make) its streams, so this track's encoder exists."""
        muxer = self._muxer
        if muxer is None:
            return False
        if muxer.can_start:
            muxer.start()
        return muxer.started

    # -- production ----------------------------------------------------------------------
    def pump(self, until: Fraction) -> None:
        """Hand the muxer every packet that starts before output time ``until``."""
        if self._finished or not self.ready:
            return
        packets = self._copy(until) if self.plan.copied else self._encode(until, final=False)
        muxer = self._muxer
        assert muxer is not None
        if self._exhausted and not self._ready and self._held is None:
            # A track shorter than the video ends here: its lane closes now, so the
            # muxer stops holding video packets back to interleave them with it.
            if self._encoder is not None:
                packets += self._encoder.flush()
                self.end_time = Fraction(self._encoder.fed, self._encoder.rate)
            muxer.push(self._lane, packets)
            muxer.end_lane(self._lane)
            self._finished = True
            return
        muxer.push(self._lane, packets)

    def finish(self, end: Fraction) -> None:
        """Cut the track at output time ``end`` (the video's end) and close its lane."""
        if self._finished:
            return
        muxer = self._muxer
        assert muxer is not None
        if not muxer.started:
            muxer.start()  # no video packet ever came: the header goes out now
        packets = self._copy(end) if self.plan.copied else self._encode(end, final=True)
        muxer.push(self._lane, packets)
        muxer.end_lane(self._lane)
        self._finished = True

    def write(self, frame: Any) -> None:
        """Encode samples the caller hands over (the Python API pushes, the CLI pumps)."""
        encoder = self._encoder
        assert encoder is not None and not self._finished
        packets: list[Any] = []
        for converted in encoder.resample(frame):
            packets += encoder.write(converted)
        self.samples = encoder.fed
        self.end_time = Fraction(encoder.fed, encoder.rate)
        self._muxer.push(self._lane, packets)  # type: ignore[union-attr]

    def finish_pushed(self) -> None:
        """End a pushed track: every sample given is encoded, nothing is cut."""
        if self._finished:
            return
        encoder = self._encoder
        muxer = self._muxer
        assert encoder is not None and muxer is not None
        packets: list[Any] = []
        for converted in encoder.resample(None):
            packets += encoder.write(converted)
        packets += encoder.flush()
        self.samples = encoder.fed
        self.end_time = Fraction(encoder.fed, encoder.rate)
        muxer.push(self._lane, packets)
        muxer.end_lane(self._lane)
        self._finished = True

    def _copy(self, until: Fraction) -> list[Any]:
        """Copied packets, re-timed so the video's first frame is time 0."""
        if self._packets is None:
            self._packets = self.source.packets()
        tb = self.source.time_base
        shift = round(self.plan.offset / tb)
        out: list[Any] = []
        while True:
            packet = self._held if self._held is not None else next(self._packets, None)
            self._held = None
            if packet is None:
                self._exhausted = True
                return out
            pts = packet.pts if packet.pts is not None else packet.dts
            rel = pts - shift
            if rel * tb >= until:
                self._held = packet
                return out
            duration = packet.duration or 0
            self._check_copied(packet)
            if rel < 0 and not self._keep_negative:
                continue  # before the video's first frame, and the muxer has no edit list
            # (MP4/MOV keep it: an encoder's priming packet, which the edit list hides.)
            packet.pts = rel if packet.pts is not None else None
            packet.dts = packet.dts - shift if packet.dts is not None else None
            packet.time_base = tb
            self.end_time = max(self.end_time, (rel + duration) * tb)
            out.append(packet)

    def _check_copied(self, packet: Any) -> None:
        """Raw float PCM copied as it is is still checked: NaN is refused in every
        container (compressed codecs are copied without decoding them)."""
        dtype = _FLOAT_PCM.get(self.source.codec or "")
        if dtype is None:
            return
        values = np.frombuffer(bytes(packet), dtype=dtype)
        finite = np.isfinite(values)
        if not finite.all():
            channels = max(getattr(self.source, "channels", 1) or 1, 1)
            index = self._read + int(np.argmin(finite)) // channels
            raise InputDataError(
                f"{self.source.path}: audio sample {index} is not a number (NaN or infinity): "
                "no encoder can carry it"
            )
        self._read += len(values) // max(getattr(self.source, "channels", 1) or 1, 1)

    def _encode(self, until: Fraction, final: bool) -> list[Any]:
        """Encode samples up to output sample ``until × rate`` exactly."""
        encoder = self._encoder
        assert encoder is not None
        limit = math.floor(until * encoder.rate)
        packets: list[Any] = []
        while encoder.fed < limit:
            if not self._ready and not self._refill(encoder, final):
                break
            if not self._ready:
                continue
            frame = self._ready.popleft()
            room = limit - encoder.fed
            if frame.samples > room:
                frame, rest = split(frame, room)
                self._ready.appendleft(rest)
            packets += encoder.write(frame)
        if final:
            self._ready.clear()
            packets += encoder.flush()
        self.samples = encoder.fed
        self.end_time = Fraction(encoder.fed, encoder.rate)
        return packets

    def _refill(self, encoder: SampleEncoder, final: bool) -> bool:
        """Decode and convert the next input frame into ``_ready``; False at the end."""
        if self._exhausted:
            return False
        if self._frames is None:
            self._frames = self.source.frames()
        frame = next(self._frames, None)
        if frame is not None:
            self._check_values(frame, encoder)
        if frame is None:
            self._exhausted = True
            self._ready.extend(encoder.resample(None))
            self._drop_skipped()
            return bool(self._ready)
        if not self._started:
            self._started = True
            self._place_start(frame, encoder)
        self._ready.extend(encoder.resample(frame))
        self._drop_skipped()
        return True

    def _check_values(self, frame: Any, encoder: SampleEncoder) -> None:
        """Float samples must be finite whatever the container (encoders differ: AAC
        fails, Opus encodes NaN as noise), and those outside [-1, 1] are counted when the
        encoder's samples are integers (FLAC, PCM, ALAC clip them), so the run can say so."""
        kind = frame.format.name.rstrip("p")
        if kind not in ("flt", "dbl"):
            self._read += frame.samples
            return
        data = frame.to_ndarray()
        channels = 1 if frame.format.is_planar else len(frame.layout.channels)
        finite = np.isfinite(data)
        if not finite.all():
            where = np.argwhere(~finite)[0]
            index = self._read + (int(where[1]) if channels == 1 else int(where[1]) // channels)
            raise InputDataError(
                f"{self.source.path}: audio sample {index} is not a number (NaN or infinity): "
                "no encoder can carry it"
            )
        if encoder.format.rstrip("p") not in ("flt", "dbl"):
            self.clipped += int(np.count_nonzero(np.abs(data) > 1.0))
        self._read += frame.samples

    @property
    def notices(self) -> list[str]:
        """What the track changed on the way, for the run's report."""
        if not self.clipped:
            return []
        return [
            f"audio: {self.clipped} samples of {self.source.path} outside [-1, 1] were clipped to "
            f"[-1, 1] by {self.plan.encoder} (it stores integer samples)"
        ]

    def _place_start(self, frame: Any, encoder: SampleEncoder) -> None:
        """Line the first frame up with the video: drop what comes before output time 0,
        or lead with silence when the sound starts after it."""
        if frame.pts is None or frame.time_base is None:
            return
        start = Fraction(frame.pts) * frame.time_base - self.plan.offset
        lead = round(start * encoder.rate)
        if lead < 0:
            self._skip = -lead
        elif lead > 0:
            self._ready.append(encoder.silence(lead))

    def _drop_skipped(self) -> None:
        while self._skip and self._ready:
            frame = self._ready[0]
            if frame.samples <= self._skip:
                self._skip -= frame.samples
                self._ready.popleft()
            else:
                _, rest = split(frame, self._skip)
                self._ready[0] = rest
                self._skip = 0

    def duration(self) -> float:
        return float(self.end_time)

    def close(self) -> None:
        self.source.close()
