"""Mean-teacher semi-supervised training: pseudo-label and consistency couplings (hand-computed
values) and bit-exact resume of a run with an EMA teacher, mixed batches and batch transforms."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import fit_until_interrupted, tiny_config
from mtdense.config import from_dict
from mtdense.engine.checkpoint import read_checkpoint
from mtdense.engine.trainer import Trainer
from mtdense.errors import ConfigError
from mtdense.registry import COUPLINGS
from mtdense.tasks.regression import RegressionTask
from mtdense.tasks.segmentation import SegmentationTask

TASKS = nn.ModuleDict({"semantic": SegmentationTask("semantic", num_classes=2),
                       "depth": RegressionTask("depth", "depth", activation="softplus")})


def seg_batch(labelled_first_pixel=False):
    teacher = torch.tensor([[5.0, 0.1], [0.0, 0.0]]).view(1, 2, 1, 2)  # pixel 0 confident, pixel 1 not
    valid = torch.tensor([[labelled_first_pixel, False]])[None].view(1, 1, 2)
    return {"targets": {"semantic": torch.zeros(1, 1, 2, dtype=torch.long), "depth": torch.ones(1, 1, 2)},
            "valid": {"semantic": valid, "depth": valid.clone()}, "teacher": {"ema": {"semantic": teacher}}}


def test_pseudo_label_threshold_and_confidence_weighting():
    student = {"semantic": torch.zeros(1, 2, 1, 2)}  # CE = log 2 at every pixel, whatever the label
    c0, c1 = 1 / (1 + math.exp(-5.0)), 1 / (1 + math.exp(-0.1))  # teacher confidences
    hard = COUPLINGS.build({"type": "pseudo_label", "task": "semantic", "teacher": "ema", "threshold": 0.9},
                           tasks=TASKS)
    assert hard(student, seg_batch()).item() == pytest.approx(math.log(2) * 1 / 2)  # only pixel 0 counts, / 2 pixels
    soft = COUPLINGS.build({"type": "pseudo_label", "task": "semantic", "teacher": "ema",
                            "weighting": "confidence"}, tasks=TASKS)
    assert soft(student, seg_batch()).item() == pytest.approx(math.log(2) * (c0 + c1) / 2)
    # a labelled pixel is left to the supervised loss: only pixel 1 (weight 0 under the threshold) remains
    assert hard(student, seg_batch(labelled_first_pixel=True)).item() == 0.0
    # the pseudo-label is the teacher's argmax: class 0 at pixel 0
    student = {"semantic": torch.tensor([[0.0, 0.0], [3.0, 0.0]]).view(1, 2, 1, 2)}
    expected = F.cross_entropy(student["semantic"][..., :1], torch.zeros(1, 1, 1, dtype=torch.long)).item()
    assert hard(student, seg_batch()).item() == pytest.approx(expected / 2)


def test_teacher_losses_are_zero_without_pixels_or_teacher_and_name_a_missing_teacher():
    hard = COUPLINGS.build({"type": "pseudo_label", "task": "semantic", "teacher": "ema"}, tasks=TASKS)
    student = {"semantic": torch.randn(1, 2, 1, 2, requires_grad=True)}
    batch = seg_batch()
    batch["valid"]["semantic"][:] = True  # nothing unlabelled
    assert hard(student, batch).item() == 0.0
    evaluation = {k: v for k, v in seg_batch().items() if k != "teacher"}
    assert hard(student, evaluation).item() == 0.0
    wrong = COUPLINGS.build({"type": "pseudo_label", "task": "semantic", "teacher": "mean"}, tasks=TASKS)
    with pytest.raises(ConfigError, match="teacher 'mean'"):
        wrong(student, seg_batch())
    with pytest.raises(ConfigError, match="needs one with num_classes"):
        COUPLINGS.build({"type": "pseudo_label", "task": "depth", "teacher": "ema"}, "couplings.0", tasks=TASKS)


def test_regression_consistency_compares_activated_outputs_on_unlabelled_pixels():
    loss = COUPLINGS.build({"type": "regression_consistency", "task": "depth", "teacher": "ema"}, tasks=TASKS)
    batch = seg_batch(labelled_first_pixel=True)
    batch["teacher"]["ema"]["depth"] = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)
    student = {"depth": torch.tensor([2.0, -1.0]).view(1, 1, 1, 2)}
    sp = F.softplus
    expected = abs(sp(torch.tensor(-1.0)) - sp(torch.tensor(1.0))).item()  # pixel 1 only
    assert loss(student, batch).item() == pytest.approx(expected)


def semisup_config(folder):
    cfg = tiny_config(folder, max_epochs=2, checkpoint_every_steps=1, accumulate=2)
    shapes = cfg["data"]["train"]
    cfg["data"]["train"] = {"type": "semisup", "labelled": shapes, "labelled_count": 4, "labelled_ratio": 0.5,
                            "keep_targets": ["height"], "split_file": str(folder / "label_split.txt")}
    cfg["data"]["batch_size"] = 2
    cfg["data"]["batch_transforms"] = [
        {"type": "coloraug", "teacher": "mean", "p": 0.5},
        {"type": "affinemix", "depth_task": "height", "depth_keys": ["height"], "teacher": "mean", "p": 0.5}]
    cfg["teachers"] = {"mean": {"type": "ema", "decay": 0.99, "warmup_steps": 4}}
    cfg["couplings"] = [
        {"type": "pseudo_label", "name": "pseudo", "task": "semantic", "teacher": "mean", "threshold": 0.5},
        {"type": "regression_consistency", "name": "height_consistency", "task": "height", "teacher": "mean",
         "pixels": "all"}]
    cfg["trainer"]["max_steps_per_epoch"] = 3
    return cfg


@pytest.mark.slow
def test_semisup_resume_with_ema_teacher_and_mixing_is_bit_exact(tmp_path):
    full = Trainer(from_dict(semisup_config(tmp_path / "full")))
    full_metrics = full.fit()
    fit_until_interrupted(Trainer(from_dict(semisup_config(tmp_path / "part"))), stop_at=4)  # epoch 2, after warm-up
    resumed = Trainer(from_dict(semisup_config(tmp_path / "part")))
    resumed_metrics = resumed.fit(resume=tmp_path / "part")
    assert resumed.global_step == full.global_step == 6
    for name, value in full.teachers["mean"].state_dict().items():
        assert torch.equal(value, resumed.teachers["mean"].state_dict()[name]), name
    a, b = read_checkpoint(tmp_path / "full")["weights"], read_checkpoint(tmp_path / "part")["weights"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed_metrics == {k: v for k, v in full_metrics.items() if k != "train/epoch_seconds"} | {
        "train/epoch_seconds": resumed_metrics["train/epoch_seconds"]}
    # the label split was saved with each run and is the same
    assert (tmp_path / "full" / "label_split.txt").read_text() == (tmp_path / "part" / "label_split.txt").read_text()


def test_teacher_is_the_ema_of_the_student_after_every_optimizer_step(tmp_path):
    cfg = tiny_config(tmp_path, max_epochs=1, max_steps_per_epoch=3)
    cfg["model"]["backbone"]["norm"] = "batch"  # running statistics are floating-point buffers: averaged too
    cfg["teachers"] = {"mean": {"type": "ema", "decay": 0.9, "warmup_steps": 2}}
    trainer = Trainer(from_dict(cfg))
    teacher, loader = trainer.teachers["mean"].net, iter(trainer._loader("train", shuffle=True))
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in teacher.state_dict().items())  # a copy
    for step in range(3):
        before = {k: v.clone() for k, v in teacher.state_dict().items()}
        trainer.train_step([next(loader)])
        decay = min(0.9, (1 + step) / (10 + step)) if step < 2 else 0.9  # Tarvainen & Valpola's warm-up
        student = trainer.model.state_dict()
        for key, value in teacher.state_dict().items():
            expected = decay * before[key] + (1 - decay) * student[key] if value.is_floating_point() else student[key]
            assert torch.allclose(value, expected, rtol=0, atol=1e-6), (step, key)
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in teacher.state_dict().items())


def test_unlabelled_images_get_no_supervised_loss(tmp_path):
    cfg = semisup_config(tmp_path)
    cfg["data"]["train"]["keep_targets"] = []
    cfg["data"]["batch_size"] = 4  # 2 labelled + 2 unlabelled
    trainer = Trainer(from_dict(cfg))
    batch = trainer._prepare_batch(next(iter(trainer._loader("train", shuffle=True))), 0)
    unlabelled = batch["meta"]["labelled"] == 0
    assert unlabelled.tolist().count(True) == 2
    for target in ("semantic", "height"):  # every mask of an unlabelled image is false, of a labelled one not
        assert not batch["valid"][target][unlabelled].any() and batch["valid"][target][~unlabelled].any()
    outputs = {k: v.detach().requires_grad_() for k, v in trainer.runtime.forward(trainer.net, batch["image"]).items()}
    for name, task in trainer.tasks.items():
        loss = task.compute_loss(outputs[name], batch)
        grad, = torch.autograd.grad(loss, outputs[name])
        assert torch.count_nonzero(grad[unlabelled]) == 0 and torch.count_nonzero(grad[~unlabelled]) > 0, name
        garbage = {**batch, "targets": {k: torch.where(unlabelled.view(-1, 1, 1), v.max() + 7, v)
                                        for k, v in batch["targets"].items()}}
        assert torch.equal(task.compute_loss(outputs[name], garbage), loss), name  # their targets are never read
