"""Identity interaction: branches do not exchange information.

This is the baseline for every interaction ablation: hard parameter sharing (one key, one
branch for all tasks) or independent task branches on a shared encoder (any number of
keys). It returns the feature dict unchanged (the same tensors), has no parameters, and
needs no paper.
"""

from __future__ import annotations

import torch
from torch import nn

from mtdense.registry import INTERACTIONS

from .common import check_channels, check_feats


@INTERACTIONS.register("identity")
class IdentityInteraction(nn.Module):
    """Return ``feats`` unchanged, for 1, 2 or T tasks."""

    mixes_tasks = False  # by design: the conformance "information mixing" check does not apply

    def __init__(self, channels: dict[str, int]):
        super().__init__()
        self.channels = check_channels(channels, "identity")

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_feats(feats, self.channels, "identity")
        return dict(feats)
