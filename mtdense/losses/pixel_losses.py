"""Per-pixel task losses. Each is ``loss(pred, target, valid) -> scalar`` over valid pixels.

Classification losses take logits B×C×H×W and int64 targets B×H×W; regression losses take
B×H×W predictions already in the task's target space (after activation / transform). Each class
says which with ``expects = "classes"`` or ``"values"`` (the conformance kit feeds it accordingly).

- ``ce``: cross-entropy with optional class weights and label smoothing.
- ``focal``: focal loss, Lin et al., ICCV 2017 (γ-modulated cross-entropy for rare classes).
- ``dice``: soft Dice over foreground classes (Milletari et al., 3DV 2016), as nnU-Net adds to CE.
- ``dice_ce``: the nnU-Net loss, CE + Dice (Isensee et al., Nat. Methods 2021).
- ``mse``, ``l1``, ``huber`` (Huber 1964), ``berhu`` (reverse Huber, Laina et al., 3DV 2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.losses.masked import masked_mean
from mtdense.registry import LOSSES


@LOSSES.register("ce")
class CrossEntropy(nn.Module):
    expects = "classes"

    def __init__(self, class_weights: list[float] | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32))
        self.label_smoothing = label_smoothing

    def forward(self, logits, target, valid):
        per_pixel = F.cross_entropy(logits.float(), torch.where(valid, target, 0), weight=self.weight,
                                    reduction="none", label_smoothing=self.label_smoothing)
        return masked_mean(per_pixel, valid)


@LOSSES.register("focal")
class FocalLoss(nn.Module):
    expects = "classes"

    def __init__(self, gamma: float = 2.0, class_weights: list[float] | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32))

    def forward(self, logits, target, valid):
        target = torch.where(valid, target, 0)
        logp = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None])[:, 0]
        per_pixel = -((1 - logp.exp()) ** self.gamma) * logp
        if self.weight is not None:
            per_pixel = per_pixel * self.weight[target]
        return masked_mean(per_pixel, valid)


@LOSSES.register("dice")
class SoftDice(nn.Module):
    expects = "classes"

    def __init__(self, smooth: float = 1.0, include_background: bool = False):
        super().__init__()
        self.smooth = smooth
        self.include_background = include_background

    def forward(self, logits, target, valid):
        probs = F.softmax(logits.float(), dim=1)
        onehot = F.one_hot(torch.where(valid, target, 0), probs.shape[1]).permute(0, 3, 1, 2).float()
        mask = valid[:, None].float()
        dims = (0, 2, 3)
        inter = (probs * onehot * mask).sum(dims)
        denom = (probs * mask).sum(dims) + (onehot * mask).sum(dims)
        dice = (2 * inter + self.smooth) / (denom + self.smooth)
        if not self.include_background:
            dice = dice[1:]
        return 1 - dice.mean()


@LOSSES.register("dice_ce")
class DiceCE(nn.Module):
    expects = "classes"

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0):
        super().__init__()
        self.dice, self.ce = SoftDice(), CrossEntropy()
        self.dice_weight, self.ce_weight = dice_weight, ce_weight

    def forward(self, logits, target, valid):
        return self.ce_weight * self.ce(logits, target, valid) + self.dice_weight * self.dice(logits, target, valid)


@LOSSES.register("mse")
class MSE(nn.Module):
    expects = "values"

    def forward(self, pred, target, valid):
        return masked_mean((pred.float() - target) ** 2, valid)


@LOSSES.register("l1")
class L1(nn.Module):
    expects = "values"

    def forward(self, pred, target, valid):
        return masked_mean((pred.float() - target).abs(), valid)


@LOSSES.register("huber")
class Huber(nn.Module):
    expects = "values"

    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = delta

    def forward(self, pred, target, valid):
        return masked_mean(F.huber_loss(pred.float(), target, reduction="none", delta=self.delta), valid)


@LOSSES.register("berhu")
class BerHu(nn.Module):
    """Reverse Huber: L1 below c, scaled L2 above; c = ``fraction`` × max |error| of the batch."""
    expects = "values"


    def __init__(self, fraction: float = 0.2):
        super().__init__()
        self.fraction = fraction

    def forward(self, pred, target, valid):
        err = (pred.float() - target).abs()
        c = (self.fraction * torch.where(valid, err, 0).max().detach()).clamp_min(1e-6)
        return masked_mean(torch.where(err <= c, err, (err**2 + c**2) / (2 * c)), valid)
