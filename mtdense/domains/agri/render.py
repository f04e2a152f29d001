"""Appearance of a SYNTHETIC UAV crop-field image (RGB, optionally + NIR), from a ``Field``.

Soil: a brown whose hue and brightness vary by field, multi-octave value-noise texture, darker
wet patches (lower NIR too) and a faint tillage ripple across the rows. Vegetation: crop and weeds
in similar greens (weeds drawn from a wider hue range, so colour alone does not separate them),
brighter towards each plant centre; NIR reflectance high for vegetation (red edge), low for
soil. Shadows: every plant casts its mask shifted away from the sun, and a cloud shadow may
darken a smooth region. Illumination: field gain 0.7–1.3, a linear gradient, sensor noise.
All values are reflectance-like in [0, 1], written as 8-bit.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mtdense.domains.agri.field import Field, plant_masks, row_mask


def value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth noise in [-1, 1] with feature size ``cell`` px (bilinear zoom of a coarse grid)."""
    gh, gw = int(np.ceil(height / cell)) + 2, int(np.ceil(width / cell)) + 2
    grid = rng.uniform(-1, 1, (gh, gw))
    return ndimage.zoom(grid, (cell, cell), order=1)[:height, :width]


def render_field(f: Field, rng: np.random.Generator, nir: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(image H×W×C uint8 with C = 3 or 4, targets {plants, rows, centres})."""
    h, w = f.height, f.width
    crop, heat = plant_masks(f, f.plants)
    weeds, _ = plant_masks(f, f.weeds)
    weeds &= ~crop
    texture = sum(value_noise(rng, h, w, c) / (i + 1) for i, c in enumerate((16 * f.scale, 5 * f.scale, 2.0)))
    wet = np.clip(value_noise(rng, h, w, 24 * f.scale) * 2 - rng.uniform(0, 1.5), 0, 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = f.coords(xx, yy)
    ripple = 0.03 * np.cos(2 * np.pi * (v - f.bend(u) - f.offsets[0]) / np.diff(f.offsets).mean())

    soil_rgb = np.array([0.50, 0.37, 0.25]) * rng.uniform(0.75, 1.2) + rng.normal(0, 0.03, 3)
    soil = soil_rgb * (1 + 0.12 * texture + ripple)[..., None] * (1 - 0.35 * wet)[..., None]
    soil_nir = (0.28 * (1 + 0.1 * texture) * (1 - 0.3 * wet))[..., None]

    crop_rgb = np.array([0.20, 0.48, 0.13]) * rng.uniform(0.8, 1.2)
    weed_rgb = crop_rgb + rng.normal(0, 0.06, 3)
    centre_glow = 0.85 + 0.3 * heat[..., None]
    image = np.concatenate([soil, soil_nir], -1)
    veg_noise = 1 + 0.1 * value_noise(rng, h, w, 1.5)[..., None]
    image = np.where(crop[..., None], np.append(crop_rgb, 0.62) * centre_glow * veg_noise, image)
    image = np.where(weeds[..., None], np.append(weed_rgb, 0.58) * veg_noise, image)

    sun = rng.uniform(0, 2 * np.pi)
    reach = 1.5 * f.scale * (0.5 + f.growth)
    shadow = ndimage.shift((crop | weeds).astype(float), (reach * np.sin(sun), reach * np.cos(sun)), order=0) > 0
    shade = np.where(shadow & ~(crop | weeds), 0.6, 1.0)
    if rng.random() < 0.4:  # cloud shadow
        shade = shade * (1 - 0.35 * np.clip(value_noise(rng, h, w, 40 * f.scale) * 2, 0, 1))
    gain = rng.uniform(0.7, 1.3) * (1 + rng.uniform(-0.15, 0.15) * (xx / w - 0.5) + rng.uniform(-0.15, 0.15) * (yy / h - 0.5))
    image = image * (shade * gain)[..., None] + rng.normal(0, 0.015, image.shape)
    image = np.clip(image if nir else image[..., :3], 0, 1)
    targets = {"plants": crop.astype(np.uint8), "rows": row_mask(f).astype(np.uint8), "centres": heat}
    return np.round(image * 255).astype(np.uint8), targets
