"""Cached soft targets: run a frozen teacher once over a dataset, train students from the store.

``cache_soft_targets`` writes each task's raw teacher output (N×K×H×W, float16, HDF5 via h5py)
with the sample ids. The dataset ``with_soft_targets`` wraps any dataset config and adds the
cached channels as extra float targets ``teacher.<name>.<task>.<k>`` (valid everywhere) *before*
its own ``transform`` runs, so flips and crops move image, labels and soft targets together.
The hook ``soft_targets`` (``hooks: [{type: soft_targets, teacher: <name>}]``) moves them into
``batch["teacher"][name][task]`` before the forward, where distillation couplings read teacher
outputs produced on the fly — so the same couplings serve both modes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mtdense.engine.hooks import Hook
from mtdense.errors import DataError
from mtdense.registry import DATASETS, HOOKS

PREFIX = "teacher."


@torch.no_grad()
def cache_soft_targets(teacher, dataset, out: str | Path, batch_size: int = 8) -> dict:
    """Store ``teacher.predict`` for every sample of ``dataset``; returns {"path", "seconds", "samples"}."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tic = time.perf_counter()
    ids: list[str] = []
    with h5py.File(tmp, "w") as f:
        written = 0
        for batch in DataLoader(dataset, batch_size=batch_size):
            preds = teacher.predict(batch["image"])
            for task, value in preds.items():
                arr = value.float().cpu().numpy().astype(np.float16)
                if task not in f:
                    f.create_dataset(task, shape=(len(dataset),) + arr.shape[1:], dtype="f2",
                                     chunks=(1,) + arr.shape[1:])
                f[task][written:written + len(arr)] = arr
            ids += [str(i) for i in batch["meta"]["id"]]
            written += len(batch["image"])
        f.create_dataset("id", data=np.array(ids, dtype="S"))
    tmp.replace(out)
    return {"path": str(out), "seconds": time.perf_counter() - tic, "samples": len(ids)}


@DATASETS.register("with_soft_targets")
class WithSoftTargets(Dataset):
    """``dataset`` (a dataset config) + the teacher outputs cached in ``cache`` as extra targets."""

    conformance_skip = "needs a soft-target cache written by `mtdense distill --cache`; tests/test_clouds_distill.py covers it"

    def __init__(self, dataset: dict, cache: str, teacher: str = "teacher",
                 transform: Callable[[dict], dict] | None = None):
        if isinstance(dataset, dict) and "transform" in dataset:
            raise DataError(f"{cache}: put the transform on the with_soft_targets level, not on the wrapped "
                            "dataset, so soft targets are transformed with the image")
        self.base = DATASETS.build(dataset, "dataset")
        self.cache, self.teacher, self.transform = Path(cache), teacher, transform
        if not self.cache.is_file():
            raise DataError(f"{self.cache}: soft-target cache not found; build it with `mtdense distill --cache`")
        with h5py.File(self.cache, "r") as f:
            self.ids = [i.decode() for i in f["id"][:]]
            self.tasks = [k for k in f.keys() if k != "id"]
        if len(self.ids) != len(self.base):
            raise DataError(f"{self.cache}: holds {len(self.ids)} samples, the dataset has {len(self.base)}; rebuild it")
        self.channel_names = self.base.channel_names
        self.normalization = getattr(self.base, "normalization", None)  # a wrapper forwards its inner dataset's
        self.target_keys = list(getattr(self.base, "target_keys", []))
        self._file = None

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        sample = self.base[i]
        if str(sample["meta"]["id"]) != self.ids[i]:
            raise DataError(f"{self.cache}: sample {i} is {sample['meta']['id']!r} but the cache holds "
                            f"{self.ids[i]!r}; rebuild it for this dataset")
        if self._file is None:  # opened lazily: one handle per DataLoader worker
            self._file = h5py.File(self.cache, "r")
        for task in self.tasks:
            soft = torch.from_numpy(self._file[task][i].astype(np.float32))
            for k in range(soft.shape[0]):
                key = f"{PREFIX}{self.teacher}.{task}.{k}"
                sample["targets"][key] = soft[k]
                sample["valid"][key] = torch.ones(soft.shape[-2:], dtype=torch.bool)
        return self.transform(sample) if self.transform else sample


@HOOKS.register("soft_targets")
class SoftTargetsAsTeacher(Hook):
    """Moves cached ``teacher.<name>.<task>.<k>`` targets to ``batch["teacher"][name][task]``."""

    def __init__(self, teacher: str = "teacher"):
        self.teacher = teacher

    def before_forward(self, batch: dict, step: int) -> dict:
        prefix = f"{PREFIX}{self.teacher}."
        keys = sorted((k for k in batch["targets"] if k.startswith(prefix)), key=lambda k: int(k.rsplit(".", 1)[1]))
        outputs: dict[str, list] = {}
        for key in keys:
            task = key[len(prefix):].rsplit(".", 1)[0]
            outputs.setdefault(task, []).append(batch["targets"].pop(key))
            batch["valid"].pop(key, None)
        batch.setdefault("teacher", {})[self.teacher] = {t: torch.stack(v, 1) for t, v in outputs.items()}
        return batch
