"""SYNTHETIC cloud scenes: surface reflectance, clouds, haze, shadows and confusers (4 bands).

Spectra (blue, green, red, NIR reflectance) are typical values of USGS/ASTER spectral-library
classes: vegetation (0.04, 0.08, 0.05, 0.35), bare soil, water (NIR ≈ 0.02), bright desert sand
(0.25–0.45 rising to the red), urban (flat 0.15–0.3) — and the confusers a brightness test
mistakes for cloud: snow/ice (≈ 0.9 visible, 0.7 NIR; no SWIR band to tell it from cloud), sun
glint on water (bright, flat, specular patches). Clouds: thick convective cells (fractal
opacity from band-passed noise, reflectance 0.55–0.85, nearly flat spectrum) and thin cirrus /
haze (opacity 0.15–0.5, additive bluish layer). As in 38-Cloud, thin cloud is labelled cloud
where its opacity exceeds ``haze_label_opacity``. Shadows darken the surface (×0.35–0.6)
under the clouds displaced by a random sun-azimuth vector; they are not cloud. Nodata margins
(a slanted swath edge, DN 0 in every band) cover a random corner of some scenes.
Everything is drawn from ``numpy.random.Generator(seed)``: scenes are reproducible.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SURFACES = {  # blue, green, red, nir
    "vegetation": (0.04, 0.08, 0.05, 0.35),
    "soil": (0.10, 0.14, 0.18, 0.26),
    "water": (0.06, 0.05, 0.03, 0.02),
    "desert": (0.27, 0.36, 0.45, 0.48),
    "urban": (0.17, 0.19, 0.21, 0.27),
    "snow": (0.88, 0.87, 0.85, 0.70),
}
CLOUD_SPECTRUM = np.array([1.0, 0.99, 0.97, 0.93], dtype=np.float32)
HAZE_SPECTRUM = np.array([1.0, 0.93, 0.86, 0.78], dtype=np.float32)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], scales=(32, 16, 8, 4), decay: float = 0.55) -> np.ndarray:
    """Sum of Gaussian-filtered white noise at several scales, normalised to zero mean, unit std."""
    field = np.zeros(shape, np.float32)
    for i, s in enumerate(scales):
        layer = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), s * min(shape) / 512, mode="wrap")
        field += decay**i * layer / (layer.std() + 1e-8)
    return (field - field.mean()) / (field.std() + 1e-8)


def surface(rng: np.random.Generator, shape: tuple[int, int], confusers: float) -> np.ndarray:
    """4×H×W surface reflectance: a land-cover map from thresholded noise, textured."""
    cover = fractal_noise(rng, shape, scales=(48, 24, 12))
    classes = ["water", "vegetation", "soil", "urban"]
    if rng.random() < confusers:
        classes.append(rng.choice(["desert", "snow", "desert", "urban"]))
    cuts = np.quantile(cover, np.linspace(0, 1, len(classes) + 1)[1:-1])
    label = np.digitize(cover, cuts)
    spectra = np.array([SURFACES[c] for c in classes], np.float32)
    refl = spectra[label].transpose(2, 0, 1)
    refl = refl * (1 + 0.12 * fractal_noise(rng, shape, scales=(6, 3, 1)))[None]
    water = label == classes.index("water")
    if rng.random() < confusers * 0.6:  # sun glint: bright specular patches on water
        glint = np.clip(fractal_noise(rng, shape, scales=(8, 4)) - 0.8, 0, None) * water
        refl += 0.45 * np.clip(glint, 0, 1)[None] * np.array([1.0, 0.95, 0.9, 0.8], np.float32)[:, None, None]
    return np.clip(refl, 0.005, 1.2)


def clouds(rng: np.random.Generator, shape: tuple[int, int], cover: float) -> tuple[np.ndarray, np.ndarray]:
    """(thick opacity, haze opacity), each H×W in [0, 1]; ``cover`` ≈ fraction with thick cloud."""
    thick = np.zeros(shape, np.float32)
    if cover > 0:
        field = fractal_noise(rng, shape, scales=(40, 20, 10, 5, 2))
        cut = np.quantile(field, 1 - cover)
        thick = np.clip((field - cut) / 0.6, 0, 1)
    haze = np.zeros(shape, np.float32)
    if rng.random() < 0.5:
        field = fractal_noise(rng, shape, scales=(64, 32))
        haze = np.clip((field - np.quantile(field, rng.uniform(0.5, 0.85))) * 0.5, 0, rng.uniform(0.15, 0.5))
    return thick, haze


def render_scene(rng: np.random.Generator, shape: tuple[int, int], confusers: float = 0.7,
                 haze_label_opacity: float = 0.2, nodata_probability: float = 0.3) -> dict:
    """{"reflectance": 4×H×W float32 (blue, green, red, nir), "mask": H×W uint8 cloud 0/1,
    "nodata": H×W bool}."""
    h, w = shape
    refl = surface(rng, shape, confusers)
    cover = float(rng.choice([0.0, rng.uniform(0.05, 0.25), rng.uniform(0.25, 0.6)], p=[0.15, 0.45, 0.4]))
    thick, haze = clouds(rng, shape, cover)
    if thick.any():  # shadows: the thick-cloud opacity displaced along the anti-solar direction
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.06) * min(shape)
        shadow = ndimage.shift(thick, (dist * np.sin(angle), dist * np.cos(angle)), order=1, mode="constant")
        refl = refl * (1 - rng.uniform(0.4, 0.65) * np.clip(shadow, 0, 1))[None]
    brightness = rng.uniform(0.55, 0.85)
    refl = refl * (1 - haze)[None] + haze[None] * 0.45 * HAZE_SPECTRUM[:, None, None]
    refl = refl * (1 - thick)[None] + thick[None] * brightness * CLOUD_SPECTRUM[:, None, None]
    refl = refl + rng.normal(0, 0.004, refl.shape).astype(np.float32)
    mask = ((thick > 0.25) | (haze > haze_label_opacity)).astype(np.uint8)
    nodata = np.zeros(shape, bool)
    if rng.random() < nodata_probability:  # slanted swath edge in one corner
        yy, xx = np.mgrid[0:h, 0:w]
        corner = rng.integers(4)
        u = (yy if corner < 2 else h - 1 - yy) / h + (xx if corner % 2 == 0 else w - 1 - xx) / w
        nodata = u < rng.uniform(0.15, 0.5)
    return {"reflectance": np.clip(refl, 0.0, 1.5).astype(np.float32), "mask": np.where(nodata, 0, mask).astype(np.uint8),
            "nodata": nodata}
