"""SYNTHETIC infrared-precipitation scenes written as real-format files (P-Tree NetCDF + IMERG V07 HDF5).

Nothing here is real data: files carry a ``synthetic`` attribute and "SYNTHETIC" in their title.
The scenes are physically motivated so that rain is learnable from AHI bands 8-16, but not
trivially (an IR-only GPI threshold gets partial skill, multispectral models can do better):

* Rain is intermittent, heavy-tailed and spatially correlated: fields are Gaussian noise with a
  power-law spectrum P(k) ~ k^-beta (beta 2.5-3.5, as for radar rain fields, Lovejoy & Schertzer
  1990; pysteps' noise generators), thresholded to give
  - convective cores (small, k^-1.8 field, 2 mm/h growing exponentially with the field excess),
  - stratiform shields (0.4 mm/h + a ramp inside a larger non-raining cloud shield), modulated by
    embedded small-scale cells (lognormal, k^-1.5),
  - warm rain from low clouds (0.1-1 mm/h) that IR barely sees (tops 265-285 K).
  Calibrated against real radar rain on the 0.1° grid (wet fraction, wet-pixel quantiles,
  exceedance fractions, spectrum slope, correlation length, rain-area sizes):
  benchmarks/results/synth_realism.md.
* Cloud-top temperature is tied to rain type: convective tops 192-225 K (overshooting below
  ~205 K), stratiform 220-250 K, low clouds 265-288 K, clear sky ~298 K surface.
* Thin cirrus (emissivity 0.1-0.9, ~220 K) is cold in B13 but does not rain (the classic GPI
  false alarm); its emissivity grows with wavelength, so the split window B14-B15 is several K
  for thin cirrus and ~0 for opaque cloud (Inoue 1985).
* Each band sees the scene through its own absorbing layer (brightness temperature mixed
  linearly, a simplification of radiance mixing): water-vapour bands B08-B10 saturate at
  236/248/258 K, the CO2 band B16 is colder, B12 (ozone) intermediate, window bands B11/B13-B15
  nearly transparent; above ~205 K the stratospheric water vapour makes B08-B13 >= 0 over
  overshooting tops (Schmetz et al. 1997); B11-B14 is positive for ice and negative for water tops.
* Instrument noise NEdT 0.15 K plus int16 packing (0.01 K); labels are the 2x2 block mean of
  the fine rain field (0.05 deg AHI -> 0.1 deg IMERG), with multiplicative label noise, an
  occasional one-label-pixel misregistration (half of the scenes), a missing (fill) label patch in
  every 4th scene (k % 4 == 3) and a missing AHI scan line in every 5th (k % 5 == 2).
* Optional decoy channels ``decoy_NN`` carry BT-like power-law noise independent of rain.

Scene k is the IMERG half hour starting ``start + 30 min * k``; its AHI scan is at minute 0, 10
or 20 of that half hour, so the pairing rule of ``precip_prepare`` finds it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from mtdense.domains.precip.writers import imerg_name, ptree_name, write_imerg, write_ptree

AHI_RES, LABEL_RES = 0.05, 0.1
BANDS = tuple(range(8, 17))
# band: (absorbing-layer temperature K, layer opacity, cirrus emissivity exponent, stratospheric WV weight)
BAND_LAYERS = {8: (236.0, 0.97, 1.00, 0.6), 9: (248.0, 0.93, 1.00, 0.3), 10: (258.0, 0.88, 1.00, 0.15),
               11: (272.0, 0.12, 0.85, 0.0), 12: (252.0, 0.35, 0.95, 0.0), 13: (276.0, 0.05, 1.00, 0.0),
               14: (276.0, 0.08, 1.07, 0.0), 15: (274.0, 0.15, 1.35, 0.0), 16: (250.0, 0.65, 1.20, 0.0)}
NEDT_K = 0.15
SHIELD_BETA, CONV_BETA = 3.0, 1.8   # spectral slopes of the rain-generating fields (calibrated: benchmarks/synth_realism.py)
TROPOPAUSE_K = 205.0


def powerlaw_field(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field with isotropic power spectrum ~ k^-beta."""
    h, w = shape
    k = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    k[0, 0] = np.inf
    spectrum = (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) * k ** (-beta / 2)
    field = np.fft.irfft2(spectrum, s=shape)
    return ((field - field.mean()) / field.std()).astype(np.float32)


