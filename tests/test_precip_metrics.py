"""Precipitation metrics against hand-computed contingency tables and continuous scores."""

import math

import numpy as np
import pytest
import torch

from mtdense.metrics.precipitation import Precipitation, PrecipCategorical, PrecipContinuous
from mtdense.registry import METRICS
from mtdense.errors import ConfigError

# six valid pixels and one invalid pixel (pred 100, target 0) that must be ignored
PRED = torch.tensor([[0.0, 0.6, 3.0, 12.0, 1.0, 6.0, 100.0]])
TARG = torch.tensor([[0.4, 0.5, 1.0, 11.0, 2.5, 0.0, 0.0]])
VALID = torch.tensor([[True] * 6 + [False]])

# by hand, event = value >= threshold (target 0.5 at pixel 1 is an event at 0.5 mm/h)
#            thr:  H  M  F  Z
TABLE = {0.5: (4, 0, 1, 1), 2.0: (1, 1, 2, 2), 5.0: (1, 0, 1, 4), 10.0: (1, 0, 0, 5)}
EXPECTED = {
    "pod@0.5": 1.0, "far@0.5": 0.2, "csi@0.5": 0.8, "f1@0.5": 8 / 9, "bias@0.5": 1.25,
    "pod@2": 0.5, "far@2": 2 / 3, "csi@2": 0.25, "f1@2": 0.4, "bias@2": 1.5,
    "pod@5": 1.0, "far@5": 0.5, "csi@5": 0.5, "f1@5": 2 / 3, "bias@5": 2.0,
    "pod@10": 1.0, "far@10": 0.0, "csi@10": 1.0, "f1@10": 1.0, "bias@10": 1.0,
    "nonfinite_pred": 0.0,  # no NaN/Inf prediction at a valid pixel
}
# differences p - o = [-0.4, 0.1, 2, 1, -1.5, 6]
CONTINUOUS = {"me": 7.2 / 6, "mae": 11.0 / 6, "rmse": math.sqrt(43.42 / 6), "rbias": 100 * 7.2 / 15.4,
              "cc": float(np.corrcoef([0, 0.6, 3, 12, 1, 6], [0.4, 0.5, 1, 11, 2.5, 0])[0, 1]), "nonfinite_pred": 0.0}


def test_contingency_table_and_scores():
    m = PrecipCategorical()
    m.update(PRED, TARG, VALID)
    for i, thr in enumerate((0.5, 2.0, 5.0, 10.0)):
        got = (m.hits[i], m.misses[i], m.false_alarms[i], m.correct_negatives[i])
        assert tuple(int(x) for x in got) == TABLE[thr]
    scores = m.compute()
    assert set(scores) == set(EXPECTED)
    for name, value in EXPECTED.items():
        assert float(scores[name]) == pytest.approx(value), name


def test_continuous_scores():
    m = PrecipContinuous()
    m.update(PRED, TARG, VALID)
    scores = m.compute()
    assert set(scores) == set(CONTINUOUS)
    for name, value in CONTINUOUS.items():
        assert float(scores[name]) == pytest.approx(value, rel=1e-6), name
    assert m.n.dtype == torch.float64


def test_several_updates_equal_one():
    one, split = Precipitation(), Precipitation()
    one.update(PRED, TARG, VALID)
    for a, b in ((0, 2), (2, 3), (3, 7)):
        split.update(PRED[:, a:b], TARG[:, a:b], VALID[:, a:b])
    r1, r2 = one.compute(), split.compute()
    assert set(r1) == set(EXPECTED) | set(CONTINUOUS)
    for name in r1:
        assert float(r1[name]) == pytest.approx(float(r2[name]), rel=1e-12), name
    split.reset()
    split.update(PRED, TARG, VALID)
    assert float(split.compute()["csi@2"]) == pytest.approx(0.25)


def test_batched_images_and_undefined_scores():
    m = PrecipCategorical(thresholds=[1.0])
    pred = torch.zeros(2, 3, 4)                               # never predicts rain
    target = torch.zeros(2, 3, 4)
    target[1, 2, 3] = 4.0
    m.update(pred, target, torch.ones(2, 3, 4, dtype=torch.bool))
    s = m.compute()
    assert float(s["pod@1"]) == 0.0 and math.isnan(float(s["far@1"])) and float(s["bias@1"]) == 0.0
    assert int(m.correct_negatives[0]) == 23


def test_registry_and_bad_thresholds():
    m = METRICS.build({"type": "precip_categorical", "thresholds": [0.1, 10]})
    m.update(PRED, TARG, VALID)
    assert set(m.compute()) == {f"{s}@{t}" for s in ("pod", "far", "csi", "f1", "bias") for t in ("0.1", "10")} | {
        "nonfinite_pred"}
    assert isinstance(METRICS.build("precipitation"), Precipitation)
    with pytest.raises(ConfigError, match="thresholds"):
        PrecipCategorical(thresholds=[0.0, 1.0])
