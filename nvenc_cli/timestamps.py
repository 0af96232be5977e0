"""Per-frame timestamps: checked, kept exact, and fitted to the clock each container has.

Robot logs, screen captures and adaptive simulators are not constant-rate: their frames
carry times. A ``Timeline`` holds them as exact fractions of a second (a float is taken
as the decimal it prints as, ``0.1`` is 1/10), and ``clock()`` picks the tick each
container can write them in: the least common tick of the timestamps where the format
takes any (MP4, MOV, NUT), else the format's own (Matroska and WebM count milliseconds,
MPEG-TS 1/90000 s, GIF centiseconds), saying by how much rounding moved a frame. Frames
that would share a tick, or a container that keeps no timestamps (AVI), are refused.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nvenc_cli.errors import InputDataError, InputMissingError, UsageError

# Containers whose clock is fixed by FFmpeg's muxer (no option sets it), and why.
FIXED_CLOCKS: dict[str, tuple[Fraction, str]] = {
    "matroska": (Fraction(1, 1000), "Matroska counts milliseconds"),
    "webm": (Fraction(1, 1000), "WebM counts milliseconds"),
    "flv": (Fraction(1, 1000), "FLV counts milliseconds"),
    "mpegts": (Fraction(1, 90000), "MPEG-TS counts 1/90000 s"),
    "gif": (Fraction(1, 100), "GIF delays count centiseconds"),
}
# Containers with a clock of our choosing (MP4/MOV: the track timescale, 32 bits).
FREE_CLOCKS = frozenset({"mp4", "mov", "nut"})
NO_TIMESTAMPS = {"avi": "AVI files keep no timestamps (every frame lasts 1/fps)"}
_MAX_TIMESCALE = 2**31 - 1
MICROSECOND = Fraction(1, 1_000_000)
# Names of a timestamps entry beside the frames in an .npz/.pt, and of a CSV column.
ENTRY_NAMES = ("timestamps", "pts", "t")
CSV_COLUMNS = ("timestamps", "timestamp", "pts", "t", "time", "seconds")


def exact_seconds(value: Any, index: int) -> Fraction:
    """One timestamp as an exact fraction of a second; refuses what is no finite time."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise InputDataError(f"timestamp {index} is {value!r}, not a time in seconds")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, str):  # a CSV or text field: the decimal as written
        try:
            parsed = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise InputDataError(f"timestamp {index} is {value.strip()!r}, not a time in seconds") from None
        return parsed
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputDataError(f"timestamp {index} is {value!r}, not a time in seconds") from None
    if not math.isfinite(number):
        raise InputDataError(f"timestamp {index} is {number}: timestamps must be finite")
    return Fraction(repr(number))  # the decimal the float prints as: 0.1 is 1/10


@dataclass(frozen=True)
class Clock:
    """The tick a container writes the timeline in, each frame's tick count, and what
    rounding to it changed (None when nothing moved)."""

    time_base: Fraction
    ticks: tuple[int, ...]
    notice: str | None = None


