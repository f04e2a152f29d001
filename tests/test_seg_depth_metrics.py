"""Segmentation and depth metrics against hand-computed values; dataset-level accumulation."""

import math

import pytest
import torch

from mtdense.metrics.depth import DepthMetrics
from mtdense.metrics.segmentation import SegmentationMetrics
from mtdense.registry import METRICS
from mtdense.errors import ConfigError

# (target, prediction) pairs; last column is an ignored pixel (target 255, valid False).
TARGET = torch.tensor([[[0, 0, 1, 1, 255], [2, 2, 2, 1, 255]]])
PRED = torch.tensor([[[0, 1, 1, 1, 0], [2, 0, 2, 2, 3]]])
VALID = TARGET != 255
# confusion (rows target): [[1,1,0],[0,2,1],[1,0,2]] -> IoU = 1/3, 2/4, 2/4; accuracy 5/8


def test_segmentation_hand_computed():
    m = SegmentationMetrics(num_classes=4)
    m.update(PRED, TARGET, VALID)
    out = m.compute()
    assert m.confusion[:3, :3].tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert out["iou_0"].item() == pytest.approx(1 / 3)
    assert out["iou_1"].item() == out["iou_2"].item() == pytest.approx(0.5)
    assert math.isnan(out["iou_3"].item())  # class 3 never in GT or prediction at valid pixels
    assert out["miou"].item() == pytest.approx(4 / 9)
    assert out["pixel_acc"].item() == pytest.approx(5 / 8)
    assert "jaccard" not in out


def test_segmentation_class_only_predicted_counts():
    m = SegmentationMetrics(num_classes=3)
    m.update(torch.tensor([[[2, 0]]]), torch.tensor([[[0, 0]]]), torch.ones(1, 1, 2, dtype=torch.bool))
    out = m.compute()  # class 2: predicted once, never in GT -> IoU 0, included in mIoU
    assert out["iou_2"].item() == 0.0 and math.isnan(out["iou_1"].item())
    assert out["miou"].item() == pytest.approx((0.5 + 0.0) / 2)


def test_binary_jaccard():
    m = METRICS.build({"type": "segmentation"}, num_classes=2)
    m.update(torch.tensor([[1, 0, 0, 1, 1]]), torch.tensor([[1, 1, 0, 0, 1]]), torch.ones(1, 5, dtype=torch.bool))
    assert m.compute()["jaccard"].item() == pytest.approx(2 / 4)  # TP 2, FP 1, FN 1


def test_segmentation_multi_update_and_merge_equal_single():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randint(0, 5, (6, 7, 9), generator=g), torch.randint(0, 5, (6, 7, 9), generator=g)
    valid = torch.rand(6, 7, 9, generator=g) > 0.3
    single, parts, other = (SegmentationMetrics(5) for _ in range(3))
    single.update(pred, target, valid)
    parts.update(pred[:2], target[:2], valid[:2])
    parts.update(pred[2:], target[2:], valid[2:])
    other.update(pred[2:], target[2:], valid[2:])
    merged = SegmentationMetrics(5)
    merged.update(pred[:2], target[:2], valid[:2])
    merged.merge_state(other)  # what the DDP "sum" reduction does across ranks
    for m in (parts, merged):
        assert torch.equal(m.confusion, single.confusion)
        assert m.compute()["miou"].item() == single.compute()["miou"].item()


def test_segmentation_rejects_bad_input():
    m = SegmentationMetrics(3)
    with pytest.raises(ValueError, match="outside"):
        m.update(torch.tensor([[3]]), torch.tensor([[0]]), torch.tensor([[True]]))
    with pytest.raises(ValueError, match="same shape"):
        m.update(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ConfigError):
        SegmentationMetrics(1)


# Depth: evaluated pairs (gt, pred) = (2, 1), (4, 4), (10, 20), (50, 200 -> clamped 80);
# excluded: gt 100 > max_depth, gt 0 (<= min_depth), gt 5 but valid False.
GT = torch.tensor([[[2.0, 4.0, 10.0, 50.0], [100.0, 0.0, 5.0, 4.0]]])
PD = torch.tensor([[[1.0, 4.0, 20.0, 200.0], [50.0, 3.0, 1.0, 4.0]]])
VD = torch.tensor([[[True, True, True, True], [True, True, False, False]]])


def test_depth_hand_computed():
    m = DepthMetrics(min_depth=1e-3, max_depth=80.0)
    m.update(PD, GT, VD)
    out = m.compute()
    assert m.count.item() == 4
    assert out["abs_rel"].item() == pytest.approx((0.5 + 0 + 1.0 + 0.6) / 4)
    assert out["sq_rel"].item() == pytest.approx((0.5 + 0 + 10.0 + 18.0) / 4)
    assert out["rmse"].item() == pytest.approx(math.sqrt((1 + 0 + 100 + 900) / 4))
    log_sq = 2 * math.log(2) ** 2 + math.log(1.6) ** 2
    assert out["rmse_log"].item() == pytest.approx(math.sqrt(log_sq / 4))
    # ratios 2, 1, 2, 1.6 against thresholds 1.25, 1.5625, 1.953125
    assert [out[f"delta{k}"].item() for k in (1, 2, 3)] == [0.25, 0.25, 0.5]


def test_depth_range_is_half_open_and_pred_clamped_below():
    m = DepthMetrics(min_depth=1.0, max_depth=80.0)
    m.update(torch.tensor([[5.0, 2.0, -3.0]]), torch.tensor([[1.0, 80.0, 2.0]]), torch.ones(1, 3, dtype=torch.bool))
    # gt 1.0 excluded (not > min_depth), gt 80 kept; pred -3 -> 1.0
    assert m.count.item() == 2
    assert m.compute()["abs_rel"].item() == pytest.approx((78 / 80 + 1 / 2) / 2)


def test_depth_multi_update_equals_single_and_empty_is_nan():
    g = torch.Generator().manual_seed(1)
    gt, pred = torch.rand(4, 5, 6, generator=g) * 90, torch.rand(4, 5, 6, generator=g) * 90
    valid = torch.rand(4, 5, 6, generator=g) > 0.2
    single, parts = DepthMetrics(), DepthMetrics()
    single.update(pred, gt, valid)
    for i in range(4):
        parts.update(pred[i : i + 1], gt[i : i + 1], valid[i : i + 1])
    a, b = single.compute(), parts.compute()
    for key in a:
        assert b[key].item() == pytest.approx(a[key].item(), rel=1e-12)
    empty = DepthMetrics()
    empty.update(pred, gt, torch.zeros_like(valid))
    assert math.isnan(empty.compute()["rmse"].item())
