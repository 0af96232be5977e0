"""Paletted output (``pal8``: GIF, and PNG): a palette built from the frames themselves.

FFmpeg's ``palettegen``/``paletteuse`` filters, run through PyAV's filter graph. The
palette is made per frame (``stats_mode=single``, ``new=1``), so frames stream through
with no pass over the whole input first and memory stays flat; GIF stores each frame's
palette beside it. Measured on testsrc2 at 320x240, 30 frames: 43.8 dB PSNR at 270 kB,
against 43.2 dB at 194 kB for Debian's ffmpeg 5.1 with its two-pass palettegen and 29.8 dB
for the fixed ``rgb8`` palette (README, "Recipes"). Sierra-2 error diffusion keeps gradients
from banding.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

_PALETTEGEN = "stats_mode=single"
_PALETTEUSE = "new=1:dither=sierra2"


class PaletteConverter:
    """RGB frames in, ``pal8`` frames with their own palettes out, in order.

    The graph may hold a frame back until its palette is ready, so :meth:`flush` hands
    over what is left once the input ends.
    """

    def __init__(self, width: int, height: int, rate: Fraction) -> None:
        self.width, self.height, self.rate = width, height, rate
        self._graph: Any = None
        self._format: str | None = None
        self._made = 0

    def _open(self, fmt: str) -> None:
        from av.filter import Graph

        graph = Graph()
        source = graph.add_buffer(width=self.width, height=self.height, format=fmt, time_base=1 / self.rate)
        split = graph.add("split")
        generate = graph.add("palettegen", _PALETTEGEN)
        use = graph.add("paletteuse", _PALETTEUSE)
        sink = graph.add("buffersink")
        source.link_to(split)
        split.link_to(generate, 0, 0)
        split.link_to(use, 1, 0)
        generate.link_to(use, 0, 1)
        use.link_to(sink)
        graph.configure()
        self._graph, self._format = graph, fmt

    def convert(self, frame: Any) -> list[Any]:
        """Push one RGB ``av.VideoFrame``; returns the paletted frames now ready."""
        if self._graph is None:
            self._open(frame.format.name)
        self._graph.push(frame)
        return self._drain()

    def flush(self) -> list[Any]:
        if self._graph is None:
            return []
        self._graph.push(None)
        return self._drain()

    def _drain(self) -> list[Any]:
        import av

        out = []
        while True:
            try:
                frame = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return out
            frame.pts = self._made
            frame.time_base = 1 / self.rate
            self._made += 1
            out.append(frame)
