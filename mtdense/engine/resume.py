"""Resuming a run: which checkpoint, what changed since it, whether its weights still fit.

A run folder falls back to its newest complete checkpoint when ``last`` is dangling or corrupt
(``mtdense.engine.checkpoint.resume_checkpoint``). Config values that differ from the
checkpoint's are reported and the new ones apply; a model change that makes the weights unusable
is an error naming the changed ``model.*`` keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from mtdense.config import config_changes
from mtdense.engine.checkpoint import read_checkpoint, read_trainer_state, resume_checkpoint
from mtdense.errors import CheckpointError


def load_for_resume(path: str | Path, cfg: DictConfig, model: nn.Module, notes: list[str]) -> dict[str, Any]:
    """Load the weights of the checkpoint to resume from into ``model`` and return its trainer
    state; the fallback and the config changes are appended to ``notes``."""
    folder, note = resume_checkpoint(path)
    if note:
        notes.append(note)
    ckpt = read_checkpoint(folder)
    changed = config_changes(OmegaConf.to_container(ckpt["config"]), OmegaConf.to_container(cfg, resolve=True))
    if changed:
        notes.append("resume: config differs from the checkpoint's: " + "; ".join(
            f"{k} {a!r} → {b!r}" for k, a, b in changed))
    try:
        model.load_state_dict(ckpt["weights"])
    except RuntimeError:
        model_keys = [k for k, _, _ in changed if k.startswith("model.")]
        raise CheckpointError(
            f"{folder}: its weights do not fit this model; changed model options: "
            f"{', '.join(model_keys) or 'none (the model code changed)'} — resume with the checkpoint's model "
            "config or start a new run") from None
    return read_trainer_state(folder)
