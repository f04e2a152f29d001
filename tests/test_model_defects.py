"""Regression tests for the model defects of issue 9 §1 (each failed on the code before the fix):
initialisation independent of the other modules present, identity-initialised residual
interaction modules, size-independent CCAM affinities, PAD-Net's honest name."""

from __future__ import annotations

import pytest
import torch

from mtdense.models.multitask import MultiTaskModel
from mtdense.registry import INTERACTIONS

TINY = {"backbone": {"type": "unet_encoder", "width": 4, "depth": 3}, "decoder": {"type": "unet"}}
TASKS = {"seg": 3, "reg": 1}


def model_with(interactions, seed=0):
    torch.manual_seed(seed)
    return MultiTaskModel({**TINY, "interactions": interactions}, TASKS, 3)


def non_interaction_state(model):
    return {k: v for k, v in model.state_dict().items() if not k.startswith("interactions.")}


@pytest.mark.parametrize("module", ["cbim", "mtan_attention", "padnet_distillation", "cross_stitch"])
def test_adding_an_interaction_changes_no_other_initial_weight(module):
    plain = non_interaction_state(model_with([]))
    identity = non_interaction_state(model_with([{"type": "identity", "stages": "all"}]))
    other = non_interaction_state(model_with([{"type": module, "stages": "all"}]))
    assert plain.keys() == other.keys() == identity.keys()
    for k in plain:
        assert torch.equal(plain[k], other[k]), k
        assert torch.equal(plain[k], identity[k]), k
    reseeded = non_interaction_state(model_with([], seed=1))
    assert any(not torch.equal(plain[k], reseeded[k]) for k in plain)  # the run seed still matters


def test_ccam_default_attention_does_not_depend_on_the_feature_map_size():
    """A post-ReLU map and the same map tiled 2×2 (N -> 4N) get the same channel attention."""
    module = INTERACTIONS.build({"type": "ccam"}, "test", channels={"a": 4, "b": 4})
    with torch.no_grad():
        for g in module.gammas.values():
            g.fill_(1.0)
    g = torch.Generator().manual_seed(0)
    feats = {t: torch.relu(torch.randn(1, 4, 5, 6, generator=g)) * 3 for t in "ab"}
    tiled = {t: x.repeat(1, 1, 2, 2) for t, x in feats.items()}
    small, large = module(feats), module(tiled)
    for t in feats:
        torch.testing.assert_close(large[t], (small[t]).repeat(1, 1, 2, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("module", ["cbim", "mtan_attention", "padnet_distillation", "mtlsegformer_reweight"])
def test_residual_modules_start_as_the_exact_identity(module):
    g = torch.Generator().manual_seed(0)
    feats = {t: torch.randn(2, c, 6, 8, generator=g) for t, c in {"a": 8, "b": 5}.items()}
    built = INTERACTIONS.build({"type": module}, "test", channels={"a": 8, "b": 5})
    out = built(feats)
    for t in feats:
        assert torch.equal(out[t], feats[t])
    model = model_with([{"type": module, "stages": "all"}])
    baseline = model_with([])
    x = torch.randn(1, 3, 16, 16, generator=g)
    for t, y in model(x).items():  # "+module" starts from exactly the baseline model
        assert torch.equal(y, baseline(x)[t])


def test_padnet_is_named_for_what_it_is():
    assert "padnet_distillation" in INTERACTIONS.names()
    assert "padnet" not in INTERACTIONS.names()  # the block without deep supervision is not PAD-Net
