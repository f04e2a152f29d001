"""Regression tests for issue 9 §1 at the trainer level (each failed on the code before the fix):
the shared set comes from the autograd graph and is saved with the run; couplings keep their
weight outside the balancer; the balancer's seed follows the run seed; FAMO's extra forward."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from mtdense.balancing.gradients import shared_parameters
from mtdense.config import from_dict
from mtdense.engine.checkpoint import read_checkpoint
from mtdense.engine.trainer import Trainer


def cbim_config(folder, **trainer):
    cfg = tiny_config(folder, **trainer)
    cfg["model"]["interactions"] = [{"type": "cbim", "stages": "all", "identity_init": False}]
    return cfg


def first_batches(trainer, k=1):
    it = iter(trainer._loader("train", shuffle=True))
    return [next(it) for _ in range(k)]


def test_trainer_shares_what_two_task_losses_reach_and_saves_it(tmp_path):
    trainer = Trainer(from_dict(cbim_config(tmp_path, max_epochs=1)))
    micro = first_batches(trainer)
    trainer.train_step(micro)
    model = trainer.model
    decoder_stage0 = [p for n, p in model.named_parameters() if n.startswith("decoders.semantic.")][0]
    shared_ids = {id(p) for p in trainer.shared_params}
    assert id(decoder_stage0) in shared_ids  # upstream of an interaction: both losses reach it
    last = model.num_stages - 1
    own = [p for n, p in model.named_parameters() if n.startswith(f"interactions.{last}.0.gates.semantic.")]
    assert own and not any(id(p) in shared_ids for p in own)  # feeds the semantic branch only
    batch = trainer.runtime.batch(first_batches(trainer)[0])
    outputs = model(batch["image"])
    losses = {n: t.compute_loss(outputs[n], batch) for n, t in trainer.tasks.items()}
    assert [id(p) for p in trainer.shared_params] == [id(p) for p in shared_parameters(model, losses)]
    trainer.save()
    names = read_checkpoint(tmp_path, with_state=True)["state"]["shared_params"]
    assert names == [n for n, p in model.named_parameters() if id(p) in shared_ids]
    resumed = Trainer(from_dict(cbim_config(tmp_path / "resumed", max_epochs=1)))
    resumed.restore(tmp_path)
    assert [n for n, p in resumed.model.named_parameters() if any(p is q for q in resumed.shared_params)] == names


def test_couplings_are_not_balanced_and_keep_their_weight(tmp_path):
    cfg = tiny_config(tmp_path, max_epochs=1)
    cfg["tasks"]["rain"] = {"type": "threshold_classification", "target": "height", "thresholds": [0.5]}
    cfg["couplings"] = [{"type": "class_estimate_consistency", "name": "consistency", "classification": "rain",
                         "estimation": "height", "weight": 0.5}]
    cfg["balancer"] = {"type": "uncertainty"}
    trainer = Trainer(from_dict(cfg))
    assert trainer.balancer.tasks == ["semantic", "height", "rain"]
    assert trainer.exp.coupling_weights == {"consistency": 0.5}
    batch = trainer.runtime.batch(first_batches(trainer)[0])
    trainer.net.train()
    losses = trainer._losses(batch)
    total = sum(losses[t] for t in trainer.tasks) + 0.5 * losses["consistency"]  # uncertainty weights start at 1
    expected = torch.autograd.grad(total, list(trainer.model.parameters()), allow_unused=True, retain_graph=True)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.balancer.backward({t: losses[t] for t in trainer.tasks}, list(trainer.model.backbone.parameters()),
                              trainer._weighted_couplings(losses, 1))
    for p, g in zip(trainer.model.parameters(), expected):
        if g is not None:
            torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("balancer", ["rlw", "pcgrad"])
def test_balancer_seed_follows_the_run_seed(tmp_path, balancer):
    draws = []
    for seed in (0, 1):
        cfg = tiny_config(tmp_path / str(seed), max_epochs=1)
        cfg["seed"], cfg["balancer"] = seed, {"type": balancer}
        draws.append(torch.randn(4, generator=Trainer(from_dict(cfg)).balancer.generator))
    assert not torch.equal(draws[0], draws[1])


def test_famo_trainer_updates_its_logits_from_the_same_batch(tmp_path):
    cfg = tiny_config(tmp_path, max_epochs=1)
    cfg["balancer"] = {"type": "famo"}
    trainer = Trainer(from_dict(cfg))
    seen = []
    original = trainer.balancer.after_optimizer_step
    trainer.balancer.after_optimizer_step = lambda losses: (seen.append(losses), original(losses))
    trainer.train_step(first_batches(trainer))
    assert len(seen) == 1 and set(seen[0]) == {"semantic", "height"}
    assert not torch.equal(trainer.balancer.logits.detach(), torch.zeros(2))  # learnt after ONE step
