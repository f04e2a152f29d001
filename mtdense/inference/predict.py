"""Use a checkpoint on its own: rebuild its model, evaluate it, write predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import torch

from mtdense.atomic_write import atomic_path
from mtdense.config import apply_overrides, validate
from mtdense.engine.builder import Experiment, build_experiment, build_model, build_tasks, make_loader, predictions
from mtdense.engine.checkpoint import read_checkpoint, resolve_checkpoint
from mtdense.engine.evaluator import Evaluator, finite_inputs, warn_nonfinite_inputs
from mtdense.engine.runtime import Runtime
from mtdense.errors import CheckpointError


def load_experiment(path: str | Path, overrides: Iterable[str] = ()) -> Experiment:
    """The experiment stored in a checkpoint, with its trained weights, in eval mode.

    ``overrides`` (dotlist) may point the data sections elsewhere, e.g. ``data.test.root=...``.
    """
    return experiment_from(read_checkpoint(path), overrides)


def experiment_from(ckpt: dict, overrides: Iterable[str] = ()) -> Experiment:
    """``load_experiment`` for a checkpoint already read with ``read_checkpoint``."""
    cfg = apply_overrides(ckpt["config"], overrides)
    cfg = validate(cfg, where=f"checkpoint {ckpt['folder']}")
    check_weights_fit(cfg, ckpt)
    exp = build_experiment(cfg, channel_names=ckpt["spec"]["channel_names"],
                           normalization=ckpt["spec"].get("normalization"),
                           channel_info=ckpt["spec"].get("channel_info"))
    exp.model.load_state_dict(ckpt["weights"])
    exp.model.eval()
    return exp


def check_weights_fit(cfg, ckpt: dict) -> None:
    """Build the stored model on the ``meta`` device (no memory) and compare every parameter's
    shape with the stored weights, so a crafted or mismatched config never allocates a model."""
    tasks = build_tasks(cfg)
    with torch.device("meta"):
        probe = build_model(cfg, tasks, len(ckpt["spec"]["channel_names"]))
    expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in ckpt["weights"].items()}
    wrong = sorted(k for k in expected.keys() & stored.keys() if expected[k] != stored[k])
    missing, extra = sorted(expected.keys() - stored.keys()), sorted(stored.keys() - expected.keys())
    if wrong or missing or extra:
        detail = "; ".join(part for part in (
            f"shape of {wrong[0]}: config {expected[wrong[0]]} vs stored {stored[wrong[0]]}" if wrong else "",
            f"missing {', '.join(missing[:3])}" if missing else "", f"unexpected {', '.join(extra[:3])}" if extra else "")
            if part)
        raise CheckpointError(f"{ckpt['folder']}: the stored config does not describe the stored weights "
                              f"({len(wrong) + len(missing) + len(extra)} mismatches; {detail}); refusing to build it")


def evaluate_checkpoint(path: str | Path, split: str = "val", overrides: Iterable[str] = ()) -> dict[str, float]:
    exp = load_experiment(path, overrides)
    runtime = Runtime.from_trainer_config(exp.cfg.trainer)
    model, tasks, couplings = runtime.prepare_model(exp.model), exp.tasks.to(runtime.device), exp.couplings.to(runtime.device)
    evaluator = Evaluator(model, tasks, couplings, exp.coupling_weights, runtime)
    return evaluator.run(make_loader(exp.cfg, exp.dataset(split), split, shuffle=False), split)


@torch.no_grad()
def predict_checkpoint(path: str | Path, split: str, out: str | Path, overrides: Iterable[str] = ()) -> Path:
    """Write every task's prediction for ``split`` to an HDF5 file: one (N, H, W) dataset per
    task (class ids or values in the task's units) and ``id`` (sample ids). Pixels with NaN/Inf
    inputs are masked (class id -1, value NaN) with a warning."""
    exp = load_experiment(path, overrides)
    runtime = Runtime.from_trainer_config(exp.cfg.trainer)
    model, tasks = runtime.prepare_model(exp.model), exp.tasks.to(runtime.device)
    evaluator = Evaluator(model, tasks, exp.couplings, exp.coupling_weights, runtime)
    ds = exp.dataset(split)
    out = Path(out)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["checkpoint"] = str(resolve_checkpoint(path))
        f.attrs["split"] = split
        written = bad_pixels = bad_samples = 0
        ids = []
        for batch in make_loader(exp.cfg, ds, split, shuffle=False):
            batch, bad = finite_inputs(runtime.batch(batch))
            bad_pixels += int(bad.sum())
            bad_samples += int(bad.flatten(1).any(1).sum())
            preds = predictions(tasks, evaluator.outputs(batch["image"]))
            for name, p in preds.items():
                fill = torch.tensor(-1 if not p.is_floating_point() else float("nan"), dtype=p.dtype, device=p.device)
                arr = torch.where(bad, fill, p).cpu().numpy()
                if name not in f:
                    f.create_dataset(name, shape=(len(ds),) + arr.shape[1:], dtype=arr.dtype,
                                     chunks=(1,) + arr.shape[1:], compression="gzip")
                f[name][written:written + len(arr)] = arr
            ids += list(batch.get("meta", {}).get("id", [str(written + i) for i in range(len(batch["image"]))]))
            written += len(batch["image"])
        f.create_dataset("id", data=np.array(ids, dtype="S"))
    warn_nonfinite_inputs(bad_pixels, bad_samples, split)
    return out
