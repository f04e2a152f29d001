"""Figures for dense regression/classification results, made for precipitation retrievals.

- ``rain_rate_maps``: observed and predicted rain rate side by side on one discrete colour scale
  with log-spaced levels (0.1 … 50 mm/h, a ``BoundaryNorm``), as in satellite-precipitation
  verification maps (e.g. the IPWG/CAWCR validation pages); rates below the lowest level are
  white ("no rain"), invalid pixels grey.
- ``class_maps``: true and predicted classes side by side.
- ``density_scatter``: 2-D histogram of predicted against observed values on valid pixels with a
  logarithmic colour scale and the 1:1 line.
- ``threshold_score_bars``: categorical scores (F1, CSI, POD, FAR) per threshold, one group of
  bars per threshold and one bar per model, read from metric dicts such as those of
  ``mtdense evaluate`` (keys ``…/f1@0.5``).
- ``grouped_bars``: the bar-chart primitive the above and the band-importance charts share.

Everything uses matplotlib's object API (``matplotlib.figure.Figure``), so no global backend is
switched and figures are safe to make from worker threads. Figures are saved with a fixed size
(``figsize`` × ``dpi`` pixels). Each function takes numpy arrays (H×W) or metric dicts and an
output path, and returns the path.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap, LogNorm
from matplotlib.figure import Figure

RAIN_LEVELS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
CATEGORICAL_SCORES = ("f1", "csi", "pod", "far")
INVALID_COLOUR = "lightgrey"
DPI = 100


def masked_field(values: np.ndarray, valid: np.ndarray | None = None) -> np.ma.MaskedArray:
    """``values`` as a float masked array, masked where ``valid`` is False or the value is not finite."""
    values = np.asarray(values, dtype=np.float64)
    mask = ~np.isfinite(values)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != values.shape:
            raise ValueError(f"figures: valid mask {valid.shape} does not match values {values.shape}")
        mask |= ~valid
    return np.ma.masked_array(np.where(mask, np.nan, values), mask=mask)


def rain_colour_scale(levels: Sequence[float] = RAIN_LEVELS, cmap: str = "viridis_r") -> tuple[Colormap, BoundaryNorm]:
    """A discrete colour map with one colour per interval [levels[k], levels[k+1]); values below
    ``levels[0]`` are white, values above ``levels[-1]`` get the darkest colour, invalid is grey."""
    levels = [float(v) for v in levels]
    if len(levels) < 2 or any(b <= a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"figures: colour levels must be strictly increasing (at least two), got {levels}")
    base = matplotlib.colormaps[cmap].resampled(len(levels))
    colours = base(np.arange(len(levels)))
    scale = ListedColormap(colours[:-1]).with_extremes(under="white", over=colours[-1], bad=INVALID_COLOUR)
    return scale, BoundaryNorm(levels, scale.N)


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _check_same_shape(**arrays: np.ndarray) -> None:
    shapes = {name: np.shape(a) for name, a in arrays.items() if a is not None}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"figures: arrays must have the same shape, got {shapes}")
    if any(len(s) != 2 for s in shapes.values()):
        raise ValueError(f"figures: maps must be 2-D (H×W), got {shapes}")


def rain_rate_maps(observed: np.ndarray, predicted: np.ndarray, path: str | Path, valid: np.ndarray | None = None,
                   levels: Sequence[float] = RAIN_LEVELS, units: str = "mm/h",
                   titles: tuple[str, str] = ("observed", "predicted")) -> Path:
    """Observed and predicted rate maps on the same discrete log-spaced colour scale."""
    _check_same_shape(observed=observed, predicted=predicted, valid=valid)
    scale, norm = rain_colour_scale(levels)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, field, title in zip(axes, (observed, predicted), titles):
        image = ax.imshow(masked_field(field, valid), cmap=scale, norm=norm, interpolation="nearest")
        ax.set_title(title)
    fig.colorbar(image, ax=axes, extend="both", ticks=list(levels), format="%g", label=f"rain rate ({units})", shrink=0.8)
    return save_figure(fig, path)


def class_maps(true_classes: np.ndarray, predicted_classes: np.ndarray, path: str | Path,
               valid: np.ndarray | None = None, class_names: Sequence[str] | None = None) -> Path:
    """True and predicted class maps with one colour per class; invalid pixels grey."""
    _check_same_shape(true_classes=true_classes, predicted_classes=predicted_classes, valid=valid)
    n = int(max(np.max(true_classes), np.max(predicted_classes))) + 1
    names = list(class_names) if class_names is not None else [str(k) for k in range(n)]
    if len(names) < n:
        raise ValueError(f"figures: {len(names)} class names for class ids up to {n - 1}")
    n = len(names)
    colours = matplotlib.colormaps["tab10" if n <= 10 else "tab20"](np.arange(n))
    scale = ListedColormap(colours).with_extremes(bad=INVALID_COLOUR)
    norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, field, title in zip(axes, (true_classes, predicted_classes), ("true classes", "predicted classes")):
        image = ax.imshow(masked_field(field, valid), cmap=scale, norm=norm, interpolation="nearest")
        ax.set_title(title)
    bar = fig.colorbar(image, ax=axes, ticks=np.arange(n), shrink=0.8)
    bar.ax.set_yticklabels(names)
    return save_figure(fig, path)


def density_scatter(observed: np.ndarray, predicted: np.ndarray, path: str | Path, valid: np.ndarray | None = None,
                    bins: int = 64, max_value: float | None = None, units: str = "mm/h") -> Path:
    """2-D histogram of predicted vs observed values at valid, finite pixels; log colour; 1:1 line."""
    observed, predicted = np.asarray(observed, np.float64), np.asarray(predicted, np.float64)
    if observed.shape != predicted.shape:
        raise ValueError(f"figures: observed {observed.shape} and predicted {predicted.shape} differ in shape")
    keep = np.isfinite(observed) & np.isfinite(predicted)
    if valid is not None:
        keep &= np.asarray(valid, bool)
    obs, pred = observed[keep], predicted[keep]
    if obs.size == 0:
        raise ValueError("figures: density scatter has no valid pixels to plot")
    top = float(max_value) if max_value is not None else float(max(obs.max(), pred.max(), 1e-6))
    counts, xedges, yedges = np.histogram2d(obs, pred, bins=bins, range=[[0.0, top], [0.0, top]])
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.subplots()
    mesh = ax.pcolormesh(xedges, yedges, np.ma.masked_equal(counts.T, 0), norm=LogNorm(vmin=1), cmap="viridis")
    ax.plot([0, top], [0, top], color="black", linewidth=1, label="1:1")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel=f"observed ({units})", ylabel=f"predicted ({units})", aspect="equal")
    ax.legend(loc="upper left")
    fig.colorbar(mesh, ax=ax, label="pixels")
    return save_figure(fig, path)


def grouped_bars(ax, values: Mapping[str, Mapping[str, float]], errors: Mapping[str, Mapping[str, float]] | None = None,
                 categories: Sequence[str] | None = None) -> None:
    """Bars grouped by category (x axis), one bar per series: ``values[series][category]``.
    Missing values are left out; ``errors`` (same layout) are drawn as error bars."""
    series = list(values)
    if categories is None:
        categories = list(dict.fromkeys(c for s in series for c in values[s]))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(categories))
    for k, name in enumerate(series):
        heights = [values[name].get(c, math.nan) for c in categories]
        err = [errors[name].get(c, 0.0) for c in categories] if errors and name in errors else None
        ax.bar(x + (k - (len(series) - 1) / 2) * width, heights, width, yerr=err, label=name, capsize=2)
    ax.set_xticks(x, categories)
    ax.axhline(0.0, color="black", linewidth=0.5)
    if len(series) > 1:
        ax.legend(fontsize="small")


_SCORE_KEY = re.compile(r"^(?P<score>[a-z0-9_]+)@(?P<threshold>[0-9.eE+-]+)$")


def scores_by_threshold(metrics: Mapping[str, float], scores: Sequence[str] = CATEGORICAL_SCORES) -> dict[str, dict[float, float]]:
    """``{score: {threshold: value}}`` from keys such as ``f1@0.5`` or ``test/rain/csi@2``.
    The same score and threshold under two prefixes (two tasks) is an error."""
    out: dict[str, dict[float, float]] = {}
    seen: dict[tuple[str, float], str] = {}
    for key, value in metrics.items():
        match = _SCORE_KEY.match(key.rsplit("/", 1)[-1].lower())
        if not match or match["score"] not in scores:
            continue
        score, threshold = match["score"], float(match["threshold"])
        if (score, threshold) in seen:
            raise ValueError(f"figures: both {seen[score, threshold]!r} and {key!r} are {score}@{threshold:g}; "
                             "pass the metrics of one task")
        seen[score, threshold] = key
        out.setdefault(score, {})[threshold] = float(value)
    return out


def threshold_score_bars(results: Mapping[str, Mapping[str, float]], path: str | Path,
                         scores: Sequence[str] = CATEGORICAL_SCORES, units: str = "mm/h") -> Path:
    """One panel per score (F1, CSI, POD, FAR), thresholds on the x axis, one bar per model.
    ``results`` is ``{model name: metric dict}``."""
    parsed = {model: scores_by_threshold(metrics, scores) for model, metrics in results.items()}
    present = [s for s in scores if any(s in p for p in parsed.values())]
    if not present:
        keys = sorted({k for m in results.values() for k in m})
        raise ValueError(f"figures: no {'/'.join(scores)} scores at thresholds (keys like 'f1@0.5') in {keys[:8]}")
    fig = Figure(figsize=(4 * len(present), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(present)))
    for ax, score in zip(axes, present):
        thresholds = sorted({t for p in parsed.values() for t in p.get(score, {})})
        labels = [f"{t:g}" for t in thresholds]
        values = {model: {f"{t:g}": v for t, v in p.get(score, {}).items()} for model, p in parsed.items()}
        grouped_bars(ax, values, categories=labels)
        ax.set(title=score.upper(), xlabel=f"threshold ({units})", ylim=(0, 1))
    return save_figure(fig, path)
