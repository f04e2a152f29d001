"""Verification scores checked on hand-computed contingency tables."""

import numpy as np
import pytest

from mtdense.domains.precip.verification import contingency_scores, continuous_scores, probability_scores


def test_contingency_scores_hand_computed():
    # a=3 hits, b=1 false alarm, c=2 misses, d=4 correct negatives (n=10)
    obs = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], float)
    pred = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], float)
    s = contingency_scores(obs, pred, 0.5)
    assert s["pod"] == pytest.approx(3 / 5) and s["far"] == pytest.approx(1 / 4)
    assert s["csi"] == pytest.approx(3 / 6) and s["f1"] == pytest.approx(6 / 9) and s["bias"] == pytest.approx(4 / 5)
    # HSS = 2(ad - bc)/((a+c)(c+d) + (a+b)(b+d)) = 2(12-2)/(5*6 + 4*5) = 20/50
    assert s["hss"] == pytest.approx(0.4)
    # a_r = 4*5/10 = 2; ETS = (3-2)/(6-2)
    assert s["ets"] == pytest.approx(0.25)


def test_continuous_and_probability_scores():
    c = continuous_scores(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert c == pytest.approx({"n": 3.0, "cc": 1.0, "rmse": 1.0, "bias": 1.0})
    event = np.array([0, 0, 1, 1], bool)
    p = probability_scores(event, np.array([0.1, 0.4, 0.35, 0.8]), bins=2)
    assert p["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert p["roc_auc"] == pytest.approx(0.75)       # 3 of 4 (event, non-event) pairs ranked right
    assert p["reliability"]["count"] == [3, 1] and p["reliability"]["observed"] == pytest.approx([1 / 3, 1.0])
