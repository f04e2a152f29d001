"""trainer.precision: auto (the default) is bf16 autocast where the hardware multiplies bf16 (CUDA,
CPUs with AVX512-BF16/AMX), fp16 + GradScaler on CUDA cards without bf16, fp32 otherwise;
channels_last: auto is on for CPU and for CUDA with autocast. fp16 trains through a GradScaler
whose state is checkpointed; gradient-combining balancers refuse fp16."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from mtdense.config import from_dict
from mtdense.engine.runtime import Runtime, resolve_channels_last, resolve_precision
from mtdense.engine.trainer import Trainer
from mtdense.errors import ConfigError


def test_auto_is_the_default_and_picks_bf16_only_where_the_hardware_has_it(tmp_path, monkeypatch):
    from mtdense.engine import runtime

    cfg = from_dict(tiny_config(tmp_path))
    assert cfg.trainer.precision == "auto" and cfg.trainer.channels_last == "auto"
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)  # e.g. AVX2-only EPYC: bf16 is emulated
    cpu = Runtime.from_trainer_config(cfg.trainer)
    assert (cpu.precision, cpu.channels_last, cpu.grad_scaler) == ("fp32", True, None)
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)  # AVX512-BF16 or AMX
    assert Runtime.from_trainer_config(cfg.trainer).precision == "bf16"
    fp32 = Runtime.from_trainer_config(from_dict(tiny_config(tmp_path, precision="fp32", channels_last=False)).trainer)
    assert (fp32.precision, fp32.channels_last) == ("fp32", False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", torch.device("cuda", 0)) == "fp16"  # e.g. a V100 or T4
    assert resolve_channels_last("auto", "fp32", torch.device("cuda", 0)) is False
    assert resolve_channels_last("auto", "fp16", torch.device("cuda", 0)) is True
    with pytest.raises(ConfigError, match="trainer.precision: 'fp8' is not one of auto, fp32, bf16, fp16"):
        from_dict(tiny_config(tmp_path, precision="fp8"))


def test_the_cpu_check_reads_torchs_isa_probe(monkeypatch):
    from mtdense.engine import runtime

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert runtime.cpu_has_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert runtime.cpu_has_native_bf16() is True


def test_bf16_trains_with_channels_last(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path, precision="bf16")))
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
