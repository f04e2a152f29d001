"""MiT encoders (smp) and the All-MLP decoder: channels, strides, local weights, stage mapping."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from mtdense.errors import ConfigError
from mtdense.models.multitask import MultiTaskModel
from mtdense.registry import BACKBONES, DECODERS

TINY_MIT = {"type": "mit", "name": "mit_b0", "embed_dims": [8, 16, 24, 32], "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 1, 2]}


def segformer(in_ch=3, interactions=(), num_stages=1, seed=0):
    torch.manual_seed(seed)
    cfg = {"backbone": TINY_MIT, "decoder": {"type": "all_mlp", "width": 8, "num_stages": num_stages},
           "head": {"type": "linear"}, "interactions": list(interactions)}
    return MultiTaskModel(cfg, {"plants": 2, "rows": 2}, in_ch)


@pytest.mark.parametrize("in_ch", [3, 4, 5])
@pytest.mark.parametrize("size", [(40, 72), (19, 27)])  # non-square; above and below the 32-px minimum
def test_mit_strides_channels_any_input(in_ch, size):
    model = segformer(in_ch)
    feats = model.backbone(torch.randn(2, in_ch, *size))
    assert [f.shape[1] for f in feats] == [8, 16, 24, 32] == model.backbone.channels
    assert [tuple(f.shape[-2:]) for f in feats] == [(-(-size[0] // r), -(-size[1] // r)) for r in (4, 8, 16, 32)]
    out = model(torch.randn(2, in_ch, *size))
    assert out["rows"].shape == (2, 2, *size)


def test_mit_b0_size_matches_segformer_b0():
    """SegFormer-B0 (MiT-B0 + All-MLP, D = 256) has 3.7 M parameters (Xie et al. 2021, Table 1: 3.8 M)."""
    model = MultiTaskModel({"backbone": {"type": "mit", "name": "mit_b0"}, "decoder": {"type": "all_mlp"},
                            "head": {"type": "linear"}}, {"seg": 19}, 3)
    assert 3.6e6 < sum(p.numel() for p in model.parameters()) < 3.8e6


def test_mit_local_weights_adapted_to_four_channels(tmp_path):
    torch.manual_seed(1)
    src = BACKBONES.build(TINY_MIT, "b", in_channels=3)
    path = tmp_path / "mit.safetensors"
    save_file({k: v.contiguous() for k, v in src.body.state_dict().items()}, str(path))
    dst = BACKBONES.build({**TINY_MIT, "checkpoint_path": str(path)}, "b", in_channels=4)
    w3, w4 = src.body.patch_embed1.proj.weight, dst.body.patch_embed1.proj.weight
    assert w4.shape[1] == 4
    # smp's rule: channel i takes pretrained channel i mod 3, scaled by 3 / C
    assert torch.allclose(w4[:, 3], w3[:, 0] * 3 / 4) and torch.allclose(w4[:, 1], w3[:, 1] * 3 / 4)
    assert torch.equal(src.body.block4[0].attn.q.weight, dst.body.block4[0].attn.q.weight)


def test_mit_rejects_missing_weights_and_bad_sizes(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        BACKBONES.build({**TINY_MIT, "checkpoint_path": str(tmp_path / "none.pt")}, "b", in_channels=3)
    with pytest.raises(ConfigError, match="not divisible"):
        BACKBONES.build({**TINY_MIT, "embed_dims": [9, 16, 24, 32], "num_heads": [2, 1, 1, 2]}, "b", in_channels=3)
    with pytest.raises(ConfigError, match="mit_b0"):
        BACKBONES.build({**TINY_MIT, "name": "mit_b9"}, "b", in_channels=3)


def test_all_mlp_matches_hand_written_segformer_head():
    """Stage 0 = project each level to D (1×1), upsample to stride 4, concat coarsest first, fuse."""
    torch.manual_seed(0)
    dec = DECODERS.build({"type": "all_mlp", "width": 4, "dropout": 0.0}, "d",
                         encoder_channels=[2, 3, 5], encoder_reductions=[4, 8, 16]).eval()
    skips = [torch.randn(1, 2, 8, 10), torch.randn(1, 3, 4, 5), torch.randn(1, 5, 2, 3)]
    ups = [torch.nn.functional.interpolate(p(f), size=(8, 10), mode="bilinear", align_corners=False)
           for p, f in zip(dec.projections, skips)]
    expected = dec.fuse(torch.cat(ups[::-1], dim=1))
    assert torch.allclose(dec.stage(0, skips[-1], skips), expected)
    assert dec.stage_channels == [4] and dec.out_reduction == 4


def test_all_mlp_two_stages_split_projection_and_fusion():
    model = segformer(num_stages=2, interactions=[{"type": "mtlsegformer_reweight", "stages": "all"}])
    assert model.decoders["rows"].stage_channels == [32, 8]
    assert [len(m) for m in model.interactions] == [1, 1]
    assert model.interactions[0][0].channels == {"plants": 32, "rows": 32}
    assert model(torch.randn(1, 3, 40, 48))["plants"].shape == (1, 2, 40, 48)


def test_mtlsegformer_reweighting_runs_on_fused_maps_and_mixes_tasks():
    """At ``stages: last`` the re-weighting sees the per-task fused maps (width D, stride 4) and
    each task's output depends on the other task's decoder."""
    # identity_init off: by default the module starts as the exact identity (numbers issue 9 §1.8)
    model = segformer(interactions=[{"type": "mtlsegformer_reweight", "stages": "last", "identity_init": False}]).eval()
    reweight = model.interactions[0][0]
    assert reweight.channels == {"plants": 8, "rows": 8}
    seen = {}
    reweight.register_forward_hook(lambda m, inp, out: seen.update(inp=inp[0]))
    x = torch.randn(1, 3, 40, 48)
    before = model(x)["plants"]
    assert {k: tuple(v.shape) for k, v in seen["inp"].items()} == {"plants": (1, 8, 10, 12), "rows": (1, 8, 10, 12)}
    with torch.no_grad():
        model.decoders["rows"].projections[0].weight.mul_(3.0)
    assert not torch.allclose(model(x)["plants"], before)


@pytest.mark.parametrize("in_ch", [3, 4])
def test_segformer_passes_the_model_kit_together(in_ch):
    """The kit's model checks (forward/backward, every parameter gets a gradient, non-square and
    odd sizes, state-dict round trip, determinism) on MiT + All-MLP + linear heads together."""
    from mtdense.testing.models import ODD_SIZE, SIZE, build_model, check_model, check_round_trip_and_determinism

    parts = {"backbone": TINY_MIT, "decoder": {"type": "all_mlp", "width": 8}, "head": {"type": "linear"}}
    for size in (SIZE, ODD_SIZE, (40, 72)):
        check_model(build_model(**parts, in_ch=in_ch), in_ch, size)
    check_round_trip_and_determinism(lambda seed: build_model(**parts, in_ch=4, seed=seed))
