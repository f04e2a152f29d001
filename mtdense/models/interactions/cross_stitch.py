"""Cross-stitch units: learned per-channel linear combination of the task branches.

Source: Misra, Shrivastava, Gupta, Hebert, "Cross-stitch Networks for Multi-task
Learning", CVPR 2016, arXiv:1604.03539. Per-channel weights as in the reference
implementation of Vandenhende et al., TPAMI 2021
(SimonVandenhende/Multi-Task-Learning-PyTorch: models/cross_stitch.py).

For T branches, each output is a per-channel combination of all inputs:
    F_t'[c] = Σ_j α_tj[c] · P_tj(F_j)[c]
with P_tj a 1×1 convolution (no bias) when C_j ≠ C_t and the identity otherwise, so unequal
widths are supported (at the cost of C_j·C_t weights per such pair). Initialisation follows
Misra et al. (α_self = 0.9, α_other = 0.1 for two tasks): α_tt = ``alpha_self`` and the
remaining 1 - alpha_self is split evenly over the T-1 other tasks, so every row of the T×T
matrix sums to 1 and the module starts close to (not exactly at) the identity. (Vandenhende's
code instead gives every other task 0.1; the two agree for T = 2.) With ``alpha_self=1`` it
starts as the exact identity. With 1 branch the module is an exact no-op without parameters.

Misra et al. train α with a learning rate 10²-10³ times the network's; if you want that,
give the parameters named ``*.alphas.*`` their own optimizer group.
"""

from __future__ import annotations

import torch
from torch import nn

from mtdense.registry import INTERACTIONS
from mtdense.errors import ConfigError

from .common import check_channels, check_feats, pair_modules, projection

NAME = "cross_stitch"


@INTERACTIONS.register(NAME)
class CrossStitch(nn.Module):
    """Per-channel T×T linear combination of branch features.

    Options: ``alpha_self`` (initial weight of a branch on itself, in [0, 1]).
    ``alphas[t]`` is a (T × C_t) tensor whose row k weights the k-th task in key order.
    """

    def __init__(self, channels: dict[str, int], alpha_self: float = 0.9):
        super().__init__()
        self.channels = check_channels(channels, NAME)
        if isinstance(alpha_self, bool) or not isinstance(alpha_self, (int, float)) or not 0.0 <= alpha_self <= 1.0:
            raise ConfigError(f"{alpha_self!r} must be a number in [0, 1]", key="alpha_self")
        tasks = list(self.channels)
        if len(tasks) < 2:
            return
        c = self.channels
        alpha_other = (1.0 - alpha_self) / (len(tasks) - 1)
        self.alphas = nn.ParameterDict(
            {
                t: nn.Parameter(torch.tensor([[alpha_self if s == t else alpha_other] * c[t] for s in tasks]))
                for t in tasks
            }
        )
        self.projections = pair_modules(tasks, lambda t, s: projection(c[s], c[t]))

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_feats(feats, self.channels, NAME)
        if len(feats) < 2:
            return dict(feats)
        order = list(self.channels)
        out = {}
        for t, f_t in feats.items():
            alphas = self.alphas[t]
            mixed = sum(
                alphas[k].view(1, -1, 1, 1) * (f_t if s == t else self.projections[t][s](feats[s]))
                for k, s in enumerate(order)
            )
            out[t] = mixed.to(f_t.dtype)
        return out
