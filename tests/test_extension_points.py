"""The trainer's extension points: teachers, batch transforms, hooks, YAML transforms, and the
build-time checks that make a bad experiment fail before the first step."""

from __future__ import annotations

import pytest
import torch
from conftest import fit_until_interrupted, tiny_config
from torch import nn

from mtdense.config import from_dict
from mtdense.engine.builder import build_experiment
from mtdense.engine.checkpoint import read_checkpoint
from mtdense.engine.hooks import Hook
from mtdense.engine.teachers import EMATeacher
from mtdense.engine.trainer import Trainer
from mtdense.errors import ConfigError
from mtdense.registry import BATCH_TRANSFORMS, HOOKS


@pytest.fixture
def recording_plugins():
    """A hook that records its calls and a batch transform that flips randomly (from the generator)."""
    calls: list[str] = []

    class Recorder(Hook):
        def __init__(self, tasks=None):
            self.seen_teacher = False

        def on_fit_start(self, trainer):
            calls.append("fit_start")

        def before_forward(self, batch, step):
            calls.append(f"before_forward:{step}")
            self.seen_teacher |= "teacher" in batch
            return batch

        def before_loss(self, batch, outputs):
            calls.append("before_loss")

        def after_optimizer_step(self, trainer):
            calls.append(f"after_step:{trainer.global_step}")

        def on_epoch_end(self, trainer):
            calls.append("epoch_end")

        def state_dict(self):
            return {"n": len(calls)}

    class RandomFlip:
        def __init__(self, p: float = 0.5):
            self.p = p
            self.draws: list[bool] = []

        def __call__(self, batch, generator):
            flip = bool(torch.rand((), generator=generator) < self.p)
            self.draws.append(flip)
            if flip:
                batch = {**batch, "image": batch["image"].flip(-1),
                         "targets": {k: v.flip(-1) for k, v in batch["targets"].items()},
                         "valid": {k: v.flip(-1) for k, v in batch["valid"].items()}}
            return batch

    HOOKS.register("test_recorder")(Recorder)
    BATCH_TRANSFORMS.register("test_random_flip")(RandomFlip)
    yield calls
    HOOKS._table.pop("test_recorder")
    BATCH_TRANSFORMS._table.pop("test_random_flip")


def test_hooks_teachers_and_batch_transforms_run_in_order(tmp_path, recording_plugins):
    cfg = tiny_config(tmp_path, max_epochs=1, max_steps_per_epoch=2)
    cfg["hooks"] = [{"type": "test_recorder"}]
    cfg["teachers"] = {"mean": {"type": "ema", "decay": 0.5}}
    cfg["data"]["batch_transforms"] = [{"type": "test_random_flip", "p": 0.5}]
    trainer = Trainer(from_dict(cfg))
    trainer.fit()
    assert recording_plugins == ["fit_start", "before_forward:0", "before_loss", "after_step:1",
                                 "before_forward:1", "before_loss", "after_step:2", "epoch_end"]
    assert trainer.hooks[0].seen_teacher
    assert int(trainer.teachers["mean"].updates) == 2
    # the batch transform's draws depend only on (seed, step, micro-batch): the same in a second run
    first = list(trainer.batch_transforms[0].draws)
    again = Trainer(from_dict({**cfg, "trainer": {**cfg["trainer"], "out_dir": str(tmp_path / "b")}}))
    again.fit()
    assert again.batch_transforms[0].draws == first


def test_ema_teacher_follows_its_formula():
    student = nn.Linear(2, 1)
    teacher = EMATeacher(student, decay=0.9, warmup_steps=2)
    with torch.no_grad():
        student.weight.fill_(1.0)
        teacher.net.weight.fill_(0.0)
    teacher.update(student)  # warm-up: decay min(0.9, 1/10) = 0.1
    assert torch.allclose(teacher.net.weight, torch.full((1, 2), 0.9))
    teacher.update(student)  # warm-up: decay min(0.9, 2/11)
    d = 2 / 11
    assert torch.allclose(teacher.net.weight, torch.full((1, 2), 0.9 * d + (1 - d)))
    before = teacher.net.weight.clone()
    teacher.update(student)  # after warm-up: 0.9
    assert torch.allclose(teacher.net.weight, 0.9 * before + 0.1)
    assert not any(p.requires_grad for p in teacher.net.parameters())


