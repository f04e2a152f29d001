"""Feature distillation (FitNets hints through 1×1 adapters): the loss by hand, gradients, the
teacher's features, the trainer's wiring (optimizer, saved state) and one-line config errors."""

from __future__ import annotations

import pytest
import torch
from omegaconf import open_dict
from torch import nn
from torch.utils.data import DataLoader

from mtdense.config import find_config, load_config
from mtdense.domains.clouds.distill import build_cache, use_cache
from mtdense.domains.clouds.feature_distillation import FeatureKD
from mtdense.domains.clouds.nnunet_like import NnUNetLikeTeacher
from mtdense.engine.checkpoint import read_trainer_state
from mtdense.engine.trainer import Trainer
from mtdense.errors import ConfigError

pytest.importorskip("dynamic_network_architectures")


class _Task(nn.Module):
    target = "cloud"


class _Backbone(nn.Module):
    channels, reductions = [3, 5], [1, 2]

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 5, 3, stride=2, padding=1)

    def forward(self, x):
        f1 = self.a(x)
        return [f1, self.b(f1)]


class _Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = _Backbone()

    def forward(self, x):
        return {"cloud": self.backbone(x)[0][:, :2]}


class _FeatureTeacher:
    def request_features(self, strides):
        return {1: 4, 2: 6}


def _connected(stages):
    torch.manual_seed(0)
    student = _Student()
    kd = FeatureKD({"cloud": _Task()}, teacher="big", stages=stages)
    kd.connect(student, {"big": _FeatureTeacher()})
    return student, kd


def test_loss_zero_at_adapted_student_features_and_mse_by_hand():
    student, kd = _connected(["stride2"])
    x = torch.randn(2, 2, 8, 8)
    outputs = student(x)
    with torch.no_grad():
        hint = kd.adapters["stride2"](student.backbone(x)[1])  # the adapted student features
    valid = torch.ones(2, 8, 8, dtype=torch.bool)
    batch = {"teacher": {"big": {"features@2": hint.clone()}}, "valid": {"cloud": valid}}
    assert float(kd(outputs, batch)) == pytest.approx(0.0, abs=1e-10)
    shifted = hint.clone()
    shifted[:, :, :2] += 2.0  # rows 0–1 of the 4×4 map (image rows 0–3) off by 2 in every channel
    batch["teacher"]["big"]["features@2"] = shifted
    assert float(kd(outputs, batch)) == pytest.approx(4.0 * 8 / 16, rel=1e-5)  # half the pixels, error 2²
    valid[:, :4] = False  # those pixels invalid: left out
    assert float(kd(outputs, batch)) == pytest.approx(0.0, abs=1e-10)
    assert float(kd(outputs, {"valid": {"cloud": valid}})) == 0.0  # evaluation batch: no teacher


def test_gradient_reaches_adapter_and_student_encoder():
    student, kd = _connected(["stride1", "stride2"])
    x = torch.randn(2, 2, 8, 8)
    outputs = student(x)
    batch = {"teacher": {"big": {"features@1": torch.randn(2, 4, 8, 8), "features@2": torch.randn(2, 6, 4, 4)}},
             "valid": {"cloud": torch.ones(2, 8, 8, dtype=torch.bool)}}
    kd(outputs, batch).backward()
    for p in [kd.adapters["stride1"].weight, kd.adapters["stride2"].weight, student.backbone.a.weight,
              student.backbone.b.weight]:
        assert p.grad is not None and float(p.grad.abs().sum()) > 0
    assert kd.adapters["stride1"].weight.shape == (4, 3, 1, 1) and kd.adapters["stride2"].weight.shape == (6, 5, 1, 1)


def test_stage_names_are_checked_in_one_line():
    with pytest.raises(ConfigError, match=r"^stages\.1: 'deep' is not a stage name; use stride<N>"):
        FeatureKD({"cloud": _Task()}, teacher="big", stages=["stride2", "deep"])
    with pytest.raises(ConfigError, match=r"^stages\.0: 'stride8' is not an encoder stage of the student; "
                                          r"stages: stride1, stride2$"):
        _connected(["stride8"])
    kd = FeatureKD({"cloud": _Task()}, teacher="big", stages=["stride2"])
    with pytest.raises(ConfigError, match="teacher 'big' .* gives no encoder features"):
        kd.connect(_Student(), {"big": object()})


def test_teacher_features_and_unchanged_logits(tiny_cloud_teacher):
    tmp, ds, folder = tiny_cloud_teacher
    teacher = NnUNetLikeTeacher(str(folder), mirror=False)
    image = torch.stack([ds[0]["image"], ds[1]["image"]])
    plain = teacher.predict(image)["cloud"]
    widths = teacher.request_features([2, 4])
    assert widths[1] == 4 and widths[2] == 8
    out = teacher.predict(image)
    torch.testing.assert_close(out["cloud"], plain, atol=1e-5, rtol=1e-5)  # one window: decoder(skips) = predict
    net = teacher.net
    expected = net.net.encoder((image - net.mean) / net.std)
    torch.testing.assert_close(out["features@2"], expected[1])
    assert out["features@4"].shape == (2, widths[4], 8, 8)


def _overrides(tmp, folder, out, stages="[stride2,stride4]"):
    root = tmp / "s" / "38-Cloud_training"
    return [f"data.train.root={root}", f"data.val.root={root}", f"trainer.out_dir={out}", "data.batch_size=4",
            "data.train.transform.size=[32,32]", "model.backbone.width=2", "model.backbone.depth=3",
            f"teachers.big.path={folder}", f"couplings.1.stages={stages}",  # hints: the same path by interpolation
            "trainer.max_epochs=1"]


