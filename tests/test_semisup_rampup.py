"""Coupling weight ramp-up (``weight_schedule: {type: sigmoid_rampup}``, Laine & Aila 2017):
hand-computed values, config validation with full keys, the weight the trainer applies at each
step, and bit-exact resume in the middle of the ramp."""

import math

import pytest
import torch

from conftest import fit_until_interrupted, tiny_config
from mtdense.config import from_dict
from mtdense.engine.checkpoint import read_checkpoint
from mtdense.engine.trainer import Trainer
from mtdense.engine.weight_schedule import SigmoidRampup, build_weight_schedule
from mtdense.errors import ConfigError


def test_sigmoid_rampup_values():
    ramp = SigmoidRampup(steps=80, start=20)
    assert ramp(0) == ramp(19) == 0.0  # before the start: off
    assert ramp(20) == pytest.approx(math.exp(-5.0))  # t = 0
    assert ramp(60) == pytest.approx(math.exp(-5.0 * 0.25))  # t = 1/2
    assert ramp(80) == pytest.approx(math.exp(-5.0 * 0.25 ** 2))  # t = 3/4
    assert ramp(100) == ramp(10_000) == 1.0
    assert SigmoidRampup(steps=10)(0) == pytest.approx(math.exp(-5.0))  # start defaults to 0
    values = [ramp(s) for s in range(0, 120)]
    assert values == sorted(values)  # monotone


@pytest.mark.parametrize("cfg, key, message", [
    ({"type": "sigmoid_ramp", "steps": 10}, "couplings.0.weight_schedule.type", "did you mean 'sigmoid_rampup'"),
    ({"type": "sigmoid_rampup"}, "couplings.0.weight_schedule.steps", "required"),
    ({"type": "sigmoid_rampup", "steps": 0}, "couplings.0.weight_schedule.steps", ">= 1"),
    ({"type": "sigmoid_rampup", "steps": 10.5}, "couplings.0.weight_schedule.steps", "integer"),
    ({"type": "sigmoid_rampup", "steps": 10, "start": -1}, "couplings.0.weight_schedule.start", ">= 0"),
    ({"type": "sigmoid_rampup", "steps": 10, "stat": 5}, "couplings.0.weight_schedule.stat", "did you mean 'start'"),
    ([10, 20], "couplings.0.weight_schedule", "must be a mapping"),
])
def test_bad_schedules_are_named_by_their_full_key(cfg, key, message):
    with pytest.raises(ConfigError, match=message) as err:
        build_weight_schedule(cfg, "couplings.0.weight_schedule")
    assert err.value.key == key


def ramped_config(folder, **trainer):
    cfg = tiny_config(folder, **trainer)
    cfg["teachers"] = {"mean": {"type": "ema", "decay": 0.9}}
    cfg["couplings"] = [{"type": "regression_consistency", "name": "consistency", "task": "height", "teacher": "mean",
                         "pixels": "all", "weight": 0.5,
                         "weight_schedule": {"type": "sigmoid_rampup", "steps": 4, "start": 1}}]
    return cfg


def test_experiment_config_errors_name_the_coupling_key(tmp_path):
    cfg = ramped_config(tmp_path)
    cfg["couplings"][0]["weight_schedule"]["steps"] = -3
    with pytest.raises(ConfigError, match="must be >= 1") as err:
        Trainer(from_dict(cfg))
    assert err.value.key == "couplings.0.weight_schedule.steps"


def test_trainer_applies_weight_times_ramp_at_each_step(tmp_path):
    trainer = Trainer(from_dict(ramped_config(tmp_path, max_epochs=1, max_steps_per_epoch=4)))
    with torch.no_grad():  # a teacher that differs from the student, so the coupling is not 0
        for p in trainer.teachers["mean"].net.parameters():
            p.add_(0.1)
    batch = trainer._prepare_batch(next(iter(trainer._loader("train", shuffle=True))), 0)
    losses = trainer._losses(batch)
    assert losses["consistency"].item() > 0
    for step, factor in [(0, 0.0), (1, math.exp(-5.0)), (3, math.exp(-5.0 / 4)), (5, 1.0), (9, 1.0)]:
        trainer.global_step = step
        weighted = trainer._weighted_couplings(losses, 1)
        assert weighted.item() == pytest.approx(0.5 * factor * losses["consistency"].item(), rel=1e-6, abs=0.0)
    # the logged weight is the one the step used; evaluation keeps the configured weight (val/loss comparable)
    trainer.global_step = 0
    logged = trainer.check_finite(trainer.train_step([next(iter(trainer._loader("train", shuffle=True)))]))
    assert logged["weight/consistency"] == 0.0
    logged = trainer.check_finite(trainer.train_step([next(iter(trainer._loader("train", shuffle=True)))]))
    assert logged["weight/consistency"] == pytest.approx(0.5 * math.exp(-5.0))
    assert trainer.evaluator().coupling_weights == {"consistency": 0.5}


def test_resume_in_the_middle_of_the_ramp_is_bit_exact(tmp_path):
    def config(folder):
        return ramped_config(folder, max_epochs=2, max_steps_per_epoch=3, checkpoint_every_steps=1)

    full = Trainer(from_dict(config(tmp_path / "full")))
    full_metrics = full.fit()
    fit_until_interrupted(Trainer(from_dict(config(tmp_path / "part"))), stop_at=2)  # inside the ramp (steps 1-5)
    resumed = Trainer(from_dict(config(tmp_path / "part")))
    resumed_metrics = resumed.fit(resume=tmp_path / "part")
    assert resumed.global_step == full.global_step == 6
    a, b = read_checkpoint(tmp_path / "full")["weights"], read_checkpoint(tmp_path / "part")["weights"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name, value in full.teachers["mean"].state_dict().items():
        assert torch.equal(value, resumed.teachers["mean"].state_dict()[name]), name
    assert resumed_metrics["val/loss"] == full_metrics["val/loss"]
    # the ramp changed the run: without it the weights differ (the schedule is not a no-op)
    flat = config(tmp_path / "flat")
    del flat["couplings"][0]["weight_schedule"]
    Trainer(from_dict(flat)).fit()
    c = read_checkpoint(tmp_path / "flat")["weights"]
    assert any(not torch.equal(a[k], c[k]) for k in a)
