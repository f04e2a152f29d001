"""The All-MLP decoder of SegFormer (Xie et al., NeurIPS 2021), as a stage-by-stage decoder.

SegFormer's decoder: every encoder map F_i (width C_i, stride r_i) gets a linear layer (a 1×1
conv) to width D, is upsampled bilinearly to the finest encoder stride (4 for MiT), the L maps
are concatenated (coarsest first, as in the official ``SegFormerHead``) and fused by a linear
layer L·D → D with BatchNorm and ReLU; dropout, then the classifier (mtdense's ``linear`` head).

How this single fusion step maps onto mtdense's decoder stages (``num_stages``):

- ``num_stages: 1`` (default): stage 0 is the whole decoder — project, upsample, concatenate,
  fuse — and outputs the fused map (width D, stride 4). Interactions at ``stages: last`` (or 0)
  run on the per-task fused maps, right before the heads: where MTLSegFormer re-weights.
- ``num_stages: 2``: stage 0 projects, upsamples and concatenates (width L·D, stride 4), stage 1
  fuses (width D). Interactions at stage 0 see each task's multi-level concatenation before its
  fusion layer; at stage 1 the fused maps as above.

The ``x`` a stage receives from the model (the coarsest map at stage 0) is not needed at
stage 0: the decoder reads all levels from ``skips``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.errors import ConfigError
from mtdense.models.blocks import ConvNormAct
from mtdense.registry import DECODERS


@DECODERS.register("all_mlp")
class AllMLPDecoder(nn.Module):
    conformance_kwargs = {"width": 8}

    def __init__(self, encoder_channels: list[int], encoder_reductions: list[int], width: int = 256,
                 dropout: float = 0.1, num_stages: int = 1):
        super().__init__()
        if num_stages not in (1, 2):
            raise ConfigError(f"{num_stages!r} must be 1 (project+fuse) or 2 (project | fuse)", key="num_stages")
        if not (isinstance(width, int) and width >= 1):
            raise ConfigError(f"{width!r} must be a positive integer", key="width")
        self.num_stages = num_stages
        self.projections = nn.ModuleList(nn.Conv2d(c, width, 1) for c in encoder_channels)
        levels = len(encoder_channels)
        self.fuse = nn.Sequential(ConvNormAct(levels * width, width, "batch", "relu", kernel_size=1),
                                  nn.Dropout2d(dropout) if dropout else nn.Identity())
        self.stage_channels = [levels * width, width][2 - num_stages:]
        self.out_reduction = encoder_reductions[0]

    def project(self, skips: list[torch.Tensor]) -> torch.Tensor:
        """Linear projection of every level to D, upsampled to the finest level, concatenated coarsest first."""
        size = skips[0].shape[-2:]
        maps = []
        for proj, feat in zip(reversed(self.projections), reversed(skips)):
            y = proj(feat)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            maps.append(y)
        return torch.cat(maps, dim=1)

    def stage(self, s: int, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        if self.num_stages == 1:
            return self.fuse(self.project(skips))
        return self.project(skips) if s == 0 else self.fuse(x)
