"""Branch decoders that run stage by stage, so interaction modules can sit between stages.

A decoder gets the encoder's ``channels``/``reductions`` (runtime arguments) and exposes
``num_stages``, ``stage_channels`` (output width of each stage), ``out_reduction`` (stride of
its last output) and ``stage(s, x, skips)``; stage 0 takes the coarsest encoder map.

- ``unet``: the U-Net expanding path (Ronneberger et al., MICCAI 2015): upsample ×2, concatenate
  the skip connection of the same stride, two conv–norm–activation layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.models.blocks import ConvBlock
from mtdense.registry import DECODERS
from mtdense.errors import ConfigError


@DECODERS.register("unet")
class UNetDecoder(nn.Module):
    def __init__(self, encoder_channels: list[int], encoder_reductions: list[int], widths: list[int] | None = None,
                 norm: str = "batch", activation: str = "relu", upsample: str = "bilinear", num_stages: int | None = None):
        super().__init__()
        levels = len(encoder_channels)
        max_stages = levels - 1
        self.num_stages = max_stages if num_stages is None else num_stages
        if not 1 <= self.num_stages <= max_stages:
            raise ConfigError(f"{num_stages} must be in 1..{max_stages} for this backbone", key="num_stages")
        skips = list(reversed(encoder_channels[:-1]))[: self.num_stages]
        if widths is None:
            widths = skips
        if not isinstance(widths, (list, tuple)):
            raise ConfigError(f"{widths!r} must be a list of channel widths, one per stage", key="widths")
        widths = list(widths)
        if len(widths) != self.num_stages:
            raise ConfigError(f"needs {self.num_stages} entries (one per stage), got {len(widths)}", key="widths")
        if upsample not in ("bilinear", "transpose"):
            raise ConfigError(f"{upsample!r} is not one of bilinear, transpose", key="upsample")
        self.upsample = upsample
        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        prev = encoder_channels[-1]
        for skip_ch, w in zip(skips, widths):
            self.ups.append(nn.ConvTranspose2d(prev, prev, 2, stride=2) if upsample == "transpose" else nn.Identity())
            self.blocks.append(ConvBlock(prev + skip_ch, w, norm, activation))
            prev = w
        self.stage_channels = widths
        self.out_reduction = list(reversed(encoder_reductions[:-1]))[self.num_stages - 1]

    def stage(self, s: int, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """Run stage ``s``; ``skips`` are the encoder maps, finest first (as the backbone returns)."""
        skip = skips[-2 - s]
        if self.upsample == "transpose":
            x = self.ups[s](x)
        if x.shape[-2:] != skip.shape[-2:]:  # odd sizes or bilinear mode
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.blocks[s](torch.cat([x, skip], dim=1))
