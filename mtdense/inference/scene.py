"""Whole-array prediction with a trained model: sliding windows in, every task's prediction out.

``predict_windows`` runs ``Predictor``'s model over an array of any size with
``mtdense.inference.sliding_window`` (overlapping windows, Gaussian blending, optional flip
test-time augmentation), normalising each window with the checkpoint's normalisation on the
model's device, and applies each task's post-processing to the blended raw outputs strip by
strip, so neither the normalised array nor a full-size post-processing intermediate is ever held
at once. Generic: arrays only, no geography (domains add coordinates).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mtdense.data.normalization import normalize
from mtdense.engine.builder import predictions
from mtdense.errors import DataError
from mtdense.inference.sliding_window import pad_value_for, sliding_window


def event_probability_names(tasks) -> list[str]:
    """Tasks whose probability of an event (class ≥ 1) is defined (threshold classifications)."""
    return [name for name, task in tasks.items() if hasattr(task, "event_probability")]


@torch.inference_mode()
def predict_windows(predictor, array: Any, window: int | tuple[int, int] = 256, overlap: float = 0.5,
                    batch_size: int = 4, flip_tta: bool = False, probabilities: bool = True,
                    strip_rows: int = 512, blend: str = "gaussian") -> dict[str, np.ndarray]:
    """``{task: H×W prediction}`` for a C×H×W array in raw units (NaN = missing input, filled
    with the training mean and reported as NaN/-1 in the outputs), plus
    ``{task}_probability`` (P(class ≥ 1)) for threshold-classification tasks when
    ``probabilities``. ``blend="constant"`` with ``overlap=0`` is plain tiling. The array stays in CPU memory; only ``batch_size`` windows at a time go
    to ``predictor.device``."""
    x = torch.as_tensor(np.asarray(array, dtype=np.float32))
    channels = len(predictor.channel_names)
    if x.ndim != 3 or x.shape[0] != channels:
        raise DataError(f"input of shape {tuple(x.shape)}: expected C×H×W with C = {channels} channels "
                        f"({', '.join(predictor.channel_names)})")
    fill = pad_value_for(predictor.normalization, channels)
    missing = ~torch.isfinite(x).all(dim=0)
    if missing.any():
        x = torch.where(torch.isfinite(x), x, fill.view(-1, 1, 1))
    norm = predictor.normalization

    def forward(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return predictor.model(normalize(batch, norm))

    raw = sliding_window(forward, x, window, overlap=overlap, batch_size=batch_size, device=predictor.device,
                         flip_tta=flip_tta, pad_value=fill, blend=blend)
    out: dict[str, list[np.ndarray]] = {}
    prob_tasks = event_probability_names(predictor.tasks) if probabilities else []
    for top in range(0, x.shape[1], strip_rows):
        strip = {name: value[None, :, top:top + strip_rows].to(predictor.device) for name, value in raw.items()}
        preds = predictions(predictor.tasks, strip)
        for name in prob_tasks:
            preds[f"{name}_probability"] = predictor.tasks[name].event_probability(strip[name])
        for name, value in preds.items():
            out.setdefault(name, []).append(value[0].cpu().numpy())
    result = {name: np.concatenate(parts, axis=0) for name, parts in out.items()}
    hole = missing.numpy()
    for name, value in result.items():
        if hole.any():
            value[hole] = np.nan if np.issubdtype(value.dtype, np.floating) else -1
    return result