def test_hints_only_teacher_gives_the_encoder_features_alone(tiny_cloud_teacher):
    tmp, ds, folder = tiny_cloud_teacher
    image = torch.stack([ds[0]["image"], ds[1]["image"]])
    full = NnUNetLikeTeacher(str(folder), mirror=False)
    full.request_features([2, 4])
    hints = NnUNetLikeTeacher(str(folder), mirror=False, logits=False)
    with pytest.raises(ConfigError, match=r"^logits: a teacher with logits: false gives encoder features only"):
        hints.predict(image)
    hints.request_features([2, 4])
    out, expected = hints.predict(image), full.predict(image)
    assert sorted(out) == ["features@2", "features@4"]  # no logits, and no deeper stage computed
    for key in out:
        torch.testing.assert_close(out[key], expected[key])


def test_cached_logits_with_hints_on_the_fly(tiny_cloud_teacher, tmp_path):
    """kd_feat from the cache: the logits teacher is cached and dropped, the hint-only teacher stays."""
    tmp, _, folder = tiny_cloud_teacher
    cfg = load_config(find_config("clouds/distill_features.yaml"), _overrides(tmp, folder, tmp_path / "run"))
    build_cache(cfg, tmp_path / "soft.h5")
    use_cache(cfg, tmp_path / "soft.h5")
    assert list(cfg.teachers) == ["hints"]
    trainer = Trainer(cfg)
    batch = next(iter(DataLoader(trainer.exp.dataset("train"), batch_size=4)))
    logged = trainer.train_step([batch])
    assert float(logged["loss/kd_features"]) > 0 and float(logged["loss/kd_cloud"]) > 0


def test_trainer_trains_and_saves_the_adapters(tiny_cloud_teacher, tmp_path):
    tmp, _, folder = tiny_cloud_teacher
    cfg = load_config(find_config("clouds/distill_features.yaml"), _overrides(tmp, folder, tmp_path / "run"))
    trainer = Trainer(cfg)
    adapter = trainer.couplings["kd_features"].adapters["stride4"].weight
    assert any(p is adapter for g in trainer.optimizer.param_groups for p in g["params"])
    before = adapter.detach().clone()
    batch = next(iter(DataLoader(trainer.exp.dataset("train"), batch_size=4)))
    logged = trainer.train_step([batch])
    assert float(logged["loss/kd_features"]) > 0
    assert not torch.equal(before, adapter.detach())  # trained by the trainer's optimizer
    folder_saved = trainer.save()
    saved = read_trainer_state(folder_saved)["couplings"]
    torch.testing.assert_close(saved["kd_features.adapters.stride4.weight"], adapter.detach())
    again = Trainer(load_config(find_config("clouds/distill_features.yaml"), _overrides(tmp, folder, tmp_path / "run2")))
    again.restore(folder_saved)
    torch.testing.assert_close(again.couplings["kd_features"].adapters["stride4"].weight, adapter.detach())


def test_trainer_errors_name_the_coupling_key(tiny_cloud_teacher, tmp_path):
    tmp, _, folder = tiny_cloud_teacher
    cfg = load_config(find_config("clouds/distill_features.yaml"), _overrides(tmp, folder, tmp_path / "a", "[stride8]"))
    with pytest.raises(ConfigError, match=r"^couplings\.1\.stages\.0: 'stride8' is not an encoder stage of the "
                                          r"student; stages: stride1, stride2, stride4$"):
        Trainer(cfg)
    cfg = load_config(find_config("clouds/distill_features.yaml"),
                      _overrides(tmp, folder, tmp_path / "b") + ["couplings.1.teacher=big"])
    with open_dict(cfg):  # one teacher for logits and hints
        del cfg.teachers["hints"]
    build_cache(cfg, tmp_path / "soft.h5")
    use_cache(cfg, tmp_path / "soft.h5")  # the cached mode drops the teacher: features cannot come from the cache
    with pytest.raises(ConfigError, match=r"^couplings\.1\.teacher: no teacher 'big' runs during training.*on the fly"):
        Trainer(cfg)


def test_teacher_holding_an_mtdense_model_gives_backbone_features():
    """``ema`` / ``checkpoint`` teachers (any mtdense model) give their backbone's features at the requested strides."""
    from mtdense.api import build_model
    from mtdense.engine.teachers import EMATeacher

    torch.manual_seed(0)
    student = build_model({"model": {"backbone": {"type": "unet_encoder", "width": 4, "depth": 3},
                                     "decoder": {"type": "unet"}, "head": {"type": "conv"}},
                           "tasks": {"cloud": {"type": "segmentation", "num_classes": 2}}}, in_channels=4)
    teacher = EMATeacher(student)
    image = torch.randn(2, 4, 16, 16)
    plain = teacher.predict(image)
    assert teacher.request_features([4, 16]) == {1: 4, 2: 8, 4: 16}
    out = teacher.predict(image)
    torch.testing.assert_close(out["cloud"], plain["cloud"])
    with torch.no_grad():
        expected = teacher.net.eval().backbone(image)[2]
    torch.testing.assert_close(out["features@4"], expected)
    assert "features@16" not in out  # not a stage of this backbone
    assert not teacher.net.backbone._forward_hooks  # the capture hook is removed after each predict
