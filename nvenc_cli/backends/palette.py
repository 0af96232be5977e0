"""Paletted output (``pal8``: GIF, and PNG): palettes built from the frames themselves.

Frames are taken in windows of up to 15 (at most 32 MB of RGB), so memory is bounded
whatever the length of the input and nothing waits for its end. A window's palette is
Pillow's fast octree over its pixels, refined by k-means; each frame is mapped to it by
nearest RGB colour with Floyd–Steinberg dithering, which keeps gradients from banding.

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

No dithering scores higher (octree alone: 44.5 dB 161 kB on testsrc2) but bands smooth
gradients, which PSNR does not see and a viewer does. Peak memory of a whole encode: 91 MB
for 300 and for 1200 frames at 320x240, 244 and 254 MB for 40 and 160 frames at 1280x720.
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

    def __init__(self, width: int, height: int, rate: Fraction) -> None:
        self.width, self.height, self.rate = width, height, rate
        self._size = max(1, min(_WINDOW_FRAMES, _WINDOW_BYTES // (width * height * 3)))
        self._window: list[np.ndarray] = []
        self._first: np.ndarray | None = None  # (256, 3) RGB
        self._own_palettes = False  # the first palette has been left for good
        self._made = 0

    def convert(self, frame: Any) -> list[Any]:
        """Take one RGB ``av.VideoFrame``; returns the paletted frames now ready."""
        self._window.append(_rgb24(frame.to_ndarray()))
        return self._emit() if len(self._window) >= self._size else []

    def flush(self) -> list[Any]:
        return self._emit() if self._window else []

    def _emit(self) -> list[Any]:
        window, self._window = self._window, []
        palette, indices = self._choose(window)
        return [self._frame(mapped, palette) for mapped in indices]

    def _choose(self, window: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The palette for this window and the frames mapped to it (see the module's why)."""
        own = _palette(window)
        if self._first is None:
            self._first = own
            return own, _map_all(window, own)
        if self._own_palettes:
            if _same(own, self._first):  # the encoder would diff against another palette
                own = own.copy()
                own[255, 0] ^= 1  # one level of one colour: the same to the eye, not to memcmp
            return own, _map_all(window, own)
        kept = _map_all(window, self._first)
        if _same(own, self._first):
            return self._first, kept
        fresh = _map_all(window, own)
        if _gain_db(window, kept, self._first, fresh, own) > _SWITCH_DB:
            self._own_palettes = True
            return own, fresh
        return self._first, kept

    def _frame(self, indices: np.ndarray, palette: np.ndarray) -> Any:
        import av
        import numpy as np

        argb = np.empty((256, 4), np.uint8)
        argb[:, 0] = 255
        argb[:, 1:] = palette
        frame = av.VideoFrame.from_ndarray((np.ascontiguousarray(indices), argb), format="pal8")
        frame.pts = self._made
        frame.time_base = 1 / self.rate
        self._made += 1
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


def _palette(window: list[np.ndarray]) -> np.ndarray:
    """256 RGB colours for the window's pixels (unused entries black).

    Pillow's fast octree, then a few rounds of k-means (each colour moved to the mean of
    the pixels nearest to it), as Pillow's own ``kmeans=`` does for its other methods but
    not for the octree: +1 to +1.6 dB for a fraction of a second (module docstring). Large
    windows are sampled on a regular grid down to about 2 million pixels, as Pillow needs
    some 12 bytes a pixel to build the octree, and a sample that size finds the same colours.
    """
    import math

    import numpy as np
    from PIL import Image

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
    return palette


def _map_all(window: list[np.ndarray], palette: np.ndarray) -> list[np.ndarray]:
    import numpy as np
    from PIL import Image

    target = _palette_image(palette)
    return [
        np.asarray(Image.fromarray(rgb).quantize(palette=target, dither=Image.Dither.FLOYDSTEINBERG))
        for rgb in window
    ]


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
