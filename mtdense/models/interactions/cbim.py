"""CBIM: cross-branch interaction with soft spatial attention (MTCF-like).

Source: Yang, Sun, Zhang, Du, Liu, "Multi-Task Collaboration Deep Learning Framework for
Infrared Precipitation Estimation", Remote Sensing 13(12):2310, 2021,
doi:10.3390/rs13122310, section 3.4 ("soft feature transformation between branches via the
soft spatial attention mechanism"). The paper's equations were not available; this is the
mtdense reconstruction (docs/seeds.md section 1.2, tagged INFERRED), in the gated
message-passing family of PAD-Net (Xu et al. CVPR 2018) and MTAN (Liu et al. CVPR 2019).
It does not claim to reproduce the paper.

For every ordered pair of branches i <- j:
    a_ij = sigmoid(conv_k([F_i ; F_j]))      B×1×H×W spatial gate (one or two conv layers)
    m_ij = norm(conv_1x1(F_j))               message, projected to F_i's width
    F_i' = F_i + mean_{j != i} a_ij ⊙ m_ij

For 2 branches this is exactly F_c' = F_c + a_{c<-e} ⊙ m_{c<-e} (and symmetrically). For
T > 2 branches each branch receives the *mean* (not the sum) of the gated messages of the
T-1 others, so the update keeps its scale when tasks are added; parameters grow as T(T-1).
With 1 branch the module is an exact no-op without parameters. Widths may differ: the
message convolution maps C_j to C_i. With ``identity_init`` (default) the update is scaled by a
per-channel γ_i initialised to 0 (``common.ResidualScale``), F_i' = F_i + γ_i ⊙ mean_j(...), so
the module starts as the exact identity; gates and messages use PyTorch's default
initialisation (the paper's is unknown). ``identity_init=False``: no γ (the form above).
"""

from __future__ import annotations

import torch
from torch import nn

from mtdense.registry import INTERACTIONS

from .common import ResidualScale, check_channels, check_choice, check_feats, check_positive_int, norm_layer, pair_modules

NAME = "cbim"


def _gate(in_width: int, kernel_size: int, hidden: int | None, norm: str) -> nn.Sequential:
    """Spatial gate logits: conv_k to 1 channel, or conv_k -> norm -> ReLU -> conv_k to 1."""
    pad = kernel_size // 2
    if hidden is None:
        return nn.Sequential(nn.Conv2d(in_width, 1, kernel_size, padding=pad))
    return nn.Sequential(
        nn.Conv2d(in_width, hidden, kernel_size, padding=pad, bias=norm == "none"),
        norm_layer(norm, hidden),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, 1, kernel_size, padding=pad),
    )


def _message(in_width: int, out_width: int, norm: str) -> nn.Sequential:
    """T_{j->i}: 1×1 convolution from branch j's width to branch i's width, then norm."""
    return nn.Sequential(
        nn.Conv2d(in_width, out_width, kernel_size=1, bias=norm == "none"),
        norm_layer(norm, out_width),
    )


@INTERACTIONS.register(NAME)
class CrossBranchInteraction(nn.Module):
    """Soft spatial-attention message passing between every ordered pair of branches.

    Options: ``kernel_size`` (3 or 7) of the gate convolution(s); ``hidden`` (None: the gate
    is one conv layer; an int: two layers with this width); ``norm`` ("batch", "group" or
    "none") after the message 1×1 conv and inside a two-layer gate; ``identity_init`` (start as
    the identity through a zero-initialised output scale).
    """

    def __init__(self, channels: dict[str, int], kernel_size: int = 3, hidden: int | None = None, norm: str = "batch",
                 identity_init: bool = True):
        super().__init__()
        self.channels = check_channels(channels, NAME)
        check_choice(kernel_size, (3, 7), "kernel_size", NAME)
        check_choice(norm, ("batch", "group", "none"), "norm", NAME)
        check_choice(identity_init, (False, True), "identity_init", NAME)
        if hidden is not None:
            check_positive_int(hidden, "hidden", NAME)
        tasks = list(self.channels)
        if len(tasks) < 2:
            return
        c = self.channels
        self.gates = pair_modules(tasks, lambda i, j: _gate(c[i] + c[j], kernel_size, hidden, norm))
        self.messages = pair_modules(tasks, lambda i, j: _message(c[j], c[i], norm))
        self.scale = ResidualScale(c, identity_init)

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_feats(feats, self.channels, NAME)
        if len(feats) < 2:
            return dict(feats)
        out = {}
        for i, f_i in feats.items():
            sources = [j for j in feats if j != i]
            update = 0
            for j in sources:
                gate = torch.sigmoid(self.gates[i][j](torch.cat([f_i, feats[j].to(f_i.dtype)], dim=1)))
                update = update + gate * self.messages[i][j](feats[j])
            out[i] = f_i + self.scale(i, update / len(sources)).to(f_i.dtype)
        return out
