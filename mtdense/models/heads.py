"""Per-task heads: branch features → raw task outputs at the input resolution.

- ``conv``: 3×3 conv–norm–activation then a 1×1 projection (the usual dense-prediction head).
- ``linear``: a single 1×1 projection (for compact students and probing).
Outputs are upsampled bilinearly to the input size when the branch works at a coarser stride.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.models.blocks import ConvNormAct
from mtdense.registry import HEADS


class _Head(nn.Module):
    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.body(x)
        if y.shape[-2:] != tuple(size):
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return y


@HEADS.register("conv")
class ConvHead(_Head):
    def __init__(self, in_channels: int, out_channels: int, hidden: int | None = None, norm: str = "batch",
                 activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        hidden = hidden or in_channels
        self.body = nn.Sequential(
            ConvNormAct(in_channels, hidden, norm, activation),
            nn.Dropout2d(dropout) if dropout else nn.Identity(),
            nn.Conv2d(hidden, out_channels, 1),
        )


@HEADS.register("linear")
class LinearHead(_Head):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Conv2d(in_channels, out_channels, 1)
