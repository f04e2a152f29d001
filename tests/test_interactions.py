"""Interaction modules: non-default options through the conformance checks, bad options, then
hand-computed values for each module (synthetic tensors only). The conformance kit runs on every
registered module in tests/test_plugin_conformance.py."""

from __future__ import annotations

import math

import pytest
import torch

from mtdense.errors import ConfigError
from mtdense.testing import interactions as cf
from mtdense.testing.interactions import TWO, UNEQUAL


# ------------------------------------------------------- non-default options, same checks

OPTION_GRID = [
    ("cbim", {"kernel_size": 7, "hidden": 4, "norm": "group"}),
    ("cbim", {"norm": "none"}),
    ("ccam", {"variant": "softmax"}),
    ("ccam", {"variant": "danet"}),
    ("mtlsegformer_reweight", {"per_channel": True, "normalisation": "softmax"}),
    ("mtlsegformer_reweight", {"residual": True, "hidden": 4}),
    ("cross_stitch", {"alpha_self": 1.0}),
    ("mtan_attention", {"shared": "concat"}),
    ("padnet_distillation", {"hidden": 4}),
]


@pytest.mark.parametrize("name,options", OPTION_GRID, ids=[f"{n}-{o}" for n, o in OPTION_GRID])
def test_options(name, options):
    feats = cf.make_feats(UNEQUAL, 2, 6, 10)
    cf.check_contract(cf.build(name, UNEQUAL, **options), feats)
    cf.check_backward(cf.build(name, UNEQUAL, **options), feats)
    cf.check_no_dead_parameters(cf.build(name, UNEQUAL, **options), feats)
    cf.check_mixes_tasks(cf.build(name, UNEQUAL, **options), feats)


BAD_OPTIONS = [
    ("cbim", {"kernel_size": 5}, "cbim.kernel_size: 5 is not supported"),
    ("cbim", {"norm": "layer"}, "cbim.norm"),
    ("cbim", {"hidden": 0}, "cbim.hidden"),
    ("ccam", {"variant": "scaled"}, "ccam.variant"),
    ("mtlsegformer_reweight", {"normalisation": "relu"}, "normalisation"),
    ("mtlsegformer_reweight", {"normalisation": "softmax"}, "use 'sigmoid' for 2 tasks"),
    ("cross_stitch", {"alpha_self": 1.5}, r"alpha_self: 1.5 must be a number in \[0, 1\]"),
    ("mtan_attention", {"shared": "sum"}, "mtan_attention.shared"),
    ("padnet_distillation", {"hidden": -1}, "padnet_distillation.hidden"),
]


@pytest.mark.parametrize("name,options,message", BAD_OPTIONS)
def test_bad_options_are_config_errors(name, options, message):
    with pytest.raises(ConfigError, match=message):
        cf.build(name, TWO, **options)


def test_bad_channels_and_feature_mismatch_are_explained():
    with pytest.raises(ConfigError, match=r"task name 'a\.b'"):
        cf.build("cbim", {"a.b": 8, "c": 8})
    with pytest.raises(ConfigError, match=r"channels\['b'\] = 0"):
        cf.build("ccam", {"a": 8, "b": 0})
    module = cf.build("cbim", TWO)
    with pytest.raises(ValueError, match=r"feats\['b'\] has shape \(2, 4, 8, 12\); expected B×8×H×W"):
        module({"a": torch.zeros(2, 8, 8, 12), "b": torch.zeros(2, 4, 8, 12)})
    with pytest.raises(ValueError, match=r"got feature keys \['a', 'c'\]"):
        module({"a": torch.zeros(2, 8, 8, 12), "c": torch.zeros(2, 8, 8, 12)})


# ------------------------------------------------------------------ module-specific values


def _const(value, channels=1, height=1, width=1):
    return torch.full((1, channels, height, width), float(value))


