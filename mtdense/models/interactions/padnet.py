"""PAD-Net's multi-modal distillation block (attention-guided message passing) between branches.

"Distillation" is the paper's word for fusing features across tasks inside one network; it is not
knowledge distillation (teacher → student), hence the class name ``PadNetFusion``. Only the block
is implemented (no intermediate deep-supervised predictions), as the registered name says.

Source: Xu, Ouyang, Wang, Sebe, "PAD-Net: Multi-Tasks Guided Prediction-and-Distillation
Network for Simultaneous Depth Estimation and Scene Parsing", CVPR 2018, arXiv:1805.04409,
distillation module (c), eq. 3:  F_k^o = F_k^i + Σ_{t≠k} G_k ⊙ (W_{t,k} ⊛ F_t^i),
G_k = sigmoid(W_g^k ⊛ F_k^i).

Here, for every branch t:
    P_t  = ReLU(BN(conv3×3(F_t)))               intermediate map ("prediction" features)
    G_t  = sigmoid(conv3×3(P_t))                C_t-channel gate from the receiver's own map
    F_t' = F_t + G_t ⊙ Σ_{j≠t} conv3×3_{j→t}(P_j)
The messages are *summed* over the other tasks as in the paper (so for T > 2 tasks the update
grows with T); the residual is added to the branch features F_t rather than to P_t, so the
dict keeps its shapes. Widths may differ (each conv maps to the receiver's width). With 1
branch the module is an exact no-op without parameters. PyTorch default initialisation of the
convolutions.

Name: this is PAD-Net's *distillation block only* (registered as ``padnet_distillation``).
PAD-Net proper also predicts every task at an intermediate scale and supervises those
predictions (deep supervision; Vandenhende et al.'s ``InitialTaskPredictionModule``); here the
intermediate maps P_t are unsupervised features, so results must not be reported as PAD-Net.
With ``identity_init`` (default) the residual is scaled by a per-channel γ_t initialised to 0
(``common.ResidualScale``), so the block starts as the exact identity; ``identity_init=False``
gives eq. 3's unscaled update.
"""

from __future__ import annotations

import torch
from torch import nn

from mtdense.registry import INTERACTIONS

from .common import ResidualScale, check_channels, check_choice, check_feats, check_positive_int, norm_layer, pair_modules

NAME = "padnet_distillation"


def _intermediate(in_width: int, out_width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_width, out_width, kernel_size=3, padding=1, bias=False),
        norm_layer("batch", out_width),
        nn.ReLU(inplace=True),
    )


@INTERACTIONS.register(NAME)
class PadNetFusion(nn.Module):
    """Attention-guided message passing from every branch's intermediate map to the others.

    Options: ``hidden`` (width of every intermediate map P_t; None = the branch width C_t);
    ``identity_init`` (start as the identity through a zero-initialised output scale).
    """

    def __init__(self, channels: dict[str, int], hidden: int | None = None, identity_init: bool = True):
        super().__init__()
        self.channels = check_channels(channels, NAME)
        if hidden is not None:
            check_positive_int(hidden, "hidden", NAME)
        check_choice(identity_init, (False, True), "identity_init", NAME)
        tasks = list(self.channels)
        c = self.channels
        self.intermediate_channels = {t: hidden or c[t] for t in tasks}
        if len(tasks) < 2:
            return
        p = self.intermediate_channels
        self.intermediate = nn.ModuleDict({t: _intermediate(c[t], p[t]) for t in tasks})
        self.gates = nn.ModuleDict({t: nn.Conv2d(p[t], c[t], kernel_size=3, padding=1) for t in tasks})
        self.messages = pair_modules(tasks, lambda t, s: nn.Conv2d(p[s], c[t], kernel_size=3, padding=1))
        self.scale = ResidualScale(c, identity_init)

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_feats(feats, self.channels, NAME)
        if len(feats) < 2:
            return dict(feats)
        maps = {t: self.intermediate[t](f) for t, f in feats.items()}
        out = {}
        for t, f_t in feats.items():
            gate = torch.sigmoid(self.gates[t](maps[t]))
            messages = sum(self.messages[t][s](maps[s]) for s in feats if s != t)
            out[t] = f_t + self.scale(t, gate * messages).to(f_t.dtype)
        return out
