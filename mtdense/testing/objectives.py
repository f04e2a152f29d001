"""Conformance of what training optimises: tasks, per-pixel losses and couplings.

- task (built with ``name``): ``out_channels``; ``compute_loss(raw, batch)`` is a finite scalar
  with a finite, non-zero gradient; pixels whose validity mask is false do not change it; with
  no valid pixel (unlabelled data) it is 0, not NaN; ``predict_from`` gives B×H×W;
  ``bind`` returns metric names and rejects a dataset without the task's target with a
  ConfigError; ``postprocessing()`` is JSON with the registered type; state-dict round trip.
  The kit feeds integer class ids in [0, K) when K = out_channels > 1, non-negative floats when 1.
- loss: declares ``expects = "classes"`` (called with logits B×K×H×W, int64 class ids B×H×W,
  valid B×H×W) or ``"values"`` (predictions B×H×W after the task's activation, targets B×H×W
  after the task's target transform, valid); finite scalar and gradient, invalid pixels
  ignored, 0 with no valid pixel, a correct prediction scores lower than a wrong one.
- coupling (built with ``tasks``, the kit's standard tasks): ``coupling(outputs, batch)`` is a
  finite scalar; gradients reach the outputs and are finite; finite on a batch with no valid
  pixel; same inputs, same value.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from mtdense.errors import ConfigError
from mtdense.registry import COUPLINGS, LOSSES, TASKS
from mtdense.testing.fixtures import raw_outputs, sample_batch, standard_tasks, without_labels

B, H, W = 2, 6, 10
SUBJECT = "subject"


def _valid_mask(seed: int = 0) -> torch.Tensor:
    mask = torch.rand(B, H, W, generator=torch.Generator().manual_seed(seed)) > 0.3
    mask[0, 0, 0], mask[0, 0, 1] = True, False
    return mask


def _targets(k: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, k, (B, H, W), generator=gen) if k > 1 else torch.rand(B, H, W, generator=gen) * 3


def _assert_finite_scalar(value: torch.Tensor, what: str) -> None:
    assert isinstance(value, torch.Tensor) and value.dim() == 0, f"{what} must be a 0-dim tensor, got {value!r}"
    assert torch.isfinite(value), f"{what} is not finite: {value.item()}"


# ---------------------------------------------------------------- tasks

def _task_setup(name: str, options: dict):
    task = TASKS.build({"type": name, **options}, f"tasks.{SUBJECT}", name=SUBJECT)
    tasks = standard_tasks()
    tasks[SUBJECT] = task
    k = task.out_channels
    batch = {"targets": {task.target: _targets(k)}, "valid": {task.target: _valid_mask()}}
    return task, tasks, batch


def check_task_loss(name: str, options: dict) -> None:
    task, _, batch = _task_setup(name, options)
    assert isinstance(task.out_channels, int) and task.out_channels >= 1, f"out_channels={task.out_channels!r}"
    raw = torch.randn(B, task.out_channels, H, W, requires_grad=True)
    loss = task.compute_loss(raw, batch)
    _assert_finite_scalar(loss, "compute_loss")
    loss.backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0, \
        "the loss gives no finite, non-zero gradient to the raw output"


def check_task_ignores_invalid(name: str, options: dict) -> None:
    task, _, batch = _task_setup(name, options)
    raw = torch.randn(B, task.out_channels, H, W)
    valid = batch["valid"][task.target]
    other_raw = torch.where(valid[:, None], raw, torch.randn_like(raw) * 5)
    other_target = torch.where(valid, batch["targets"][task.target], _targets(task.out_channels, seed=9))
    changed = {"targets": {task.target: other_target}, "valid": batch["valid"]}
    a, b = task.compute_loss(raw, batch), task.compute_loss(other_raw, changed)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), f"values at invalid pixels changed the loss ({a.item()} → {b.item()})"


def check_task_unlabelled(name: str, options: dict) -> None:
    task, _, batch = _task_setup(name, options)
    raw = torch.randn(B, task.out_channels, H, W, requires_grad=True)
    loss = task.compute_loss(raw, without_labels(batch))
    _assert_finite_scalar(loss, "loss with no valid pixel")
    assert loss.item() == 0.0, f"loss with no valid pixel must be 0, got {loss.item()}"
    loss.backward()
    assert raw.grad is None or torch.isfinite(raw.grad).all(), "non-finite gradient with no valid pixel"


def check_task_predict_and_bind(name: str, options: dict) -> None:
    task, tasks, _ = _task_setup(name, options)
    outputs = {n: torch.randn(B, t.out_channels, H, W) for n, t in tasks.items()}
    pred = task.predict_from(outputs, tasks)
    assert pred.shape == (B, H, W), f"predict_from gives shape {tuple(pred.shape)}, expected B×H×W {(B, H, W)}"
    names = task.bind(tasks, [task.target])
    assert isinstance(names, list) and all(isinstance(n, str) for n in names), f"bind returned {names!r}"
    try:
        task.bind(tasks, ["no_such_target"])
    except ConfigError as exc:
        assert "target" in str(exc), f"the error should name the target option: {exc}"
    else:
        raise AssertionError("bind accepted a dataset without the task's target")


def check_task_postprocessing(name: str, options: dict) -> None:
    task, _, _ = _task_setup(name, options)
    description = task.postprocessing()
    json.dumps(description)  # stored in the checkpoint spec as JSON
    assert description.get("type") == name, f"postprocessing()['type'] is {description.get('type')!r}, not {name!r}"


def check_task_state_dict(name: str, options: dict) -> None:
    task, _, batch = _task_setup(name, options)
    twin = TASKS.build({"type": name, **options}, f"tasks.{SUBJECT}", name=SUBJECT)
    twin.load_state_dict(task.state_dict())
    raw = torch.randn(B, task.out_channels, H, W)
    assert torch.equal(task.compute_loss(raw, batch), twin.compute_loss(raw, batch)), "state-dict round trip changed the loss"


def task_checks(name: str, options: dict, workdir) -> list:
    return [("loss and gradient", lambda: check_task_loss(name, options)),
            ("invalid pixels are ignored", lambda: check_task_ignores_invalid(name, options)),
            ("no valid pixel gives loss 0", lambda: check_task_unlabelled(name, options)),
            ("predict_from and bind", lambda: check_task_predict_and_bind(name, options)),
            ("postprocessing is JSON", lambda: check_task_postprocessing(name, options)),
            ("state dict round trip", lambda: check_task_state_dict(name, options))]


# ---------------------------------------------------------------- losses

def _loss_inputs(expects: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    if expects == "classes":
        target = torch.randint(0, 3, (B, H, W), generator=gen)
        good = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 8
        bad = torch.nn.functional.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).float() * 8
        return torch.randn(B, 3, H, W, generator=gen), target, good, bad
    target = torch.rand(B, H, W, generator=gen) * 3
    return torch.rand(B, H, W, generator=gen) * 3, target, target.clone(), target + 2.0


def _build_loss(name: str, options: dict):
    loss = LOSSES.build({"type": name, **options}, "tasks.subject.loss")
    expects = getattr(loss, "expects", None)
    assert expects in ("classes", "values"), \
        f"declare expects = 'classes' (logits + class ids) or 'values' (predictions + targets); got {expects!r}"
    return loss, expects


def check_loss_value_and_gradient(name: str, options: dict) -> None:
    loss_fn, expects = _build_loss(name, options)
    pred, target, _, _ = _loss_inputs(expects)
    pred.requires_grad_(True)
    loss = loss_fn(pred, target, _valid_mask())
    _assert_finite_scalar(loss, "loss")
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0, "no finite, non-zero gradient"


def check_loss_ignores_invalid(name: str, options: dict) -> None:
    loss_fn, expects = _build_loss(name, options)
    pred, target, _, _ = _loss_inputs(expects)
    other_pred, other_target, _, _ = _loss_inputs(expects, seed=5)
    valid = _valid_mask()
    mask = valid[:, None] if expects == "classes" else valid
    a = loss_fn(pred, target, valid)
    b = loss_fn(torch.where(mask, pred, other_pred), torch.where(valid, target, other_target), valid)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), f"values at invalid pixels changed the loss ({a.item()} → {b.item()})"


def check_loss_no_valid_pixel(name: str, options: dict) -> None:
    loss_fn, expects = _build_loss(name, options)
    pred, target, _, _ = _loss_inputs(expects)
    pred.requires_grad_(True)
    loss = loss_fn(pred, target, torch.zeros(B, H, W, dtype=torch.bool))
    _assert_finite_scalar(loss, "loss with no valid pixel")
    assert loss.item() == 0.0, f"loss with no valid pixel must be 0, got {loss.item()}"
    loss.backward()
    assert pred.grad is None or torch.isfinite(pred.grad).all(), "non-finite gradient with no valid pixel"


def check_loss_prefers_correct(name: str, options: dict) -> None:
    loss_fn, expects = _build_loss(name, options)
    _, target, good, bad = _loss_inputs(expects)
    valid = _valid_mask()
    lo, hi = loss_fn(good, target, valid), loss_fn(bad, target, valid)
    assert lo < hi, f"a correct prediction must score lower than a wrong one ({lo.item()} vs {hi.item()})"


def loss_checks(name: str, options: dict, workdir) -> list:
    return [("finite value and gradient", lambda: check_loss_value_and_gradient(name, options)),
            ("invalid pixels are ignored", lambda: check_loss_ignores_invalid(name, options)),
            ("no valid pixel gives 0", lambda: check_loss_no_valid_pixel(name, options)),
            ("correct beats wrong", lambda: check_loss_prefers_correct(name, options))]


# ---------------------------------------------------------------- couplings

def _coupling(name: str, options: dict):
    tasks = standard_tasks()
    return COUPLINGS.build({"type": name, **options}, "couplings.0", tasks=tasks), tasks


def check_coupling_value_and_gradient(name: str, options: dict) -> None:
    coupling, tasks = _coupling(name, options)
    outputs = raw_outputs(tasks, requires_grad=True)
    value = coupling(outputs, sample_batch(tasks))
    _assert_finite_scalar(value, "coupling value")
    value.backward()
    grads = [o.grad for o in outputs.values() if o.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads), "no gradient reaches the outputs"
    assert all(torch.isfinite(g).all() for g in grads), "non-finite gradient"


def check_coupling_unlabelled(name: str, options: dict) -> None:
    coupling, tasks = _coupling(name, options)
    value = coupling(raw_outputs(tasks), without_labels(sample_batch(tasks)))
    _assert_finite_scalar(value, "coupling value on a batch with no valid pixel")


def check_coupling_deterministic(name: str, options: dict) -> None:
    coupling, tasks = _coupling(name, options)
    outputs, batch = raw_outputs(tasks), sample_batch(tasks)
    assert torch.equal(coupling(outputs, batch), coupling(outputs, batch)), "same inputs gave different values"


def coupling_checks(name: str, options: dict, workdir) -> list:
    assert isinstance(_coupling(name, options)[0], nn.Module), "a coupling must be an nn.Module"
    return [("finite value and gradient", lambda: check_coupling_value_and_gradient(name, options)),
            ("no valid pixel gives a finite value", lambda: check_coupling_unlabelled(name, options)),
            ("deterministic", lambda: check_coupling_deterministic(name, options))]
