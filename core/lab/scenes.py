"""Procedural landscapes: the training source of the bundled prior and the held-out set of its evaluation.

Every scene is drawn back to front (sky, sun or moon, clouds, mountain ranges, hills, forest, ground, lake
reflection, rocks) from one `numpy.random.Generator`, so a seed names an image exactly. Shapes come from
fractal value noise (sums of upsampled random grids, several octaves), which gives the painted-scenery texture
at several scales. A per-pixel label map records which element is on top, so the concept words of a scene, or
of any crop of it, list only what can actually be seen.

`strokes()` turns a scene into a stroke painting as SDEdit simulates one (Meng et al. 2022, section 5.1):
median smoothing, then colour quantisation to a handful of flat colours, then a mode filter that rounds the
colour regions into blobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

MOODS = ("day", "sunset", "night", "fog")
ELEMENTS = ("sun", "moon", "clouds", "mountains", "snow", "hills", "forest", "field", "lake", "rocks")
VOCABULARY: tuple[str, ...] = MOODS + ELEMENTS
_LABEL = {name: i + 1 for i, name in enumerate(ELEMENTS)}  # 0 = sky or bare ground
# Smallest visible share of the image for an element to count as shown (sun and moon are small discs).
_MIN_SHARE = {"sun": 0.003, "moon": 0.003, "snow": 0.01, "rocks": 0.015}
_DEFAULT_SHARE = 0.03

# Sky colours per mood: (zenith, horizon), RGB in [0, 1].
_SKIES = {
    "day": [((0.20, 0.42, 0.78), (0.70, 0.84, 0.95)), ((0.30, 0.55, 0.85), (0.82, 0.88, 0.92))],
    "sunset": [((0.25, 0.20, 0.45), (0.98, 0.60, 0.30)), ((0.35, 0.25, 0.55), (0.95, 0.45, 0.35))],
    "night": [((0.01, 0.02, 0.07), (0.08, 0.12, 0.25)), ((0.02, 0.02, 0.05), (0.12, 0.12, 0.22))],
    "fog": [((0.62, 0.66, 0.70), (0.84, 0.85, 0.86)), ((0.70, 0.70, 0.68), (0.88, 0.87, 0.84))],
}
# Light falling on the land per mood: multiplier and tint.
_LIGHT = {
    "day": np.array([1.0, 1.0, 1.0]),
    "sunset": np.array([1.0, 0.72, 0.55]),
    "night": np.array([0.16, 0.19, 0.32]),
    "fog": np.array([0.85, 0.87, 0.9]),
}


@dataclass
class Scene:
    """One rendered landscape: `image` (H, W, 3) uint8, `concepts` its visible concept words."""

    image: np.ndarray
    concepts: list[str]
    labels: np.ndarray  # (H, W) uint8, which element is on top (0 = none); lets crops be relabelled
    mood: str

    def crop(self, y: int, x: int, h: int, w: int) -> Scene:
        """The (y, x, h, w) window of the scene with the concept words of what remains visible in it."""
        labels = self.labels[y : y + h, x : x + w]
        return Scene(self.image[y : y + h, x : x + w].copy(), _concepts(labels, self.mood), labels, self.mood)


def render(rng: np.random.Generator, height: int = 64, width: int | None = None) -> Scene:
    """Draw one random landscape of the given size; all sizes are relative, so any resolution works."""
    width = height if width is None else width
    c = _Canvas(rng, height, width)
    mood = str(rng.choice(MOODS, p=[0.4, 0.25, 0.2, 0.15]))
    horizon = int(height * rng.uniform(0.45, 0.72))
    c.sky(mood, horizon)
    if mood == "night":
        c.stars(horizon)
    if mood in ("day", "sunset") and rng.random() < (0.5 if mood == "day" else 0.75):
        c.sun(mood, horizon)
    elif mood == "night" and rng.random() < 0.7:
        c.moon(horizon)
    if rng.random() < (0.6 if mood != "fog" else 0.3):
        c.clouds(mood, horizon)
    if rng.random() < 0.6:
        for depth in range(int(rng.integers(1, 4)) - 1, -1, -1):
            c.mountains(mood, horizon, depth, snowy=rng.random() < 0.5)
    if rng.random() < 0.4:
        c.hills(horizon)
    if rng.random() < 0.5:
        c.forest(horizon)
    lake = rng.random() < 0.45
    c.ground(horizon, lake)
    if lake:
        c.lake(mood, horizon)
    if rng.random() < 0.35:
        c.rocks(horizon)
    c.light(mood, horizon)
    return Scene(c.to_uint8(), _concepts(c.labels, mood), c.labels, mood)


def scenes(seed: int, count: int, height: int = 64, width: int | None = None) -> list[Scene]:
    """`count` scenes from one seed; scene i depends only on (seed, i), so sets can be extended."""
    return [render(np.random.default_rng([seed, i]), height, width) for i in range(count)]


def strokes(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulated stroke painting of `image` (SDEdit section 5.1): median blur, colour quantisation, mode filter."""
    h, w = image.shape[:2]
    unit = max(h, w) / 64.0
    pil = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    pil = pil.filter(ImageFilter.MedianFilter(_odd(3 * unit * rng.uniform(0.8, 1.3))))
    colours = int(rng.integers(5, 10))
    pil = pil.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    # The mode filter works on palette indices, so region borders become round blobs and no new colour appears.
    pil = pil.filter(ImageFilter.ModeFilter(_odd(2 * unit * rng.uniform(0.8, 1.3))))
    return np.asarray(pil.convert("RGB"))


