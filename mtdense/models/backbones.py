"""Encoders that return multi-scale feature maps, with their channel counts and strides.

Every backbone is an ``nn.Module`` whose ``forward(image)`` returns a list of feature maps
from the finest to the coarsest, and which exposes ``channels`` and ``reductions`` (stride of
each map relative to the input), like timm's ``feature_info``.

- ``timm``: any timm model created with ``features_only=True`` (Wightman, timm).
- ``smp``: any segmentation-models-pytorch encoder (Iakubovskii, smp).
- ``unet_encoder``: the plain U-Net contracting path (Ronneberger et al., MICCAI 2015),
  with nnU-Net's choice of norm and activation available (Isensee et al., Nat. Methods 2021);
  width and depth configurable so distillation students can be swept by parameter budget.

Nothing is downloaded: pretrained weights load only from a local ``checkpoint_path``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mtdense.models.blocks import ConvBlock
from mtdense.registry import BACKBONES
from mtdense.errors import ConfigError


def _check_weights_path(path: str | None) -> None:
    if path is not None and not Path(path).is_file():
        raise ConfigError(
            f"{path!r} does not exist; pretrained weights are only loaded from a local file (nothing is downloaded)",
            key="checkpoint_path")


@BACKBONES.register("timm")
class TimmBackbone(nn.Module):
    """A timm model with ``features_only=True``; ``in_channels`` may be any count."""

    conformance_kwargs = {"name": "test_resnet"}  # the smallest config the shared tests build

    def __init__(self, in_channels: int, name: str = "resnet18", out_indices: list[int] | None = None,
                 checkpoint_path: str | None = None, **timm_kwargs):
        super().__init__()
        import timm

        _check_weights_path(checkpoint_path)
        fetching = sorted(k for k in ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay") if k in timm_kwargs)
        if fetching:
            raise ConfigError("not accepted: weights load only from a local file given as checkpoint_path "
                              "(nothing is downloaded)", key=fetching[0])
        if name not in timm.list_models():
            import difflib

            close = difflib.get_close_matches(name, timm.list_models(), n=3)
            raise ConfigError(f"unknown timm model {name!r}; closest: {', '.join(close)}", key="name")
        kwargs = dict(features_only=True, in_chans=in_channels, **timm_kwargs)
        if out_indices is not None:
            kwargs["out_indices"] = tuple(out_indices)
        if checkpoint_path:
            # timm adapts the first conv to in_chans when loading pretrained weights.
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(checkpoint_path)})
        self.body = timm.create_model(name, **kwargs)
        self.channels = list(self.body.feature_info.channels())
        self.reductions = list(self.body.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


@BACKBONES.register("smp")
class SmpBackbone(nn.Module):
    """A segmentation-models-pytorch encoder (its stride-1 identity output is dropped)."""

    conformance_kwargs = {"name": "tu-test_resnet", "depth": 4}

    def __init__(self, in_channels: int, name: str = "resnet18", depth: int = 5, checkpoint_path: str | None = None):
        super().__init__()
        import segmentation_models_pytorch as smp

        _check_weights_path(checkpoint_path)
        try:
            self.body = smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=None)
        except KeyError as exc:
            raise ConfigError(
                f"unknown smp encoder {name!r}; see segmentation_models_pytorch.encoders.get_encoder_names()", key="name"
            ) from exc
        if checkpoint_path:
            state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
            self.body.load_state_dict(state, strict=False)
        self.channels = list(self.body.out_channels[1:])
        self.reductions = [2 ** (i + 1) for i in range(depth)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x)[1:])


@BACKBONES.register("unet_encoder")
class UNetEncoder(nn.Module):
    """Contracting path of a U-Net: ``depth`` levels, widths ``width * 2**level`` (capped)."""

    conformance_kwargs = {"width": 4, "depth": 3}

    def __init__(self, in_channels: int, width: int = 32, depth: int = 5, max_width: int = 512,
                 norm: str = "batch", activation: str = "relu", downsample: str = "maxpool"):
        super().__init__()
        if downsample not in ("maxpool", "stride"):
            raise ConfigError(f"{downsample!r} is not one of maxpool, stride", key="downsample")
        widths = [min(width * 2**i, max_width) for i in range(depth)]
        self.levels = nn.ModuleList()
        prev = in_channels
        for i, w in enumerate(widths):
            stride = 2 if (i > 0 and downsample == "stride") else 1
            pool = nn.MaxPool2d(2) if (i > 0 and downsample == "maxpool") else nn.Identity()
            self.levels.append(nn.Sequential(pool, ConvBlock(prev, w, norm, activation, stride=stride)))
            prev = w
        self.channels = widths
        self.reductions = [2**i for i in range(depth)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats
