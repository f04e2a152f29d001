"""Regression tests for the balancer defects of issue 9 §1 (each failed on the code before the fix).

All data is synthetic: random tensors and tiny linear/tanh models.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtdense.balancing.gradients import shared_parameters
from mtdense.registry import BALANCERS

TASKS = ["a", "b", "c"]


class ThreeTask(nn.Module):
    """trunk -> every task; ``pair`` (registered after the trunk) -> tasks a and b only."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.pair = nn.Linear(6, 6)
        self.heads = nn.ModuleDict({t: nn.Linear(6, 1) for t in TASKS})

    def forward(self, x):
        h = self.trunk(x)
        p = torch.tanh(self.pair(h))
        return {"a": self.heads["a"](p).squeeze(-1), "b": self.heads["b"](p).squeeze(-1),
                "c": self.heads["c"](h).squeeze(-1)}


def losses_of(model, scale=(1.0, 1.0, 1.0), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 3, generator=g)
    preds = model(x)
    targets = {"a": x[:, 0], "b": -x[:, 1], "c": x[:, 2] ** 2}
    return {t: s * ((preds[t] - targets[t]) ** 2).mean() for t, s in zip(TASKS, scale)}


def test_gradnorm_layer_is_reached_by_every_task_loss():
    torch.manual_seed(0)
    model = ThreeTask()
    balancer = BALANCERS.build({"type": "gradnorm"}, "balancer", tasks=TASKS)
    losses = losses_of(model)
    shared = shared_parameters(model, losses)
    assert any(p is model.pair.weight for p in shared)  # reached by a and b: shared, but not by c
    balancer.backward(losses, shared)
    assert balancer.layer is model.trunk[2].weight  # the last layer all three losses reach


def test_gradnorm_weights_stay_positive_and_sum_to_task_count():
    torch.manual_seed(0)
    model = ThreeTask()
    balancer = BALANCERS.build({"type": "gradnorm", "lr": 0.2}, "balancer", tasks=TASKS)
    for step in range(80):  # task c's gradients are 100x larger: its weight is pushed down every step
        model.zero_grad()
        losses = losses_of(model, scale=(1.0, 1.0, 100.0), seed=step)
        balancer.backward(losses, shared_parameters(model, losses))
        balancer.finalize(shared_parameters(model, losses))
    weights = torch.tensor(list(balancer.last_weights.values()))
    assert bool((weights > 0).all()), balancer.last_weights
    assert float(weights.sum()) == pytest.approx(3.0, rel=1e-5)
    assert balancer.last_weights["c"] < 0.1  # it did learn to down-weight c


