"""Sliding-window inference with Gaussian importance weighting (nnU-Net's scheme).

Isensee et al., "nnU-Net", Nature Methods 2021 (nnunetv2/inference/sliding_window_prediction.py):
tiles of ``patch`` size are placed with a step of ``step_fraction`` × patch (0.5: half overlap),
evenly spread so the first and last tiles touch the borders; each tile's output is weighted by
a Gaussian centred on the tile (σ = ``sigma_scale`` × patch side, peak 1, zeros replaced by the
smallest non-zero weight) and the weighted sum is divided by the summed weights. Images smaller
than the patch are padded (zeros) and cropped back. Generic: ``fn`` maps a B×C×h×w tensor to a
tensor B×K×h×w or a dict of them; the result has the same structure at the input's size.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

Output = torch.Tensor | dict[str, torch.Tensor]


def gaussian_weights(patch: tuple[int, int], sigma_scale: float = 1 / 8) -> torch.Tensor:
    """patch-sized map: Gaussian centred on the tile, maximum 1, no zeros."""
    axes = []
    for n in patch:
        x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        axes.append(torch.exp(-0.5 * (x / max(n * sigma_scale, 1e-6)) ** 2))
    w = axes[0][:, None] * axes[1][None, :]
    w = w / w.max()
    return w.clamp(min=float(w[w > 0].min())).float()


def tile_starts(size: int, patch: int, step_fraction: float) -> list[int]:
    """Start offsets covering ``size`` with tiles of ``patch`` (nnU-Net's ``compute_steps_for_sliding_window``)."""
    if size <= patch:
        return [0]
    steps = math.ceil((size - patch) / (patch * step_fraction)) + 1
    stride = (size - patch) / (steps - 1)
    return [int(round(stride * i)) for i in range(steps)]


@torch.no_grad()
def sliding_window(fn: Callable[[torch.Tensor], Output], image: torch.Tensor, patch: tuple[int, int],
                   step_fraction: float = 0.5, sigma_scale: float = 1 / 8, batch_tiles: int = 4) -> Output:
    """Gaussian-weighted sliding-window prediction of ``fn`` over a B×C×H×W ``image``."""
    if not 0 < step_fraction <= 1:
        raise ValueError(f"sliding_window: step_fraction must be in (0, 1], got {step_fraction}")
    h, w = image.shape[-2:]
    ph, pw = patch
    pad_h, pad_w = max(ph - h, 0), max(pw - w, 0)
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h))
    H, W = image.shape[-2:]
    weight = gaussian_weights((ph, pw), sigma_scale).to(image.device)
    tiles = [(y, x) for y in tile_starts(H, ph, step_fraction) for x in tile_starts(W, pw, step_fraction)]
    sums: dict[str, torch.Tensor] = {}
    norm = torch.zeros(H, W, device=image.device)
    single = False
    for i in range(0, len(tiles), batch_tiles):
        group = tiles[i:i + batch_tiles]
        crops = torch.cat([image[..., y:y + ph, x:x + pw] for y, x in group])
        out = fn(crops)
        single = isinstance(out, torch.Tensor)
        out = {"_": out} if single else out
        b = image.shape[0]
        for key, value in out.items():
            acc = sums.setdefault(key, torch.zeros(b, value.shape[1], H, W, device=image.device))
            for j, (y, x) in enumerate(group):
                acc[..., y:y + ph, x:x + pw] += value[j * b:(j + 1) * b].float() * weight
        for y, x in group:
            norm[y:y + ph, x:x + pw] += weight
    result = {k: (v / norm)[..., :h, :w] for k, v in sums.items()}
    return result["_"] if single else result
