"""Paletted output (``pal8``: GIF, and PNG): palettes built from the frames themselves.

Frames are taken in windows of up to 15 (at most 32 MB of RGB), so memory is bounded
whatever the length of the input and nothing waits for its end. A window of 256 colours or
fewer gets exactly those (flat graphics stay lossless); otherwise its palette is Pillow's
fast octree over its pixels, refined by k-means, and each frame is mapped to it by nearest
RGB colour with Floyd–Steinberg dithering, which keeps gradients from banding.

One palette is kept for as long as it fits, because FFmpeg's GIF encoder stores only what
changed since the previous frame (a cropped rectangle, unchanged pixels transparent) when,
and only when, a frame's palette is byte for byte the *first* frame's; any other palette
costs a whole frame plus its own colour table. So the first window's palette is reused
until a later window's own palette would be better by more than 3 dB (half the squared
error); from then on each window has its own. Going back to the first palette after
another one would not just be larger but wrong: the encoder compares palette indices with
the previous frame's, and pixels would keep the other palette's colours.

Why not FFmpeg's ``palettegen``/``paletteuse`` (the route before this one): since FFmpeg 6
both choose colours in the OkLab perceptual space, which costs RGB fidelity. Measured at
320x240, 30 frames, PSNR of the decoded RGB against the source, for testsrc2 · a panned
smooth colour field with sensor-like noise (tests/test_gif.py makes both):

- Debian's ffmpeg 5.1, two-pass ``palettegen``/``paletteuse``: 43.2 dB 194 kB · 32.7 dB
  1370 kB (90 frames: 43.0 dB 579 kB · 31.3 dB 4006 kB; testsrc2 1280x720, 40 frames:
  45.4 dB 1864 kB);
- this module: 44.6 dB 191 kB · 33.6 dB 1323 kB (90 frames: 44.6 dB 564 kB · 33.3 dB
  3884 kB; 1280x720: 46.5 dB 1862 kB);
- the same without k-means: 43.5 dB 192 kB · 33.0 dB 1350 kB, but 44.8 dB at 1280x720;
- FFmpeg 8 ``palettegen`` per frame (``stats_mode=single``, ``new=1``, Sierra-2): 43.8 dB
  270 kB · 34.6 dB 1277 kB, as no frame can be coded as a difference;
- FFmpeg 8 two-pass (one palette, ``sierra2_4a``): 41.6 dB 195 kB · 31.8 dB 1413 kB
  (Sierra-2: 42.2 dB 181 kB · 33.2 dB 1333 kB); ffmpeg 5.1's palette mapped by FFmpeg 8's
  ``paletteuse`` scores 41.4 dB, so the mapping alone loses 1.8 dB;
- a new palette every 10 frames (octree alone): 43.9 dB 251 kB on testsrc2, +0.4 dB for
  +31 % in size, which is why the first palette is kept while it fits.

Where one palette does not fit the whole clip, the trade is size for quality: testsrc2,
300 frames, changes colours after a few seconds, so from there each window has its own
palette and no frame is a difference: 45.8 dB 2469 kB, against ffmpeg 5.1's 43.1 dB
1894 kB two-pass and 47.2 dB 2800 kB with a palette per frame (the first palette kept
throughout: 41.9 dB 1879 kB). smptebars (13 colours) is lossless in 4.6 kB, as with ffmpeg.

No dithering scores higher (octree alone: 44.5 dB 161 kB on testsrc2) but bands smooth
gradients, which PSNR does not see and a viewer does. Peak memory of a whole encode: 104 MB
for 300 and for 1200 frames at 320x240, 283 and 276 MB for 40 and 160 frames at 1280x720
(a palette per frame took 189 MB there: the window of frames is the difference).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

_WINDOW_FRAMES = 15  # half a second at 30 fps
_WINDOW_BYTES = 32 << 20
_SWITCH_DB = 3.0
_STATS_PIXELS = 2_000_000
_KMEANS_ROUNDS = 3


class PaletteConverter:
    """RGB frames in, ``pal8`` frames out, in order.

    A frame is held back until its window is complete, so :meth:`flush` hands over what
    is left once the input ends.
    """

    def __init__(self, width: int, height: int, time_base: Fraction) -> None:
        self.width, self.height, self.time_base = width, height, time_base
        self._pts: list[int] = []  # each waiting frame's time, kept for its paletted twin
        self._size = max(1, min(_WINDOW_FRAMES, _WINDOW_BYTES // (width * height * 3)))
        self._window: list[np.ndarray] = []
        self._first: np.ndarray | None = None  # (256, 3) RGB
        self._first_exact = False
        self._own_palettes = False  # the first palette has been left for good

    def convert(self, frame: Any) -> list[Any]:
        """Take one RGB ``av.VideoFrame``; returns the paletted frames now ready."""
        self._window.append(_rgb24(frame.to_ndarray()))
        self._pts.append(frame.pts)
        return self._emit() if len(self._window) >= self._size else []

    def flush(self) -> list[Any]:
        return self._emit() if self._window else []

    def _emit(self) -> list[Any]:
        window, self._window = self._window, []
        times, self._pts = self._pts, []
        palette, indices = self._choose(window)
        return [self._frame(mapped, palette, pts) for mapped, pts in zip(indices, times, strict=True)]

    def _choose(self, window: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The palette for this window and the frames mapped to it (see the module's why)."""
        own, exact = _palette(window)
        if self._first is None:
            self._first, self._first_exact = own, exact
            return own, _map_all(window, own, exact)
        if self._own_palettes:
            if _same(own, self._first):  # the encoder would diff against another palette
                own = own.copy()
                own[255, 0] ^= 1  # one level of one colour: the same to the eye, not to memcmp
            return own, _map_all(window, own, exact)
        kept = _map_all(window, self._first, self._first_exact)
        if _same(own, self._first):
            return self._first, kept
        fresh = _map_all(window, own, exact)
        if _gain_db(window, kept, self._first, fresh, own) > _SWITCH_DB:
            self._own_palettes = True
            return own, fresh
        return self._first, kept

    def _frame(self, indices: np.ndarray, palette: np.ndarray, pts: int) -> Any:
        import av
        import numpy as np

        argb = np.empty((256, 4), np.uint8)
        argb[:, 0] = 255
        argb[:, 1:] = palette
        frame = av.VideoFrame.from_ndarray((np.ascontiguousarray(indices), argb), format="pal8")
        frame.pts = pts
        frame.time_base = self.time_base
        return frame


