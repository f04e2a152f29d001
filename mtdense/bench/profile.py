"""Size of a model: parameter count and FLOPs per image (timings: ``mtdense.bench.costs``).

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on one batch-1 forward at the
training resolution: it counts convolutions, matrix products and attention (a multiply-add
is 2 FLOPs) and ignores element-wise operations, normalisation and pooling.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _example(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters())
    return torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device)


def flops_per_image(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward of a single ``input_shape`` (C, H, W) image."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(_example(model, input_shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
