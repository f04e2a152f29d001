"""MTAN-style task attention over shared features, adapted to per-task branches.

Source: Liu, Johns, Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019,
arXiv:1803.10704. In MTAN a shared network feeds every task, and each task applies its own
soft attention mask a_t = sigmoid(BN(conv1×1(ReLU(BN(conv1×1([shared; task features]))))))
elementwise to the shared features.

Adaptation to mtdense (branches are per-task decoders, there is no separate shared trunk at
a decoder stage):
- the "shared" features are built from all branches: ``shared="mean"`` (default) uses the
  mean of all T branch maps (including the task's own), each first mapped to the task's
  width C_t with a 1×1 conv when its width differs; ``shared="concat"`` uses the
  concatenation of all branch maps (ΣC channels);
- the mask is MTAN's attention block on [shared; F_t], with MTAN's widths (hidden = output
  = the width of the shared features);
- the masked shared features are added as a residual, F_t' = F_t + a_t ⊙ shared_t, instead
  of replacing F_t (the branch keeps its own decoder path); with "concat" the masked ΣC
  channels are first mapped to C_t by a 1×1 conv.
Works for any T >= 2 (every mask sees all branches). With 1 branch there is nothing shared
across tasks and the module is an exact no-op without parameters. With ``identity_init``
(default) the residual is scaled by a per-channel γ_t initialised to 0, so the module starts
as the exact identity; ``identity_init=False`` adds it unscaled (MTAN's masks start near
sigmoid(0) = 0.5, so that form does not start as the identity).
"""

from __future__ import annotations

import torch
from torch import nn

from mtdense.registry import INTERACTIONS

from .common import ResidualScale, check_channels, check_choice, check_feats, norm_layer, pair_modules, projection

NAME = "mtan_attention"


def _attention_mask(in_width: int, out_width: int) -> nn.Sequential:
    """MTAN attention block: conv1×1 -> BN -> ReLU -> conv1×1 -> BN -> sigmoid."""
    return nn.Sequential(
        nn.Conv2d(in_width, out_width, kernel_size=1, bias=False),
        norm_layer("batch", out_width),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_width, out_width, kernel_size=1, bias=False),
        norm_layer("batch", out_width),
        nn.Sigmoid(),
    )


@INTERACTIONS.register(NAME)
class TaskAttention(nn.Module):
    """Task-specific sigmoid masks over features shared by all branches, added residually.

    Options: ``shared`` ("mean" or "concat": how the branches form the shared features);
    ``identity_init`` (start as the identity through a zero-initialised output scale).
    """

    def __init__(self, channels: dict[str, int], shared: str = "mean", identity_init: bool = True):
        super().__init__()
        self.channels = check_channels(channels, NAME)
        check_choice(shared, ("mean", "concat"), "shared", NAME)
        check_choice(identity_init, (False, True), "identity_init", NAME)
        self.shared = shared
        tasks = list(self.channels)
        if len(tasks) < 2:
            return
        c = self.channels
        if shared == "mean":
            self.projections = pair_modules(tasks, lambda t, s: projection(c[s], c[t]))
            self.masks = nn.ModuleDict({t: _attention_mask(2 * c[t], c[t]) for t in tasks})
        else:
            total = sum(c.values())
            self.masks = nn.ModuleDict({t: _attention_mask(total + c[t], total) for t in tasks})
            self.outputs = nn.ModuleDict({t: projection(total, c[t]) for t in tasks})
        self.scale = ResidualScale(c, identity_init)

    def _shared_for(self, t: str, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.shared == "concat":
            return torch.cat([feats[s] for s in self.channels], dim=1)
        mapped = [feats[s] if s == t else self.projections[t][s](feats[s]) for s in self.channels]
        return sum(mapped) / len(mapped)

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_feats(feats, self.channels, NAME)
        if len(feats) < 2:
            return dict(feats)
        out = {}
        for t, f_t in feats.items():
            shared = self._shared_for(t, feats)
            message = self.masks[t](torch.cat([shared, f_t.to(shared.dtype)], dim=1)) * shared
            if self.shared == "concat":
                message = self.outputs[t](message)
            out[t] = f_t + self.scale(t, message).to(f_t.dtype)
        return out
