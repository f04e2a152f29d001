"""A checkpoint as a function: raw array in, every task's prediction out (``mtdense.load``).

The checkpoint spec (``mtdense.engine.builder.Experiment.spec``) says which input channels the
model takes, how the training data were normalised (per-channel mean/std in raw units) and how
each task turns its raw output into a prediction; ``Predictor`` applies all of it, so a user
needs neither the training data nor the config.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from mtdense.data.normalization import normalize
from mtdense.engine.builder import predictions
from mtdense.errors import DataError


class Predictor:
    """Runs a trained multi-task model on raw inputs.

    ``predict(array)`` takes a numpy array or torch tensor, C×H×W or B×C×H×W, in the raw units
    of the training data (before normalisation), and returns ``{task: prediction}`` in each
    task's own units (class ids, mm/h, metres): B×H×W, or H×W for a C×H×W input; numpy in →
    numpy out, torch in → torch out (on the input's device).
    """

    def __init__(self, model: nn.Module, tasks: nn.ModuleDict, spec: Mapping[str, Any], device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tasks = tasks.to(self.device).eval()
        self.spec = dict(spec)
        self.channel_names: list[str] = list(spec["channel_names"])
        self.normalization = spec.get("normalization")

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> "Predictor":
        """A run folder (its ``checkpoints/last``), a checkpoint folder or its ``model.safetensors``."""
        from mtdense.engine.checkpoint import read_checkpoint
        from mtdense.inference.predict import experiment_from

        ckpt = read_checkpoint(path)
        spec = ckpt["spec"]
        if "normalization" not in spec:
            warnings.warn(f"{path}: checkpoint written before normalisation was stored with the model; inputs are "
                          "passed unchanged (identity normalisation) — normalise them as the training data were",
                          stacklevel=2)
            spec = {**spec, "normalization": None}
        exp = experiment_from(ckpt)
        return cls(exp.model, exp.tasks, spec, device)

    def _as_batch(self, array: Any) -> tuple[torch.Tensor, bool]:
        # numpy: any dtype and byte order (uint8 RGB, big-endian netCDF floats) becomes a float32 copy
        x = array if isinstance(array, torch.Tensor) else torch.tensor(np.asarray(array, dtype=np.float32))
        single = x.ndim == 3
        if x.ndim not in (3, 4) or x.shape[-3] != len(self.channel_names):
            raise DataError(f"input of shape {tuple(x.shape)}: expected C×H×W or B×C×H×W with C = "
                            f"{len(self.channel_names)} channels ({', '.join(self.channel_names)})")
        x = x.to(self.device, torch.float32)
        return (x[None] if single else x), single

    @torch.inference_mode()
    def predict(self, array: np.ndarray | torch.Tensor) -> dict[str, np.ndarray | torch.Tensor]:
        x, single = self._as_batch(array)
        preds = predictions(self.tasks, self.model(normalize(x, self.normalization)))
        if single:
            preds = {name: p[0] for name, p in preds.items()}
        if isinstance(array, torch.Tensor):
            return {name: p.to(array.device) for name, p in preds.items()}
        return {name: p.cpu().numpy() for name, p in preds.items()}

    def __repr__(self) -> str:
        return (f"Predictor(channels={self.channel_names}, tasks={list(self.tasks)}, "
                f"normalization={'yes' if self.normalization else 'none'}, device={self.device})")

    def predict_scene(self, array: Any, window: int | tuple[int, int] = 256, overlap: float = 0.5,
                      batch_size: int = 4, flip_tta: bool = False, probabilities: bool = True) -> dict[str, np.ndarray]:
        """``predict`` for a C×H×W array of any size: overlapping ``window``-sized windows blended
        with Gaussian weights (nnU-Net style), optional flip test-time augmentation; see
        ``mtdense.inference.scene.predict_windows``."""
        from mtdense.inference.scene import predict_windows

        return predict_windows(self, array, window, overlap, batch_size, flip_tta, probabilities)
