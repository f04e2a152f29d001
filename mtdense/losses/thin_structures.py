"""Losses for thin structures (lines, vessels, plantation rows): soft clDice.

Shit, Paetzold, Sekuboyina, Ezhov, Unger, Zhilin, Lipkova, Pluim, Menze, "clDice — a Novel
Topology-Preserving Loss Function for Tubular Structure Segmentation", CVPR 2021 (official code
jocpae/clDice). The soft skeleton is computed by iterated soft erosion (min-pooling with 3×1 and
1×3 windows) and soft opening (erosion then 3×3 max-pooling):

    skel = relu(x - open(x));  repeat k times: x = erode(x); δ = relu(x - open(x)); skel += relu(δ - skel·δ)
    Tprec = (Σ S_P ⊙ V_L + ε) / (Σ S_P + ε),   Tsens = (Σ S_L ⊙ V_P + ε) / (Σ S_L + ε)
    clDice = 2 Tprec Tsens / (Tprec + Tsens)

with V_P the predicted foreground probability (1 - p_background), V_L the binary foreground
target and S_· their soft skeletons. ``cldice`` returns ce_weight·CE + (1 - α)·(1 - Dice) +
α·(1 - clDice), the paper's combination with soft Dice plus cross-entropy. Invalid pixels are
zeroed in both V_P and V_L before skeletonisation, so they never count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.errors import ConfigError
from mtdense.losses.pixel_losses import CrossEntropy
from mtdense.registry import LOSSES


def soft_erode(x: torch.Tensor) -> torch.Tensor:
    return torch.minimum(-F.max_pool2d(-x, (3, 1), 1, (1, 0)), -F.max_pool2d(-x, (1, 3), 1, (0, 1)))


def soft_dilate(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 1, 1)


def soft_skeleton(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Soft morphological skeleton of a B×1×H×W map in [0, 1] (Shit et al. 2021, Alg. 1)."""
    skel = F.relu(x - soft_dilate(soft_erode(x)))
    for _ in range(iterations):
        x = soft_erode(x)
        delta = F.relu(x - soft_dilate(soft_erode(x)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def soft_cldice(prob: torch.Tensor, target: torch.Tensor, iterations: int = 3, smooth: float = 1.0) -> torch.Tensor:
    """clDice (higher is better) of foreground probabilities and binary targets, both B×1×H×W."""
    skel_p, skel_t = soft_skeleton(prob, iterations), soft_skeleton(target, iterations)
    tprec = ((skel_p * target).sum() + smooth) / (skel_p.sum() + smooth)
    tsens = ((skel_t * prob).sum() + smooth) / (skel_t.sum() + smooth)
    return 2 * tprec * tsens / (tprec + tsens)


@LOSSES.register("cldice")
class ClDiceLoss(nn.Module):
    """CE + (1 - α)·soft-Dice loss + α·clDice loss on the foreground (classes ≥ 1) of logits."""

    expects = "classes"

    def __init__(self, alpha: float = 0.5, iterations: int = 3, smooth: float = 1.0, ce_weight: float = 1.0):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"{alpha!r} must be in [0, 1]", key="alpha")
        if iterations < 1:
            raise ConfigError(f"{iterations!r} must be >= 1 (about the half-width of the thickest structure)",
                              key="iterations")
        self.alpha, self.iterations, self.smooth, self.ce_weight = alpha, iterations, smooth, ce_weight
        self.ce = CrossEntropy()

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid[:, None].float()
        prob = (1 - F.softmax(logits.float(), dim=1)[:, :1]) * mask
        fg = (target[:, None] >= 1).float() * mask
        dice = (2 * (prob * fg).sum() + self.smooth) / (prob.sum() + fg.sum() + self.smooth)
        cl = soft_cldice(prob, fg, self.iterations, self.smooth)
        shape_loss = (1 - self.alpha) * (1 - dice) + self.alpha * (1 - cl)
        return self.ce_weight * self.ce(logits, target, valid) + shape_loss
