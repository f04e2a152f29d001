"""Precipitation figures: rain-rate maps on a conventional discrete scale and categorical scores
per threshold.

- ``rain_rate_maps``: observed and predicted rain rate side by side on one discrete colour scale
  with log-spaced levels (0.1 … 50 mm/h, a ``BoundaryNorm``), as in satellite-precipitation
  verification maps (e.g. the IPWG/CAWCR validation pages); rates below the lowest level are
  white ("no rain"), invalid pixels grey.
- ``threshold_score_bars``: categorical scores (F1, CSI, POD, FAR) per threshold, one group of
  bars per threshold and one bar per model, read from metric dicts such as those of
  ``mtdense evaluate`` (keys ``…/f1@0.5``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap
from matplotlib.figure import Figure

from mtdense.analysis.figures import INVALID_COLOUR, check_same_shape, grouped_bars, masked_field, save_figure

RAIN_LEVELS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
CATEGORICAL_SCORES = ("f1", "csi", "pod", "far")


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


def rain_rate_maps(observed: np.ndarray, predicted: np.ndarray, path: str | Path, valid: np.ndarray | None = None,
                   levels: Sequence[float] = RAIN_LEVELS, units: str = "mm/h",
                   titles: tuple[str, str] = ("observed", "predicted")) -> Path:
    """Observed and predicted rate maps on the same discrete log-spaced colour scale."""
    check_same_shape(observed=observed, predicted=predicted, valid=valid)
    scale, norm = rain_colour_scale(levels)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, field, title in zip(axes, (observed, predicted), titles):
        image = ax.imshow(masked_field(field, valid), cmap=scale, norm=norm, interpolation="nearest")
        ax.set_title(title)
    fig.colorbar(image, ax=axes, extend="both", ticks=list(levels), format="%g", label=f"rain rate ({units})", shrink=0.8)
    return save_figure(fig, path)


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