def _rgb24(image: np.ndarray) -> np.ndarray:
    """8-bit RGB of a gray, RGB or RGBA frame of 8 or 16 bits (pal8 has no alpha: the
    plan already says it is dropped)."""
    import numpy as np

    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = image[:, :, :3]
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.ascontiguousarray(image)


def _palette(window: list[np.ndarray]) -> tuple[np.ndarray, bool]:
    """256 RGB colours for the window's pixels (unused entries black), and whether they are
    exactly the window's colours.

    A window of 256 colours or fewer gets them as they are, so flat graphics stay
    lossless. Otherwise Pillow's fast octree, then a few rounds of k-means (each colour moved to the mean of
    the pixels nearest to it), as Pillow's own ``kmeans=`` does for its other methods but
    not for the octree: +1 to +1.6 dB for a fraction of a second (module docstring). Large
    windows are sampled on a regular grid down to about 2 million pixels, as Pillow needs
    some 12 bytes a pixel to build the octree, and a sample that size finds the same colours.
    """
    import math

    import numpy as np
    from PIL import Image

    exact = _few_colours(window)
    if exact is not None:
        return exact, True
    height, width = window[0].shape[:2]
    step = max(1, math.ceil(math.sqrt(len(window) * height * width / _STATS_PIXELS)))
    sample = Image.fromarray(np.concatenate([rgb[::step, ::step] for rgb in window]))
    colours = sample.quantize(256, method=Image.Quantize.FASTOCTREE).getpalette() or []
    palette = np.zeros((256, 3), np.uint8)
    found = np.asarray(colours[: 256 * 3], np.uint8).reshape(-1, 3)
    palette[: len(found)] = found
    pixels = np.asarray(sample).reshape(-1, 3)
    for _ in range(_KMEANS_ROUNDS):
        nearest = np.asarray(
            sample.quantize(palette=_palette_image(palette), dither=Image.Dither.NONE)
        ).ravel()
        counts = np.bincount(nearest, minlength=256)
        used = counts > 0
        for channel in range(3):
            sums = np.bincount(nearest, weights=pixels[:, channel], minlength=256)
            palette[used, channel] = np.clip(np.rint(sums[used] / counts[used]), 0, 255)
    return palette, False


def _few_colours(window: list[np.ndarray]) -> np.ndarray | None:
    """The window's own colours as a palette, if there are no more than 256."""
    import numpy as np
    from PIL import Image

    colours: set[tuple[int, int, int]] = set()
    for rgb in window:
        counted = Image.fromarray(rgb).getcolors(256)  # None beyond 256, without counting on
        if counted is None:
            return None
        colours.update(colour for _, colour in counted)
        if len(colours) > 256:
            return None
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(colours)] = sorted(colours)
    return palette


def _map_all(window: list[np.ndarray], palette: np.ndarray, exact: bool) -> list[np.ndarray]:
    """Palette indices of each frame: exact where every colour is in the palette (Pillow's
    own mapping is off by up to 3 levels even then), else Pillow's dithered nearest colour."""
    import numpy as np
    from PIL import Image

    if exact:
        found = [indices for indices in (_lookup(rgb, palette) for rgb in window) if indices is not None]
        if len(found) == len(window):
            return found
    target = _palette_image(palette)
    return [
        np.asarray(Image.fromarray(rgb).quantize(palette=target, dither=Image.Dither.FLOYDSTEINBERG))
        for rgb in window
    ]


def _lookup(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray | None:
    """Each pixel's index in the palette, or None if a colour is missing from it."""
    import numpy as np

    keys = _packed(palette)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    packed = _packed(rgb)
    at = np.minimum(np.searchsorted(ordered, packed), 255)
    if not np.array_equal(ordered[at], packed):
        return None
    return order[at].astype(np.uint8)


def _packed(rgb: np.ndarray) -> np.ndarray:
    import numpy as np

    wide = rgb.astype(np.uint32)
    return (wide[..., 0] << 16) | (wide[..., 1] << 8) | wide[..., 2]


def _palette_image(palette: np.ndarray) -> Image.Image:
    from PIL import Image

    image = Image.new("P", (1, 1))
    image.putpalette(palette.tobytes())
    return image


def _gain_db(
    window: list[np.ndarray],
    kept: list[np.ndarray],
    first: np.ndarray,
    fresh: list[np.ndarray],
    own: np.ndarray,
) -> float:
    """How much better, in dB of PSNR, the window looks in its own palette."""
    import math

    before, after = _squared_error(window, kept, first), _squared_error(window, fresh, own)
    if after == 0:
        return math.inf if before else 0.0
    return 10 * math.log10(before / after) if before else 0.0


def _squared_error(window: list[np.ndarray], indices: list[np.ndarray], palette: np.ndarray) -> int:
    import numpy as np

    return sum(
        int(np.square(palette[i].astype(np.int32) - rgb).sum())
        for rgb, i in zip(window, indices, strict=True)
    )


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    import numpy as np

    return bool(np.array_equal(a, b))
