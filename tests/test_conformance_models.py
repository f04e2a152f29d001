"""Shared conformance tests that every registered backbone, decoder and head runs
automatically (parametrised over the registries, so a new plugin is covered by registering it).

A plugin may set a class attribute ``conformance_kwargs`` with the smallest config to build.
Checked: forward + backward, input channels 1/4/9/11, non-square and odd sizes, state-dict
round trip, fixed-seed determinism, assembly into a two-task model.
"""

from __future__ import annotations

import pytest
import torch

from mtdense.balancing.gradients import shared_parameters
from mtdense.models.multitask import MultiTaskModel
from mtdense.registry import BACKBONES, DECODERS, HEADS

TINY_BACKBONE = {"type": "unet_encoder", "width": 4, "depth": 3}
SIZE = (20, 28)  # non-square
ODD_SIZE = (19, 27)


def tiny(registry, name):
    return {"type": name, **getattr(registry.get(name), "conformance_kwargs", {})}


def build(backbone=TINY_BACKBONE, decoder=None, head=None, in_ch=3, seed=0):
    torch.manual_seed(seed)
    cfg = {"backbone": backbone, "decoder": decoder or {"type": "unet"}, "head": head or {"type": "conv"}}
    return MultiTaskModel(cfg, {"seg": 3, "reg": 1}, in_ch)


def check_model(model, in_ch, size):
    x = torch.randn(2, in_ch, *size)
    out = model(x)
    assert set(out) == {"seg", "reg"}
    assert out["seg"].shape == (2, 3, *size) and out["reg"].shape == (2, 1, *size)
    (out["seg"].square().mean() + out["reg"].square().mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def check_round_trip_and_determinism(make):
    x = torch.randn(1, 4, *SIZE)
    a, b, c = make(seed=0).eval(), make(seed=0).eval(), make(seed=1).eval()
    with torch.no_grad():
        ya, yb = a(x), b(x)
        assert all(torch.equal(ya[k], yb[k]) for k in ya), "same seed must give the same model"
        c.load_state_dict(a.state_dict())
        yc = c(x)
        assert all(torch.allclose(ya[k], yc[k], atol=1e-6) for k in ya), "state-dict round trip changed outputs"


@pytest.mark.parametrize("name", BACKBONES.names())
@pytest.mark.parametrize("in_ch", [1, 4, 9, 11])
def test_backbone_channels_and_gradients(name, in_ch):
    model = build(backbone=tiny(BACKBONES, name), in_ch=in_ch)
    check_model(model, in_ch, SIZE)
    bb = model.backbone
    feats = bb(torch.randn(1, in_ch, 32, 64))
    assert [f.shape[1] for f in feats] == bb.channels
    assert [64 // f.shape[-1] for f in feats] == bb.reductions


@pytest.mark.parametrize("name", BACKBONES.names())
def test_backbone_odd_size_round_trip_determinism(name):
    check_model(build(backbone=tiny(BACKBONES, name), in_ch=4), 4, ODD_SIZE)
    check_round_trip_and_determinism(lambda seed: build(backbone=tiny(BACKBONES, name), in_ch=4, seed=seed))


@pytest.mark.parametrize("name", DECODERS.names())
def test_decoder_conformance(name):
    dec = tiny(DECODERS, name)
    for in_ch in (1, 11):
        check_model(build(decoder=dec, in_ch=in_ch), in_ch, ODD_SIZE)
    check_round_trip_and_determinism(lambda seed: build(decoder=dec, in_ch=4, seed=seed))


@pytest.mark.parametrize("name", HEADS.names())
def test_head_conformance(name):
    head = tiny(HEADS, name)
    check_model(build(head=head, in_ch=9), 9, SIZE)
    check_round_trip_and_determinism(lambda seed: build(head=head, in_ch=4, seed=seed))


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
