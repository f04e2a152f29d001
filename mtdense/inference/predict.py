"""Use a checkpoint on its own: rebuild its model, evaluate it, write predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import torch
from omegaconf import OmegaConf

from mtdense.config import validate
from mtdense.engine.builder import Experiment, build_experiment, make_loader, predictions
from mtdense.engine.checkpoint import read_checkpoint, resolve_checkpoint
from mtdense.engine.evaluator import Evaluator
from mtdense.engine.runtime import Runtime


def load_experiment(path: str | Path, overrides: Iterable[str] = ()) -> Experiment:
    """The experiment stored in a checkpoint, with its trained weights, in eval mode.

    ``overrides`` (dotlist) may point the data sections elsewhere, e.g. ``data.test.root=...``.
    """
    ckpt = read_checkpoint(path)
    cfg = OmegaConf.merge(ckpt["config"], OmegaConf.from_dotlist(list(overrides)))
    cfg = validate(cfg, source=str(ckpt["folder"]))
    exp = build_experiment(cfg, channel_names=ckpt["spec"]["channel_names"])
    exp.model.load_state_dict(ckpt["weights"])
    exp.model.eval()
    return exp


def evaluate_checkpoint(path: str | Path, split: str = "val", overrides: Iterable[str] = ()) -> dict[str, float]:
    exp = load_experiment(path, overrides)
    runtime = Runtime.from_trainer_config(exp.cfg.trainer)
    model, tasks, couplings = runtime.prepare_model(exp.model), exp.tasks.to(runtime.device), exp.couplings.to(runtime.device)
    evaluator = Evaluator(model, tasks, couplings, runtime)
    return evaluator.run(make_loader(exp.cfg, exp.dataset(split), split, shuffle=False), split)


@torch.no_grad()
def predict_checkpoint(path: str | Path, split: str, out: str | Path, overrides: Iterable[str] = ()) -> Path:
    """Write every task's prediction for ``split`` to an HDF5 file: one (N, H, W) dataset per
    task (class ids or values in the task's units) and ``id`` (sample ids)."""
    exp = load_experiment(path, overrides)
    runtime = Runtime.from_trainer_config(exp.cfg.trainer)
    model, tasks = runtime.prepare_model(exp.model), exp.tasks.to(runtime.device)
    evaluator = Evaluator(model, tasks, exp.couplings, runtime)
    ds = exp.dataset(split)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["checkpoint"] = str(resolve_checkpoint(path))
        f.attrs["split"] = split
        written = 0
        ids = []
        for batch in make_loader(exp.cfg, ds, split, shuffle=False):
            batch = runtime.batch(batch)
            preds = predictions(tasks, evaluator.outputs(batch["image"]))
            for name, p in preds.items():
                arr = p.cpu().numpy()
                if name not in f:
                    f.create_dataset(name, shape=(len(ds),) + arr.shape[1:], dtype=arr.dtype,
                                     chunks=(1,) + arr.shape[1:], compression="gzip")
                f[name][written:written + len(arr)] = arr
            ids += list(batch.get("meta", {}).get("id", [str(written + i) for i in range(len(batch["image"]))]))
            written += len(batch["image"])
        f.create_dataset("id", data=np.array(ids, dtype="S"))
    tmp.replace(out)
    return out
