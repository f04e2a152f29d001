"""trainer.precision: auto is bf16 autocast + channels_last on CPU (fp16 + GradScaler on CUDA
cards without bf16), fp32 one override away; fp16 trains through a GradScaler whose state is
checkpointed; gradient-combining balancers refuse fp16."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from mtdense.config import from_dict
from mtdense.engine.runtime import Runtime, resolve_precision
from mtdense.engine.trainer import Trainer
from mtdense.errors import ConfigError


def test_fp32_is_the_default_and_auto_is_one_override_away(tmp_path, monkeypatch):
    cfg = from_dict(tiny_config(tmp_path))  # fp32 until paired seeds clear auto (benchmarks/results/precision.md)
    assert cfg.trainer.precision == "fp32" and cfg.trainer.channels_last == "auto"
    assert Runtime.from_trainer_config(cfg.trainer).precision == "fp32"
    auto = Runtime.from_trainer_config(from_dict(tiny_config(tmp_path, precision="auto")).trainer)
    assert (auto.precision, auto.channels_last, auto.grad_scaler) == ("bf16", True, None)
    fp32 = Runtime.from_trainer_config(from_dict(tiny_config(tmp_path, precision="fp32")).trainer)
    assert (fp32.precision, fp32.channels_last) == ("fp32", False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", torch.device("cuda", 0)) == "fp16"  # e.g. a V100 or T4
    assert resolve_precision("auto", torch.device("cpu")) == "bf16"
    with pytest.raises(ConfigError, match="trainer.precision: 'fp8' is not one of auto, fp32, bf16, fp16"):
        from_dict(tiny_config(tmp_path, precision="fp8"))


def test_auto_trains_in_bf16_with_channels_last(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path, precision="auto")))
    batch = trainer.runtime.batch(next(iter(trainer._loader("train", shuffle=True))))
    out = trainer.runtime.forward(trainer.model, batch["image"])
    assert out["semantic"].dtype == torch.bfloat16
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_fp16_uses_a_grad_scaler_saved_with_the_checkpoint(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path, precision="fp16", max_epochs=1)))
    scaler = trainer.runtime.grad_scaler
    assert isinstance(scaler, torch.amp.GradScaler) and trainer.balancer.grad_scaler is scaler
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))  # it trained
    state = torch.load(tmp_path / "checkpoints" / "step_00000004" / "trainer_state.pt", weights_only=True)
    assert state["grad_scaler"]["scale"] == scaler.get_scale() and state["grad_scaler"]["_growth_tracker"] == 4
    cfg = tiny_config(tmp_path / "pc", precision="fp16")
    cfg["balancer"] = {"type": "pcgrad"}
    with pytest.raises(ConfigError, match="trainer.precision: fp16 needs loss scaling, which balancer 'pcgrad'"):
        Trainer(from_dict(cfg))
