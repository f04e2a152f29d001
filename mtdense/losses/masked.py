"""Masked reduction shared by every per-pixel loss: only valid pixels count.

Under DDP each rank divides its sum of per-pixel losses by the *global* number of valid
pixels (all-reduced) times the world size, so the averaged gradients equal those of one
process on the whole global batch even when ranks hold different numbers of valid pixels.
"""

from __future__ import annotations

import torch

from mtdense.engine.distributed import is_distributed, mean_across_ranks


def global_count(valid: torch.Tensor) -> torch.Tensor:
    """Number of valid pixels over all ranks, divided by the world size (a float tensor)."""
    count = valid.sum().to(torch.float32)
    return mean_across_ranks(count.detach().clone()) if is_distributed() else count


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (B×H×W) over ``valid`` pixels; 0 (with gradient path) if none are valid."""
    values = values.float()
    total = torch.where(valid, values, torch.zeros_like(values)).sum()
    return total / global_count(valid).clamp_min(1.0)
