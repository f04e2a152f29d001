"""Conformance of loss balancers, on a tiny synthetic two-task regression model (shared trunk,
one linear head per task) after three SGD steps, so adaptive state is non-trivial.

Checked: ``backward`` + ``finalize`` leave finite gradients on every parameter and weights for
every task; ``state_dict`` → bytes → a fresh balancer gives the same next update and state
(exact resume); two micro-batches of loss/2 give the same state as one batch, and the same
gradients unless the class sets ``exact_under_accumulation = False`` (then they must differ). The helpers are shared with tests/test_balancing.py.
"""

from __future__ import annotations

import copy
import io
import math

import torch
from torch import nn

from mtdense.balancing.base import Balancer
from mtdense.registry import BALANCERS

TASKS = ["a", "b"]


class TwoHead(nn.Module):
    """Tiny synthetic 2-task regression model: shared trunk, one linear head per task."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.heads = nn.ModuleDict({t: nn.Linear(6, 1) for t in TASKS})

    def forward(self, x):
        h = self.trunk(x)
        return {t: head(h).squeeze(-1) for t, head in self.heads.items()}


def synthetic_batch(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = {"a": x @ torch.tensor([1.0, -2.0, 0.5]), "b": 3.0 * torch.sin(x[:, 0]) - x[:, 2]}
    return x, y


def mse_losses(model, x, y, scale=1.0):
    preds = model(x)
    return {t: scale * ((preds[t] - y[t]) ** 2).mean() for t in TASKS}


def shared_params(model):
    return list(model.trunk.parameters())


def run_step(model, balancer, x, y, micro_batches=1):
    """One optimizer step's gradients (no optimizer): returns grads by name and weights."""
    model.zero_grad(set_to_none=True)
    for part_x, part_idx in zip(x.chunk(micro_batches), torch.arange(len(x)).chunk(micro_batches)):
        part_y = {t: v[part_idx] for t, v in y.items()}
        balancer.backward(mse_losses(model, part_x, part_y, 1.0 / micro_batches), shared_params(model))
    balancer.finalize(shared_params(model))
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    return grads, floats(balancer.last_weights)


def floats(weights: dict) -> dict[str, float]:
    """Balancer weights (0-dim tensors, kept on the device to avoid host syncs) as floats."""
    return {k: float(v) for k, v in weights.items()}


def build(name, **options):
    return BALANCERS.build({"type": name, **options}, path="balancer", tasks=TASKS)


def flat_state(obj, prefix=""):
    """Every tensor / number in a (nested) state dict, keyed by its path."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat_state(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flat_state(v, f"{prefix}{i}."))
    elif isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().double() if obj.is_floating_point() else obj
    elif isinstance(obj, (int, float)):
        out[prefix] = obj
    return out


def assert_same_state(a: Balancer, b: Balancer):
    sa, sb = flat_state(a.state_dict()), flat_state(b.state_dict())
    assert sa.keys() == sb.keys()
    for k in sa:
        if isinstance(sa[k], torch.Tensor):
            torch.testing.assert_close(sa[k], sb[k], rtol=1e-6, atol=1e-7, msg=k)
        else:
            assert math.isclose(sa[k], sb[k], rel_tol=1e-6, abs_tol=1e-12), k


def assert_same_grads(ga, gb):
    assert ga.keys() == gb.keys()
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n], rtol=1e-5, atol=1e-6, msg=n)


def trained(name, **options):
    """Model + balancer after 3 synthetic SGD steps (adaptive state is then non-trivial)."""
    torch.manual_seed(0)
    model, balancer = TwoHead(), build(name, **options)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for seed in range(3):
        x, y = synthetic_batch(seed=seed)
        run_step(model, balancer, x, y)
        optimizer.step()
        balancer.on_epoch_end()
    return model, balancer


def check_resume_is_exact(name: str, options: dict) -> None:
    """state_dict -> bytes -> fresh balancer gives the same next update and the same next state."""
    model, balancer = trained(name, **options)
    x, y = synthetic_batch(seed=7)
    buffer = io.BytesIO()
    torch.save(balancer.state_dict(), buffer)
    buffer.seek(0)
    resumed = build(name, **options)
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    grads_a, weights_a = run_step(model, balancer, x, y)
    grads_b, weights_b = run_step(copy.deepcopy(model), resumed, x, y)
    assert_same_grads(grads_a, grads_b)
    assert weights_a.keys() == weights_b.keys() and all(
        math.isclose(weights_a[t], weights_b[t], rel_tol=1e-6, abs_tol=1e-12) for t in weights_a), \
        f"weights after resume {weights_b} != {weights_a}"
    assert_same_state(balancer, resumed)


def check_finite_gradients(name: str, options: dict) -> None:
    """backward + finalize leave finite gradients on every parameter, shared and task-specific."""
    model, balancer = trained(name, **options)
    grads, weights = run_step(model, balancer, *synthetic_batch(seed=7))
    assert set(weights) == set(TASKS), f"last_weights has keys {sorted(weights)}, expected {TASKS}"
    for n, g in grads.items():
        assert g is not None and torch.isfinite(g).all(), f"parameter {n}: missing or non-finite gradient"


def check_accumulation(name: str, options: dict) -> None:
    """Two micro-batches of loss/2 == one batch of the concatenated data."""
    model, balancer = trained(name, **options)
    x, y = synthetic_batch(seed=7)
    one, two = build(name, **options), build(name, **options)
    one.load_state_dict(balancer.state_dict())
    two.load_state_dict(balancer.state_dict())
    grads_one, _ = run_step(copy.deepcopy(model), one, x, y, micro_batches=1)
    grads_two, _ = run_step(copy.deepcopy(model), two, x, y, micro_batches=2)
    assert_same_state(one, two)  # balancer state learns from the step mean: always exact
    if getattr(type(one), "exact_under_accumulation", True):
        assert_same_grads(grads_one, grads_two)
    else:  # the flag is honest: accumulation really changes the gradients
        try:
            assert_same_grads(grads_one, grads_two)
        except AssertionError:
            return
        raise AssertionError("exact_under_accumulation = False, but two micro-batches give the same gradients")


def balancer_checks(name: str, options: dict, workdir) -> list:
    return [
        ("finite gradients and weights for every task", lambda: check_finite_gradients(name, options)),
        ("exact resume from state_dict", lambda: check_resume_is_exact(name, options)),
        ("gradient accumulation", lambda: check_accumulation(name, options)),
    ]