def _softplus(x: np.ndarray, scale: float = 3.0) -> np.ndarray:
    z = x / scale
    return scale * (np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))))


def _band_bt(t_top: np.ndarray, band: int) -> np.ndarray:
    """BT of band ``band`` over an opaque surface/cloud top at ``t_top`` (K)."""
    t_layer, opacity, _, strat = BAND_LAYERS[band]
    bt = t_top - opacity * _softplus(t_top - t_layer)
    return bt + strat * _softplus(TROPOPAUSE_K - t_top)


def _quantile_threshold(field: np.ndarray, fraction: float) -> float:
    return float(np.quantile(field, 1.0 - fraction))


def synth_scene(rng: np.random.Generator, shape: tuple[int, int], decoy_channels: int = 1):
    """One scene on the fine (AHI) grid: ({band: BT}, {decoy name: BT}, rain rate mm/h)."""
    shield, conv, cirrus, low, surface = (powerlaw_field(rng, shape, b) for b in (SHIELD_BETA, CONV_BETA, 3.0, 3.0, 3.5))
    shield_thr = _quantile_threshold(shield, rng.uniform(0.06, 0.25))
    in_shield = shield > shield_thr
    rain_thr = shield_thr + 0.35
    cells = np.exp(1.0 * powerlaw_field(rng, shape, 1.5) - 0.5)   # embedded cells: small-scale, lognormal
    stratiform = np.where(shield > rain_thr, (0.4 + 1.2 * (shield - rain_thr)) * cells, 0.0)
    conv = conv + 1.5 * (shield - shield_thr)                     # cores grow inside organised shields
    conv_thr = _quantile_threshold(conv, rng.uniform(0.005, 0.03))
    excess = np.clip(conv - conv_thr, 0.0, None)
    convective = np.where(excess > 0, 2.0 * np.exp(1.3 * excess), 0.0)
    low_thr = _quantile_threshold(low, rng.uniform(0.1, 0.3))
    warm = np.where(low > low_thr + 0.8, 0.1 + 0.6 * (low - low_thr - 0.8), 0.0)
    warm[in_shield | (excess > 0)] = 0.0
    rain = np.clip(np.maximum.reduce([stratiform, convective, warm]), 0.0, 150.0)

    t_surface = 298.0 + 2.0 * surface
    t_top = t_surface.copy()
    t_top = np.where(low > low_thr, np.clip(280.0 - 6.0 * (low - low_thr), 265.0, 288.0), t_top)
    t_top = np.where(in_shield, np.clip(248.0 - 14.0 * (shield - shield_thr), 220.0, 250.0), t_top)
    t_top = np.where(excess > 0, np.clip(224.0 - 16.0 * excess, 192.0, 225.0), t_top)

    cirrus = cirrus + 0.8 * np.clip(shield - shield_thr + 0.5, 0.0, 1.0)      # anvils spread from shields
    ci_thr = _quantile_threshold(cirrus, rng.uniform(0.1, 0.3))
    emissivity = np.where(cirrus > ci_thr, np.clip(0.1 + 0.6 * (cirrus - ci_thr), 0.1, 0.9), 0.0)
    emissivity[t_top < 230.0] = 0.0                                # cirrus under/inside thick cold cloud is invisible
    t_cirrus = 220.0 + 3.0 * rng.standard_normal()

    bands = {}
    for band in BANDS:
        below = _band_bt(t_top, band)
        if band == 11:                           # 8.6 um: ice tops warmer, water tops colder than at 11.2 um
            below = below + np.where(t_top < 253.0, 1.5, 0.0) - np.where((t_top > 263.0) & (t_top < 290.0), 1.5, 0.0)
        eps_band = 1.0 - (1.0 - emissivity) ** BAND_LAYERS[band][2]
        bt = eps_band * _band_bt(np.full(shape, t_cirrus), band) + (1.0 - eps_band) * below
        bands[band] = bt + NEDT_K * rng.standard_normal(shape, dtype=np.float32)
    decoys = {f"decoy_{i + 1:02d}": 250.0 + 15.0 * powerlaw_field(rng, shape, 3.0) for i in range(decoy_channels)}
    return bands, decoys, rain


