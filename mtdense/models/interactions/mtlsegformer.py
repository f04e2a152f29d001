"""Cross-task local re-weighting (MTLSegFormer-like).

Source: Gonçalves, Marcato Junior, Zamboni, Pistori, Li, Nogueira, Gonçalves,
"MTLSegFormer: Multi-task Learning with Transformers for Semantic Segmentation in Precision
Agriculture", CVPR Workshops 2023, pp. 6290-6298, arXiv:2305.02813. The abstract says each
task learns its own map plus a map obtained by "learned visual attention to locally re-weigh
the feature maps of the other tasks", and the two are combined. The equations were not
available; this is the mtdense reconstruction (docs/seeds.md section 2.2, INFERRED). It does
not claim to reproduce the paper.

For every task t, with S_j the branch features (all tasks, in key order):
    logits_t = g_t([S_1; ...; S_T])       g_t = conv3×3 -> BN -> ReLU -> conv1×1
    A_t      = normalise(logits_t)         T-1 spatial maps (one per other task), or
                                           (T-1)·C_t maps with ``per_channel=True``
    R_t      = Σ_{j≠t} A_tj ⊙ P_tj(S_j)    P_tj: 1×1 conv to C_t when C_j ≠ C_t, else identity
    Z_t      = h_t([S_t; R_t])             h_t = conv1×1 (2·C_t -> C_t) -> BN -> ReLU
    output   = Z_t                         (``residual=False``, default: the combined map is
                                            what the head sees, as in the abstract)
             = S_t + Z_t                   (``residual=True``: for stacking at several stages)
With ``identity_init`` (default) a per-channel γ_t initialised to 0 makes the module start as
the exact identity: output = S_t + γ_t ⊙ (Z_t − S_t) (``residual=False``: a learnt blend that
reaches Z_t at γ_t = 1) or S_t + γ_t ⊙ Z_t (``residual=True``).
Output width is C_t, so the dict keeps its shapes. ``normalise`` is "sigmoid" (independent
gates, default) or "softmax" over the other tasks (competition between them). The module
works for any T >= 2; for 2 tasks "softmax" over the single other task is constantly 1,
which would leave g_t untrained, so that combination is rejected with a ConfigError. With 1
task it is an exact no-op without parameters. Other parameters use PyTorch's defaults (the
paper's initialisation is unknown).
"""

from __future__ import annotations

import torch
from torch import nn

from mtdense.registry import INTERACTIONS
from mtdense.errors import ConfigError

from .common import ResidualScale, check_channels, check_choice, check_feats, check_positive_int, norm_layer, pair_modules, projection

NAME = "mtlsegformer_reweight"


def _attention_net(in_width: int, hidden: int, out_maps: int) -> nn.Sequential:
    """g_t: 3×3 conv -> BN -> ReLU -> 1×1 conv producing the attention logits."""
    return nn.Sequential(
        nn.Conv2d(in_width, hidden, kernel_size=3, padding=1, bias=False),
        norm_layer("batch", hidden),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, out_maps, kernel_size=1),
    )


def _fusion(width: int) -> nn.Sequential:
    """h_t: 1×1 conv from [S_t; R_t] back to C_t -> BN -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(2 * width, width, kernel_size=1, bias=False),
        norm_layer("batch", width),
        nn.ReLU(inplace=True),
    )


@INTERACTIONS.register(NAME)
class CrossTaskReweighting(nn.Module):
    """Attention-weighted sum of the other tasks' maps, fused with the task's own map.

    Options: ``normalisation`` ("sigmoid" or "softmax" over the other tasks);
    ``per_channel`` (False: one spatial map per other task; True: one per channel too);
    ``hidden`` (width of g_t's hidden layer; None = the task's own width C_t);
    ``residual`` (False: return Z_t; True: return S_t + Z_t); ``identity_init`` (start as the
    identity through a zero-initialised scale γ_t).
    """

    def __init__(
        self,
        channels: dict[str, int],
        normalisation: str = "sigmoid",
        per_channel: bool = False,
        hidden: int | None = None,
        residual: bool = False,
        identity_init: bool = True,
    ):
        super().__init__()
        self.channels = check_channels(channels, NAME)
        check_choice(normalisation, ("sigmoid", "softmax"), "normalisation", NAME)
        check_choice(per_channel, (False, True), "per_channel", NAME)
        check_choice(residual, (False, True), "residual", NAME)
        check_choice(identity_init, (False, True), "identity_init", NAME)
        if hidden is not None:
            check_positive_int(hidden, "hidden", NAME)
        tasks = list(self.channels)
        if len(tasks) == 2 and normalisation == "softmax":
            raise ConfigError(
                "'softmax' over the single other task of a 2-task model is constantly 1 "
                "(the attention would never train); use 'sigmoid' for 2 tasks", key="normalisation")
        self.normalisation = normalisation
        self.per_channel = per_channel
        self.residual = residual
        if len(tasks) < 2:
            return
        c = self.channels
        total = sum(c.values())
        others = len(tasks) - 1
        self.attention = nn.ModuleDict(
            {t: _attention_net(total, hidden or c[t], others * (c[t] if per_channel else 1)) for t in tasks}
        )
        self.projections = pair_modules(tasks, lambda t, s: projection(c[s], c[t]))
        self.fusion = nn.ModuleDict({t: _fusion(c[t]) for t in tasks})
        self.scale = ResidualScale(c, identity_init)

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_feats(feats, self.channels, NAME)
        if len(feats) < 2:
            return dict(feats)
        order = list(self.channels)
        stacked = torch.cat([feats[t] for t in order], dim=1)
        out = {}
        for t in feats:
            f_t = feats[t]
            sources = [s for s in order if s != t]
            logits = self.attention[t](stacked)
            b, _, h, w = logits.shape
            logits = logits.reshape(b, len(sources), -1, h, w)  # B × (T-1) × (1 or C_t) × H × W
            weights = torch.sigmoid(logits) if self.normalisation == "sigmoid" else torch.softmax(logits, dim=1)
            reweighted = sum(weights[:, k] * self.projections[t][s](feats[s]) for k, s in enumerate(sources))
            fused = self.fusion[t](torch.cat([f_t, reweighted.to(f_t.dtype)], dim=1))
            fused = fused.to(f_t.dtype)
            if self.scale.enabled:
                out[t] = f_t + self.scale(t, fused if self.residual else fused - f_t)
            else:
                out[t] = (f_t + fused) if self.residual else fused
        return out
