"""Synthetic traffic-sign images, rendered offline with OpenCV.

No traffic-sign data set can be downloaded here, yet the pipeline needs image classifiers whose
inputs look like road signs: multi-class MLPs certified with CROWN (PROVEN paper) and a binary
"give way" vs "priority road" classifier at 10x10 for the ensemble MILP stage. So each sign is
drawn with OpenCV primitives on a supersampled canvas (4x the output size, at least 64 px) and
pasted onto a varied background (colour gradient, optional sky/ground split, a few flat shapes of
foliage or building colours, smoothed noise texture, sometimes a pole) with a random rotation
(+-15 degrees), scale (sign diameter 55-90 % of the image) and offset, then shrunk with area
interpolation, which antialiases it like a camera would. Like a detector's crop, the sign stays
near the centre (shifted by at most 12 % of the image, at most 10 % of its radius outside): with
offsets anywhere in the image, stop and no-entry signs (both red with a white horizontal mark)
were no longer told apart from pixels by a linear model. Lighting (brightness, contrast, gamma,
colour cast), occasional slight blur and additive Gaussian noise are applied at the output size.

Every image draws from its own generator ``np.random.default_rng([seed, 1, i])`` and the class
order from ``np.random.default_rng([seed, 0])``, never from global state, so the same arguments give
byte-identical arrays (with one OpenCV build on one machine: OpenCV's SIMD code paths may round
differently elsewhere). OpenCV runs single-threaded while rendering: tiny images gain nothing from
threads, and it rules out any thread-dependent result; the caller's thread setting is restored.

Speed: 10,000 images at size 32 took 8-10 s of CPU time (0.8-1.0 ms per image) on one core of
the development machine (a 2-vCPU 2.5 GHz Xeon) while another job kept both vCPUs busy, about
7 s under a lighter load; size 10 takes about 70 % of that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
from tqdm import tqdm

SIGN_CLASSES: tuple[str, ...] = ("give_way", "priority_road", "stop", "no_entry", "speed_limit", "ahead_only")
SPEED_LIMITS = ("30", "50", "70")

# Sign colours in RGB (images are RGB throughout; OpenCV draws whatever triple it is given).
_RED = (200, 24, 32)
_WHITE = (245, 245, 242)
_YELLOW = (250, 196, 10)
_BLACK = (20, 20, 20)
_BLUE = (24, 72, 176)

# Scene colours for backgrounds: foliage, grass, buildings, road, sky, soil.
_SCENE_COLOURS = np.array(
    [
        (34, 100, 34),
        (60, 120, 40),
        (85, 107, 47),
        (110, 140, 70),
        (128, 128, 128),
        (90, 90, 100),
        (160, 82, 45),
        (180, 160, 130),
        (200, 195, 185),
        (70, 60, 50),
        (135, 180, 230),
        (190, 210, 230),
        (60, 60, 60),
    ],
    dtype=np.float32,
)
_SKY_COLOURS = np.array([(135, 180, 230), (190, 210, 235), (170, 175, 185), (225, 225, 230)], dtype=np.float32)
_GROUND_COLOURS = np.array([(60, 120, 40), (85, 107, 47), (90, 90, 95), (120, 100, 70)], dtype=np.float32)

# Templates are drawn with fixed-point coordinates (4 fractional bits) so that shapes stay exact
# on small canvases.
_SHIFT = 4
_ONE = 1 << _SHIFT
# Radius of a template sign as a fraction of its canvas: a small margin keeps antialiased edges
# from being cut at the canvas border.
_TEMPLATE_RADIUS = 0.48
# Grey levels 0..255 as fractions, the input axis of the lighting table.
_LEVELS = np.linspace(0.0, 1.0, 256)[:, None]


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _regular_polygon(centre: float, radius: float, corners: int, start_degrees: float) -> np.ndarray:
    angles = np.deg2rad(start_degrees + 360.0 / corners * np.arange(corners))
    return np.stack([centre + radius * np.cos(angles), centre + radius * np.sin(angles)], axis=1)


def _scaled(points: np.ndarray, about: np.ndarray, factor: float) -> np.ndarray:
    return about + (points - about) * factor


class _Canvas:
    """A premultiplied RGB layer plus alpha: the outer shape sets the alpha, inner layers only colour."""

    def __init__(self, side: int) -> None:
        self.rgb = np.zeros((side, side, 3), np.uint8)
        self.alpha = np.zeros((side, side), np.uint8)

    def polygon(self, points: np.ndarray, colour: tuple[int, int, int], outer: bool = False) -> None:
        cv2.fillPoly(self.rgb, [_fixed(points)], colour, lineType=cv2.LINE_AA, shift=_SHIFT)
        if outer:
            cv2.fillPoly(self.alpha, [_fixed(points)], 255, lineType=cv2.LINE_AA, shift=_SHIFT)

    def disc(self, centre: float, radius: float, colour: tuple[int, int, int], outer: bool = False) -> None:
        c = round(centre * _ONE)
        r = round(radius * _ONE)
        cv2.circle(self.rgb, (c, c), r, colour, thickness=-1, lineType=cv2.LINE_AA, shift=_SHIFT)
        if outer:
            cv2.circle(self.alpha, (c, c), r, 255, thickness=-1, lineType=cv2.LINE_AA, shift=_SHIFT)

    def text(
        self, text: str, centre: float, box: tuple[float, float], colour: tuple[int, int, int], font: int, weight: float
    ) -> None:
        """Draw ``text`` centred, stretched to fill ``box`` (width, height) pixels; strokes ``weight`` x glyph height.

        Hershey fonts have one aspect ratio; road-sign lettering is condensed, so the glyphs are drawn
        as a mask at a generous scale and resized onto the box.
        """
        scale = 2.0
        (w, h), baseline = cv2.getTextSize(text, font, scale, 1)
        thickness = max(1, round(weight * h))
        (w, h), baseline = cv2.getTextSize(text, font, scale, thickness)
        pad = thickness
        mask = np.zeros((h + baseline + 2 * pad, w + 2 * pad), np.uint8)
        cv2.putText(mask, text, (pad, pad + h), font, scale, 255, thickness, lineType=cv2.LINE_AA)
        ys, xs = np.nonzero(mask)
        mask = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        box_w, box_h = max(1, round(box[0])), max(1, round(box[1]))
        mask = cv2.resize(mask, (box_w, box_h), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255
        top, left = round(centre - box_h / 2), round(centre - box_w / 2)
        region = self.rgb[top : top + box_h, left : left + box_w]
        region[:] = np.rint(region * (1 - mask) + np.array(colour, np.float32) * mask).astype(np.uint8)

    def rgba(self) -> np.ndarray:
        out = np.dstack([self.rgb, self.alpha])
        out.setflags(write=False)
        return out


@lru_cache(maxsize=64)
def _template(name: str, side: int, text: str = "") -> np.ndarray:
    """One sign filling a ``side`` x ``side`` canvas, as premultiplied RGBA uint8 (read-only, cached)."""
    canvas = _Canvas(side)
    c = side / 2
    r = _TEMPLATE_RADIUS * side
    centre = np.array([c, c])
    if name == "give_way":
        # Inverted equilateral triangle filling the square's width, centred on its bounding box.
        half_h = np.sqrt(3) * r / 2
        outer = np.array([[c - r, c - half_h], [c + r, c - half_h], [c, c + half_h]])
        centroid = outer.mean(0)
        canvas.polygon(outer, _WHITE, outer=True)
        canvas.polygon(_scaled(outer, centroid, 0.9), _RED)
        canvas.polygon(_scaled(outer, centroid, 0.55), _WHITE)
    elif name == "priority_road":
        outer = _regular_polygon(c, r, 4, 0)
        canvas.polygon(outer, _BLACK, outer=True)
        canvas.polygon(_scaled(outer, centre, 0.95), _WHITE)
        canvas.polygon(_scaled(outer, centre, 0.66), _BLACK)
        canvas.polygon(_scaled(outer, centre, 0.61), _YELLOW)
    elif name == "stop":
        outer = _regular_polygon(c, r, 8, 22.5)
        canvas.polygon(outer, _WHITE, outer=True)
        canvas.polygon(_scaled(outer, centre, 0.88), _RED)
        canvas.text("STOP", c, (1.4 * r, 0.6 * r), _WHITE, cv2.FONT_HERSHEY_SIMPLEX, 0.22)
    elif name == "no_entry":
        canvas.disc(c, r, _WHITE, outer=True)
        canvas.disc(c, 0.95 * r, _RED)
        bar = np.array([[c - 0.68 * r, c - 0.17 * r], [c + 0.68 * r, c - 0.17 * r]])
        bar = np.concatenate([bar, bar[::-1] + [0, 0.34 * r]])
        canvas.polygon(bar, _WHITE)
    elif name == "speed_limit":
        canvas.disc(c, r, _RED, outer=True)
        canvas.disc(c, 0.76 * r, _WHITE)
        canvas.text(text or SPEED_LIMITS[0], c, (0.95 * r, 0.8 * r), _BLACK, cv2.FONT_HERSHEY_DUPLEX, 0.16)
    elif name == "ahead_only":
        canvas.disc(c, r, _WHITE, outer=True)
        canvas.disc(c, 0.94 * r, _BLUE)
        shaft = np.array([[c - 0.13 * r, c + 0.62 * r], [c - 0.13 * r, c - 0.05 * r]])
        shaft = np.concatenate([shaft, shaft[::-1] + [0.26 * r, 0]])
        head = np.array([[c, c - 0.66 * r], [c + 0.42 * r, c - 0.05 * r], [c - 0.42 * r, c - 0.05 * r]])
        canvas.polygon(shaft, _WHITE)
        canvas.polygon(head, _WHITE)
    else:  # guarded by render_signs; kept so a new class cannot silently draw nothing
        raise ValueError(f"unknown sign class {name!r}")
    return canvas.rgba()


@lru_cache(maxsize=64)
def _sprite(name: str, draw_side: int, canvas: int, text: str = "") -> np.ndarray:
    """The template shrunk with area interpolation to the compositing canvas (read-only, cached)."""
    sprite = cv2.resize(_template(name, draw_side, text), (canvas, canvas), interpolation=cv2.INTER_AREA)
    sprite.setflags(write=False)
    return sprite


@lru_cache(maxsize=8)
def _coordinates(side: int) -> np.ndarray:
    """Channels (x, y, 1) with x, y in [0, 1]: ``cv2.transform`` turns them into any affine colour map."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / np.float32(side - 1)
    coords = np.dstack([xs, ys, np.ones_like(xs)])
    coords.setflags(write=False)
    return coords


