"""Issue 10 §1–§2: untrusted checkpoints, no lost work (atomic saves, integrity, fallback,
NaN recovery, signals, run-folder ownership, disk errors)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import tiny_config
from safetensors.torch import load_file, save_file

from mtdense import atomic_write
from mtdense.config import from_dict
from mtdense.engine import checkpoint as ckpt_mod
from mtdense.engine.checkpoint import read_checkpoint, resolve_checkpoint, resume_checkpoint
from mtdense.engine.run_lock import LOCK_FILE
from mtdense.engine.trainer import Trainer
from mtdense.errors import CheckpointError, ConfigError, Interrupted
from mtdense.inference.predict import load_experiment


@pytest.fixture
def run(tmp_path):
    """A finished two-epoch run (two checkpoints kept)."""
    Trainer(from_dict(tiny_config(tmp_path / "run"))).fit()
    return tmp_path / "run"


def rewrite_stored_config(folder, edit):
    """Write a crafted checkpoint: the same weights under an edited stored config (and manifest)."""
    model = folder / "model.safetensors"
    from safetensors import safe_open

    with safe_open(str(model), framework="pt") as f:
        meta = f.metadata()
    config = yaml.safe_load(meta["config"])
    edit(config)
    meta["config"] = yaml.safe_dump(config)
    save_file(load_file(str(model)), str(model), metadata=meta)
    (folder / "manifest.json").unlink()


def test_stored_interpolations_are_refused(run):
    folder = resolve_checkpoint(run)
    rewrite_stored_config(folder, lambda c: c["model"]["backbone"].update(name="${oc.env:HOME}"))
    with pytest.raises(CheckpointError, match=r"interpolation at model.backbone.name .*refusing"):
        read_checkpoint(folder)


def test_stored_pretrained_options_never_fetch(run):
    folder = resolve_checkpoint(run)
    rewrite_stored_config(folder, lambda c: c["model"]["backbone"].update(
        checkpoint_path="/etc/hostname", pretrained=True, pretrained_cfg_overlay={"url": "http://127.0.0.1:9/x"}))
    cfg = read_checkpoint(folder)["config"]
    assert cfg.model.backbone.checkpoint_path is None and cfg.model.backbone.pretrained is False
    assert cfg.model.backbone.pretrained_cfg_overlay is None


def test_timm_backbone_refuses_download_options():
    from mtdense.registry import BACKBONES

    with pytest.raises(ConfigError, match=r"^model.backbone.pretrained: not accepted: weights load only from a local"):
        BACKBONES.build({"type": "timm", "name": "test_resnet", "pretrained": True}, "model.backbone", in_channels=3)


def test_huge_model_config_is_refused_before_building(run):
    folder = resolve_checkpoint(run)
    rewrite_stored_config(folder, lambda c: c["model"]["backbone"].update(width=1_000_000))
    with pytest.raises(CheckpointError, match=r"stored config does not describe the stored weights .*refusing"):
        load_experiment(folder)  # would need terabytes if it were built


def test_corrupt_trainer_state_is_one_line_without_unsafe_advice(run):
    folder = resolve_checkpoint(run)
    (folder / "trainer_state.pt").write_bytes(b"\x80\x04junk")
    (folder / "manifest.json").unlink()
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(folder, with_state=True)
    assert "trainer_state.pt: unreadable trainer state" in str(err.value)
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"../../elsewhere\n", b"/tmp\n", b"\xff\xfe\n", b"step_1/../..\n"])
def test_pointers_may_only_name_a_sibling_folder(run, content):
    (run / "checkpoints" / "last").write_bytes(content)
    with pytest.raises(CheckpointError, match="last: (refuses to follow|not a checkpoint pointer)"):
        resolve_checkpoint(run)


def test_flipped_byte_is_an_error_naming_the_file(run):
    folder = resolve_checkpoint(run)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-5] ^= 0x01
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"step_\d+/model.safetensors: checksum mismatch"):
        read_checkpoint(folder)


def test_second_save_of_a_step_never_deletes_the_first(tmp_path, monkeypatch):
    trainer = Trainer(from_dict(tiny_config(tmp_path)))
    first = trainer.save()
    calls = []

    def dying_rename(src, dst):  # a kill between writing and renaming the second save
        calls.append(dst)
        raise OSError(errno.EIO, "killed")

    monkeypatch.setattr(atomic_write.os, "replace", dying_rename)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        trainer.save()
    monkeypatch.undo()
    assert calls and calls[0].name == first.name + "-1"  # never the existing folder
    assert resolve_checkpoint(tmp_path) == first and read_checkpoint(first)["weights"]
    assert not list((tmp_path / "checkpoints").glob("*.tmp*"))


def test_resume_falls_back_to_the_newest_complete_checkpoint(run, capsys):
    folders = sorted(p for p in (run / "checkpoints").glob("step_*"))
    assert len(folders) == 2
    newest_model = folders[-1] / "model.safetensors"
    newest_model.write_bytes(newest_model.read_bytes()[:100])  # torn newest checkpoint
    folder, note = resume_checkpoint(run)
    assert folder == folders[0] and "checksum mismatch" in note and str(folders[0]) in note
    (run / "checkpoints" / "last").write_text("step_99999999\n")  # dangling pointer
    assert resume_checkpoint(run)[0] == folders[0]


def test_non_finite_weights_are_never_saved(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path)))
    good = trainer.save()
    trainer.global_step += 1
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("inf"))
    with pytest.raises(CheckpointError, match="not saved: non-finite values in backbone"):
        trainer.save()
    assert resolve_checkpoint(tmp_path) == good


def test_resume_applies_a_new_learning_rate_and_reports_changes(tmp_path, capsys):
    cfg = tiny_config(tmp_path, max_epochs=1, lr=1e6, schedule="constant")
    Trainer(from_dict(cfg)).fit()
    cfg["trainer"].update(lr=1e-3, max_epochs=2)
    trainer = Trainer(from_dict(cfg))
    trainer.restore(tmp_path)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [1e-3, 1e-3]
    assert trainer.notes == ["resume: config differs from the checkpoint's: trainer.max_epochs 1 → 2; "
                             "trainer.lr 1000000.0 → 0.001"]


def test_model_change_on_resume_is_named_by_config_key(run):
    cfg = tiny_config(run)
    cfg["model"]["backbone"]["width"] = 6
    with pytest.raises(CheckpointError, match=r"weights do not fit this model; changed model options: model.backbone.width"):
        Trainer(from_dict(cfg)).fit(resume=run)


def test_sigterm_finishes_the_step_saves_and_says_how_to_resume(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path, max_epochs=3)))
    original = trainer.train_step

    def step_then_signal(micro):
        out = original(micro)
        if trainer.global_step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    trainer.train_step = step_then_signal
    with pytest.raises(Interrupted) as err:
        trainer.fit()
    assert err.value.exit_code == 128 + signal.SIGTERM
    assert f"continue with: mtdense train --resume {tmp_path}" in str(err.value)
    assert read_checkpoint(tmp_path, with_state=True)["state"]["global_step"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    resumed = Trainer(from_dict(tiny_config(tmp_path, max_epochs=3)))
    resumed.fit(resume=tmp_path)
    assert resumed.global_step == 3 * resumed.steps_per_epoch


def test_cli_ctrl_c_exits_with_one_line_and_signal_code(tmp_path):
    cfg = tiny_config(tmp_path / "run", max_epochs=200)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "mtdense.cli", "train", str(path)], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    ckpts = tmp_path / "run" / "checkpoints"
    for _ in range(600):  # wait until training runs (first checkpoint written), at most 60 s
        if ckpts.is_dir() and list(ckpts.glob("step_*")):
            break
        try:
            proc.wait(0.1)
            break
        except subprocess.TimeoutExpired:
            pass
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "stopped by SIGINT" in lines[0] and "Traceback" not in err


def test_a_run_folder_has_one_owner(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": os.uname().nodename, "pid": 1, "since": "earlier"}))
    with pytest.raises(ConfigError, match=r"^trainer.out_dir: .* in use by process 1 on"):
        Trainer(from_dict(tiny_config(tmp_path))).fit()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout)}))
    (tmp_path / "checkpoints" / "step_00000002.tmp123").mkdir(parents=True)
    trainer = Trainer(from_dict(tiny_config(tmp_path, max_epochs=1)))
    trainer.fit()
    assert any("stale lock" in n for n in trainer.notes) and any("step_00000002.tmp123" in n for n in trainer.notes)
    assert not (tmp_path / LOCK_FILE).exists() and not list((tmp_path / "checkpoints").glob("*.tmp*"))
    with pytest.raises(ConfigError, match=r"already holds the checkpoints of a run; continue it with `mtdense train --resume"):
        Trainer(from_dict({**tiny_config(tmp_path, max_epochs=1), "seed": 1})).fit()


def test_disk_full_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer = Trainer(from_dict(tiny_config(tmp_path)))
    good = trainer.save()
    trainer.global_step += 1

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod, "save_file", full)
    with pytest.raises(CheckpointError, match=r"step_00000001: cannot write checkpoint \(No space left on device\)"):
        trainer.save()
    assert resolve_checkpoint(tmp_path) == good


def test_ddp_timeout_reaches_the_process_group(monkeypatch):
    from mtdense.engine import distributed

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kw: seen.update(kw))
    assert distributed.init_distributed("cpu", 2.5)
    assert seen["timeout"].total_seconds() == 150 and seen["backend"] == "gloo"
