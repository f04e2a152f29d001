"""Conformance of backbones, decoders and heads, each assembled into a two-task ``MultiTaskModel``
(segmentation with 3 classes + 1-channel regression) with tiny defaults for the other parts.

Checked: forward and backward (every parameter gets a finite gradient), output shapes at the input
size for non-square and odd sizes, input channels 1/4/9/11 (backbones) or 1/11 (decoders),
a backbone's ``channels``/``reductions`` matching its features, state-dict round trip and
fixed-seed determinism.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from mtdense.models.multitask import MultiTaskModel

TINY_BACKBONE = {"type": "unet_encoder", "width": 4, "depth": 3}
SIZE = (20, 28)  # non-square
ODD_SIZE = (19, 27)
OUT = {"seg": 3, "reg": 1}


def build_model(backbone=TINY_BACKBONE, decoder=None, head=None, in_ch=3, seed=0) -> MultiTaskModel:
    torch.manual_seed(seed)
    cfg = {"backbone": backbone, "decoder": decoder or {"type": "unet"}, "head": head or {"type": "conv"}}
    return MultiTaskModel(cfg, OUT, in_ch)


def check_model(model: MultiTaskModel, in_ch: int, size: tuple[int, int]) -> None:
    """Outputs B×K×H×W at the input size; every trainable parameter gets a finite gradient."""
    out = model(torch.randn(2, in_ch, *size))
    assert set(out) == set(OUT), f"outputs {sorted(out)} != {sorted(OUT)}"
    for task, k in OUT.items():
        assert out[task].shape == (2, k, *size), f"{task}: shape {tuple(out[task].shape)} != {(2, k, *size)}"
    sum(o.square().mean() for o in out.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"


def check_round_trip_and_determinism(make: Callable[..., MultiTaskModel]) -> None:
    x = torch.randn(1, 4, *SIZE)
    a, b, c = make(seed=0).eval(), make(seed=0).eval(), make(seed=1).eval()
    with torch.no_grad():
        ya, yb = a(x), b(x)
        assert all(torch.equal(ya[k], yb[k]) for k in ya), "same seed must give the same model"
        c.load_state_dict(a.state_dict())
        yc = c(x)
        assert all(torch.allclose(ya[k], yc[k], atol=1e-6) for k in ya), "state-dict round trip changed outputs"


def check_backbone_features(config: dict[str, Any], in_ch: int) -> None:
    bb = build_model(backbone=config, in_ch=in_ch).backbone
    feats = bb(torch.randn(1, in_ch, 32, 64))
    assert [f.shape[1] for f in feats] == list(bb.channels), "feature widths differ from .channels"
    assert [64 // f.shape[-1] for f in feats] == list(bb.reductions), "feature strides differ from .reductions"


def backbone_checks(name: str, options: dict, workdir) -> list:
    config = {"type": name, **options}
    checks = [(f"{c} input channels", lambda c=c: check_model(build_model(backbone=config, in_ch=c), c, SIZE))
              for c in (1, 4, 9, 11)]
    return checks + [
        ("features match channels/reductions", lambda: check_backbone_features(config, 4)),
        ("odd input size", lambda: check_model(build_model(backbone=config, in_ch=4), 4, ODD_SIZE)),
        ("state dict and determinism",
         lambda: check_round_trip_and_determinism(lambda seed: build_model(backbone=config, in_ch=4, seed=seed))),
    ]


def decoder_checks(name: str, options: dict, workdir) -> list:
    config = {"type": name, **options}
    return [(f"{c} input channels, odd size", lambda c=c: check_model(build_model(decoder=config, in_ch=c), c, ODD_SIZE))
            for c in (1, 11)] + [
        ("state dict and determinism",
         lambda: check_round_trip_and_determinism(lambda seed: build_model(decoder=config, in_ch=4, seed=seed))),
    ]


def head_checks(name: str, options: dict, workdir) -> list:
    config = {"type": name, **options}
    return [
        ("forward and backward", lambda: check_model(build_model(head=config, in_ch=9), 9, SIZE)),
        ("odd input size", lambda: check_model(build_model(head=config, in_ch=3), 3, ODD_SIZE)),
        ("state dict and determinism",
         lambda: check_round_trip_and_determinism(lambda seed: build_model(head=config, in_ch=4, seed=seed))),
    ]