def test_cbim_hand_set_two_branch_example():
    """a = sigmoid(F_j) (gate sees only the sender), m = 2·F_j: F_i' = F_i + sigmoid(F_j)·2F_j."""
    module = cf.build("cbim", {"a": 1, "b": 1}, norm="none", identity_init=False)
    with torch.no_grad():
        for i, j in (("a", "b"), ("b", "a")):
            gate = module.gates[i][j][0]
            gate.weight.zero_()
            gate.weight[0, 1, 1, 1] = 1.0  # centre tap of the sender channel in [F_i; F_j]
            gate.bias.zero_()
            message = module.messages[i][j][0]
            message.weight.fill_(2.0)
            message.bias.zero_()
    f_a = torch.tensor([[[[1.0, -1.0]]]])
    f_b = torch.tensor([[[[0.0, 2.0]]]])
    out = module({"a": f_a, "b": f_b})
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected_a = [1 + sig(0) * 0, -1 + sig(2) * 4]  # [1, 2.5232]
    expected_b = [0 + sig(1) * 2, 2 + sig(-1) * -2]  # [1.4621, 1.4621]
    torch.testing.assert_close(out["a"].flatten(), torch.tensor(expected_a))
    torch.testing.assert_close(out["b"].flatten(), torch.tensor(expected_b))


def test_cbim_three_branches_average_the_messages():
    """Gate weights 0 -> a = 0.5; message = F_j: F_i' = F_i + 0.5·mean_{j≠i} F_j."""
    module = cf.build("cbim", {"a": 1, "b": 1, "c": 1}, norm="none", identity_init=False)
    with torch.no_grad():
        for i in module.gates:
            for j in module.gates[i]:
                module.gates[i][j][0].weight.zero_()
                module.gates[i][j][0].bias.zero_()
                module.messages[i][j][0].weight.fill_(1.0)
                module.messages[i][j][0].bias.zero_()
    out = module({"a": _const(1), "b": _const(2), "c": _const(4)})
    assert [out[t].item() for t in "abc"] == pytest.approx([2.5, 3.25, 4.75])


def test_ccam_starts_as_identity():
    for channels in (TWO, UNEQUAL):
        feats = cf.make_feats(channels)
        out = cf.build("ccam", channels)(feats)
        for t in feats:
            assert torch.equal(out[t], feats[t])


def test_ccam_parameters_are_the_gammas_and_temperatures_for_equal_widths():
    module = cf.build("ccam", TWO)
    assert sum(p.numel() for p in module.parameters()) == 4
    assert sorted(n for n, _ in module.named_parameters()) == [
        "gammas.a", "gammas.b", "log_inverse_temperatures.a", "log_inverse_temperatures.b"]


def test_ccam_hand_computed_cosine_channel_attention():
    """C = 2, N = 2: S = I, D = [[1, 1], [0, 2]], γ = 1, κ = 10: cosines [[1/√2, 0], [1/√2, 1]]."""
    module = cf.build("ccam", {"s": 2, "d": 2})
    with torch.no_grad():
        module.gammas["s"].fill_(1.0)
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 1, 2)
    d = torch.tensor([[1.0, 1.0], [0.0, 2.0]]).reshape(1, 2, 1, 2)
    r = 10 / math.sqrt(2)
    a0 = [math.exp(r) / (math.exp(r) + 1), 1 / (math.exp(r) + 1)]
    a1 = [math.exp(r) / (math.exp(r) + math.exp(10)), math.exp(10) / (math.exp(r) + math.exp(10))]
    attended = [[a0[0] * 1 + a0[1] * 0, a0[0] * 1 + a0[1] * 2], [a1[0] * 1 + a1[1] * 0, a1[0] * 1 + a1[1] * 2]]
    expected = torch.tensor([[1 + attended[0][0], attended[0][1]], [attended[1][0], 1 + attended[1][1]]])
    out = module({"s": s, "d": d})
    torch.testing.assert_close(out["s"].reshape(2, 2), expected)
    assert torch.equal(out["d"], d)  # γ_d is still 0


def test_ccam_danet_variant_equals_softmax_of_negative_affinity():
    from mtdense.models.interactions.ccam import channel_attention

    s, d = cf.make_feats({"s": 4, "d": 4}, 2, 3, 5).values()
    danet = channel_attention(s, d, "danet")
    energy = torch.bmm(s.reshape(2, 4, 15), d.reshape(2, 4, 15).transpose(1, 2))
    manual = torch.bmm(torch.softmax(-energy, dim=-1), d.reshape(2, 4, 15)).reshape(2, 4, 3, 5)
    torch.testing.assert_close(danet, manual)


