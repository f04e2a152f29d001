"""MTCF-style classification–estimation consistency coupling, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mtdense.registry import COUPLINGS, TASKS
from mtdense.errors import ConfigError


def make(direction="estimation_teaches", thresholds=(0.5,), temperature=0.25):
    tasks = nn.ModuleDict({
        "rain_class": TASKS.build({"type": "threshold_classification", "target": "rain_rate", "thresholds": list(thresholds)},
                                  name="rain_class"),
        "rain_rate": TASKS.build({"type": "regression", "target": "rain_rate", "activation": "relu"}, name="rain_rate"),
    })
    c = COUPLINGS.build({"type": "class_estimate_consistency", "classification": "rain_class", "estimation": "rain_rate",
                         "temperature": temperature, "direction": direction}, "couplings.0", tasks=tasks)
    return c


def test_binary_case_is_bce_with_soft_threshold():
    c = make()
    rate = torch.tensor([[[0.0, 0.5, 2.0]]])            # B=1, H=1, W=3, mm/h
    logits = torch.tensor([[[[0.0, 1.0, -1.0]], [[0.0, -1.0, 2.0]]]])  # 2 classes
    loss = c({"rain_class": logits, "rain_rate": rate[:, None]}, {})
    expected = 0.0
    for r, (l0, l1) in zip([0.0, 0.5, 2.0], [(0.0, 0.0), (1.0, -1.0), (-1.0, 2.0)]):
        q = 1 / (1 + math.exp(-(math.log(r + 0.005) - math.log(0.5)) / 0.25))
        p = math.exp(l1) / (math.exp(l0) + math.exp(l1))
        expected += -(q * math.log(p) + (1 - q) * math.log(1 - p))
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)


def test_implied_distribution_is_a_distribution_and_sharpens():
    c = make(thresholds=(0.5, 2, 5, 10), temperature=0.1)
    q = c.implied_distribution(torch.tensor([[[0.0, 1.0, 3.0, 7.0, 30.0]]]))
    assert torch.allclose(q.sum(dim=1), torch.ones(1, 1, 5), atol=1e-6)
    assert q.argmax(dim=1).tolist() == [[[0, 1, 2, 3, 4]]]


def test_gradient_flows_to_classifier_only_by_default():
    c = make()
    logits = torch.zeros(1, 2, 2, 2, requires_grad=True)
    raw = torch.full((1, 1, 2, 2), 1.0, requires_grad=True)
    c({"rain_class": logits, "rain_rate": raw}, {}).backward()
    assert logits.grad.abs().sum() > 0
    assert raw.grad is None  # the estimate is the teacher: stop-gradient
    logits.grad = None
    both = make(direction="both")
    both({"rain_class": logits, "rain_rate": raw}, {}).backward()
    assert raw.grad is not None and raw.grad.abs().sum() > 0


def test_bad_task_names_are_config_errors():
    tasks = nn.ModuleDict({"a": TASKS.build({"type": "regression", "target": "x"}, name="a")})
    with pytest.raises(ConfigError, match="classification: 'b' is not a task"):
        COUPLINGS.build({"type": "class_estimate_consistency", "classification": "b", "estimation": "a"}, tasks=tasks)


def test_regression_prediction_cap_and_log1p_inverse():
    task = TASKS.build({"type": "regression", "target": "r", "target_transform": "log1p", "max_value": 300.0}, name="r")
    raw = torch.tensor([[[[0.0, math.log1p(5.0), 50.0]]]])
    assert torch.allclose(task.predict(raw), torch.tensor([[[0.0, 5.0, 300.0]]]), atol=1e-5)


@pytest.mark.parametrize("temperature", [0.1, 0.25, 1.0])
@pytest.mark.parametrize("thresholds", [(0.1,), (0.5, 2, 5, 10)])
def test_dry_estimate_implies_dry_class(temperature, thresholds):
    """Issue 9 §1.6: r̂ = 0 must imply "no rain" (the linear soft threshold gave P(rain) >= 0.27)."""
    c = make(thresholds=thresholds, temperature=temperature)
    q = c.implied_distribution(torch.zeros(1, 2, 2))
    assert float(q[:, 1:].sum(dim=1).max()) < 0.01
    at_threshold = c.implied_distribution(torch.full((1, 1, 1), float(thresholds[0])))
    assert float(at_threshold[:, 1:].sum()) == pytest.approx(0.5, abs=0.03)  # r̂ = τ_1: undecided


def test_consistency_does_not_push_a_confident_dry_classifier_towards_rain():
    c = make(thresholds=(0.1,), temperature=0.1)
    logits = torch.tensor([[[[4.0]], [[-4.0]]]], requires_grad=True)  # P(rain) = 3e-4 on a dry pixel
    c({"rain_class": logits, "rain_rate": torch.zeros(1, 1, 1, 1)}, {}).backward()
    assert float(logits.grad[0, 1]) > -1e-3  # gradient descent does not raise the rain logit


def test_validation_loss_weights_couplings_as_training_does():
    """val/loss = sum of task losses + weight_c * L_c (it used to add L_c unweighted, so the MTCF
    consistency term counted twice as much in model selection as in training)."""
    from mtdense.engine.evaluator import Evaluator
    from mtdense.engine.runtime import Runtime

    c = make()
    tasks = nn.ModuleDict({
        "rain_class": TASKS.build({"type": "threshold_classification", "target": "rain_rate", "thresholds": [0.5]},
                                  name="rain_class"),
        "rain_rate": TASKS.build({"type": "regression", "target": "rain_rate", "activation": "relu"}, name="rain_rate"),
    })

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Conv2d(1, 3, 1)

        def forward(self, x):
            y = self.w(x)
            return {"rain_class": y[:, :2], "rain_rate": y[:, 2:]}

    torch.manual_seed(0)
    batch = {"image": torch.randn(2, 1, 4, 4), "targets": {"rain_rate": torch.rand(2, 4, 4) * 3},
             "valid": {"rain_rate": torch.ones(2, 4, 4, dtype=torch.bool)}}
    got = Evaluator(Net(), tasks, nn.ModuleDict({"consistency": c}), {"consistency": 0.25},
                    Runtime("cpu")).run([batch], "val")
    parts = got["val/loss/rain_class"] + got["val/loss/rain_rate"]
    assert got["val/loss/consistency"] > 0
    assert got["val/loss"] == pytest.approx(parts + 0.25 * got["val/loss/consistency"], rel=1e-6)