@pytest.mark.parametrize("name", ["fixed", "uncertainty", "gradnorm", "famo", "pcgrad", "imtl", "aligned_mtl"])
def test_couplings_keep_their_weight_and_are_not_balanced(name):
    """The coupling's gradient is added as is: grad(balanced tasks + c) - grad(balanced tasks) = grad c."""
    tasks = ["a", "b"]

    def run(with_coupling):
        torch.manual_seed(0)
        model = ThreeTask()
        balancer = BALANCERS.build({"type": name}, "balancer", tasks=tasks)
        losses = losses_of(model)
        coupling = 0.5 * losses.pop("c")  # stands in for a weighted consistency term
        shared = shared_parameters(model, losses)
        balancer.backward(losses, shared, coupling if with_coupling else None)
        balancer.finalize(shared)
        return model, {n: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for n, p in model.named_parameters()}

    model_c, with_c = run(True)
    _, without = run(False)
    torch.manual_seed(0)
    reference = ThreeTask()
    (0.5 * losses_of(reference)["c"]).backward()
    for n, p in reference.named_parameters():
        expected = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(with_c[n] - without[n], expected, rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.parametrize("name", ["rlw", "pcgrad"])
def test_balancer_seed_defaults_to_the_run_seed(name):
    from mtdense.balancing.base import build_balancer  # did not exist before the fix

    a = build_balancer({"type": name}, ["a", "b", "c"], run_seed=1)
    b = build_balancer({"type": name}, ["a", "b", "c"], run_seed=2)
    assert not torch.equal(torch.randn(8, generator=a.generator), torch.randn(8, generator=b.generator))
    explicit = build_balancer({"type": name, "seed": 5}, ["a", "b", "c"], run_seed=1)
    same = torch.Generator().manual_seed(5)
    assert torch.equal(torch.randn(8, generator=explicit.generator), torch.randn(8, generator=same))
    run_seeded = build_balancer({"type": name}, ["a", "b", "c"], run_seed=1)
    assert torch.equal(torch.randn(8, generator=run_seeded.generator),
                       torch.randn(8, generator=torch.Generator().manual_seed(1)))


def test_famo_default_learns_from_the_same_batch_after_the_step():
    famo = BALANCERS.build({"type": "famo"}, "balancer", tasks=["a", "b"])
    assert famo.needs_post_step_losses
    p = nn.Parameter(torch.ones(()))
    famo.backward({"a": p * 1.0, "b": p * 1.0}, [p])
    famo.finalize([p])
    assert torch.equal(famo.logits.detach(), torch.zeros(2))  # nothing learnt before the step
    famo.after_optimizer_step({"a": torch.tensor(0.5), "b": torch.tensor(1.0)})  # same batch, after the step
    z = torch.softmax(famo.logits.detach(), 0)
    assert z[1] > z[0]  # b did not improve on this batch: it gains weight
    cheap = BALANCERS.build({"type": "famo", "update": "next_batch"}, "balancer", tasks=["a", "b"])
    assert not cheap.needs_post_step_losses


def famo_toy(update: str | None, steps: int = 40, seed: int = 0, lr: float = 0.002) -> float:
    """Imbalance |log(L_a/L_a0) - log(L_b/L_b0)| after ``steps`` SGD steps on two regressions
    through one shared linear layer whose losses differ in scale by 100 (FAMO's setting:
    it equalises the rate at which the log losses fall). ``update=None``: fixed weights."""
    torch.manual_seed(seed)
    shared, heads = nn.Linear(4, 4), nn.ModuleDict({t: nn.Linear(4, 1) for t in "ab"})
    params = list(shared.parameters()) + list(heads.parameters())
    opt = torch.optim.SGD(params, lr=lr)
    cfg = {"type": "fixed"} if update is None else {"type": "famo", "update": update}
    balancer = BALANCERS.build(cfg, "balancer", tasks=["a", "b"])
    g = torch.Generator().manual_seed(seed)
    u, v = torch.randn(4, generator=g), torch.randn(4, generator=g)

    def losses(x):
        h = shared(x)
        return {"a": ((heads["a"](h).squeeze(-1) - x @ u) ** 2).mean(),
                "b": ((heads["b"](h).squeeze(-1) - 10.0 * (x @ v)) ** 2).mean()}

    x_eval = torch.randn(256, 4, generator=g)
    with torch.no_grad():
        start = losses(x_eval)
    for _ in range(steps):
        x = torch.randn(32, 4, generator=g)
        opt.zero_grad()
        balancer.backward(losses(x), list(shared.parameters()))
        balancer.finalize(list(shared.parameters()))
        opt.step()
        if balancer.needs_post_step_losses:
            with torch.no_grad():
                balancer.after_optimizer_step(losses(x))
    with torch.no_grad():
        end = losses(x_eval)
    return abs(float(torch.log(end["a"] / start["a"]) - torch.log(end["b"] / start["b"])))


def test_famo_balances_log_loss_decrease_on_the_toy_problem():
    fixed = famo_toy(None)
    same = famo_toy("same_batch")
    assert same < 0.5 * fixed  # FAMO's known effect: both log losses fall at a similar rate