def test_ccam_computes_in_float32_under_bf16_autocast():
    """Large affinities (|E| ~ 1e4): autocast must not change the result at all."""
    feats = {t: x.mul(12).bfloat16() for t, x in cf.make_feats(TWO, 2, 8, 12).items()}
    module = cf.build("ccam", TWO, variant="softmax")
    with torch.no_grad():
        for g in module.gammas.values():
            g.fill_(0.5)
        plain = module(feats)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = module(feats)
    for t in feats:
        assert autocast[t].dtype == torch.bfloat16
        assert torch.equal(plain[t], autocast[t])


def test_cross_stitch_default_init_and_identity_matrix():
    module = cf.build("cross_stitch", {"a": 1, "b": 1, "c": 1})
    feats = {"a": _const(1), "b": _const(2), "c": _const(4)}
    out = module(feats)
    # rows (0.9, 0.05, 0.05): a' = 0.9 + 0.1 + 0.2, b' = 0.05 + 1.8 + 0.2, c' = 0.05 + 0.1 + 3.6
    assert [out[t].item() for t in "abc"] == pytest.approx([1.2, 2.05, 3.75])
    identity = cf.build("cross_stitch", UNEQUAL, alpha_self=1.0)
    feats = cf.make_feats(UNEQUAL)
    for t, y in identity(feats).items():
        assert torch.equal(y, feats[t])


def test_mtlsegformer_softmax_reweighting_by_hand():
    """T = 3, C = 1, zero attention logits -> softmax weights 1/2; h_t sums [S_t; R_t].

    Eval-mode BN with fresh statistics divides by sqrt(1 + 1e-5): Z_a = ReLU((1 + (2 + 4)/2)/k).
    """
    module = cf.build("mtlsegformer_reweight", {"a": 1, "b": 1, "c": 1}, normalisation="softmax", identity_init=False)
    with torch.no_grad():
        for t in "abc":
            module.attention[t][-1].weight.zero_()
            module.attention[t][-1].bias.zero_()
            module.fusion[t][0].weight.fill_(1.0)
    module.eval()
    out = module({"a": _const(1), "b": _const(2), "c": _const(4)})
    k = math.sqrt(1 + 1e-5)
    assert [out[t].item() for t in "abc"] == pytest.approx([4 / k, 4.5 / k, 5.5 / k])


def test_mtlsegformer_residual_adds_the_input():
    feats = cf.make_feats(UNEQUAL)
    plain = cf.build("mtlsegformer_reweight", UNEQUAL, seed=3, identity_init=False)(feats)
    residual = cf.build("mtlsegformer_reweight", UNEQUAL, seed=3, residual=True, identity_init=False)(feats)
    for t in feats:
        torch.testing.assert_close(residual[t], feats[t] + plain[t])


def test_mtan_mean_update_is_a_mask_times_the_shared_mean():
    feats = cf.make_feats(TWO)
    out = cf.build("mtan_attention", TWO, identity_init=False)(feats)
    shared = (feats["a"] + feats["b"]) / 2
    for t in feats:
        mask = (out[t] - feats[t]) / shared
        assert ((mask > 0) & (mask < 1)).all()


def test_padnet_distillation_sums_gated_messages():
    """1×1 maps, centre taps 1, gate logits 0 -> 0.5: F_t' = F_t + 0.5·Σ_{j≠t} F_j / k."""
    module = cf.build("padnet_distillation", {"a": 1, "b": 1, "c": 1}, identity_init=False)
    with torch.no_grad():
        for t in "abc":
            module.intermediate[t][0].weight.fill_(1.0)
            module.gates[t].weight.zero_()
            module.gates[t].bias.zero_()
            for s in module.messages[t]:
                module.messages[t][s].weight.fill_(1.0)
                module.messages[t][s].bias.zero_()
    module.eval()
    feats = {"a": _const(1), "b": _const(2), "c": _const(4)}
    out = module(feats)
    k = math.sqrt(1 + 1e-5)
    assert [out[t].item() for t in "abc"] == pytest.approx([1 + 3 / k, 2 + 2.5 / k, 4 + 1.5 / k])
