"""MultiTaskModel assembly beyond the per-plugin conformance kit: shared branches and the
parameters balancers treat as shared."""

from __future__ import annotations

import torch

from mtdense.models.multitask import MultiTaskModel
from mtdense.balancing.gradients import shared_parameters
from mtdense.testing.models import SIZE, TINY_BACKBONE


def test_shared_branch_and_shared_parameters():
    torch.manual_seed(0)
    cfg = {"backbone": TINY_BACKBONE, "branches": {"both": {"tasks": ["seg", "reg"]}}}
    model = MultiTaskModel(cfg, {"seg": 3, "reg": 1}, 3)
    out = model(torch.randn(1, 3, *SIZE))
    assert out["seg"].shape[1] == 3 and out["reg"].shape[1] == 1
    losses = {t: y.mean() for t, y in out.items()}
    shared = {id(p) for p in shared_parameters(model, losses)}
    assert all(id(p) in shared for p in model.decoders["both"].parameters())
    assert not any(id(p) in shared for p in model.heads.parameters())
