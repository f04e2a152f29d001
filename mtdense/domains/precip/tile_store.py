"""Dataset over the precipitation tile store written by ``mtdense.domains.precip.prepare``.

Store layout (HDF5, one file): ``image`` (N, C, T, T) float32 brightness temperatures [K] (one
tile per chunk), ``rain_rate`` (N, T, T) float32 mm/h with NaN = invalid, ``split/{train,val,test}``
tile indices, ``stats/{mean,std}`` per channel from the train split, ``tile_scene``,
``tile_origin``, ``tile_latlon``, ``scenes/*`` (source files and times) and provenance attributes
(``channel_names``, ``parameters``, ``synthetic``, ``mtdense_version``, ...).

The HDF5 file is opened lazily on the first ``__getitem__`` of each process (and reopened after a
fork), so one dataset object is safe to use with several DataLoader workers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mtdense.config import SPLITS
from mtdense.domains.precip.ptree import channel_info
from mtdense.errors import ConfigError, DataError
from mtdense.registry import DATASETS


def _open(path: Path):
    import h5py

    if not path.is_file():
        raise ConfigError(f"tile store {path} not found; create it with `mtdense data prepare-precip`", key="path")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 tile store ({exc}); re-run `mtdense data prepare-precip`") from exc


@DATASETS.register("precip_tiles")
class PrecipTiles(Dataset):
    """AHI brightness-temperature tiles (normalised with train statistics) and IMERG rain rate.

    ``bands``: subset/order of stored channel names (e.g. ``["B13", "B15"]``); ``normalize``:
    z-score with the store's train mean/std (False gives kelvin), exposed as ``normalization``
    (kelvin) so checkpoints carry it; ``transform``: callable applied
    to the whole sample dict (image, targets and valid together) before it is returned.
    """

    target_keys = ["rain_rate"]

    @staticmethod
    def conformance_kwargs(workdir: Path) -> dict:
        """A tiny SYNTHETIC tile store (4 scenes of 16×16 label cells) for ``mtdense.testing``."""
        from mtdense.domains.precip.prepare import prepare_precip
        from mtdense.domains.precip.synth import synth_precip

        synth_precip(workdir, n_scenes=4, height=16, width=16, seed=1)
        summary = prepare_precip(workdir / "ahi", workdir / "imerg", workdir / "tiles.h5", tile_size=8,
                                 val_fraction=0.25, test_fraction=0.25, min_valid_fraction=0.0,
                                 split_by="random", scheduler="inline")  # 4 scans: too few for blocked splits
        return {"path": summary["path"], "split": "train"}

    def __init__(self, path: str | Path, split: str = "train", bands: Sequence[str] | None = None,
                 normalize: bool = True, transform: Callable[[dict], dict] | None = None):
        self.path = Path(path)
        if split not in SPLITS:
            raise ConfigError(f"{split!r} is not a split; choose one of {', '.join(SPLITS)}", key="split")
        with _open(self.path) as f:
            for key in ("image", "rain_rate", f"split/{split}", "stats/mean", "stats/std"):
                if key not in f:
                    raise ConfigError(f"{self.path} has no {key!r}; not a complete precip tile store, re-run prepare",
                                      key="path")
            stored = [str(c) for c in f.attrs["channel_names"]]
            self.indices = f[f"split/{split}"][:]
            mean, std = f["stats/mean"][:], f["stats/std"][:]
            self.synthetic = bool(f.attrs.get("synthetic", False))
            self._scan_times = [s.decode() if isinstance(s, bytes) else str(s) for s in f["scenes/scan_time"][:]]
            self._tile_scene = f["tile_scene"][:]
        names = list(bands) if bands is not None else stored
        unknown = [b for b in names if b not in stored]
        if unknown:
            raise ConfigError(f"{', '.join(map(repr, unknown))} not in {self.path}; "
                              f"stored channels: {', '.join(stored)}", key="bands")
        self.channel_names = names
        self._channel_index = np.array([stored.index(b) for b in names])
        self._mean = mean[self._channel_index].astype(np.float32)[:, None, None]
        self._std = np.maximum(std[self._channel_index], 1e-6).astype(np.float32)[:, None, None]
        self.split, self.normalize, self.transform = split, normalize, transform
        self.channel_info = {name: channel_info(name) for name in names}
        self.normalization = {"mean": self._mean.ravel().tolist(), "std": self._std.ravel().tolist()} if normalize else None
        self._file, self._pid = None, None

    def __len__(self) -> int:
        return len(self.indices)

    def _handle(self):
        if self._file is None or self._pid != os.getpid():     # first access in this process (or after fork)
            self._file, self._pid = _open(self.path), os.getpid()
        return self._file

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_pid": None}

    def __getitem__(self, i: int) -> dict:
        f = self._handle()
        idx = int(self.indices[i])
        try:
            image = f["image"][idx][self._channel_index]
            rain = f["rain_rate"][idx]
        except OSError as exc:  # a corrupt chunk: h5py's message does not name the file
            raise DataError(f"{self.path}: cannot read tile {idx} ({exc}); the store is damaged, re-run prepare") from exc
        if self.normalize:
            image = (image - self._mean) / self._std
        valid = np.isfinite(rain)
        scene = int(self._tile_scene[idx])
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image, np.float32)),
            "targets": {"rain_rate": torch.from_numpy(np.where(valid, rain, 0.0).astype(np.float32))},
            "valid": {"rain_rate": torch.from_numpy(valid)},
            "meta": {"id": f"{self.split}/{idx:06d}", "tile": idx, "scan_time": self._scan_times[scene]},
        }
        return self.transform(sample) if self.transform is not None else sample