def _label_from_fine(rng: np.random.Generator, rain: np.ndarray, misregistration: int,
                     missing_patch: bool) -> np.ndarray:
    """IMERG-like label: 2x2 block mean, multiplicative noise, optional shift and missing patch."""
    h, w = rain.shape[0] // 2, rain.shape[1] // 2
    label = rain[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))
    label = label * np.exp(0.25 * rng.standard_normal(label.shape) - 0.25**2 / 2)
    label[label < 0.05] = 0.0
    if misregistration and rng.random() < 0.5:
        label = np.roll(label, tuple(rng.integers(-misregistration, misregistration + 1, 2)), axis=(0, 1))
    if missing_patch:                                              # a missing label patch (fill)
        r, c = rng.integers(0, h // 2), rng.integers(0, w // 2)
        label[r: r + h // 4, c: c + w // 3] = np.nan
    return label.astype(np.float32)


def synth_precip(out_dir, n_scenes: int = 24, height: int = 128, width: int = 128, seed: int = 0,
                 decoy_channels: int = 1, lat_north: float = 30.0, lon_west: float = 130.0,
                 start: dt.datetime = dt.datetime(2020, 7, 1, 0, 0), misregistration: int = 1) -> dict[str, list[Path]]:
    """Write ``n_scenes`` SYNTHETIC AHI P-Tree files and their IMERG V07 granules under ``out_dir``.

    ``height`` x ``width`` is the label grid (0.1 deg); AHI files are on the 0.05 deg P-Tree grid
    (2x finer) over the same box whose north-west corner is (``lat_north``, ``lon_west``).
    Returns ``{"ahi": [...], "imerg": [...]}`` (paths in ``out_dir/ahi`` and ``out_dir/imerg``).
    """
    out = Path(out_dir)
    (out / "ahi").mkdir(parents=True, exist_ok=True)
    (out / "imerg").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fine = (2 * height, 2 * width)
    ahi_lat = lat_north - AHI_RES * np.arange(fine[0])                        # P-Tree: centres on multiples of 0.05
    ahi_lon = lon_west + AHI_RES * np.arange(fine[1])
    label_lat = lat_north - LABEL_RES / 2 - LABEL_RES * np.arange(height)[::-1]  # IMERG: ascending, centres at .x5
    label_lon = lon_west + LABEL_RES / 2 + LABEL_RES * np.arange(width)
    written = {"ahi": [], "imerg": []}
    for k in range(n_scenes):
        granule = start + dt.timedelta(minutes=30 * k)
        scan = granule + dt.timedelta(minutes=int(rng.choice([0, 10, 20])))
        bands, decoys, rain = synth_scene(rng, fine, decoy_channels)
        if k % 5 == 2:                                                        # a missing scan line
            row = int(rng.integers(0, fine[0]))
            for a in bands.values():
                a[row] = np.nan
        label = _label_from_fine(rng, rain, misregistration, missing_patch=k % 4 == 3)
        written["ahi"].append(write_ptree(out / "ahi" / ptree_name(scan, shape=fine), bands, ahi_lat, ahi_lon,
                                          scan, extra=decoys, synthetic=True))
        written["imerg"].append(write_imerg(out / "imerg" / imerg_name(granule), label[::-1], label_lat, label_lon,
                                            granule, "V07", synthetic=True))
    return written
