"""Verification figures of precipitation estimates, as meteorologists draw them.

- ``latlon_rain_maps``: observed / estimated rain rate on latitude–longitude axes (cartopy
  PlateCarree, gridline labels in degrees) on the discrete log-spaced rain scale of
  ``figures.rain_colour_scale``; coastlines from the offline GSHHS data of ``coastlines`` (or a
  local shapefile, ``coastline=``): nothing is downloaded.
- ``loglog_scatter``: log–log 2-D histogram of estimated vs observed rates (pixels where both are
  ≥ 0.1 mm/h) with N, CC, RMSE and bias of all valid pixels annotated.
- ``performance_diagram``: Roebber (2009, Wea. Forecasting 24:601) — success ratio (1 − FAR) vs
  POD with CSI contours and frequency-bias lines, one point per threshold and model.
- ``reliability_diagram``: observed frequency vs forecast probability per bin, with the
  diagonal and the sample count per bin (Wilks 2011, §8.4.4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from mtdense.analysis.figures import save_figure
from mtdense.domains.precip.coastlines import gshhs_coastlines
from mtdense.domains.precip.figures import RAIN_LEVELS, rain_colour_scale


def latlon_rain_maps(fields: Mapping[str, np.ndarray], lat: np.ndarray, lon: np.ndarray, path: str | Path,
                     when: str, coastline: str | Path | None = None) -> Path:
    """One map per field (mm/h, NaN = missing); ``lat``/``lon``: 1-D pixel centres."""
    import cartopy.crs as ccrs
    from cartopy.feature import ShapelyFeature

    if coastline is None:
        shores = gshhs_coastlines("l", float(np.min(lat)) - 1, float(np.max(lat)) + 1)
    else:
        from cartopy.io.shapereader import Reader

        shores = list(Reader(str(coastline)).geometries())
    scale, norm = rain_colour_scale(RAIN_LEVELS)
    step_lat, step_lon = abs(lat[1] - lat[0]) / 2, abs(lon[1] - lon[0]) / 2
    extent = (lon.min() - step_lon, lon.max() + step_lon, lat.min() - step_lat, lat.max() + step_lat)
    fig = Figure(figsize=(5.2 * len(fields), 4.8), layout="constrained")
    image = None
    axes = []
    for i, (title, field) in enumerate(fields.items()):
        ax = fig.add_subplot(1, len(fields), i + 1, projection=ccrs.PlateCarree())
        image = ax.imshow(np.ma.masked_invalid(field), cmap=scale, norm=norm, extent=extent, origin="upper",
                          transform=ccrs.PlateCarree(), interpolation="nearest")
        ax.add_feature(ShapelyFeature(shores, ccrs.PlateCarree()), facecolor="none", edgecolor="black",
                       linewidth=0.6)
        grid = ax.gridlines(draw_labels=True, linewidth=0.3, color="grey")
        grid.top_labels = grid.right_labels = False
        ax.set_title(f"{title}\n{when}", fontsize=10)
        axes.append(ax)
    fig.colorbar(image, ax=axes, extend="both", ticks=list(RAIN_LEVELS), format="%g", label="rain rate (mm h⁻¹)",
                 shrink=0.8)
    return save_figure(fig, path)


def loglog_scatter(obs: np.ndarray, pred: np.ndarray, scores: Mapping[str, float], path: str | Path,
                   label: str = "estimate", wet: float = 0.1) -> Path:
    both = (obs >= wet) & (pred >= wet)
    edges = np.logspace(np.log10(wet), np.log10(max(100.0, float(np.nanmax(obs, initial=1)))), 50)
    fig = Figure(figsize=(5.6, 5), layout="constrained")
    ax = fig.subplots()
    counts, _, _ = np.histogram2d(obs[both], pred[both], bins=(edges, edges))
    mesh = ax.pcolormesh(edges, edges, np.ma.masked_equal(counts.T, 0), norm=LogNorm(), cmap="viridis")
    ax.plot(edges[[0, -1]], edges[[0, -1]], "k--", linewidth=0.8, label="1:1")
    ax.set(xscale="log", yscale="log", xlabel="observed rain rate (mm h⁻¹)", ylabel=f"{label} rain rate (mm h⁻¹)",
           title=f"{label} vs observed (both ≥ {wet:g} mm h⁻¹)")
    ax.text(0.03, 0.97, f"N = {scores['n']:.0f} valid pixels\nCC = {scores['cc']:.2f}\nRMSE = {scores['rmse']:.2f} "
            f"mm h⁻¹\nbias = {scores['bias']:+.2f} mm h⁻¹", transform=ax.transAxes, va="top", fontsize=9,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    fig.colorbar(mesh, ax=ax, label="pixels per bin")
    return save_figure(fig, path)


def performance_diagram(points: Mapping[str, Mapping[float, tuple[float, float]]], path: str | Path) -> Path:
    """``points``: {model: {threshold: (POD, FAR)}}."""
    sr, pod = np.meshgrid(np.linspace(0.01, 1, 200), np.linspace(0.01, 1, 200))
    csi = 1 / (1 / sr + 1 / pod - 1)
    fig = Figure(figsize=(5.8, 5.4), layout="constrained")
    ax = fig.subplots()
    contours = ax.contour(sr, pod, csi, levels=np.arange(0.1, 1.0, 0.1), colors="grey", linewidths=0.6)
    ax.clabel(contours, fmt="%.1f", fontsize=7)
    for bias in (0.5, 1.0, 1.5, 2.0, 4.0):
        x = np.linspace(0.01, 1, 50)
        ax.plot(x, bias * x, ":", color="k", linewidth=0.6)
        ax.text(min(1.0, 1 / bias) * 0.98, min(1.0, bias) * 0.98, f"{bias:g}", fontsize=7, ha="right", va="top")
    markers = "osD^v<>"
    for i, (model, by_threshold) in enumerate(points.items()):
        xs = [1 - far for pod_, far in by_threshold.values()]
        ys = [pod_ for pod_, far in by_threshold.values()]
        ax.plot(xs, ys, marker=markers[i % len(markers)], label=model)
        for t, x, y in zip(by_threshold, xs, ys):
            if np.isfinite(x) and np.isfinite(y):
                ax.annotate(f"{t:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="success ratio (1 − FAR)", ylabel="probability of detection (POD)",
           title="Performance diagram (Roebber 2009)\nlabels: threshold in mm h⁻¹; grey: CSI; dotted: bias")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def reliability_diagram(reliability: Mapping[str, Sequence[float]], scores: Mapping[str, float], path: str | Path,
                        event: str = "rain ≥ 0.1 mm h⁻¹") -> Path:
    fig = Figure(figsize=(5.4, 5.6), layout="constrained")
    ax, hist = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    counts = np.asarray(reliability["count"])
    used = counts > 0
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfect reliability")
    ax.plot(np.asarray(reliability["forecast"])[used], np.asarray(reliability["observed"])[used], "o-", label="model")
    ax.set(ylim=(0, 1), ylabel="observed frequency",
           title=f"Reliability of P({event})\nBrier {scores['brier']:.3f}, ROC AUC {scores['roc_auc']:.3f}")
    ax.legend(loc="upper left", fontsize=8)
    width = 1 / len(counts)
    hist.bar((np.arange(len(counts)) + 0.5) * width, counts, width=width * 0.9, color="grey")
    hist.set(yscale="log", xlabel="forecast probability", ylabel="pixels", xlim=(0, 1))
    return save_figure(fig, path)
