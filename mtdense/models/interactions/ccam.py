"""CCAM: cross-channel attention between task branches (Semantics-Depth-Symbiosis-like).

Source: Bansal, Ji, Yuan, Xu, "Semantics-Depth-Symbiosis: Deeply Coupled Semi-Supervised
Learning of Semantics and Depth", arXiv:2206.10562 (2022): CCAM shares features "along each
channel" between segmentation and depth with a "negligible increase in trainable
parameters". The paper's equation was not available; this is the mtdense reconstruction
(docs/seeds.md section 4.2, INFERRED) of the channel attention module of DANet (Fu et al.,
CVPR 2019, arXiv:1809.02983) made cross-task. It does not claim to reproduce the paper.

For branch features S (receiver) and D (sender), reshaped to B×C×N with N = H·W:
    E = S · Dᵀ                          B×C×C channel affinity
    A = softmax(f(E)) over the last axis
    S' = S + γ_S · (A · D)
with f chosen by ``variant``:
    "scaled"  E / sqrt(N)      (default: keeps logits O(1) so the softmax does not saturate)
    "softmax" E                 (plain affinities; saturates to one-hot for large N)
    "danet"   max(E) - E        (DANet's code; note softmax(max(E)-E) == softmax(-E) per row,
                                 i.e. it favours the *least* similar channels, as in DANet)
The symmetric update D' = D + γ_D · (softmax(f(D·Sᵀ)) · S) uses the same rule.

γ (one scalar per receiving branch) is initialised to 0 as in DANet, so the module starts as
the exact identity. Parameters: only the γ's when widths are equal (2 scalars for 2
branches); if a sender's width differs from the receiver's, the sender is first mapped to
the receiver's width with a 1×1 convolution (no bias) for that ordered pair.

For T > 2 branches each branch attends to *each* other branch separately (its own C×C
affinity) and receives the mean of the T-1 attended maps, scaled by its single γ; for T = 2
this is exactly the pairwise formula above. With 1 branch the module is an exact no-op
without parameters. Affinities and softmax are computed in float32 even under bf16/fp16
autocast (E sums N products and overflows low precision softmax); the residual is cast back
to the input dtype. Cost O(T²·C²·N): use at stride 8-16.
"""

from __future__ import annotations

import torch
from torch import nn

from mtdense.registry import INTERACTIONS

from .common import check_channels, check_choice, check_feats, pair_modules, projection

NAME = "ccam"
VARIANTS = ("scaled", "softmax", "danet")


def channel_attention(receiver: torch.Tensor, sender: torch.Tensor, variant: str) -> torch.Tensor:
    """softmax(f(S·Dᵀ)) · D for B×C×H×W tensors of equal width, in float32."""
    b, c, h, w = receiver.shape
    s = receiver.reshape(b, c, h * w).float()
    d = sender.reshape(b, c, h * w).float()
    energy = torch.bmm(s, d.transpose(1, 2))
    if variant == "scaled":
        energy = energy / (h * w) ** 0.5  # not math.sqrt: keeps N symbolic when traced
    elif variant == "danet":
        energy = energy.amax(dim=-1, keepdim=True) - energy
    attention = torch.softmax(energy, dim=-1)
    return torch.bmm(attention, d).reshape(b, c, h, w)


@INTERACTIONS.register(NAME)
class CrossChannelAttention(nn.Module):
    """DANet-style channel attention from each branch to every other branch, γ-scaled.

    Options: ``variant`` ("scaled", "softmax" or "danet": how affinities become logits).
    """

    def __init__(self, channels: dict[str, int], variant: str = "scaled"):
        super().__init__()
        self.channels = check_channels(channels, NAME)
        check_choice(variant, VARIANTS, "variant", NAME)
        self.variant = variant
        tasks = list(self.channels)
        if len(tasks) < 2:
            return
        c = self.channels
        self.gammas = nn.ParameterDict({t: nn.Parameter(torch.zeros(1)) for t in tasks})
        self.projections = pair_modules(tasks, lambda t, s: projection(c[s], c[t]))

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_feats(feats, self.channels, NAME)
        if len(feats) < 2:
            return dict(feats)
        out = {}
        with torch.autocast(device_type=next(iter(feats.values())).device.type, enabled=False):
            for t, f_t in feats.items():
                sources = [s for s in feats if s != t]
                attended = sum(
                    channel_attention(f_t, self.projections[t][s](feats[s].float()), self.variant)
                    for s in sources
                )
                out[t] = f_t + (self.gammas[t] * attended / len(sources)).to(f_t.dtype)
        return out
