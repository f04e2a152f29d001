"""Statistics that say whether a rain-rate field looks like real rain (for calibrating synthetic rain).

For a field on a regular grid (mm/h, NaN = missing), with "wet" = rate ≥ 0.1 mm/h (the usual
IMERG/radar rain threshold):

* wet fraction of valid pixels; quantiles of wet-pixel rates; exceedance fractions
  P(rate ≥ τ | wet) for τ = 0.5, 2, 5, 10 mm/h;
* power-spectrum slope β of P(k) ~ k^-β: radially averaged periodogram of the field (missing →
  0, mean removed, Hann-windowed) fitted in log–log over wavelengths 3–30 pixels (Lovejoy &
  Schertzer 1990; the spatial-scale statistics of pysteps);
* correlation length: the lag (pixels) at which the isotropic autocorrelation of the rain rate
  (Wiener–Khinchin, on the same windowed field) first falls below 1/e;
* rain-area sizes: areas (pixels) of 8-connected wet regions (scipy.ndimage.label).
"""

from __future__ import annotations

import numpy as np

WET_MM_H = 0.1
EXCEEDANCE_MM_H = (0.5, 2.0, 5.0, 10.0)


def _prepared(field: np.ndarray) -> np.ndarray:
    f = np.nan_to_num(np.asarray(field, np.float64), nan=0.0)
    f = f - f.mean()
    window = np.outer(np.hanning(f.shape[0]), np.hanning(f.shape[1]))
    return f * window


def _radial_mean(values: np.ndarray, radius: np.ndarray, n: int) -> np.ndarray:
    r = np.rint(radius).astype(int).ravel()
    sums = np.bincount(r, values.ravel(), minlength=n)[:n]
    counts = np.bincount(r, minlength=n)[:n]
    return sums / np.maximum(counts, 1)


def spectrum_slope(field: np.ndarray, min_wavelength: float = 3.0, max_wavelength: float = 30.0) -> float:
    """β of the radially averaged power spectrum P(k) ~ k^-β (k in cycles per pixel)."""
    f = _prepared(field)
    h, w = f.shape
    power = np.abs(np.fft.fft2(f)) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    k = np.hypot(ky, kx)
    band = (k >= 1.0 / max_wavelength) & (k <= 1.0 / min_wavelength)
    bins = np.logspace(np.log10(1.0 / max_wavelength), np.log10(1.0 / min_wavelength), 16)
    which = np.digitize(k[band], bins)
    logk = [np.log(k[band][which == i].mean()) for i in np.unique(which)]
    logp = [np.log(power[band][which == i].mean()) for i in np.unique(which)]
    return float(-np.polyfit(logk, logp, 1)[0])


def correlation_length(field: np.ndarray) -> float:
    """Lag in pixels where the isotropic autocorrelation first drops below 1/e (linear interpolation)."""
    f = _prepared(field)
    h, w = f.shape
    padded = np.zeros((2 * h, 2 * w))
    padded[:h, :w] = f
    acf = np.fft.ifft2(np.abs(np.fft.fft2(padded)) ** 2).real
    acf = np.fft.fftshift(acf)
    cy, cx = h, w
    yy, xx = np.indices(acf.shape)
    n = min(h, w) // 2
    radial = _radial_mean(acf, np.hypot(yy - cy, xx - cx), n)
    radial = radial / radial[0]
    below = np.nonzero(radial < np.exp(-1))[0]
    if below.size == 0:
        return float(n)
    i = int(below[0])
    return float(i - 1 + (radial[i - 1] - np.exp(-1)) / (radial[i - 1] - radial[i]))


def rain_area_sizes(field: np.ndarray) -> np.ndarray:
    """Areas (pixels) of 8-connected wet regions."""
    from scipy import ndimage

    labels, n = ndimage.label(np.nan_to_num(field) >= WET_MM_H, structure=np.ones((3, 3)))
    return np.bincount(labels.ravel())[1:] if n else np.zeros(0, int)


def rain_statistics(fields: list[np.ndarray]) -> dict[str, float]:
    """Pooled intensity statistics and per-field means of the spatial ones."""
    values = np.concatenate([np.asarray(f, np.float64)[np.isfinite(f)] for f in fields])
    wet = values[values >= WET_MM_H]
    areas = np.concatenate([rain_area_sizes(f) for f in fields])
    out = {"wet_fraction": float(wet.size / values.size)}
    for q in (50, 90, 99):
        out[f"wet_q{q}"] = float(np.percentile(wet, q)) if wet.size else 0.0
    for t in EXCEEDANCE_MM_H:
        out[f"exceed_{t:g}"] = float(np.mean(wet >= t)) if wet.size else 0.0
    out["spectrum_slope"] = float(np.mean([spectrum_slope(f) for f in fields]))
    out["correlation_length_px"] = float(np.mean([correlation_length(f) for f in fields]))
    out["area_median_px"] = float(np.median(areas)) if areas.size else 0.0
    out["area_q90_px"] = float(np.percentile(areas, 90)) if areas.size else 0.0
    out["area_weighted_mean_px"] = float((areas**2).sum() / areas.sum()) if areas.size else 0.0
    return out
