"""Conformance of metrics: ``torchmetrics.Metric`` subclasses updated as
``update(pred, target, valid)`` with B×H×W tensors — class ids when the metric takes the runtime
argument ``num_classes`` (the kit passes 3, or ``num_classes`` from ``conformance_kwargs``, e.g. 2
for a binary-only metric), values otherwise (the kit feeds 0.5–10) — and
``compute()`` returning ``{name: scalar}``.

Checked: named scalars; two updates on halves of a batch equal one update on the whole; two
"ranks" reduced with each state's ``dist_reduce_fx`` (as DDP does) equal one process on all the
data; pixels whose validity mask is false do not count; ``reset`` forgets everything.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

from mtdense.registry import METRICS

B, H, W = 4, 6, 10


def _build(name: str, options: dict) -> tuple[Metric, int]:
    """The metric and its number of classes (0 for a metric of values)."""
    options = dict(options)
    classes = int(options.pop("num_classes", 3)) if "num_classes" in METRICS.options(name) else 0
    runtime = {"num_classes": classes} if classes else {}
    metric = METRICS.build({"type": name, **options}, "tasks.subject.metrics.0", **runtime)
    assert isinstance(metric, Metric), f"a metric must be a torchmetrics.Metric, got {type(metric).__name__}"
    return metric, classes


def _data(classes: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    if classes:
        target = torch.randint(0, classes, (B, H, W), generator=gen)
        pred = torch.where(torch.rand(B, H, W, generator=gen) < 0.7, target,
                           torch.randint(0, classes, (B, H, W), generator=gen))
    else:
        target = 0.5 + 9.5 * torch.rand(B, H, W, generator=gen)
        pred = (target * (0.7 + 0.6 * torch.rand(B, H, W, generator=gen))).clamp(0.5, 10)
    valid = torch.rand(B, H, W, generator=gen) > 0.2
    return pred, target, valid


def _values(metric: Metric) -> dict[str, float]:
    out = metric.compute()
    assert isinstance(out, dict) and out, f"compute() must return a non-empty dict, got {type(out).__name__}"
    values = {}
    for key, value in out.items():
        assert isinstance(key, str), f"metric name {key!r} is not a string"
        assert not isinstance(value, torch.Tensor) or value.numel() == 1, f"{key}: not a scalar, shape {tuple(value.shape)}"
        values[key] = float(value)
    return values


def _assert_same(a: dict[str, float], b: dict[str, float], what: str) -> None:
    assert a.keys() == b.keys(), f"{what}: metric names differ: {sorted(a)} vs {sorted(b)}"
    for key in a:
        same = (math.isnan(a[key]) and math.isnan(b[key])) or math.isclose(a[key], b[key], rel_tol=1e-6, abs_tol=1e-9)
        assert same, f"{what}: {key} = {b[key]} instead of {a[key]}"


def _whole(name: str, options: dict) -> dict[str, float]:
    metric, classes = _build(name, options)
    metric.update(*_data(classes))
    return _values(metric)


def check_named_scalars(name: str, options: dict) -> None:
    values = _whole(name, options)
    assert any(math.isfinite(v) for v in values.values()), f"no finite value on ordinary data: {values}"


def check_split_updates(name: str, options: dict) -> None:
    metric, classes = _build(name, options)
    for part in zip(*(x.chunk(2) for x in _data(classes))):
        metric.update(*part)
    _assert_same(_whole(name, options), _values(metric), "two updates on halves")


def _reduce_like_ddp(a: Metric, b: Metric) -> None:
    """Put into ``a`` the states DDP would give after reducing ``a`` and ``b`` (two ranks)."""
    for ma, mb in zip(a.modules(), b.modules()):
        if not isinstance(ma, Metric):
            continue
        for state, reduce in ma._reductions.items():
            va, vb = getattr(ma, state), getattr(mb, state)
            if isinstance(va, list):
                setattr(ma, state, va + vb)
            else:
                assert reduce is not None, f"state {state!r} has no dist_reduce_fx; DDP could not combine it"
                setattr(ma, state, reduce(torch.stack([va, vb])))


def check_ddp_reduction(name: str, options: dict) -> None:
    (a, classes), (b, _) = _build(name, options), _build(name, options)
    halves = list(zip(*(x.chunk(2) for x in _data(classes))))
    a.update(*halves[0])
    b.update(*halves[1])
    _reduce_like_ddp(a, b)
    _assert_same(_whole(name, options), _values(a), "two ranks reduced with dist_reduce_fx")


def check_invalid_ignored(name: str, options: dict) -> None:
    metric, classes = _build(name, options)
    pred, target, valid = _data(classes)
    other_pred, other_target, _ = _data(classes, seed=3)
    metric.update(torch.where(valid, pred, other_pred), torch.where(valid, target, other_target), valid)
    _assert_same(_whole(name, options), _values(metric), "values at invalid pixels changed")


def check_reset(name: str, options: dict) -> None:
    metric, classes = _build(name, options)
    metric.update(*_data(classes, seed=5))
    metric.compute()
    metric.reset()
    metric.update(*_data(classes))
    _assert_same(_whole(name, options), _values(metric), "after reset")


def metric_checks(name: str, options: dict, workdir) -> list:
    return [("compute gives named scalars", lambda: check_named_scalars(name, options)),
            ("two updates = one", lambda: check_split_updates(name, options)),
            ("DDP reduction = one process", lambda: check_ddp_reduction(name, options)),
            ("invalid pixels are ignored", lambda: check_invalid_ignored(name, options)),
            ("reset", lambda: check_reset(name, options))]
