"""Multi-task performance Δm: mean relative gain of a multi-task model over single-task baselines.

Maninis, Radosavovic, Kokkinos, "Attentive Single-Tasking of Multiple Tasks", CVPR 2019, and
Vandenhende et al., "Multi-Task Learning for Dense Prediction Tasks: A Survey", TPAMI 2021
(reference code: SimonVandenhende/Multi-Task-Learning-PyTorch, evaluation/evaluate_utils.py,
``calculate_multi_task_performance``):

    Δm = (1/T) Σ_t (−1)^{l_t} (M_{m,t} − M_{b,t}) / M_{b,t} × 100%

with l_t = 1 when lower is better. Positive Δm means the multi-task model is better.

Two variants, always report which one and which metrics were used:
- ``"per_task"`` (Vandenhende): exactly one metric per task, averaged over the T tasks;
- ``"per_metric"`` (many later papers): average over all K selected (task, metric) pairs.

Metric direction is looked up by the metric's base name (lower-cased, without a ``@threshold``
suffix: ``"far@2"`` -> ``"far"``) in ``LOWER_IS_BETTER`` / ``HIGHER_IS_BETTER``; an unknown
name is an error rather than a silent guess. Bias-type metrics have an ideal value that is
neither large nor small, so they are compared by their distance to the ideal, which is then
lower-is-better: frequency bias (H+F)/(H+M) and the ratio ΣP/ΣO by |x − 1|, mean error and
relative bias by |x − 0|:  gain = −(|M_m − v| − |M_b − v|) / |M_b − v| × 100%.
A plain ``"bias"`` is ambiguous (frequency bias, mean error or a ratio) and must be renamed or
given in ``ideal_values``; ``"bias@τ"`` (thresholded) is read as frequency bias.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Collection, Mapping

from mtdense.errors import ConfigError

Results = Mapping[str, Mapping[str, float]]

LOWER_IS_BETTER = frozenset(
    {"rmse", "mae", "mse", "absrel", "abs_rel", "sqrel", "sq_rel", "rmse_log", "log10", "silog",
     "far", "pofd", "mean_angle", "median_angle", "loss", "nonfinite_pred"}
)
HIGHER_IS_BETTER = frozenset(
    {"miou", "iou", "jaccard", "dice", "f1", "csi", "pod", "cc", "pearson", "delta1", "delta2", "delta3",
     "accuracy", "acc", "pixel_accuracy", "pixel_acc", "precision", "recall", "specificity", "hss", "ets", "odsf"}
)
IDEAL_VALUES: Mapping[str, float] = {
    "fbias": 1.0, "frequency_bias": 1.0, "bias_ratio": 1.0,
    "me": 0.0, "mean_error": 0.0, "rb": 0.0, "rbias": 0.0, "relative_bias": 0.0,
}
VARIANTS = ("per_task", "per_metric")


def base_name(metric: str) -> str:
    """``"far@2"`` -> ``"far"``; a per-class suffix is dropped too: ``"iou_3"``, ``"iou_sky"``,
    ``"iou_0.5-2"`` -> ``"iou"``."""
    name = metric.split("@", 1)[0].lower()
    return "iou" if name.startswith("iou_") else re.sub(r"_\d+$", "", name)


def _ideal_value(task: str, metric: str, ideal_values: Mapping[str, float]) -> float | None:
    for key in (metric, metric.lower(), base_name(metric)):
        if key in ideal_values:
            return float(ideal_values[key])
    if base_name(metric) == "bias":
        if "@" in metric:
            return 1.0  # a thresholded bias is the categorical frequency bias
        raise ConfigError(
            f"Δm: {task}/{metric} is ambiguous (frequency bias, mean error or ratio); rename it "
            "(fbias, me, rb, bias_ratio) or pass ideal_values={'bias': <ideal value>}"
        )
    return None


def _lower_is_better(task: str, metric: str, rule: Collection[str] | Callable[[str], bool] | None) -> bool:
    if callable(rule):
        return bool(rule(metric))
    if rule is not None:
        return metric in rule or base_name(metric) in rule
    base = base_name(metric)
    if base in LOWER_IS_BETTER:
        return True
    if base in HIGHER_IS_BETTER:
        return False
    raise ConfigError(
        f"Δm: direction of {task}/{metric} is unknown; pass lower_is_better (a set of metric names "
        "or a callable) that covers it"
    )


def _value(results: Results, which: str, task: str, metric: str) -> float:
    if task not in results:
        raise ConfigError(f"Δm: {which} results have no task {task!r}; tasks present: {sorted(results)}")
    if metric not in results[task]:
        raise ConfigError(
            f"Δm: {which} results for task {task!r} have no metric {metric!r}; present: {sorted(results[task])}"
        )
    value = float(results[task][metric])
    if not math.isfinite(value):
        raise ValueError(f"Δm: {which} {task}/{metric} = {value}; Δm needs finite values")
    return value


def _selection(baseline: Results, metrics: Mapping[str, str | list[str]] | None, variant: str) -> list[tuple[str, str]]:
    if metrics is None:
        chosen = {task: list(values) for task, values in baseline.items()}
    else:
        chosen = {task: [names] if isinstance(names, str) else list(names) for task, names in metrics.items()}
    if not chosen:
        raise ConfigError("Δm: no tasks selected; pass baseline results or metrics={task: [metric, ...]}")
    for task, names in chosen.items():
        if not names:
            raise ConfigError(f"Δm: no metric selected for task {task!r}")
        if variant == "per_task" and len(names) != 1:
            raise ConfigError(
                f"Δm per_task uses exactly one metric per task, task {task!r} has {names}; "
                "pass metrics={task: [metric]} or use variant='per_metric'"
            )
    return [(task, name) for task, names in chosen.items() for name in names]


def badness(
    task: str,
    metric: str,
    value: float,
    lower_is_better: Collection[str] | Callable[[str], bool] | None = None,
    ideal_values: Mapping[str, float] | None = None,
) -> float:
    """``value`` turned into a number that grows as the metric gets worse: the value itself when
    lower is better, its negative when higher is better, |value − ideal| for bias-type metrics.
    Differences of badness compare two results of one metric with the sign settled."""
    ideal = _ideal_value(task, metric, IDEAL_VALUES if ideal_values is None else ideal_values)
    if ideal is not None:
        return abs(float(value) - ideal)
    return float(value) if _lower_is_better(task, metric, lower_is_better) else -float(value)


def relative_gains(
    mtl: Results,
    baseline: Results,
    metrics: Mapping[str, str | list[str]] | None = None,
    lower_is_better: Collection[str] | Callable[[str], bool] | None = None,
    ideal_values: Mapping[str, float] | None = None,
) -> dict[tuple[str, str], float]:
    """Signed relative gain in percent per (task, metric); positive = multi-task model better.

    ``metrics=None`` selects every metric of every task in ``baseline``.
    """
    gains = {}
    for task, metric in _selection(baseline, metrics, "per_metric"):
        b = badness(task, metric, _value(baseline, "baseline", task, metric), lower_is_better, ideal_values)
        m = badness(task, metric, _value(mtl, "multi-task", task, metric), lower_is_better, ideal_values)
        if b == 0:
            ideal = _ideal_value(task, metric, IDEAL_VALUES if ideal_values is None else ideal_values)
            at = f"at its ideal value {ideal}" if ideal is not None else "0"
            raise ValueError(f"Δm: baseline {task}/{metric} is {at}; the relative change is undefined, drop this metric")
        gains[(task, metric)] = -(m - b) / abs(b) * 100.0
    return gains


def delta_m(
    mtl: Results,
    baseline: Results,
    metrics: Mapping[str, str | list[str]] | None = None,
    variant: str = "per_task",
    lower_is_better: Collection[str] | Callable[[str], bool] | None = None,
    ideal_values: Mapping[str, float] | None = None,
) -> float:
    """Δm in percent of ``mtl`` against single-task ``baseline`` ({task: {metric: value}}).

    ``metrics`` ({task: [metric]}) selects the metrics (all of the baseline's if None);
    ``variant`` is "per_task" (one metric per task) or "per_metric" (mean over all K);
    ``lower_is_better`` (set of names or callable name -> bool) replaces the built-in tables;
    ``ideal_values`` ({name: ideal}) replaces ``IDEAL_VALUES`` for bias-type metrics.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"Δm: variant {variant!r} is not supported; choose one of {', '.join(VARIANTS)}")
    _selection(baseline, metrics, variant)  # per_task: one metric per task, checked up front
    gains = relative_gains(mtl, baseline, metrics, lower_is_better, ideal_values)
    return sum(gains.values()) / len(gains)
