"""Tolerant line-detection metric and soft clDice loss, against hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from mtdense.errors import ConfigError
from mtdense.losses.thin_structures import ClDiceLoss, soft_cldice, soft_skeleton
from mtdense.metrics.line_detection import LineDetection


def line_image() -> torch.Tensor:
    """5×5, true line along row 2."""
    t = torch.zeros(1, 5, 5, dtype=torch.long)
    t[0, 2] = 1
    return t


def test_shifted_line_is_missed_exactly_and_found_with_one_pixel_tolerance():
    pred = torch.zeros(1, 5, 5, dtype=torch.long)
    pred[0, 3] = 1
    m = LineDetection(tolerances=[0, 1])
    m.update(pred, line_image(), torch.ones(1, 5, 5, dtype=torch.bool))
    out = {k: float(v) for k, v in m.compute().items()}
    assert out["precision@0"] == out["recall@0"] == out["f1@0"] == 0.0
    assert out["precision@1"] == out["recall@1"] == out["f1@1"] == 1.0


def partial_prediction() -> torch.Tensor:
    """Row 2, columns 0-2, plus a stray pixel (0, 4) two pixels above the line's end."""
    pred = torch.zeros(1, 5, 5, dtype=torch.long)
    pred[0, 2, :3] = 1
    pred[0, 0, 4] = 1
    return pred


def test_partial_prediction_hand_computed():
    m = LineDetection(tolerances=[0, 1, 2])
    m.update(partial_prediction(), line_image(), torch.ones(1, 5, 5, dtype=torch.bool))
    out = {k: float(v) for k, v in m.compute().items()}
    # k=0: 3 of 4 predicted pixels are on the line; 3 of 5 line pixels are predicted
    assert out["precision@0"] == pytest.approx(0.75) and out["recall@0"] == pytest.approx(0.6)
    assert out["f1@0"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    # k=1: the stray pixel is 2 px from the line; line pixel (2,3) is 1 px from (2,2), (2,4) is 2 px away
    assert out["precision@1"] == pytest.approx(0.75) and out["recall@1"] == pytest.approx(0.8)
    assert out["precision@2"] == 1.0 and out["recall@2"] == 1.0


def test_counts_are_dataset_level_and_respect_validity():
    m = LineDetection(tolerances=[0])
    empty_truth = torch.zeros(1, 5, 5, dtype=torch.long)
    stray = torch.zeros(1, 5, 5, dtype=torch.long)
    stray[0, 0, :2] = 1  # two false positives in an image without any line
    pred = torch.cat([partial_prediction(), stray])
    m.update(pred, torch.cat([line_image(), empty_truth]), torch.ones(2, 5, 5, dtype=torch.bool))
    out = m.compute()
    assert float(out["precision@0"]) == pytest.approx(3 / 6) and float(out["recall@0"]) == pytest.approx(3 / 5)
    m = LineDetection(tolerances=[0])
    valid = torch.ones(1, 5, 5, dtype=torch.bool)
    valid[0, 0, 4] = False  # the stray pixel is not counted
    m.update(partial_prediction(), line_image(), valid)
    assert float(m.compute()["precision@0"]) == 1.0


def test_metric_rejects_bad_tolerances():
    with pytest.raises(ConfigError, match="tolerances"):
        LineDetection(tolerances=[-1])


def test_soft_skeleton_of_a_bar_is_its_centre_line():
    bar = torch.zeros(1, 1, 9, 12)
    bar[0, 0, 3:6, 1:11] = 1.0  # 3 px thick
    skel = soft_skeleton(bar, iterations=3)
    assert skel[0, 0, 4, 2:10].min() == 1.0
    assert skel[0, 0, 3].sum() == 0 and skel[0, 0, 5].sum() == 0
    assert soft_cldice(bar, bar) == pytest.approx(1.0)


def test_cldice_loss_perfect_prediction_near_zero_and_ignores_invalid_pixels():
    target = line_image()
    logits = torch.stack([1 - target, target], dim=1).float() * 20 - 10
    valid = torch.ones(1, 5, 5, dtype=torch.bool)
    loss = ClDiceLoss(alpha=0.5)
    assert float(loss(logits, target, valid)) < 1e-3
    shifted = torch.roll(logits, 1, dims=2)
    assert float(loss(shifted, target, valid)) > 0.5
    valid[0, 0] = False
    noisy = logits.clone()
    noisy[0, :, 0] = torch.randn(2, 5) * 5
    assert float(loss(noisy, target, valid)) == pytest.approx(float(loss(logits, target, valid)), abs=1e-6)
    logits.requires_grad_(True)
    loss(logits * 0.1, target, valid).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_cldice_loss_rejects_bad_options():
    with pytest.raises(ConfigError, match="alpha"):
        ClDiceLoss(alpha=2.0)
