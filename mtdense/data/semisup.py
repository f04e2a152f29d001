"""Labelled + unlabelled training data: one dataset over a labelled pool and unlabelled images.

Config (``data.train``)::

    type: semisup
    labelled: {type: cityscapes, root: ..., split: train}       # the pool with labels
    unlabelled: {type: cityscapes, root: ..., split: train_extra, unlabelled: true}   # optional
    label_fraction: 0.125          # or labelled_count: 372 (see mtdense.data.label_split)
    split_seed: 0
    split_file: ${trainer.out_dir}/label_split.txt   # written, and re-read on resume: saved with the run
    keep_targets: [depth]          # targets still supervised on unlabelled samples (where valid)
    labelled_ratio: 0.5            # labelled share of every training batch

An existing ``split_file`` is read instead of applying the rule: a file mtdense wrote must
record the same rule (else DataError); a published list (no mtdense header) is used as given.
The labelled pool's samples outside the labelled subset join the unlabelled set (``rest:
unlabelled``, default) or are dropped (``rest: drop``). An unlabelled sample keeps its image
and targets but its validity masks are all false, except for the ``keep_targets``, so it adds
nothing to the supervised loss of the other tasks; ``meta["labelled"]`` is 1 or 0. Teachers
and couplings (mean teacher, pseudo-labels) use every sample.

The training loader draws every batch as round(labelled_ratio × B) labelled and the rest
unlabelled samples (``make_sampler`` → ``mtdense.data.mixed_sampler.MixedRatioSampler``:
resumable and DDP-sharded); evaluation loaders read the samples in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from mtdense.data.label_split import labelled_count, read_split, select_labelled, write_split
from mtdense.data.mixed_sampler import MixedRatioSampler
from mtdense.errors import ConfigError
from mtdense.registry import DATASETS


def sample_ids(dataset: Any) -> list[str]:
    """Stable ids of a dataset's samples: its ``sample_ids()`` if it has one, else "0", "1", …"""
    ids = getattr(dataset, "sample_ids", None)
    return [str(i) for i in ids()] if callable(ids) else [str(i) for i in range(len(dataset))]


@DATASETS.register("semisup")
class SemiSupervised(Dataset):
    conformance_kwargs = {"labelled": {"type": "synthetic_shapes", "length": 4, "size": [16, 24]},
                          "label_fraction": 0.5}  # half of four shapes images labelled (for ``mtdense.testing``)

    def __init__(self, labelled: Mapping[str, Any], unlabelled: Mapping[str, Any] | None = None,
                 label_fraction: float | None = None, labelled_count: int | None = None, split_seed: int = 0,
                 split_file: str | None = None, keep_targets: Sequence[str] = (), labelled_ratio: float = 0.5,
                 rest: str = "unlabelled"):
        if rest not in ("unlabelled", "drop"):
            raise ConfigError(f"{rest!r} is not one of unlabelled, drop", key="rest")
        if not 0 < labelled_ratio <= 1:
            raise ConfigError(f"{labelled_ratio!r} must be a fraction in (0, 1]", key="labelled_ratio")
        self.pool = DATASETS.build(dict(labelled), "labelled")
        self.extra = DATASETS.build(dict(unlabelled), "unlabelled") if unlabelled else None
        ids = sample_ids(self.pool)
        self.labelled_ids = self._split(ids, label_fraction, labelled_count, split_seed, split_file)
        chosen = set(self.labelled_ids)
        # (dataset, index, labelled) for every sample: labelled subset, rest of the pool, extra images
        self.items = [(self.pool, i, True) for i, x in enumerate(ids) if x in chosen]
        if rest == "unlabelled":
            self.items += [(self.pool, i, False) for i, x in enumerate(ids) if x not in chosen]
        if self.extra is not None:
            self.items += [(self.extra, i, False) for i in range(len(self.extra))]
        self.keep_targets, self.labelled_ratio = set(keep_targets), float(labelled_ratio)
        self.channel_names = list(getattr(self.pool, "channel_names", []) or [])
        for name in ("target_keys", "class_names", "normalization"):
            if hasattr(self.pool, name):
                setattr(self, name, getattr(self.pool, name))

    @staticmethod
    def _split(ids, fraction, count, seed, split_file) -> list[str]:
        rule = f"label_fraction={fraction}" if fraction is not None else f"labelled_count={count}"
        rule += f", split_seed={seed}"
        if split_file is not None and Path(split_file).is_file():
            return read_split(split_file, ids, rule)
        chosen = select_labelled(ids, labelled_count(len(ids), fraction, count), seed)
        if split_file is not None:
            write_split(split_file, chosen, len(ids), rule)
        return chosen

    @property
    def labelled_indices(self) -> list[int]:
        return [i for i, item in enumerate(self.items) if item[2]]

    @property
    def unlabelled_indices(self) -> list[int]:
        return [i for i, item in enumerate(self.items) if not item[2]]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        dataset, inner, is_labelled = self.items[index]
        sample = dataset[inner]
        if not is_labelled:
            sample["valid"] = {k: v if k in self.keep_targets else torch.zeros_like(v, dtype=torch.bool)
                               for k, v in sample["valid"].items()}
        sample["meta"] = {**sample.get("meta", {}), "labelled": int(is_labelled)}
        return sample

    def make_sampler(self, batch_size: int, seed: int) -> MixedRatioSampler:
        """The training sampler: round(labelled_ratio × batch_size) labelled samples per batch."""
        unlabelled = self.unlabelled_indices
        per_batch = batch_size if not unlabelled else round(self.labelled_ratio * batch_size)
        if unlabelled and not 0 < per_batch < batch_size and self.labelled_ratio < 1:
            raise ConfigError(f"labelled_ratio {self.labelled_ratio} × batch size {batch_size} gives {per_batch} "
                              "labelled samples per batch; choose a ratio that leaves at least one of each",
                              key="data.train.labelled_ratio")
        return MixedRatioSampler(self.labelled_indices, unlabelled, batch_size, per_batch, seed)