def _jittered(rng: np.random.Generator, palette: np.ndarray, spread: float = 14.0) -> np.ndarray:
    return palette[rng.integers(len(palette))] + rng.normal(0.0, spread, 3)


def _linear_map(start: np.ndarray, end: np.ndarray, direction: tuple[float, float]) -> np.ndarray:
    """3x3 matrix for ``cv2.transform``: colour ``start`` at (0.5, 0.5) - direction / 2, ``end`` at + direction / 2."""
    dx, dy = direction
    slope = end - start
    matrix = np.empty((3, 3), np.float32)
    matrix[:, 0] = slope * dx
    matrix[:, 1] = slope * dy
    matrix[:, 2] = (start + end) / 2 - slope * (dx + dy) / 2
    return matrix


def _background(rng: np.random.Generator, side: int) -> np.ndarray:
    """A float32 RGB scene (0..255, unclipped) of ``side`` x ``side`` pixels."""
    # Whole-image colour maps go through cv2.transform on cached (x, y, 1) coordinates: one call
    # instead of several numpy broadcasts over (H, W, 3), which dominated the rendering time.
    coords = _coordinates(side)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = _linear_map(
        _jittered(rng, _SCENE_COLOURS, 30.0), _jittered(rng, _SCENE_COLOURS, 30.0), (np.cos(angle), np.sin(angle))
    )
    if rng.random() < 0.4:
        sky = _linear_map(_jittered(rng, _SKY_COLOURS), _jittered(rng, _SKY_COLOURS), (0.0, 1.0))
        ground = np.float32(0.3) * gradient
        ground[:, 2] += 0.7 * _jittered(rng, _GROUND_COLOURS)
        image = cv2.transform(coords, ground)
        horizon = rng.uniform(0.2, 0.7) * side
        tilt = rng.uniform(-0.15, 0.15) * side
        sky_region = np.array([[0, 0], [side, 0], [side, horizon + tilt / 2], [0, horizon - tilt / 2]])
        mask = np.zeros((side, side), np.uint8)
        cv2.fillPoly(mask, [_fixed(sky_region)], 255, shift=_SHIFT)
        cv2.copyTo(cv2.transform(coords, sky), mask, image)
    else:
        image = cv2.transform(coords, gradient)
    for _ in range(int(rng.integers(0, 5))):
        colour = _jittered(rng, _SCENE_COLOURS).tolist()
        x0, y0 = (rng.uniform(-0.2, 1.0, 2) * side).astype(int)
        if rng.random() < 0.5:
            w, h = (rng.uniform(0.1, 0.6, 2) * side).astype(int)
            cv2.rectangle(image, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), colour, thickness=-1)
        else:
            axes = tuple(int(a) for a in rng.uniform(0.08, 0.35, 2) * side)
            cv2.ellipse(image, (int(x0), int(y0)), axes, rng.uniform(0, 180), 0, 360, colour, thickness=-1)
    # Smoothed noise: coarse cells for leaves, clouds and stains; monochrome or coloured.
    cells = int(rng.integers(3, 13))
    if rng.random() < 0.5:
        noise = np.repeat(rng.standard_normal((cells, cells, 1), dtype=np.float32), 3, axis=2)
    else:
        noise = rng.standard_normal((cells, cells, 3), dtype=np.float32)
    # Cubic upsampling is smooth but slow on large float images: it only goes to a quarter size.
    texture = cv2.resize(noise, (max(cells, side // 4),) * 2, interpolation=cv2.INTER_CUBIC)
    texture = cv2.resize(texture, (side, side), interpolation=cv2.INTER_LINEAR)
    return cv2.scaleAdd(texture, rng.uniform(5, 40), image)


def _lighting_table(rng: np.random.Generator) -> np.ndarray:
    """A per-channel 256-entry table (0..255 float32): contrast, brightness, colour cast, then gamma."""
    contrast = rng.uniform(0.6, 1.25)
    brightness = rng.uniform(-0.2, 0.2)
    cast = rng.uniform(0.9, 1.1, 3)
    gamma = math.exp(rng.uniform(math.log(0.65), math.log(1.5)))
    table = np.clip((_LEVELS * contrast + (0.5 - 0.5 * contrast + brightness)) * cast, 0.0, 1.0) ** gamma
    return (255 * table).astype(np.float32).reshape(256, 1, 3)


def _render_one(rng: np.random.Generator, name: str, size: int, draw_side: int) -> np.ndarray:
    # Signs are drawn at ``draw_side`` (>= 4x) and shrunk once to a 2x canvas, where the smooth
    # background is made and the sprite is rotated and scaled; one area resize then gives the
    # output. Area interpolation is linear, so it also antialiases the pasted sign's edges.
    canvas = max(32, 2 * size)
    image = _background(rng, canvas)
    diameter = rng.uniform(0.55, 0.9) * canvas
    # Like a detector's crop, the sign sits near the centre: shifted by at most 12 % of the image,
    # and never by more than leaves 10 % of its radius outside (mostly, not always fully, in view).
    shift = min(0.12 * canvas, canvas / 2 - 0.45 * diameter)
    cx, cy = canvas / 2 + rng.uniform(-shift, shift, 2)
    if rng.random() < 0.5:
        grey = float(rng.uniform(90, 170))
        half_width = max(1, round(rng.uniform(0.03, 0.045) * canvas))
        cv2.rectangle(image, (round(cx) - half_width, round(cy)), (round(cx) + half_width, canvas), (grey,) * 3, -1)
    text = SPEED_LIMITS[int(rng.integers(len(SPEED_LIMITS)))] if name == "speed_limit" else ""
    sprite = _sprite(name, draw_side, canvas, text)
    scale = diameter / (2 * _TEMPLATE_RADIUS * canvas)
    matrix = cv2.getRotationMatrix2D((canvas / 2, canvas / 2), rng.uniform(-15, 15), scale)
    matrix[:, 2] += (cx - canvas / 2, cy - canvas / 2)
    sign = cv2.warpAffine(sprite, matrix, (canvas, canvas), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    # Premultiplied colour: out = background * (1 - alpha) + sign colour.
    keep = cv2.cvtColor(255 - cv2.extractChannel(sign, 3), cv2.COLOR_GRAY2RGB)
    colour = cv2.cvtColor(sign, cv2.COLOR_RGBA2RGB)
    image = cv2.add(cv2.multiply(image, keep, scale=1 / 255, dtype=cv2.CV_32F), colour, dtype=cv2.CV_32F)
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.25:
        small = cv2.GaussianBlur(small, (0, 0), rng.uniform(0.3, 0.8))
    # cv2.add(..., dtype=CV_8U) rounds and saturates, unlike numpy's astype, which truncates and wraps.
    small = cv2.LUT(cv2.add(small, 0.0, dtype=cv2.CV_8U), _lighting_table(rng))
    noise = rng.standard_normal(small.shape, dtype=np.float32)
    return cv2.add(cv2.scaleAdd(noise, rng.uniform(0.0, 0.05) * 255, small), 0.0, dtype=cv2.CV_8U)


def _check_arguments(n: int, size: int, seed: int, classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"invalid n={n!r}: expected an integer >= 1")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 6:
        raise ValueError(f"invalid size={size!r}: expected an integer >= 6")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"invalid seed={seed!r}: expected an integer >= 0")
    if isinstance(classes, str):
        raise ValueError(f"invalid classes={classes!r}: expected a sequence of class names, not one string")
    classes = tuple(classes)
    if not classes:
        raise ValueError(f"invalid classes=(): expected a non-empty subset of {', '.join(SIGN_CLASSES)}")
    unknown = [c for c in classes if c not in SIGN_CLASSES]
    if unknown:
        raise ValueError(
            f"invalid classes: unknown {', '.join(map(repr, unknown))}; allowed: {', '.join(SIGN_CLASSES)}"
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"invalid classes={classes!r}: expected each class at most once")
    return classes


def render_signs(
    n: int, size: int, seed: int, classes: Sequence[str] = SIGN_CLASSES, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n`` traffic-sign images of ``size`` x ``size`` pixels.

    Returns RGB images, uint8 of shape ``(n, size, size, 3)``, and int64 labels indexing
    ``classes``. Each class has ``n // len(classes)`` images, the first ``n % len(classes)``
    classes one more; the order is shuffled with ``seed``. The same arguments give byte-identical
    arrays.
    """
    classes = _check_arguments(n, size, seed, classes)
    n, size, seed = int(n), int(size), int(seed)
    counts = np.full(len(classes), n // len(classes))
    counts[: n % len(classes)] += 1
    labels = np.random.default_rng([seed, 0]).permutation(np.repeat(np.arange(len(classes), dtype=np.int64), counts))
    draw_side = max(64, 4 * size)
    images = np.empty((n, size, size, 3), np.uint8)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for i in tqdm(range(n), desc="render signs", disable=not progress, leave=False):
            images[i] = _render_one(np.random.default_rng([seed, 1, i]), classes[labels[i]], size, draw_side)
    finally:
        cv2.setNumThreads(threads)
    return images, labels