def _odd(size: float) -> int:
    return max(3, int(size) // 2 * 2 + 1)


def _concepts(labels: np.ndarray, mood: str) -> list[str]:
    counts = np.bincount(labels.ravel(), minlength=len(ELEMENTS) + 1) / labels.size
    shown = [e for e in ELEMENTS if counts[_LABEL[e]] >= _MIN_SHARE.get(e, _DEFAULT_SHARE)]
    return [mood, *shown]


def noise(rng: np.random.Generator, height: int, width: int, cells: float, octaves: int = 4) -> np.ndarray:
    """Fractal value noise (fBm) in about [-1, 1]: random grids upsampled bicubically, halving amplitude per octave."""
    total = np.zeros((height, width), np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave
        gh, gw = (
            max(2, round(n * height / max(height, width)) + 2),
            max(2, round(n * width / max(height, width)) + 2),
        )
        grid = Image.fromarray(rng.uniform(-1, 1, (gh, gw)).astype(np.float32), mode="F")
        total += amplitude * np.asarray(grid.resize((width, height), Image.Resampling.BICUBIC))
        norm += amplitude
        amplitude *= 0.5
    return total / norm


def _line(rng: np.random.Generator, width: int, cells: float, octaves: int = 5) -> np.ndarray:
    """1-D fractal noise along x, in about [-1, 1], for ridge lines and shores."""
    return noise(rng, 1, width, cells, octaves)[0]


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


class _Canvas:
    """An RGB float image, its label map, and the drawing steps of `render`, each scaled to the image size."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        self.rng, self.h, self.w = rng, height, width
        self.rgb = np.zeros((height, width, 3), np.float32)
        self.labels = np.zeros((height, width), np.uint8)
        self.land = np.zeros((height, width), np.float32)  # 1 where mood light applies (not sky, not lights)
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32)

    def paint(self, alpha: np.ndarray, colour: np.ndarray, label: str | None, land: bool = True) -> None:
        """Alpha-blend `colour` (RGB or (H, W, 3)) where `alpha` > 0; label pixels it mostly covers."""
        a = alpha[..., None]
        self.rgb = self.rgb * (1 - a) + np.asarray(colour, np.float32) * a
        self.land = self.land * (1 - alpha) + float(land) * alpha
        self.labels[alpha > 0.5] = _LABEL[label] if label else 0

    def tint(self, base: tuple[float, float, float], spread: float) -> np.ndarray:
        """A colour near `base`, jittered so no two scenes share exact colours."""
        return np.clip(np.array(base) + self.rng.uniform(-spread, spread, 3), 0, 1).astype(np.float32)

    def texture(self, cells: float, amount: float) -> np.ndarray:
        """Multiplicative brush texture: noise at `cells` and finer, around 1."""
        return (1 + amount * noise(self.rng, self.h, self.w, cells, 3))[..., None]

    def sky(self, mood: str, horizon: int) -> None:
        zenith, near = _SKIES[mood][int(self.rng.integers(len(_SKIES[mood])))]
        top, low = self.tint(zenith, 0.05), self.tint(near, 0.05)
        t = np.clip(self.yy / max(horizon, 1), 0, 1.2)[..., None] ** self.rng.uniform(0.8, 1.6)
        self.rgb = top * (1 - t) + low * t
        self.rgb = self.rgb * self.texture(3, 0.04)

    def stars(self, horizon: int) -> None:
        count = int(self.h * self.w * self.rng.uniform(0.002, 0.006))
        ys = self.rng.integers(0, max(horizon, 1), count)
        xs = self.rng.integers(0, self.w, count)
        self.rgb[ys, xs] = np.maximum(self.rgb[ys, xs], self.rng.uniform(0.5, 1.0, (count, 1)))

    def _disc(self, horizon: int, radius: float, low: bool) -> tuple[float, float, np.ndarray]:
        r = radius * min(self.h, self.w)
        cy = horizon * (self.rng.uniform(0.55, 0.85) if low else self.rng.uniform(0.15, 0.5))
        cx = self.rng.uniform(0.15, 0.85) * self.w
        d = np.hypot(self.yy - cy, self.xx - cx) / r
        return cy, cx, d

    def sun(self, mood: str, horizon: int) -> None:
        sunset = mood == "sunset"
        _, _, d = self._disc(
            horizon, self.rng.uniform(0.06, 0.1) if sunset else self.rng.uniform(0.04, 0.07), sunset
        )
        colour = self.tint((1.0, 0.55, 0.25) if sunset else (1.0, 0.97, 0.85), 0.04)
        glow = np.exp(-np.maximum(d - 1, 0) * 0.6)[..., None] * (0.5 if sunset else 0.35)
        self.rgb = self.rgb + glow * (colour - self.rgb).clip(0)
        self.paint(_smoothstep(-d, -1.05, -0.9), colour, "sun", land=False)

    def moon(self, horizon: int) -> None:
        cy, cx, d = self._disc(horizon, self.rng.uniform(0.04, 0.07), False)
        shade = 0.85 + 0.15 * noise(self.rng, self.h, self.w, 12, 2)[..., None]
        colour = self.tint((0.92, 0.92, 0.85), 0.03) * shade
        glow = np.exp(-np.maximum(d - 1, 0) * 0.8)[..., None] * 0.18
        self.rgb = self.rgb + glow * (0.8 - self.rgb).clip(0)
        self.paint(_smoothstep(-d, -1.05, -0.9), colour, "moon", land=False)

    def clouds(self, mood: str, horizon: int) -> None:
        stretch = noise(self.rng, self.h, self.w, self.rng.uniform(2, 4), 5)
        # Clouds thin out towards the horizon; the threshold sets cover (few puffs .. overcast).
        band = _smoothstep(-self.yy, -horizon * 0.95, -horizon * 0.25)
        density = _smoothstep(stretch + 0.35 * band, self.rng.uniform(0.3, 0.55), 0.75) * band
        lit = {
            "day": (0.97, 0.97, 0.98),
            "sunset": (0.98, 0.62, 0.55),
            "night": (0.22, 0.24, 0.32),
            "fog": (0.8, 0.8, 0.8),
        }
        dark = {
            "day": (0.7, 0.73, 0.8),
            "sunset": (0.45, 0.3, 0.45),
            "night": (0.08, 0.09, 0.14),
            "fog": (0.7, 0.7, 0.7),
        }
        shade = np.clip(density * 1.5, 0, 1)[..., None]
        colour = self.tint(dark[mood], 0.04) * shade + self.tint(lit[mood], 0.03) * (1 - shade)
        self.paint(np.clip(density * 1.4, 0, 1), colour * self.texture(8, 0.05), "clouds", land=False)

    def mountains(self, mood: str, horizon: int, depth: int, snowy: bool) -> None:
        height = self.h * self.rng.uniform(0.18, 0.4) / (1 + 0.35 * depth)
        ridge = horizon - height * self._peaks()
        inside = _smoothstep(self.yy - ridge[None, :], -0.6, 0.6) * (self.yy <= horizon + 1)
        rock = self.tint((0.38, 0.36, 0.38) if self.rng.random() < 0.6 else (0.42, 0.33, 0.27), 0.06)
        # Faces: vertically stretched noise reads as gullies and lit/unlit slopes.
        faces = noise(self.rng, self.h, self.w, self.rng.uniform(6, 12), 4)
        slope = np.gradient(ridge)[None, :] * self.rng.choice([-1.0, 1.0])
        light = np.clip(1 + 0.35 * faces + 0.25 * np.tanh(slope * 4), 0.3, 1.6)[..., None]
        colour = rock * light
        # Aerial perspective: far ranges fade towards the horizon sky.
        haze = np.clip(0.25 * depth + (0.15 if mood == "fog" else 0.0), 0, 0.7)
        colour = colour * (1 - haze) + self.rgb[max(horizon - 1, 0), self.w // 2] * haze
        self.paint(inside, colour, "mountains")
        if snowy:
            self._snow(ridge, horizon, height, faces, inside, haze)

    def _peaks(self) -> np.ndarray:
        """A mountain silhouette in [0, 1] along x: the upper envelope of a few sloped peaks, plus fractal detail."""
        x = np.linspace(0, 1, self.w, dtype=np.float32)
        count = int(self.rng.integers(2, 6))
        tops = self.rng.uniform(0.5, 1.0, count)[:, None]
        centres = self.rng.uniform(-0.1, 1.1, count)[:, None]
        slopes = self.rng.uniform(1.2, 3.5, count)[:, None]
        envelope = np.max(tops - slopes * np.abs(x[None, :] - centres), axis=0)
        detail = _line(self.rng, self.w, self.rng.uniform(4, 8), 5)
        return np.clip(envelope + 0.12 * detail, 0.08, 1.0)

    def _snow(
        self,
        ridge: np.ndarray,
        horizon: int,
        height: float,
        faces: np.ndarray,
        inside: np.ndarray,
        haze: float,
    ) -> None:
        line = horizon - height * self.rng.uniform(0.45, 0.75)
        depth_below_ridge = self.yy - ridge[None, :]
        cap = (self.yy < line + 0.12 * height * faces) & (depth_below_ridge < height * 0.5)
        alpha = cap.astype(np.float32) * inside
        white = self.tint((0.93, 0.94, 0.98), 0.03) * np.clip(1 + 0.2 * faces, 0.7, 1.2)[..., None]
        self.paint(alpha, white * (1 - haze) + self.rgb * haze, "snow")

    def hills(self, horizon: int) -> None:
        height = self.h * self.rng.uniform(0.06, 0.16)
        ridge = horizon - height * (0.5 + 0.5 * _line(self.rng, self.w, self.rng.uniform(1, 2.5), 3))
        inside = _smoothstep(self.yy - ridge[None, :], -0.6, 0.6) * (self.yy <= horizon + 1)
        green = self.tint((0.3, 0.5, 0.22), 0.07)
        self.paint(inside, green * self.texture(6, 0.2), "hills")

    def forest(self, horizon: int) -> None:
        x0, x1 = sorted(self.rng.uniform(0, 1, 2) * self.w)
        if x1 - x0 < 0.35 * self.w:
            x0, x1 = max(0.0, x0 - 0.25 * self.w), min(float(self.w), x1 + 0.25 * self.w)
        base = horizon + 1
        tall = self.h * self.rng.uniform(0.08, 0.16)
        green = self.tint((0.13, 0.3, 0.15), 0.05)
        count = max(3, int((x1 - x0) / max(tall * 0.25, 1)))
        for cx in np.sort(self.rng.uniform(x0, x1, count)):
            self._tree(
                cx, base + self.rng.uniform(-0.1, 0.3) * tall, tall * self.rng.uniform(0.6, 1.2), green
            )

    def _tree(self, cx: float, base: float, tall: float, green: np.ndarray) -> None:
        """A conifer: a triangle whose edges are roughened by noise, painted only inside its bounding box."""
        top, half = base - tall, tall * 0.28
        y0, y1 = max(int(top) - 1, 0), min(int(base) + 2, self.h)
        x0, x1 = max(int(cx - half) - 1, 0), min(int(cx + half) + 2, self.w)
        if y1 <= y0 or x1 <= x0:
            return
        yy, xx = self.yy[y0:y1, x0:x1], self.xx[y0:y1, x0:x1]
        frac = np.clip((yy - top) / tall, 0, 1)
        edge = half * frac * (0.85 + 0.3 * self.rng.random(yy.shape))
        alpha = _smoothstep(edge - np.abs(xx - cx), -0.5, 0.5) * (yy <= base)
        shade = self.rng.uniform(0.75, 1.2) * (0.8 + 0.4 * (xx < cx))[..., None]
        region = self.rgb[y0:y1, x0:x1]
        a = alpha[..., None]
        self.rgb[y0:y1, x0:x1] = region * (1 - a) + green * shade * a
        self.land[y0:y1, x0:x1] = self.land[y0:y1, x0:x1] * (1 - alpha) + alpha
        self.labels[y0:y1, x0:x1][alpha > 0.5] = _LABEL["forest"]

    def ground(self, horizon: int, lake: bool) -> None:
        below = _smoothstep(self.yy, horizon - 0.5, horizon + 0.5)
        kind = self.rng.random()
        colour = self.tint((0.34, 0.55, 0.2) if kind < 0.6 else (0.7, 0.6, 0.3), 0.07)
        # Field texture: rows that get finer towards the horizon, plus patches at coarse and fine scales.
        dist = np.clip((self.yy - horizon) / max(self.h - horizon, 1), 0.02, 1)
        rows = 1 + 0.08 * np.sin(self.rng.uniform(8, 20) * np.log(dist) * 3)[..., None]
        patches = self.texture(3, 0.18) * self.texture(12, 0.12)
        self.paint(below, colour * rows * patches * (0.8 + 0.25 * dist)[..., None], "field")

    def lake(self, mood: str, horizon: int) -> None:
        depth = self.h - horizon
        near = horizon + depth * (self.rng.uniform(0.5, 1.1) + 0.15 * _line(self.rng, self.w, 2, 3))
        water = _smoothstep(near[None, :] - self.yy, -0.6, 0.6) * (self.yy > horizon)
        # Mirror about the horizon: row horizon + d shows row horizon - d, shifted by horizontal ripples.
        mirror = np.clip(2 * horizon - self.yy, 0, self.h - 1).astype(int)
        ripple = noise(self.rng, self.h, self.w, self.rng.uniform(2, 5), 3) * self.w * 0.015
        xs = np.clip(
            self.xx + ripple * (self.yy - horizon).clip(0) / max(depth, 1) * 3, 0, self.w - 1
        ).astype(int)
        reflection = self.rgb[mirror, xs]
        base = self.tint((0.12, 0.25, 0.35) if mood != "sunset" else (0.25, 0.2, 0.3), 0.04)
        mix = self.rng.uniform(0.55, 0.8)
        streaks = (
            1 + 0.08 * noise(self.rng, self.h, self.w, 1, 3)[..., None] * np.sin(self.yy * 2.5)[..., None]
        )
        self.paint(water, (reflection * mix + base * (1 - mix)) * streaks, "lake", land=False)

    def rocks(self, horizon: int) -> None:
        for _ in range(int(self.rng.integers(1, 4))):
            cy = self.rng.uniform(horizon + 0.45 * (self.h - horizon), self.h * 1.02)
            cx = self.rng.uniform(0.05, 0.95) * self.w
            ry = (self.h - horizon) * self.rng.uniform(0.1, 0.25)
            rx = ry * self.rng.uniform(1.2, 2.2)
            angle = np.arctan2(self.yy - cy, self.xx - cx)
            r = np.hypot((self.yy - cy) / ry, (self.xx - cx) / rx)
            edge = 1 + 0.15 * np.sin(angle * self.rng.integers(3, 7) + self.rng.uniform(0, 6))
            alpha = _smoothstep(edge - r, -0.05, 0.05) * (self.yy < cy + 0.35 * ry)
            grey = self.tint((0.5, 0.48, 0.46), 0.06)
            light = np.clip(1.15 - 0.5 * ((self.yy - cy) / ry + 0.6 * (self.xx - cx) / rx), 0.45, 1.4)
            self.paint(alpha, grey * light[..., None] * self.texture(10, 0.15), "rocks")

    def light(self, mood: str, horizon: int) -> None:
        land = self.land[..., None]
        self.rgb = self.rgb * (1 - land) + self.rgb * _LIGHT[mood] * land
        if mood == "fog":
            fog = self.rgb[0, self.w // 2] * 0.3 + np.float32(0.75) * 0.7
            distance = np.clip(1 - np.abs(self.yy - horizon) / (0.6 * self.h), 0, 1) * self.rng.uniform(
                0.5, 0.8
            )
            veil = distance * (1 + 0.2 * noise(self.rng, self.h, self.w, 3, 3))
            self.rgb = self.rgb * (1 - veil[..., None]) + fog * veil[..., None]
        self.rgb = self.rgb * self.texture(20, 0.03)

    def to_uint8(self) -> np.ndarray:
        return (np.clip(self.rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


# Held-out seeds of the shipped sample guides (resources/samples), chosen for variety: name -> scene index.
SAMPLE_GUIDES = {"guide_sunset": 0, "guide_lake": 1, "guide_mountains": 4, "guide_night": 7, "guide_snow": 10}
SAMPLE_SEED = 424242


def write_sample_guides(folder: Path, size: int = 256) -> list[Path]:
    """Write the sample stroke guides (and the scenes they came from) plus `mask_sky.png`, a soft ellipse over
    the upper sky (white = may change), to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, index in SAMPLE_GUIDES.items():
        scene = render(np.random.default_rng([SAMPLE_SEED, index, 1]), size)
        guide = strokes(scene.image, np.random.default_rng([SAMPLE_SEED, index, 2]))
        for suffix, image in (("", guide), ("_scene", scene.image)):
            path = folder / f"{name}{suffix}.png"
            Image.fromarray(image).save(path)
            written.append(path)
    yy, xx = np.mgrid[0:size, 0:size] / size
    ellipse = ((yy - 0.22) / 0.18) ** 2 + ((xx - 0.5) / 0.38) ** 2
    mask = (np.clip((1.15 - ellipse) / 0.3, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(mask, mode="L").save(folder / "mask_sky.png")
    return [*written, folder / "mask_sky.png"]
