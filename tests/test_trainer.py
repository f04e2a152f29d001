"""Trainer: exact resume, atomic checkpoints, clear errors, train → evaluate → predict."""

from __future__ import annotations

import json

import h5py
import torch
import pytest
from safetensors.torch import load_file

from conftest import fit_until_interrupted, tiny_config
from mtdense.cli import main
from mtdense.config import from_dict
from mtdense.engine.checkpoint import read_checkpoint, resolve_checkpoint
from mtdense.errors import CheckpointError, TrainingError
from mtdense.engine.trainer import Trainer
from mtdense.errors import RegistryError


def final_weights(run_dir):
    return load_file(str(resolve_checkpoint(run_dir) / "model.safetensors"))


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert diff == 0.0, f"weights differ by {diff}"


@pytest.mark.parametrize("interrupt,balancer", [("epoch", "fixed"), ("mid_epoch", "dwa"), ("mid_epoch", "pcgrad")])
def test_resume_is_exact(tmp_path, interrupt, balancer):
    """Interrupted + resumed == uninterrupted, bit for bit, with balancer state (DWA's loss
    history, PCGrad's random task order) and gradient accumulation."""
    extra = {"max_epochs": 3, "accumulate": 2, "warmup_steps": 2, "grad_clip": 1.0}
    if interrupt == "mid_epoch":
        extra["checkpoint_every_steps"] = 1

    def config(folder):
        cfg = tiny_config(folder, **extra)
        cfg["balancer"] = {"type": balancer}
        return cfg

    full = Trainer(from_dict(config(tmp_path / "full")))
    full.fit()

    part_cfg = config(tmp_path / "part")
    part = Trainer(from_dict(part_cfg))
    # stop early: after 1 epoch, or after 3 optimizer steps (inside epoch 2, 2 steps per epoch)
    stop_at = part.steps_per_epoch if interrupt == "epoch" else 3
    fit_until_interrupted(part, stop_at)
    assert read_checkpoint(tmp_path / "part", with_state=True)["state"]["global_step"] == stop_at

    resumed = Trainer(from_dict(part_cfg))
    resumed.fit(resume=tmp_path / "part")
    assert resumed.global_step == full.global_step
    assert_same_weights(final_weights(tmp_path / "full"), final_weights(tmp_path / "part"))


def test_checkpoint_is_self_describing_and_pruned(tmp_path):
    Trainer(from_dict(tiny_config(tmp_path, max_epochs=3, keep_checkpoints=1))).fit()
    steps = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    best = (tmp_path / "checkpoints" / "best").read_text().strip()
    last = (tmp_path / "checkpoints" / "last").read_text().strip()
    assert last in steps and best in steps and len(steps) <= 2
    assert not list((tmp_path / "checkpoints").glob("*.tmp*"))
    ckpt = read_checkpoint(tmp_path)
    spec = ckpt["spec"]
    assert {k: spec[k] for k in ("in_channels", "channel_names", "tasks", "normalization")} == {
        "in_channels": 3, "channel_names": ["band0", "band1", "band2"], "tasks": {"semantic": 3, "height": 1},
        "normalization": None}
    assert set(spec["postprocessing"]) == {"semantic", "height"}
    assert ckpt["config"].trainer.max_epochs == 3


def test_corrupt_and_missing_checkpoints_name_the_file(tmp_path):
    Trainer(from_dict(tiny_config(tmp_path, max_epochs=1))).fit()
    folder = resolve_checkpoint(tmp_path)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors: checksum mismatch"):
        read_checkpoint(folder)
    (folder / "manifest.json").unlink()  # a format-1 checkpoint has no manifest: the reader still says why
    with pytest.raises(CheckpointError, match="model.safetensors: unreadable or corrupt"):
        read_checkpoint(folder)
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        read_checkpoint(tmp_path / "nowhere")


def test_nan_loss_stops_with_a_message(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path)))  # train_step works before fit
    batch = next(iter(trainer._loader("train", shuffle=True)))
    batch["targets"]["height"][0, 5, 5] = float("nan")
    with pytest.raises(TrainingError) as err:
        trainer.train_step([batch])
        trainer.check_finite()  # non-finite losses are checked once per logging interval, not per step
    msg = str(err.value)
    assert "non-finite loss for height" in msg and "shapes_" in msg and "lower trainer.lr" in msg


