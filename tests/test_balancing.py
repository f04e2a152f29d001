"""Balancers: hand-computed cases and a 2-process DDP check (the conformance kit runs on every
registered balancer in tests/test_plugin_conformance.py). All data here is synthetic (random
tensors, known linear models)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from mtdense.balancing.gradients import shared_parameters
from mtdense.registry import BALANCERS
from mtdense.errors import ConfigError
from mtdense.testing.balancers import (TASKS, TwoHead, assert_same_grads, build, flat_state, mse_losses, run_step,
                                      floats, shared_params, synthetic_batch)


@pytest.mark.parametrize("name", ["pcgrad", "uncertainty"])
def test_bf16_autocast_gives_float32_grads_equal_to_float32_run(name):
    torch.manual_seed(0)
    model, (x, y) = TwoHead(), synthetic_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grads, _ = run_step(copy.deepcopy(model), build(name), x, y)
    reference, _ = run_step(copy.deepcopy(model), build(name), x, y)
    for n, g in grads.items():
        assert g.dtype == torch.float32 and torch.isfinite(g).all(), n
        torch.testing.assert_close(g, reference[n], rtol=0.1, atol=0.05, msg=n)  # bf16 has ~3 digits


def test_shared_parameters_are_those_reached_by_two_losses():
    torch.manual_seed(0)
    model, (x, y) = TwoHead(), synthetic_batch()
    assert shared_parameters(model, mse_losses(model, x, y)) == list(model.trunk.parameters())
    preds = model(x)  # cross-task coupling: task b also sees head a's output
    losses = {"a": ((preds["a"] - y["a"]) ** 2).mean(), "b": ((preds["b"] + preds["a"] - y["b"]) ** 2).mean()}
    assert shared_parameters(model, losses) == list(model.trunk.parameters()) + list(model.heads["a"].parameters())


def test_registry_reports_bad_options():
    with pytest.raises(ConfigError, match="balancer.weights.*missing: \\['b'\\]"):
        build("fixed", weights={"a": 1.0})
    with pytest.raises(ConfigError, match="balancer.c"):
        build("cagrad", c=1.5)
    with pytest.raises(ValueError, match="missing: \\['b'\\]"):
        build("fixed").backward({"a": torch.tensor(1.0, requires_grad=True)}, [])


# -- gradient methods on losses linear in a shared parameter: known task gradients ----------


def combine(name, task_grads, **options):
    """Run a balancer on losses L_t = g_t . theta (so grad_theta L_t = g_t exactly)."""
    g = torch.tensor(task_grads, dtype=torch.float32)
    theta = nn.Parameter(torch.zeros(g.shape[1]))
    tasks = [f"t{i}" for i in range(len(g))]
    balancer = BALANCERS.build({"type": name, **options}, tasks=tasks)
    balancer.backward({t: g[i] @ theta for i, t in enumerate(tasks)}, [theta])
    balancer.finalize([theta])
    return theta.grad, torch.tensor([float(balancer.last_weights[t]) for t in tasks])


def test_pcgrad_conflicting_2d_matches_hand_projection():
    # g1.g2 = -1 < 0: g1' = g1 - (-1/2) g2 = (0.5, 0.5); g2' = g2 - (-1/1) g1 = (0, 1)
    grad, _ = combine("pcgrad", [[1.0, 0.0], [-1.0, 1.0]], seed=3)
    torch.testing.assert_close(grad, torch.tensor([0.5, 1.5]))


def test_pcgrad_non_conflicting_is_plain_sum():
    grad, weights = combine("pcgrad", [[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(grad, torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(weights, torch.tensor([1.0, 1.0]))


def test_pcgrad_three_tasks_fixed_order():
    # by hand, j in task order: g1 -> (0.5, 0.5) -> (0.5, 0); g2 -> (0, 1) -> (0, 0);
    # g3: g3.g1 = 0 kept, g3.g2 = -1 -> (0, -1) + 0.5 (-1, 1) = (-0.5, -0.5); sum (0, -0.5)
    grad, _ = combine("pcgrad", [[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]], shuffle=False)
    torch.testing.assert_close(grad, torch.tensor([0.0, -0.5]))


def test_cagrad_orthogonal_equal_norms_by_hand():
    # symmetric: w* = (1/2, 1/2), |g0| = |g_w| = sqrt(1/2), lambda = c; g = (1 + c) g0;
    # x T / (1 + c^2): each component (1 + 0.4) / (1 + 0.16)
    grad, _ = combine("cagrad", [[1.0, 0.0], [0.0, 1.0]], c=0.4)
    torch.testing.assert_close(grad, torch.full((2,), 1.4 / 1.16), rtol=1e-4, atol=1e-5)


def test_cagrad_with_c0_is_equal_weight_sum():
    torch.manual_seed(0)
    model, x = TwoHead(), synthetic_batch()[0]
    y = synthetic_batch()[1]
    grads_cagrad, weights = run_step(copy.deepcopy(model), build("cagrad", c=0.0), x, y)
    grads_sum, _ = run_step(copy.deepcopy(model), build("fixed"), x, y)
    assert_same_grads(grads_cagrad, grads_sum)
    assert weights == pytest.approx({"a": 1.0, "b": 1.0})


def test_imtl_projections_onto_unit_task_gradients_are_equal():
    g = torch.tensor([[1.0, 2.0, 0.0, -1.0, 0.5], [-2.0, 0.5, 1.0, 0.0, 0.0], [0.3, -0.4, 2.5, 1.0, -1.0]])
    grad, alpha = combine("imtl", g.tolist())
    projections = (g / g.norm(dim=1, keepdim=True)) @ grad
    torch.testing.assert_close(projections, projections.mean().expand(3), rtol=1e-5, atol=1e-5)
    assert float(alpha.sum()) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(grad, alpha @ g, rtol=1e-5, atol=1e-5)


def test_aligned_mtl_orthogonal_gradients_get_the_smallest_norm():
    # M = diag(4, 1): B = 1 * diag(1/2, 1); alpha = (1/2, 1); combined = (1, 1)
    grad, alpha = combine("aligned_mtl", [[2.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(grad, torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(alpha, torch.tensor([0.5, 1.0]))


# -- loss-weighting methods ---------------------------------------------------------------------


def test_famo_at_init_weights_log_losses_equally():
    torch.manual_seed(0)
    model, (x, y) = TwoHead(), synthetic_batch()
    _, weights = run_step(copy.deepcopy(model), build("famo"), x, y)
    with torch.no_grad():
        losses = {t: float(v) for t, v in mse_losses(model, x, y).items()}
    inverse = {t: 1.0 / v for t, v in losses.items()}
    expected = {t: v / sum(inverse.values()) for t, v in inverse.items()}  # a_t ~ 1/L_t, sum 1
    assert weights == pytest.approx(expected, rel=1e-5)
    # equal losses: FAMO's update is the mean of the task gradients
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    loss = (p**2).sum() + 1.0
    assert floats(build("famo").backward({"a": loss, "b": loss}, [p])) == pytest.approx({"a": 0.5, "b": 0.5})
    torch.testing.assert_close(p.grad, 2 * p.detach())  # mean of the two identical gradients 2p


def test_famo_logits_favour_the_task_whose_loss_decreases_slower():
    famo = build("famo")
    p = nn.Parameter(torch.ones(()))
    for la, lb in [(1.0, 1.0), (0.9, 0.5), (0.85, 0.25)]:  # b improves much faster
        famo.backward({"a": p * la, "b": p * lb}, [p])
        famo.finalize([p])
    z = torch.softmax(famo.logits.detach(), 0)
    assert z[0] > z[1]


def test_dwa_reproduces_its_formula():
    dwa = build("dwa")  # temp 2
    p = nn.Parameter(torch.ones(()))
    # epoch 1: two steps with mean losses (1.0, 2.0), seen by DWA itself
    for la, lb in [(0.8, 2.2), (1.2, 1.8)]:
        assert dwa.backward({"a": p * la, "b": p * lb}, [p]) == {"a": 1.0, "b": 1.0}
        dwa.finalize([p])
    dwa.on_epoch_end()
    assert dwa.backward({"a": p * 0.5, "b": p * 1.8}, [p]) == {"a": 1.0, "b": 1.0}  # epoch 2: still 1
    dwa.finalize([p])
    dwa.on_epoch_end()
    ra, rb = 0.5 / 1.0, 1.8 / 2.0
    ea, eb = math.exp(ra / 2), math.exp(rb / 2)
    expected = {"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)}
    p.grad = None
    assert floats(dwa.backward({"a": p * 1.0, "b": p * 2.0}, [p])) == pytest.approx(expected)
    assert float(p.grad) == pytest.approx(expected["a"] * 1.0 + expected["b"] * 2.0, rel=1e-6)


def test_rlw_weights_are_a_softmax_draw_shared_by_a_step():
    rlw = build("rlw", seed=5)
    p = nn.Parameter(torch.ones(()))
    first = floats(rlw.backward({"a": p, "b": p}, [p]))
    assert floats(rlw.backward({"a": p, "b": p}, [p])) == first  # second micro-batch, same step
    rlw.finalize([p])
    second = floats(rlw.backward({"a": p, "b": p}, [p]))
    assert sum(first.values()) == pytest.approx(1.0) and min(first.values()) > 0
    assert second != first
    z = torch.randn(2, generator=torch.Generator().manual_seed(5))
    assert list(first.values()) == pytest.approx(torch.softmax(z, 0).tolist())


def test_uncertainty_learns_inverse_noise_variance():
    """Synthetic: y_a = x.w_a + N(0, 0.5^2), y_b = x.w_b + N(0, 2^2) -> exp(-s) ~ 1/sigma^2."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    trunk = nn.Linear(4, 4)
    heads = nn.ModuleDict({t: nn.Linear(4, 1) for t in TASKS})
    params = list(trunk.parameters()) + list(heads.parameters())
    optimizer = torch.optim.Adam(params, lr=0.05)
    balancer = build("uncertainty", lr=0.1)
    w = {"a": torch.tensor([1.0, -2.0, 0.5, 0.0]), "b": torch.tensor([0.0, 1.0, 1.0, -1.0])}
    sigma = {"a": 0.5, "b": 2.0}
    for _ in range(200):
        x = torch.randn(1024, 4, generator=g)
        h = trunk(x)
        losses = {}
        for t in TASKS:
            y = x @ w[t] + sigma[t] * torch.randn(1024, generator=g)
            losses[t] = ((heads[t](h).squeeze(-1) - y) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        balancer.backward(losses, list(trunk.parameters()))
        balancer.finalize(list(trunk.parameters()))
        optimizer.step()
    precision = torch.exp(-balancer.log_vars.detach())
    assert float(precision[0]) == pytest.approx(1 / 0.5**2, rel=0.1)
    assert float(precision[1]) == pytest.approx(1 / 2.0**2, rel=0.1)
    assert float(precision[0] / precision[1]) == pytest.approx(2.0**2 / 0.5**2, rel=0.15)


def test_gradnorm_moves_weights_toward_equal_gradient_norms():
    torch.manual_seed(0)
    model, (x, y) = TwoHead(), synthetic_batch()
    layer = model.trunk[2].weight
    balancer = build("gradnorm", lr=0.01)

    def scaled_losses():
        losses = mse_losses(model, x, y)
        losses["b"] = losses["b"] * 10.0  # task b: 10x larger gradients
        return losses

    def weighted_norm_ratio():
        losses = scaled_losses()
        norms = [torch.autograd.grad(losses[t], layer, retain_graph=True)[0].norm() for t in TASKS]
        w = balancer.task_weights.detach()
        return float(w[0] * norms[0] / (w[1] * norms[1]))

    start = weighted_norm_ratio()
    for _ in range(300):  # model fixed: losses constant, so the target is the mean norm
        model.zero_grad()
        balancer.backward(scaled_losses(), shared_params(model))
        balancer.finalize(shared_params(model))
    assert abs(math.log(start)) > 1.0
    assert weighted_norm_ratio() == pytest.approx(1.0, rel=0.15)
    assert float(balancer.task_weights.detach().sum()) == pytest.approx(2.0)


# -- DDP: 2 gloo processes on CPU ---------------------------------------------------------------


def _ddp_worker(rank, world, init_file, out_dir):
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    x, y = synthetic_batch(n=8)
    part = slice(rank * 4, rank * 4 + 4)
    x, y = x[part], {t: v[part] for t, v in y.items()}
    results = {}
    for name, options in (("pcgrad", {"shuffle": False}), ("uncertainty", {}), ("gradnorm", {})):
        torch.manual_seed(0)
        model = TwoHead()
        ddp = DDP(model)
        balancer = build(name, **options)
        for _ in range(2):  # two steps: the second uses the state learnt in the first
            model.zero_grad(set_to_none=True)
            if balancer.reduces_gradients:
                with ddp.no_sync():
                    balancer.backward(mse_losses(ddp, x, y), shared_params(model))
            else:
                balancer.backward(mse_losses(ddp, x, y), shared_params(model))
            balancer.finalize(shared_params(model))
        results[name] = {
            "grads": {n: p.grad.clone() for n, p in model.named_parameters()},
            "state": flat_state(balancer.state_dict()),
        }
    torch.save(results, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_match_single_process_full_batch(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    x, y = synthetic_batch(n=8)
    for name, options in (("pcgrad", {"shuffle": False}), ("uncertainty", {}), ("gradnorm", {})):
        torch.manual_seed(0)
        model, balancer = TwoHead(), build(name, **options)
        for _ in range(2):
            grads, _ = run_step(model, balancer, x, y)
        state = flat_state(balancer.state_dict())
        for rank in ranks:
            assert_same_grads(rank[name]["grads"], grads)
            for k, v in state.items():
                if isinstance(v, torch.Tensor):
                    torch.testing.assert_close(rank[name]["state"][k], v, rtol=1e-5, atol=1e-6, msg=f"{name} {k}")
