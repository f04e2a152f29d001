"""Generic figures for dense predictions (matplotlib's object API, no global backend switch).

- ``class_maps``: true and predicted classes side by side;
- ``density_scatter``: 2-D histogram of predicted against observed values on valid pixels with a
  logarithmic colour scale and the 1:1 line;
- ``grouped_bars``: the bar-chart primitive shared by band-importance and score charts;
- ``masked_field`` / ``save_figure`` / ``check_same_shape``: helpers the domain figures reuse.

Figures are safe to make from worker threads and are saved with a fixed size (``figsize`` ×
``dpi`` pixels). Each function takes numpy arrays (H×W) and an output path, and returns the path.
Domain figures (e.g. rain-rate maps) live in their domain package.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.figure import Figure

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


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def check_same_shape(**arrays: np.ndarray) -> None:
    shapes = {name: np.shape(a) for name, a in arrays.items() if a is not None}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"figures: arrays must have the same shape, got {shapes}")
    if any(len(s) != 2 for s in shapes.values()):
        raise ValueError(f"figures: maps must be 2-D (H×W), got {shapes}")


def class_maps(true_classes: np.ndarray, predicted_classes: np.ndarray, path: str | Path,
               valid: np.ndarray | None = None, class_names: Sequence[str] | None = None) -> Path:
    """True and predicted class maps with one colour per class; invalid pixels grey."""
    check_same_shape(true_classes=true_classes, predicted_classes=predicted_classes, valid=valid)
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