def test_train_evaluate_predict_via_cli(tmp_path, capsys):
    cfg = tiny_config(tmp_path / "run", max_epochs=4)
    cfg["data"]["test"] = {"type": "synthetic_shapes", "length": 6, "size": [16, 24], "channels": 3, "split": "test"}
    (tmp_path / "exp.yaml").write_text(json.dumps(cfg))  # JSON is YAML
    assert main(["train", str(tmp_path / "exp.yaml")]) == 0
    train_out = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(tmp_path / "run"), "--split", "val"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    # evaluating the last checkpoint reproduces the trainer's last validation exactly
    for key in ("val/loss", "val/semantic/miou", "val/semantic/pixel_acc"):
        assert evaluated[key] == pytest.approx(train_out[key], rel=1e-6)
    assert evaluated["val/semantic/pixel_acc"] > 0.5  # learned something beyond chance (3 classes)
    out = tmp_path / "pred.h5"
    assert main(["predict", str(tmp_path / "run"), "--split", "test", "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert f["semantic"].shape == (6, 16, 24) and f["semantic"].dtype.kind == "i"
        assert f["height"].shape == (6, 16, 24) and (f["height"][:] >= 0).all()  # softplus output
        assert [i.decode() for i in f["id"][:2]] == ["shapes_00000", "shapes_00001"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    cfg = tiny_config(tmp_path / "run")
    cfg["model"]["backbone"]["widht"] = 4
    (tmp_path / "exp.yaml").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "exp.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "model.backbone.widht: unknown option for backbone 'unet_encoder' (did you mean 'width'?)" in err
    assert main(["train", str(tmp_path / "exp.yaml"), "model.backbone.type=unet_encodr"]) == 2
    assert "did you mean 'unet_encoder'" in capsys.readouterr().err
    with pytest.raises(RegistryError, match="widht"):  # --debug re-raises with the traceback
        main(["--debug", "train", str(tmp_path / "exp.yaml")])


def test_registry_list_shows_every_kind(capsys):
    assert main(["registry", "list"]) == 0
    out = capsys.readouterr().out
    for kind in ("backbone", "decoder", "head", "interaction", "task", "loss", "coupling", "balancer",
                 "metric", "dataset", "logger"):
        assert f"\n{kind}: " in "\n" + out


@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_checkpoint_files_follow_the_umask(tmp_path, umask):
    import os
    import stat

    old = os.umask(umask)
    try:
        folder = Trainer(from_dict(tiny_config(tmp_path / "run"))).save()
    finally:
        os.umask(old)
    for name in ("model.safetensors", "trainer_state.pt"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o666 & ~umask, name


class HostSyncs:
    """Counts tensor → Python transfers (what blocks on a GPU) made inside the ``with`` block.
    The optimizer's step counters are excluded: torch keeps them on the CPU by design."""

    SYNCS = {torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__float__, torch.Tensor.__int__,
             torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy}

    def __enter__(self):
        import traceback

        from torch.overrides import TorchFunctionMode

        calls = self.calls = []

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if func in HostSyncs.SYNCS:
                    caller = traceback.extract_stack()[-2]
                    if "torch/optim/" not in caller.filename:
                        calls.append(f"{func.__name__} at {caller.filename}:{caller.lineno}")
                return func(*args, **(kwargs or {}))

        self.mode = Mode()
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)


def test_training_steps_do_not_synchronise_with_the_host(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path, grad_clip=1.0)))
    batch = next(iter(trainer._loader("train", shuffle=True)))
    trainer.train_step([batch])
    with HostSyncs() as syncs:
        steps = [trainer.train_step([batch, batch]) for _ in range(3)]  # with gradient accumulation
    assert syncs.calls == []
    with HostSyncs() as syncs:
        logged = trainer.check_finite(steps[-1])  # what fit calls once per logging interval
    assert len(syncs.calls) == 1
    assert set(logged) == {"loss/semantic", "loss/height", "weight/semantic", "weight/height", "grad_norm", "lr"}
    assert all(isinstance(v, float) for v in logged.values())
