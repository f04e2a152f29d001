"""Paired statistics for a benchmark grid: CIs over seeds, Holm correction, minimum detectable effect.

Variants that share a seed share data order and the initialisation of every part they have in
common (``mtdense.models.seeded_init``), so they are compared seed by seed. For one quantity
(a per-seed Δm in %, or a metric) and one pair of the grid:

* ``paired_differences``: d_s = x_variant(s) − x_reference(s) over the seeds both finished;
* ``t_interval``: mean(d) ± t_{1−a/2, n−1} · sd(d)/√n (Student t, ``scipy.stats.t``);
* ``bootstrap_interval``: percentile bootstrap of mean(d) (``scipy.stats.bootstrap``, 9999
  resamples, fixed seed), reported beside the t interval as a check on its normality assumption;
* ``compare_variants``: every variant vs the reference; two-sided paired t-test p-values are
  Holm-adjusted across the grid's variants (Holm 1979: step-down, controls the family-wise
  error at ``alpha``); each variant's t interval is also given at its Holm level
  1 − alpha/(m − r + 1) (r = rank of its raw p-value), which excludes 0 exactly when Holm
  rejects at that step. The verdict comes from these intervals / adjusted p-values:

    "helps"   Holm-adjusted p < alpha and mean(d) improves the quantity
    "hurts"   Holm-adjusted p < alpha and mean(d) worsens it
    "no detectable difference at ± x"   otherwise, x = the largest |bound| of the Holm-level
              interval: effects larger than x in either direction are excluded;

* ``minimum_detectable_effect``: the smallest true mean difference a paired two-sided t-test
  at level alpha/m (Bonferroni, the strictest Holm step) detects with power 0.8 given n seeds
  and the pooled sd of the differences, (t_{1−alpha/(2m), n−1} + t_{0.8, n−1}) · sd/√n
  (the usual normal-approximation formula with t quantiles).

Nothing here trains anything: it works on numbers, so a test can plant an effect exactly.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
POWER = 0.8
BOOTSTRAP_RESAMPLES = 9999


def paired_differences(variant: Mapping[int, float | None], reference: Mapping[int, float | None]) -> dict[int, float]:
    """d_s = variant[s] − reference[s] for every seed with a finite value in both."""
    out = {}
    for seed, value in variant.items():
        ref = reference.get(seed)
        if value is not None and ref is not None and math.isfinite(value) and math.isfinite(ref):
            out[seed] = float(value) - float(ref)
    return out


def t_interval(values: list[float], level: float = 1 - ALPHA) -> tuple[float, float] | None:
    """Student-t interval for the mean of ``values`` (None with fewer than 2 values)."""
    n = len(values)
    if n < 2:
        return None
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = sps.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def bootstrap_interval(values: list[float], level: float = 1 - ALPHA, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval for the mean (None with fewer than 2 values or no spread)."""
    if len(values) < 2:
        return None
    if max(values) == min(values):
        return values[0], values[0]
    result = sps.bootstrap((np.asarray(values, dtype=float),), np.mean, confidence_level=level,
                           n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", random_state=seed)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def t_test_p(values: list[float]) -> float | None:
    """Two-sided one-sample t-test of mean(values) = 0 (None with < 2 values; 1 if all are 0)."""
    if len(values) < 2:
        return None
    if statistics.pstdev(values) == 0:
        return 1.0 if statistics.fmean(values) == 0 else 0.0
    return float(sps.ttest_1samp(values, 0.0).pvalue)


def holm(p_values: Mapping[str, float]) -> tuple[dict[str, float], dict[str, int]]:
    """Holm-adjusted p-values and each hypothesis' rank (1 = smallest raw p)."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m = len(order)
    adjusted, running = {}, 0.0
    for i, key in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[key]))
        adjusted[key] = running
    return adjusted, {key: i + 1 for i, key in enumerate(order)}


def minimum_detectable_effect(sd: float | None, n: int, comparisons: int = 1, alpha: float = ALPHA,
                              power: float = POWER) -> float | None:
    """Smallest mean paired difference detected with ``power`` at level alpha/comparisons (two-sided)."""
    if sd is None or n < 2:
        return None
    df = n - 1
    return (sps.t.ppf(1 - alpha / (2 * comparisons), df) + sps.t.ppf(power, df)) * sd / math.sqrt(n)


@dataclass
class Comparison:
    variant: str
    n: int
    mean: float | None
    ci_t: tuple[float, float] | None
    ci_bootstrap: tuple[float, float] | None
    p: float | None
    p_holm: float | None
    holm_level: float | None
    ci_holm: tuple[float, float] | None
    verdict: str
    differences: dict[int, float]

    def as_dict(self) -> dict:
        return asdict(self)


def verdict(mean: float | None, p_holm: float | None, ci_holm: tuple[float, float] | None, higher_is_better: bool,
            alpha: float = ALPHA, unit: str = "pp") -> str:
    """"helps" / "hurts" / "no detectable difference at ± x <unit>" (see the module docstring)."""
    if mean is None or p_holm is None or ci_holm is None:
        return "too few seeds"
    if p_holm < alpha:
        return "helps" if (mean > 0) == higher_is_better else "hurts"
    return f"no detectable difference at ± {max(abs(ci_holm[0]), abs(ci_holm[1])):.2f} {unit}"


def compare_variants(values: Mapping[str, Mapping[int, float | None]], reference: str, higher_is_better: bool = True,
                     alpha: float = ALPHA, unit: str = "pp") -> dict[str, object]:
    """Every variant of ``values`` ({variant: {seed: x}}) against ``reference``, Holm-corrected.

    Returns ``{"comparisons": {variant: Comparison dict}, "mde": float | None, "sd": pooled sd,
    "n": seeds per comparison (minimum), "m": number of comparisons}``.
    """
    others = [v for v in values if v != reference]
    diffs = {v: paired_differences(values[v], values.get(reference, {})) for v in others}
    raw_p = {v: p for v in others if (p := t_test_p(list(diffs[v].values()))) is not None}
    adjusted, rank = holm(raw_p) if raw_p else ({}, {})
    m = max(1, len(raw_p))
    comparisons = {}
    for v in others:
        d = list(diffs[v].values())
        level = 1 - alpha / (m - rank[v] + 1) if v in rank else None
        ci_holm = t_interval(d, level) if level is not None else None
        mean = statistics.fmean(d) if d else None
        comparisons[v] = Comparison(v, len(d), mean, t_interval(d, 1 - alpha), bootstrap_interval(d, 1 - alpha),
                                    raw_p.get(v), adjusted.get(v), level, ci_holm,
                                    verdict(mean, adjusted.get(v), ci_holm, higher_is_better, alpha, unit),
                                    diffs[v]).as_dict()
    spreads = [statistics.stdev(list(d.values())) for d in diffs.values() if len(d) >= 2]
    n = min((len(d) for d in diffs.values()), default=0)
    pooled = math.sqrt(statistics.fmean([s * s for s in spreads])) if spreads else None
    return {"comparisons": comparisons, "sd": pooled, "n": n, "m": len(raw_p),
            "mde": minimum_detectable_effect(pooled, n, max(1, len(raw_p)), alpha)}


def mean_interval(values: list[float], level: float = 1 - ALPHA) -> dict[str, object]:
    """Mean, t and bootstrap intervals of per-seed values (e.g. Δm vs the single-task baselines)."""
    return {"mean": statistics.fmean(values) if values else None, "n": len(values),
            "ci_t": t_interval(values, level), "ci_bootstrap": bootstrap_interval(values, level)}