@dataclass(frozen=True)
class Timeline:
    """Every frame's time in seconds (exact), strictly increasing."""

    seconds: tuple[Fraction, ...]

    @classmethod
    def of(cls, values: Any, what: str = "timestamps") -> Timeline:
        """From seconds: a 1-D numpy array, torch tensor, list or tuple (floats, ints or
        Fractions). The first bad value is named by its index."""
        if hasattr(values, "detach"):  # a torch tensor: its values, on the host
            values = values.detach().cpu().tolist()
        elif hasattr(values, "tolist") and hasattr(values, "ndim"):
            if values.ndim != 1:
                raise InputDataError(f"{what} must be 1-D, one per frame; got shape {tuple(values.shape)}")
            values = values.tolist()
        if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
            raise InputDataError(
                f"{what} must be a sequence of times in seconds, got {type(values).__name__}"
            )
        seconds = tuple(exact_seconds(v, i) for i, v in enumerate(values))
        if not seconds:
            raise InputDataError(f"{what} hold no value")
        for i in range(1, len(seconds)):
            if seconds[i] <= seconds[i - 1]:
                raise InputDataError(
                    f"timestamp {i} ({float(seconds[i]):.6g} s) is not after timestamp {i - 1} "
                    f"({float(seconds[i - 1]):.6g} s): timestamps must strictly increase"
                )
        return cls(seconds)

    def __len__(self) -> int:
        return len(self.seconds)

    def check_count(self, frames: int | None, name: str) -> None:
        """One timestamp per frame: a mismatch is refused before anything is encoded."""
        if frames is not None and frames != len(self):
            raise InputDataError(f"{name} holds {frames} frames but {len(self)} timestamps were given")

    def select(self, start: int, limit: int | None) -> Timeline:
        """The timestamps of ``--start``/``--frames``' frames (their real times, kept)."""
        end = None if limit is None else start + limit
        return Timeline(self.seconds[start:end])

    def nominal_rate(self) -> Fraction | None:
        """The mean rate, for stream metadata and default durations (None: one frame)."""
        if len(self) < 2:
            return None
        span = self.seconds[-1] - self.seconds[0]
        return (Fraction(len(self) - 1) / span).limit_denominator(1001)

    def summary(self) -> dict[str, float]:
        """What ``--json`` reports of the timeline: first, last, largest gap, mean rate."""
        gaps = [b - a for a, b in itertools.pairwise(self.seconds)]
        rate = self.nominal_rate()
        return {
            "first": float(self.seconds[0]),
            "last": float(self.seconds[-1]),
            "largest_gap": float(max(gaps)) if gaps else 0.0,
            "mean_rate": float(rate) if rate else 0.0,
        }

    def clock(self, container: str) -> Clock:
        """The ticks this timeline is written in, for ``container``; refuses AVI and
        timestamps that the container's clock cannot tell apart."""
        if container in NO_TIMESTAMPS:
            able = "mp4, mov, mkv, webm, ts, nut, gif"
            raise UsageError(f"per-frame timestamps: {NO_TIMESTAMPS[container]}; write one of {able}")
        if container in FIXED_CLOCKS:
            base, why = FIXED_CLOCKS[container]
            clock = self._rounded(base, why)
            short = [i for i in range(1, len(clock.ticks)) if clock.ticks[i] - clock.ticks[i - 1] < 2]
            if container == "gif" and short:
                note = (
                    f"{len(short)} GIF delay(s) under 2/100 s (first after frame {short[0] - 1}): many "
                    "players, FFmpeg's GIF reader among them, show such a frame for 1/10 s"
                )
                clock = Clock(clock.time_base, clock.ticks, "; ".join(filter(None, (clock.notice, note))))
            return clock
        lcm = 1
        for value in self.seconds:
            lcm = lcm * value.denominator // math.gcd(lcm, value.denominator)
            if lcm > _MAX_TIMESCALE:
                return self._rounded(MICROSECOND, "they share no exact clock of at most 2^31 ticks a second")
        base = Fraction(1, lcm)
        return Clock(base, tuple(int(s / base) for s in self.seconds))

    def _rounded(self, base: Fraction, why: str) -> Clock:
        ticks = tuple(round(s / base) for s in self.seconds)
        for i in range(1, len(ticks)):
            if ticks[i] <= ticks[i - 1]:
                raise InputDataError(
                    f"timestamps {i - 1} and {i} ({float(self.seconds[i - 1]):.6g} s, "
                    f"{float(self.seconds[i]):.6g} s) fall in one tick of {float(base):g} s ({why}): "
                    "use .mp4, .mov or .nut, whose clock is chosen to fit"
                )
        worst = max(abs(t * base - s) for t, s in zip(ticks, self.seconds, strict=True))
        if worst == 0:
            return Clock(base, ticks)
        return Clock(
            base,
            ticks,
            f"timestamps rounded to {_tick(base)} ({why}): "
            f"a frame moved by up to {float(worst) * 1000:.3g} ms",
        )


