"""Mix Transformer (MiT-B0…B5) encoders of SegFormer, through segmentation-models-pytorch.

Xie, Wang, Yu, Anandkumar, Alvarez, Luo, "SegFormer: Simple and Efficient Design for Semantic
Segmentation with Transformers", NeurIPS 2021. The implementation is smp's
``MixVisionTransformerEncoder`` (``mit_b0`` … ``mit_b5``); smp's encoder returns the input and an
empty stride-2 placeholder before the four stages, which are dropped here, so the backbone returns
the four hierarchical maps at strides 4, 8, 16, 32 (widths ``embed_dims``).

- ``name``: ``mit_b0`` … ``mit_b5`` (smp's hyper-parameters for that size);
- ``embed_dims`` / ``depths`` / ``num_heads``: optional overrides of the four stage widths, block
  counts and attention heads, for models smaller than B0 (students, CPU benchmarks);
- ``in_channels``: any count. Random init, or ``checkpoint_path`` (a local ``.safetensors`` or
  torch file holding the 3-channel state dict of the same size): the weights are loaded at
  3 channels, then smp's ``set_in_channels`` adapts the patch-embedding conv (channels repeated
  cyclically and scaled by 3/C, as smp does for pretrained encoders). Nothing is downloaded.

Small inputs: stage i (stride r_i) reduces its keys/values with a conv of kernel = stride =
``sr_ratios[i]``, which needs a map of at least that size, i.e. an input of at least
max(r_i · sr_i) px per side (32 for every MiT). A smaller input is zero-padded at the bottom/right
to that size and every map is cropped back to ceil(size / r_i); larger inputs are untouched.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.errors import ConfigError
from mtdense.models.backbones import _check_weights_path
from mtdense.registry import BACKBONES

MIT_NAMES = tuple(f"mit_b{i}" for i in range(6))


def _load_state(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path, device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


@BACKBONES.register("mit")
class MixTransformer(nn.Module):
    """MiT encoder: four maps at strides 4/8/16/32, finest first."""

    conformance_kwargs = {"name": "mit_b0", "embed_dims": [8, 16, 24, 32], "depths": [1, 1, 1, 1],
                          "num_heads": [1, 1, 1, 2]}

    def __init__(self, in_channels: int, name: str = "mit_b0", embed_dims: list[int] | None = None,
                 depths: list[int] | None = None, num_heads: list[int] | None = None,
                 drop_path_rate: float | None = None, checkpoint_path: str | None = None):
        super().__init__()
        from segmentation_models_pytorch.encoders import encoders

        if name not in MIT_NAMES:
            raise ConfigError(f"{name!r} is not a Mix Transformer; choose one of {', '.join(MIT_NAMES)}", key="name")
        _check_weights_path(checkpoint_path)
        params = copy.deepcopy(encoders[name]["params"])
        for key, value in (("embed_dims", embed_dims), ("depths", depths), ("num_heads", num_heads)):
            if value is None:
                continue
            if len(value) != 4 or not all(isinstance(v, int) and v >= 1 for v in value):
                raise ConfigError(f"needs 4 positive integers (one per stage), got {value!r}", key=key)
            params[key] = list(value)
        bad = [i for i, (d, h) in enumerate(zip(params["embed_dims"], params["num_heads"])) if d % h]
        if bad:
            raise ConfigError(f"stage {bad[0]}: width {params['embed_dims'][bad[0]]} is not divisible by "
                              f"{params['num_heads'][bad[0]]} heads; change embed_dims or num_heads", key="num_heads")
        if drop_path_rate is not None:
            params["drop_path_rate"] = drop_path_rate
        params["out_channels"] = [3, 0, *params["embed_dims"]]
        self.body = encoders[name]["encoder"](depth=5, **params)
        if checkpoint_path:
            state = _load_state(str(checkpoint_path))
            try:
                self.body.load_state_dict(state)
            except RuntimeError as exc:
                raise ConfigError(f"{checkpoint_path}: not a 3-channel {name} state dict of this size ({exc})",
                                  key="checkpoint_path") from None
        self.body.set_in_channels(in_channels, pretrained=bool(checkpoint_path))
        self.channels = list(params["embed_dims"])
        self.reductions = [4, 8, 16, 32]
        self.min_size = max(r * sr for r, sr in zip(self.reductions, params["sr_ratios"]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        if h >= self.min_size and w >= self.min_size:
            return list(self.body(x)[2:])
        x = F.pad(x, (0, max(self.min_size - w, 0), 0, max(self.min_size - h, 0)))
        return [f[..., : -(-h // r), : -(-w // r)] for f, r in zip(self.body(x)[2:], self.reductions)]
