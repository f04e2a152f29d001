"""Self-describing, atomic checkpoints.

A checkpoint is a folder ``<run>/checkpoints/step_<N>/`` holding
- ``model.safetensors``: the weights, with the resolved config and the model spec (input
  channels and their names, task output channels) in the safetensors metadata, so the file
  alone can rebuild the model for ``evaluate``, ``predict``, ``export`` or distillation;
- ``trainer_state.pt``: optimizer, scheduler, balancer, step/epoch counters, RNG states.
The folder is written under a temporary name and renamed into place; the pointer files
``last`` and ``best`` are replaced atomically, so an interruption never leaves a half
checkpoint behind a pointer.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from mtdense.engine.file_modes import apply_umask
from mtdense.errors import CheckpointError

from mtdense import __version__

FORMAT = "mtdense-checkpoint/1"
MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_pointer(path: Path, target: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(target + "\n")
    os.replace(tmp, path)


def save_checkpoint(folder: Path, model_state: dict[str, torch.Tensor], config_yaml: str, spec: dict[str, Any],
                    trainer_state: dict[str, Any] | None) -> Path:
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
    metadata = {"format": FORMAT, "mtdense_version": __version__, "config": config_yaml, "spec": json.dumps(spec)}
    save_file(tensors, str(tmp / MODEL_FILE), metadata=metadata)
    apply_umask(tmp / MODEL_FILE)  # safetensors creates 0600 files
    if trainer_state is not None:
        torch.save(trainer_state, tmp / STATE_FILE)
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    _fsync_dir(folder.parent)
    return folder


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder, its model file, a pointer file (``last``/``best``), or a run
    folder (then its ``checkpoints/last``)."""
    p = Path(path)
    if p.is_file() and p.name == MODEL_FILE:
        return p.parent
    if (p / MODEL_FILE).is_file():
        return p
    for pointer in (p, p / "checkpoints" / "last", p / "last"):
        if pointer.is_file() and pointer.stat().st_size < 256:
            target = pointer.parent / pointer.read_text().strip()
            if (target / MODEL_FILE).is_file():
                return target
            raise CheckpointError(f"{pointer}: points to {target}, which holds no {MODEL_FILE}")
    raise CheckpointError(
        f"{p}: no checkpoint here; pass a checkpoint folder (with {MODEL_FILE}) or a run folder with checkpoints/last"
    )


def read_checkpoint(path: str | Path, with_state: bool = False) -> dict[str, Any]:
    folder = resolve_checkpoint(path)
    model_file = folder / MODEL_FILE
    try:
        with safe_open(str(model_file), framework="pt") as f:
            meta = f.metadata() or {}
        weights = load_file(str(model_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{model_file}: unreadable or corrupt checkpoint ({exc}); use another checkpoint") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{model_file}: not an mtdense checkpoint (format {meta.get('format')!r})")
    out = {"folder": folder, "weights": weights, "config": OmegaConf.create(meta["config"]),
           "spec": json.loads(meta["spec"])}
    if with_state:
        state_file = folder / STATE_FILE
        if not state_file.is_file():
            raise CheckpointError(f"{state_file}: missing; this checkpoint holds weights only and cannot resume training")
        out["state"] = torch.load(state_file, map_location="cpu", weights_only=True)
    return out


def prune_checkpoints(ckpt_dir: Path, keep: int, protect: set[str]) -> None:
    steps = sorted(p for p in ckpt_dir.glob("step_*") if p.is_dir() and ".tmp" not in p.name)
    for old in steps[: max(0, len(steps) - keep)]:
        if old.name not in protect:
            shutil.rmtree(old, ignore_errors=True)
