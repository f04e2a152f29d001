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
        raise ConfigError(f"{path!r} does not exist; pretrained weights are only loaded from a local file "
                          "(nothing is downloaded)", key="checkpoint_path")


def _read_state(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and safetensors errors alike
        raise ConfigError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})",
                          key="checkpoint_path") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict of tensors (save encoder.state_dict())", key="checkpoint_path")
    return state


def load_encoder_weights(encoder: nn.Module, path: str | Path, in_channels: int) -> None:
    """Load a local state dict into ``encoder``: every key must match. Input convolutions saved
    for another channel count (3-channel ImageNet weights for N bands) are adapted with timm's
    ``adapt_input_conv``, as timm does when it loads pretrained weights with ``in_chans``."""
    from timm.models import adapt_input_conv

    state = _read_state(path)
    own = encoder.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        stripped = {k.split(".", 1)[1] for k in unexpected if "." in k}
        prefixes = sorted({k.split(".", 1)[0] + "." for k in unexpected if "." in k})
        hint = (f"; it looks like a whole model (keys start with {', '.join(prefixes[:3])}): save the encoder's "
                "own state_dict (e.g. model.encoder.state_dict())" if unexpected and set(missing) <= stripped else "")
        raise ConfigError(f"{path}: keys do not match the encoder: {len(missing)} missing (e.g. "
                          f"{', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected (e.g. "
                          f"{', '.join(unexpected[:3]) or '-'}){hint}", key="checkpoint_path")
    for key, value in state.items():
        if value.ndim == 4 and own[key].ndim == 4 and value.shape[1] != own[key].shape[1] \
                and value.shape[0] == own[key].shape[0] and value.shape[2:] == own[key].shape[2:]:
            state[key] = adapt_input_conv(in_channels, value)
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items() if v.shape != own[k].shape]
    if wrong:
        raise ConfigError(f"{path}: shapes do not match the encoder: {'; '.join(wrong[:3])}", key="checkpoint_path")
    encoder.load_state_dict(state)


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
            load_encoder_weights(self.body, checkpoint_path, in_channels)
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
