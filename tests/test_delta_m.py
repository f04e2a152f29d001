"""Δm against hand-computed examples (made-up metric values, not results of any model)."""

from __future__ import annotations

import pytest
import torch

from mtdense.metrics.delta_m import delta_m, relative_gains
from mtdense.errors import ConfigError

BASELINE = {"seg": {"miou": 0.50}, "depth": {"rmse": 4.0, "absrel": 0.20}}
MTL = {"seg": {"miou": 0.55}, "depth": {"rmse": 3.0, "absrel": 0.25}}


def test_per_task_one_metric_per_task():
    # seg: (0.55 - 0.50) / 0.50 = +10 %; depth rmse: -(3 - 4) / 4 = +25 %; mean 17.5 %
    assert delta_m(MTL, BASELINE, {"seg": ["miou"], "depth": "rmse"}) == pytest.approx(17.5)


def test_per_metric_averages_all_k_metrics():
    # +10 (miou), +25 (rmse), -(0.25 - 0.20) / 0.20 = -25 (absrel): mean 10 / 3
    assert delta_m(MTL, BASELINE, variant="per_metric") == pytest.approx(10 / 3)
    gains = relative_gains(MTL, BASELINE)
    assert gains == pytest.approx({("seg", "miou"): 10.0, ("depth", "rmse"): 25.0, ("depth", "absrel"): -25.0})


def test_vandenhende_style_five_task_example():
    """Same arithmetic as evaluate_utils: higher-better tasks +, the lower-better one −."""
    base = {"edge": {"odsf": 68.6}, "seg": {"miou": 62.45}, "normals": {"mean_angle": 16.93}}
    mtl = {"edge": {"odsf": 68.6 * 1.02}, "seg": {"miou": 62.45 * 0.97}, "normals": {"mean_angle": 16.93 * 1.03}}
    # (+2 − 3 − 3) / 3
    assert delta_m(mtl, base) == pytest.approx(-4 / 3)


def test_precipitation_thresholds_and_bias_type_metrics():
    base = {"rain": {"csi@0.5": 0.30, "far@2": 0.40, "fbias@2": 1.2, "rb": -10.0, "bias@5": 0.8}}
    mtl = {"rain": {"csi@0.5": 0.33, "far@2": 0.30, "fbias@2": 0.9, "rb": 5.0, "bias@5": 1.1}}
    gains = relative_gains(mtl, base)
    # csi +10; far -(0.3-0.4)/0.4 = +25; fbias |0.9-1| vs |1.2-1|: -(0.1-0.2)/0.2 = +50;
    # rb |5| vs |-10|: +50; bias@5 (frequency bias) |0.1| vs |0.2|: +50
    assert gains == pytest.approx(
        {("rain", "csi@0.5"): 10.0, ("rain", "far@2"): 25.0, ("rain", "fbias@2"): 50.0,
         ("rain", "rb"): 50.0, ("rain", "bias@5"): 50.0}
    )
    assert delta_m(mtl, base, variant="per_metric") == pytest.approx(37.0)


def test_bias_moving_away_from_ideal_is_a_loss_in_either_direction():
    base = {"rain": {"fbias": 1.1}}
    assert delta_m({"rain": {"fbias": 0.7}}, base) == pytest.approx(-200.0)  # |−0.3| vs |0.1|
    assert delta_m({"rain": {"fbias": 1.3}}, base) == pytest.approx(-200.0)


def test_custom_direction_rules_and_tensor_values():
    base = {"a": {"err": 2.0, "score": 4.0}}
    mtl = {"a": {"err": torch.tensor(1.0), "score": torch.tensor(5.0)}}
    # err lower-better: +50; score higher-better: +25
    assert delta_m(mtl, base, variant="per_metric", lower_is_better={"err"}) == pytest.approx(37.5)
    assert delta_m(mtl, base, variant="per_metric", lower_is_better=lambda m: m == "err") == pytest.approx(37.5)
    assert delta_m({"r": {"bias": 0.5}}, {"r": {"bias": 1.0}}, ideal_values={"bias": 0.0}) == pytest.approx(50.0)


@pytest.mark.parametrize(
    "mtl,base,kwargs,error,message",
    [
        (MTL, BASELINE, {}, ConfigError, r"task 'depth' has \['rmse', 'absrel'\]"),
        (MTL, BASELINE, {"variant": "mean"}, ConfigError, "variant 'mean'"),
        ({"seg": {"miou": 0.5}}, BASELINE, {"variant": "per_metric"}, ConfigError, "multi-task results have no task 'depth'"),
        (MTL, BASELINE, {"metrics": {"depth": ["delta1"]}}, ConfigError, "baseline results for task 'depth' have no metric 'delta1'"),
        ({"t": {"odd": 1.0}}, {"t": {"odd": 2.0}}, {}, ConfigError, "direction of t/odd is unknown"),
        ({"r": {"bias": 1.0}}, {"r": {"bias": 1.1}}, {}, ConfigError, "r/bias is ambiguous"),
        ({"t": {"rmse": 1.0}}, {"t": {"rmse": 0.0}}, {}, ValueError, "baseline t/rmse is 0"),
        ({"r": {"fbias": 0.9}}, {"r": {"fbias": 1.0}}, {}, ValueError, "at its ideal value 1.0"),
        ({"t": {"rmse": float("nan")}}, {"t": {"rmse": 1.0}}, {}, ValueError, "multi-task t/rmse = nan"),
    ],
)
def test_errors_name_the_task_and_metric(mtl, base, kwargs, error, message):
    with pytest.raises(error, match=message):
        delta_m(mtl, base, **kwargs)


def test_badness_orients_every_metric_family():
    from mtdense.metrics.delta_m import badness

    assert badness("t", "rmse", 2.0) == 2.0
    assert badness("t", "f1@0.5", 0.6) == -0.6
    assert badness("t", "pixel_acc", 0.9) == -0.9  # the segmentation metric's own key
    assert badness("t", "iou_2", 0.4) == -0.4  # per-class IoU
    assert badness("t", "fbias@2", 0.7) == pytest.approx(0.3)
    assert badness("t", "rb", -12.0) == 12.0