def writer_clock(container: str) -> Fraction:
    """The tick of a streaming writer's timestamps, fixed before any is known: the
    container's own, else 1 µs (rounding is reported when the writer closes)."""
    if container in NO_TIMESTAMPS:
        Timeline((Fraction(0),)).clock(container)  # refused, worded as for a timeline
    return FIXED_CLOCKS.get(container, (MICROSECOND, ""))[0]


class StreamTicks:
    """Times that arrive with the frames (``write(frame, pts=…)``), turned into ticks of a
    clock fixed up front: each checked to come after the last, the largest rounding kept
    for the closing warning."""

    def __init__(self, base: Fraction) -> None:
        self.base = base
        self.last: int | None = None
        self.rounding = Fraction(0)

    def ticks(self, pts: Any, count: int) -> tuple[int, ...]:
        """``pts`` (one number, or one per frame) as ticks; refuses what does not advance."""
        values = [pts] if isinstance(pts, int | float | Fraction) and not isinstance(pts, bool) else pts
        timeline = Timeline.of(values, "pts")
        timeline.check_count(count, "the frames written")
        ticks = tuple(round(s / self.base) for s in timeline.seconds)
        previous = self.last
        for tick, seconds in zip(ticks, timeline.seconds, strict=True):
            if previous is not None and tick <= previous:
                raise UsageError(
                    f"pts {float(seconds):.6g} s is not after the previous frame's "
                    f"({float(previous * self.base):.6g} s, in ticks of {float(self.base):g} s)"
                )
            previous = tick
        moved = (abs(t * self.base - s) for t, s in zip(ticks, timeline.seconds, strict=True))
        self.rounding = max(self.rounding, *moved)
        self.last = ticks[-1]
        return ticks

    def warning(self) -> str | None:
        """What rounding to the clock changed, for the writer's closing warning."""
        if not self.rounding:
            return None
        return (
            f"pts rounded to the file's clock ({float(self.base):g} s): a frame moved by up to "
            f"{float(self.rounding) * 1000:.3g} ms"
        )


def _tick(base: Fraction) -> str:
    return {Fraction(1, 1000): "1 ms", MICROSECOND: "1 µs", Fraction(1, 100): "1/100 s"}.get(
        base, f"1/{base.denominator} s"
    )


def load_timestamps(path: str) -> Timeline:
    """``--timestamps FILE``: ``.npy`` (1-D), ``.txt`` (one time per line, ``#`` comments),
    or ``.csv`` with a header naming the column (timestamps, timestamp, pts, t, time,
    seconds)."""
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            import numpy as np

            with open(path, "rb") as fh:
                values = np.load(fh, allow_pickle=False)
            return Timeline.of(values, f"{path}")
        with open(path, encoding="utf-8", newline="") as fh:
            if ext == ".csv":
                return Timeline.of(_csv_column(fh, path), path)
            lines = [line.split("#", 1)[0].strip() for line in fh]
    except FileNotFoundError:
        raise InputMissingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputMissingError(f"{path}: is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputMissingError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    except ValueError as exc:  # numpy: not a .npy, or pickled objects
        raise InputDataError(f"{path}: not a readable .npy array ({exc})") from None
    return Timeline.of([line for line in lines if line], path)


def _csv_column(fh: Any, path: str) -> list[str]:
    reader = csv.reader(fh)
    header = [name.strip() for name in next(reader, [])]
    found = [i for i, name in enumerate(header) if name.lower() in CSV_COLUMNS]
    if len(found) != 1:
        raise InputDataError(
            f"{path}: name the timestamps column one of {', '.join(CSV_COLUMNS)} in the header "
            f"(it has: {', '.join(header) or 'no header'})"
        )
    column = found[0]
    values = []
    for number, row in enumerate(reader, 2):
        if not row:
            continue
        if column >= len(row):
            raise InputDataError(f"{path}: line {number} has no {header[column]!r} value")
        values.append(row[column])
    return values
