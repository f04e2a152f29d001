"""Cloud metrics against hand-computed tables; the threshold baseline on hand-made spectra."""

from __future__ import annotations

import math

import pytest
import torch

from mtdense.domains.clouds.metrics import CloudMetrics
from mtdense.domains.clouds.threshold_baseline import threshold_mask
from mtdense.registry import METRICS


def test_dataset_level_vs_mean_chip_jaccard_and_clear_chips():
    # chip 0: target 1 1 0 0, pred 1 0 1 0 → TP 1, FP 1, FN 1, TN 1, J = 1/3
    # chip 1: target 1 1 1 1, pred 1 1 1 1 → TP 4, J = 1
    # chip 2: all clear, predicted clear → empty union, scored 1, counted as a clear chip
    # chip 3: clear target, pred 1 at one pixel which is invalid → ignored; valid pixels TN 3
    target = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]).view(4, 2, 2)
    pred = torch.tensor([[1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]]).view(4, 2, 2)
    valid = torch.ones(4, 2, 2, dtype=torch.bool)
    valid[3, 0, 0] = False
    m = METRICS.build({"type": "cloud"}, "m", num_classes=2)
    m.update(pred[:2], target[:2], valid[:2])  # two batches: states are sums
    m.update(pred[2:], target[2:], valid[2:])
    out = {k: float(v) for k, v in m.compute().items()}
    assert out["jaccard"] == pytest.approx(5 / 7)  # (1 + 4) / (1+1+1 + 4)
    assert out["mean_chip_jaccard"] == pytest.approx((1 / 3 + 1 + 1 + 1) / 4)
    assert out["mean_cloudy_chip_jaccard"] == pytest.approx((1 / 3 + 1) / 2)
    assert out["clear_chips"] == 2
    assert out["precision"] == pytest.approx(5 / 6) and out["recall"] == pytest.approx(5 / 6)
    assert out["specificity"] == pytest.approx(8 / 9)  # TN 1 + 0 + 4 + 3, FP 1
    assert out["accuracy"] == pytest.approx(13 / 15)


def test_all_clear_set_has_nan_jaccard_but_perfect_chip_mean():
    m = CloudMetrics()
    zeros = torch.zeros(2, 3, 3, dtype=torch.long)
    m.update(zeros, zeros, torch.ones(2, 3, 3, dtype=torch.bool))
    out = m.compute()
    assert math.isnan(float(out["jaccard"])) and math.isnan(float(out["precision"]))
    assert float(out["mean_chip_jaccard"]) == 1.0 and float(out["clear_chips"]) == 2
    assert float(out["specificity"]) == 1.0


def test_chip_without_valid_pixels_is_skipped():
    m = CloudMetrics()
    m.update(torch.ones(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long),
             torch.zeros(1, 2, 2, dtype=torch.bool))
    assert float(m.chips) == 0 and math.isnan(float(m.compute()["mean_chip_jaccard"]))


def test_threshold_rule_on_hand_made_spectra():
    # columns: thick cloud, vegetation, desert, snow (a known false alarm without SWIR)
    spectra = torch.tensor([[0.70, 0.69, 0.68, 0.65], [0.04, 0.08, 0.05, 0.35],
                            [0.27, 0.36, 0.45, 0.48], [0.88, 0.87, 0.85, 0.70]])  # blue, green, red, nir
    refl = spectra.T.reshape(1, 4, 1, 4)
    names = ["B02", "B03", "B04", "B08"]
    assert threshold_mask(refl, names).tolist() == [[[1, 0, 0, 1]]]
    landsat_order = refl[:, [2, 1, 0, 3]]
    assert threshold_mask(landsat_order, ["red", "green", "blue", "nir"]).tolist() == [[[1, 0, 0, 1]]]
