"""Geometry of a SYNTHETIC crop field seen from a UAV: curved, gappy plantation rows, the crop
plants along them, weeds between them.

Frame. The image centre is the origin; rows run along direction θ. A pixel (x, y) has along-row
coordinate u = x cos θ + y sin θ and across-row coordinate v = -x sin θ + y cos θ. Row k is the
curve v = c_k + a sin(2π u / λ + φ): all rows share one gentle bend (a planter following the
terrain), and the offsets c_k grow by a spacing that varies row to row (±10 %) around the field's
spacing s. A ground-sampling factor g scales spacing, plant sizes and gaps (flight height).

Plants. Along each row, seedlings every p px (jittered); each is missing with a field-wide
probability (failed germination) and whole stretches of 2–5 plants are missing (planter gaps).
A plant sits on its row within N(0, 0.3 px) across and has radius r = g (1 + 2 G) (0.7–1.3),
G ∈ [0, 1] being the field's growth stage, and 3–5 leaf lobes.

Targets. ``plants``: pixels of crop plants (weeds are background). ``rows``: pixels within
``row_half_width`` of a row curve, across gaps too — a row is inferable from the plants that line
it but is not the plant mask (thin, continuous, drawn where plants are missing). ``centres``: a
Gaussian heat-map (σ = max(1, r/2)) peaked at every plant centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Plant:
    x: float
    y: float
    radius: float
    lobes: int
    phase: float
    row: int = -1  # -1 for a weed


@dataclass
class Field:
    height: int
    width: int
    angle: float
    scale: float
    growth: float
    bend_amplitude: float
    bend_wavelength: float
    bend_phase: float
    offsets: np.ndarray  # c_k of every row
    row_half_width: float
    plants: list[Plant] = field(default_factory=list)
    weeds: list[Plant] = field(default_factory=list)

    def coords(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) of image points (x right, y down, in pixels from the top-left corner)."""
        x0, y0 = x - (self.width - 1) / 2, y - (self.height - 1) / 2
        c, s = np.cos(self.angle), np.sin(self.angle)
        return x0 * c + y0 * s, -x0 * s + y0 * c

    def point(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image (x, y) of field coordinates (u, v)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        return u * c - v * s + (self.width - 1) / 2, u * s + v * c + (self.height - 1) / 2

    def bend(self, u: np.ndarray) -> np.ndarray:
        return self.bend_amplitude * np.sin(2 * np.pi * u / self.bend_wavelength + self.bend_phase)

    def row_distance(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Across-row distance of points to the nearest row curve, and that row's index."""
        u, v = self.coords(x, y)
        rel = v[..., None] - self.bend(u)[..., None] - self.offsets
        k = np.abs(rel).argmin(-1)
        return np.take_along_axis(np.abs(rel), k[..., None], -1)[..., 0], k


def random_field(rng: np.random.Generator, height: int, width: int, row_half_width: float = 0.75) -> Field:
    """Draw a field: rows, gappy plants along them, weeds between them."""
    scale = rng.uniform(0.8, 1.25) * min(height, width) / 64
    spacing = rng.uniform(7.0, 11.0) * scale
    diag = float(np.hypot(height, width))
    start = -diag / 2 - spacing + rng.uniform(0, spacing)
    steps = spacing * rng.uniform(0.9, 1.1, size=int(diag / spacing) + 4)
    offsets = start + np.concatenate([[0.0], np.cumsum(steps)[:-1]])
    f = Field(height, width, angle=rng.uniform(0, np.pi), scale=scale, growth=rng.uniform(0, 1),
              bend_amplitude=rng.uniform(0, 3) * scale, bend_wavelength=rng.uniform(1.5, 3.0) * diag,
              bend_phase=rng.uniform(0, 2 * np.pi), offsets=offsets, row_half_width=row_half_width)
    pitch = rng.uniform(3.5, 6.0) * scale
    p_missing = rng.uniform(0.05, 0.25)
    margin = 4 * scale
    for k, c in enumerate(offsets):
        u = np.arange(-diag / 2 - margin, diag / 2 + margin, pitch) + rng.uniform(0, pitch)
        u = u + rng.normal(0, 0.1 * pitch, u.shape)
        keep = rng.random(u.shape) >= p_missing
        for _ in range(rng.poisson(1.0)):  # planter gaps of 2-5 plants
            first = rng.integers(0, len(u))
            keep[first:first + rng.integers(2, 6)] = False
        for uu in u[keep]:
            v = c + f.bend(uu) + rng.normal(0, 0.3)
            x, y = f.point(uu, v)
            if -margin <= x <= width + margin and -margin <= y <= height + margin:
                r = scale * (1 + 2 * f.growth) * rng.uniform(0.7, 1.3)
                f.plants.append(Plant(float(x), float(y), float(r), int(rng.integers(3, 6)), rng.uniform(0, 2 * np.pi), k))
    n_weeds = rng.poisson(rng.uniform(0.5, 5.0) * height * width / 1000)
    xs, ys = rng.uniform(0, width, n_weeds), rng.uniform(0, height, n_weeds)
    dist, _ = f.row_distance(xs, ys)
    for x, y, d in zip(xs, ys, dist):
        r = scale * rng.uniform(0.6, 1.8)
        if d > 0.5 * r + 0.25 * spacing:  # between rows, clear of the crop line
            f.weeds.append(Plant(float(x), float(y), float(r), int(rng.integers(2, 7)), rng.uniform(0, 2 * np.pi)))
    return f


def plant_masks(f: Field, plants: list[Plant]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask of the given plants (lobed discs) and their Gaussian centre heat-map."""
    mask = np.zeros((f.height, f.width), bool)
    heat = np.zeros((f.height, f.width), np.float32)
    for p in plants:
        reach = int(np.ceil(max(1.3 * p.radius, 3 * max(1.0, p.radius / 2)))) + 1
        x0, x1 = max(int(p.x) - reach, 0), min(int(p.x) + reach + 1, f.width)
        y0, y1 = max(int(p.y) - reach, 0), min(int(p.y) + reach + 1, f.height)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dx, dy = xx - p.x, yy - p.y
        d = np.hypot(dx, dy)
        outline = p.radius * (1 + 0.25 * np.cos(p.lobes * np.arctan2(dy, dx) + p.phase))
        mask[y0:y1, x0:x1] |= d <= np.maximum(outline, 0.5)
        sigma = max(1.0, p.radius / 2)
        np.maximum(heat[y0:y1, x0:x1], np.exp(-(d**2) / (2 * sigma**2)), out=heat[y0:y1, x0:x1])
    return mask, heat


def row_mask(f: Field) -> np.ndarray:
    """Pixels within ``row_half_width`` (across-row distance) of a row curve."""
    yy, xx = np.mgrid[0:f.height, 0:f.width].astype(np.float64)
    dist, _ = f.row_distance(xx, yy)
    return dist <= f.row_half_width
