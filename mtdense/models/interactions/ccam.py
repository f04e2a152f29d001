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
    "cosine"  κ · Ŝ · D̂ᵀ        (default: Ŝ, D̂ = rows L2-normalised over the N positions, so the
                                 affinity is the cosine of two channel maps, in [-1, 1] whatever
                                 H, W and the feature scale; κ = exp(log κ) is a learnable
                                 inverse temperature per receiving branch, κ = 10 at init)
    "softmax" E                 (plain affinities; saturates to one-hot for large N)
    "danet"   max(E) - E        (DANet's code; note softmax(max(E)-E) == softmax(-E) per row,
                                 i.e. it favours the *least* similar channels, as in DANet)
The symmetric update D' = D + γ_D · (softmax(f(D·Sᵀ)) · S) uses the same rule.
The earlier default E / sqrt(N) was not size-independent: on post-ReLU features E grows like
N, so its logits still grew like sqrt(N) (twice as sharp on a 2× larger crop); the cosine
affinity is identical for a feature map and the same map tiled 2×2.

γ (one scalar per receiving branch) is initialised to 0 as in DANet, so the module starts as
the exact identity. Parameters: only the γ's and the log κ's when widths are equal (4 scalars
for 2 branches); if a sender's width differs from the receiver's, the sender is first mapped to
the receiver's width with a 1×1 convolution (no bias) for that ordered pair.

For T > 2 branches each branch attends to *each* other branch separately (its own C×C
affinity) and receives the mean of the T-1 attended maps, scaled by its single γ; for T = 2
this is exactly the pairwise formula above. With 1 branch the module is an exact no-op
without parameters. Affinities and softmax are computed in float32 even under bf16/fp16
autocast (E sums N products and overflows low precision softmax); the residual is cast back
to the input dtype. Cost O(T²·C²·N): use at stride 8-16.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.registry import INTERACTIONS

from .common import check_channels, check_choice, check_feats, pair_modules, projection

NAME = "ccam"
VARIANTS = ("cosine", "softmax", "danet")
INITIAL_INVERSE_TEMPERATURE = 10.0


def channel_attention(receiver: torch.Tensor, sender: torch.Tensor, variant: str,
                      inverse_temperature: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(f(S·Dᵀ)) · D for B×C×H×W tensors of equal width, in float32.

    ``inverse_temperature`` (κ, a scalar tensor) is used by the "cosine" variant only.
    """
    b, c, h, w = receiver.shape
    s = receiver.reshape(b, c, h * w).float()
    d = sender.reshape(b, c, h * w).float()
    if variant == "cosine":
        energy = torch.bmm(F.normalize(s, dim=-1), F.normalize(d, dim=-1).transpose(1, 2))
        energy = energy * inverse_temperature.float()
    else:
        energy = torch.bmm(s, d.transpose(1, 2))
    if variant == "danet":
        energy = energy.amax(dim=-1, keepdim=True) - energy
    attention = torch.softmax(energy, dim=-1)
    return torch.bmm(attention, d).reshape(b, c, h, w)


@INTERACTIONS.register(NAME)
class CrossChannelAttention(nn.Module):
    """DANet-style channel attention from each branch to every other branch, γ-scaled.

    Options: ``variant`` ("cosine", "softmax" or "danet": how affinities become logits).
    """

    def __init__(self, channels: dict[str, int], variant: str = "cosine"):
        super().__init__()
        self.channels = check_channels(channels, NAME)
        check_choice(variant, VARIANTS, "variant", NAME)
        self.variant = variant
        tasks = list(self.channels)
        if len(tasks) < 2:
            return
        c = self.channels
        self.gammas = nn.ParameterDict({t: nn.Parameter(torch.zeros(1)) for t in tasks})
        if variant == "cosine":
            start = math.log(INITIAL_INVERSE_TEMPERATURE)
            self.log_inverse_temperatures = nn.ParameterDict({t: nn.Parameter(torch.full((1,), start)) for t in tasks})
        self.projections = pair_modules(tasks, lambda t, s: projection(c[s], c[t]))

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_feats(feats, self.channels, NAME)
        if len(feats) < 2:
            return dict(feats)
        out = {}
        with torch.autocast(device_type=next(iter(feats.values())).device.type, enabled=False):
            for t, f_t in feats.items():
                sources = [s for s in feats if s != t]
                kappa = self.log_inverse_temperatures[t].exp() if self.variant == "cosine" else None
                attended = sum(
                    channel_attention(f_t, self.projections[t][s](feats[s].float()), self.variant, kappa)
                    for s in sources
                )
                out[t] = f_t + (self.gammas[t] * attended / len(sources)).to(f_t.dtype)
        return out