def test_resume_with_ema_teacher_is_exact(tmp_path):
    def config(folder):
        cfg = tiny_config(folder, max_epochs=2, checkpoint_every_steps=1)
        cfg["teachers"] = {"mean": {"type": "ema", "decay": 0.9, "warmup_steps": 3}}
        cfg["trainer"]["eval_model"] = "teacher:mean"
        return cfg

    full = Trainer(from_dict(config(tmp_path / "full")))
    full_metrics = full.fit()
    fit_until_interrupted(Trainer(from_dict(config(tmp_path / "part"))), stop_at=3)
    resumed = Trainer(from_dict(config(tmp_path / "part")))
    resumed_metrics = resumed.fit(resume=tmp_path / "part")
    for name, value in full.teachers["mean"].state_dict().items():
        assert torch.equal(value, resumed.teachers["mean"].state_dict()[name]), name
    a, b = read_checkpoint(tmp_path / "full")["weights"], read_checkpoint(tmp_path / "part")["weights"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed_metrics["val/loss"] == full_metrics["val/loss"]  # scored with the teacher


def test_checkpoint_teacher_is_frozen_and_predicts_like_its_run(tmp_path):
    Trainer(from_dict(tiny_config(tmp_path / "big", max_epochs=1))).fit()
    cfg = tiny_config(tmp_path / "small", max_epochs=1)
    cfg["teachers"] = {"big": {"type": "checkpoint", "path": str(tmp_path / "big")}}
    trainer = Trainer(from_dict(cfg))
    teacher = trainer.teachers["big"]
    image = torch.randn(2, 3, 16, 24)
    loaded = read_checkpoint(tmp_path / "big")["weights"]
    assert all(torch.equal(teacher.net.state_dict()[k], v) for k, v in loaded.items())
    assert set(teacher.predict(image)) == {"semantic", "height"} and teacher.state_dict() == {}
    trainer.fit()
    assert all(torch.equal(teacher.net.state_dict()[k], v) for k, v in loaded.items())  # unchanged by training


def test_transforms_from_yaml_reach_the_dataset(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["data"]["train"]["transform"] = [{"type": "random_scale_crop_flip", "size": [8, 12], "scale": [1.0, 1.0]}]
    exp = build_experiment(from_dict(cfg))
    sample = exp.dataset("train")[0]
    assert sample["image"].shape[-2:] == (8, 12) and sample["targets"]["height"].shape == (8, 12)
    cfg["data"]["train"]["transform"] = [{"type": "random_scale_crop_flip", "size": [8]}]
    with pytest.raises(ConfigError, match=r"^data.train.transform.0.size: \[8\] must be two positive integers"):
        build_experiment(from_dict(cfg))


@pytest.mark.parametrize("change, message", [
    (lambda c: c["tasks"]["semantic"].update(metrics=[{"type": "segmentation", "num_clases": 3}]),
     r"^tasks.semantic.metrics.0.num_clases: unknown option for metric 'segmentation'"),
    (lambda c: c["tasks"]["height"].update(gate={"task": "semantic"}),
     r"^tasks.height.gate.task: 'semantic' must be a threshold_classification task"),
    (lambda c: c["tasks"]["height"].update(target="heigth"),
     r"^tasks.height.target: the dataset provides no target 'heigth'; it provides: semantic, height"),
    (lambda c: c["trainer"].update(monitor="val/semantic/mIoU"),
     r"^trainer.monitor: 'val/semantic/mIoU' is not reported by validation \(did you mean 'val/semantic/miou'\?\)"),
    (lambda c: c["trainer"].update(eval_model="teacher:none"),
     r"^trainer.eval_model: 'teacher:none' is not 'student' or 'teacher:<name>'"),
])
def test_experiment_errors_surface_before_any_step(tmp_path, change, message, monkeypatch):
    cfg = tiny_config(tmp_path)
    change(cfg)
    monkeypatch.setattr(Trainer, "train_step", lambda *a: pytest.fail("a training step ran"))
    with pytest.raises(ConfigError, match=message):
        Trainer(from_dict(cfg)).fit()
