"""Distillation couplings (hand-computed), a multi-task teacher → student run, cached = on-the-fly."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from conftest import tiny_config
from mtdense.config import from_dict
from mtdense.data.normalization import dataset_normalization
from mtdense.domains.clouds.distillation import PixelKD, RegressionKD
from mtdense.domains.clouds.soft_targets import SoftTargetsAsTeacher, WithSoftTargets, cache_soft_targets
from mtdense.engine.teachers import CheckpointTeacher
from mtdense.engine.trainer import Trainer


class _Task(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target


TASKS = {"cloud": _Task("cloud"), "rate": _Task("rate")}


def _batch(teacher_cloud, teacher_rate=None, valid=None):
    shape = teacher_cloud.shape[:1] + teacher_cloud.shape[2:]
    valid = torch.ones(shape, dtype=torch.bool) if valid is None else valid
    out = {"cloud": teacher_cloud}
    if teacher_rate is not None:
        out["rate"] = teacher_rate
    return {"teacher": {"big": out}, "valid": {"cloud": valid, "rate": valid}}


def test_pixel_kd_matches_hinton_by_hand():
    t = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1)
    s = torch.zeros(1, 2, 1, 1)
    kd1 = PixelKD(TASKS, "cloud", "big", temperature=1.0)
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)  # KL(p_t || p_s)
    assert float(kd1({"cloud": s}, _batch(t))) == pytest.approx(expected, rel=1e-5)
    kd2 = PixelKD(TASKS, "cloud", "big", temperature=2.0)
    p = math.sqrt(3) / (1 + math.sqrt(3))  # softmax([0, ln 3] / 2)
    expected2 = 4 * ((1 - p) * math.log((1 - p) / 0.5) + p * math.log(p / 0.5))  # T² · KL
    assert float(kd2({"cloud": s}, _batch(t))) == pytest.approx(expected2, rel=1e-5)
    assert float(kd1({"cloud": t}, _batch(t))) == pytest.approx(0.0, abs=1e-7)
    # one sigmoid logit z ≡ two logits (0, z)
    z = torch.tensor([math.log(3.0)]).view(1, 1, 1, 1)
    assert float(kd1({"cloud": torch.zeros(1, 1, 1, 1)}, _batch(z))) == pytest.approx(expected, rel=1e-5)


def test_kd_excludes_invalid_pixels_and_is_zero_without_any():
    t = torch.tensor([[0.0, 0.0], [math.log(3.0), 5.0]]).view(1, 2, 1, 2)  # pixel 0: [0, ln3]; pixel 1: [0, 5]
    s = torch.zeros(1, 2, 1, 2)
    kd = PixelKD(TASKS, "cloud", "big", temperature=1.0)
    valid = torch.tensor([[[True, False]]])
    assert float(kd({"cloud": s}, _batch(t, valid=valid))) == pytest.approx(
        0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel=1e-5)
    none = torch.zeros(1, 1, 2, dtype=torch.bool)
    loss = kd({"cloud": s.requires_grad_()}, _batch(t, valid=none))
    assert float(loss.detach()) == 0.0 and torch.isfinite(loss)
    assert float(kd({"cloud": s}, {"valid": {"cloud": valid}})) == 0.0  # evaluation batch: no teacher


def test_regression_kd_by_hand():
    rate_t = torch.tensor([1.0, 3.0, 10.0]).view(1, 1, 1, 3)
    rate_s = torch.tensor([2.0, 1.0, 0.0]).view(1, 1, 1, 3)
    valid = torch.tensor([[[True, True, False]]])
    batch = _batch(torch.zeros(1, 2, 1, 3), rate_t, valid)
    assert float(RegressionKD(TASKS, "rate", "big")({"rate": rate_s}, batch)) == pytest.approx((1 + 4) / 2)
    assert float(RegressionKD(TASKS, "rate", "big", loss="l1")({"rate": rate_s}, batch)) == pytest.approx(1.5)


@pytest.fixture(scope="module")
def two_task_teacher(tmp_path_factory):
    """A tiny trained two-task model (segmentation + regression) saved as an mtdense checkpoint."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("teacher")
    cfg = tiny_config(run, max_epochs=2)
    cfg["model"]["backbone"]["width"] = 8
    Trainer(from_dict(cfg)).fit()
    return run, cfg


def _student_cfg(teacher_run, base_cfg, out):
    cfg = copy.deepcopy(base_cfg)
    cfg["trainer"] = {**cfg["trainer"], "out_dir": str(out), "max_epochs": 1, "lr": 1e-2}
    cfg["model"]["backbone"]["width"] = 4
    cfg["teachers"] = {"big": {"type": "checkpoint", "path": str(teacher_run)}}
    cfg["couplings"] = [
        {"type": "kd_pixel", "name": "kd_semantic", "task": "semantic", "teacher": "big", "temperature": 2.0},
        {"type": "kd_regression", "name": "kd_height", "task": "height", "teacher": "big"}]
    cfg["balancer"] = {"type": "fixed", "weights": {"semantic": 0.0, "height": 0.0}}  # couplings keep weight 1
    return cfg


def test_multi_task_teacher_distils_both_outputs(two_task_teacher, tmp_path):
    run, base = two_task_teacher
    trainer = Trainer(from_dict(_student_cfg(run, base, tmp_path / "s")))
    batch = next(iter(DataLoader(trainer.exp.dataset("train"), batch_size=8)))
    first = [trainer.train_step([batch]) for _ in range(25)]
    assert first[0]["loss/kd_semantic"] > 0 and first[0]["loss/kd_height"] > 0
    # KD alone (supervised weights 0) pulls the small student towards the frozen teacher on both tasks
    assert first[-1]["loss/kd_semantic"] < 0.7 * first[0]["loss/kd_semantic"]
    assert first[-1]["loss/kd_height"] < 0.7 * first[0]["loss/kd_height"]
    teacher = trainer.teachers["big"]
    assert not any(p.requires_grad for p in teacher.parameters())


def test_cached_soft_targets_equal_on_the_fly(two_task_teacher, tmp_path):
    run, base = two_task_teacher
    teacher = CheckpointTeacher(str(run))
    data_cfg = base["data"]["train"]
    from mtdense.registry import DATASETS

    dataset = DATASETS.build(dict(data_cfg), "data.train")
    info = cache_soft_targets(teacher, dataset, tmp_path / "soft.h5", batch_size=5)
    assert info["samples"] == len(dataset)
    wrapped = WithSoftTargets(dict(data_cfg), str(tmp_path / "soft.h5"), teacher="big")
    with warnings.catch_warnings():  # the wrapper forwards the inner dataset's normalization (no "undeclared" warning)
        warnings.simplefilter("error")
        assert dataset_normalization(wrapped, 3) == dataset_normalization(dataset, 3)
    batch = next(iter(DataLoader(wrapped, batch_size=4)))
    expected = teacher.predict(batch["image"])
    batch = SoftTargetsAsTeacher("big").before_forward(batch, 0)
    assert set(batch["targets"]) == {"semantic", "height"}  # moved, not duplicated
    for task in ("semantic", "height"):
        got = batch["teacher"]["big"][task]
        assert got.shape == expected[task].shape
        torch.testing.assert_close(got, expected[task], atol=2e-3 * (1 + float(expected[task].abs().max())), rtol=2e-3)
