"""Conformance of interaction modules.

An interaction module is built as ``INTERACTIONS.build({"type": name, **options},
channels={task: width})`` and maps a dict of B×C_t×H×W features to a dict with the same keys,
shapes and dtypes. ``interaction_checks`` runs: 2 and 3 branches and unequal widths at two
batch/sizes (contract, backward, no dead parameters), one branch is an exact no-op, outputs
depend on the other branches, state-dict round trip, fixed-seed determinism, bf16 autocast,
ONNX export matching onnxruntime, and an unknown option named by its full key.

Class attributes a module may declare (all optional):
- ``pairwise_only = True``: the module only supports 2 branches and must raise ConfigError
  for 3 (the 3-branch checks are then replaced by that check);
- ``mixes_tasks = False``: outputs deliberately do not depend on other branches (identity);
- ``onnx_exportable = False`` together with ``onnx_unsupported_reason = "..."``.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from mtdense.registry import INTERACTIONS
from mtdense.errors import ConfigError

Feats = dict[str, torch.Tensor]


TWO = {"a": 8, "b": 8}
THREE = {"a": 8, "b": 8, "c": 8}
UNEQUAL = {"a": 8, "b": 5, "c": 3}


def build(name: str, channels: dict[str, int], seed: int = 0, **options) -> nn.Module:
    """Build ``name`` through the registry (as the config path does) with a fixed seed."""
    torch.manual_seed(seed)
    return INTERACTIONS.build({"type": name, **options}, path=f"test.{name}", channels=channels)


def make_feats(channels: dict[str, int], batch: int = 2, height: int = 8, width: int = 12, seed: int = 0) -> Feats:
    """Synthetic features: standard normal, one tensor per task, shared batch and size."""
    gen = torch.Generator().manual_seed(seed)
    return {t: torch.randn(batch, c, height, width, generator=gen) for t, c in channels.items()}


def supports_tasks(name: str, count: int) -> bool:
    return count <= 2 or not getattr(INTERACTIONS.get(name), "pairwise_only", False)


def check_contract(module: nn.Module, feats: Feats) -> Feats:
    """Same keys, shapes and dtypes out as in; all values finite."""
    out = module(feats)
    assert set(out) == set(feats), f"keys {sorted(out)} != {sorted(feats)}"
    for t, x in feats.items():
        assert out[t].shape == x.shape, f"{t}: shape {tuple(out[t].shape)} != {tuple(x.shape)}"
        assert out[t].dtype == x.dtype, f"{t}: dtype {out[t].dtype} != {x.dtype}"
        assert torch.isfinite(out[t]).all(), f"{t}: non-finite output"
    return out


def check_single_branch_is_noop(name: str, width: int = 8, **options) -> None:
    """With one key there is nothing to interact with: exact identity, no parameters."""
    module = build(name, {"only": width}, **options)
    feats = make_feats({"only": width})
    out = module(feats)
    assert torch.equal(out["only"], feats["only"])
    assert sum(p.numel() for p in module.parameters()) == 0


def check_rejects_three_branches(name: str, **options) -> None:
    """A ``pairwise_only`` module refuses 3 branches with a ConfigError that says so."""
    try:
        build(name, THREE, **options)
    except ConfigError as exc:
        assert "pairwise" in str(exc), f"the error for 3 branches should say 'pairwise': {exc}"
    else:
        raise AssertionError("pairwise_only module accepted 3 branches")


def randomize_parameters(module: nn.Module, seed: int = 1, std: float = 0.5) -> None:
    """Overwrite every parameter with N(0, std²) so zero-initialised ones (γ) become active."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)


def _weighted_loss(out: Feats, seed: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return sum((y.float() * torch.randn(y.shape, generator=gen)).sum() for y in out.values())


def check_backward(module: nn.Module, feats: Feats) -> None:
    """Training-mode backward: every input and every parameter gets a finite gradient."""
    module.train()
    inputs = {t: x.clone().requires_grad_(True) for t, x in feats.items()}
    _weighted_loss(module(inputs)).backward()
    for t, x in inputs.items():
        assert x.grad is not None and torch.isfinite(x.grad).all(), f"input {t}: no finite gradient"
    for n, p in module.named_parameters():
        assert p.grad is not None, f"parameter {n} got no gradient"
        assert torch.isfinite(p.grad).all(), f"parameter {n}: non-finite gradient"


def check_no_dead_parameters(module: nn.Module, feats: Feats) -> None:
    """After random re-initialisation every parameter gets a non-zero gradient."""
    if not list(module.parameters()):
        return
    randomize_parameters(module)
    module.train()
    module.zero_grad(set_to_none=True)
    _weighted_loss(module(feats)).backward()
    dead = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient signal: {dead}"


def check_mixes_tasks(module: nn.Module, feats: Feats) -> None:
    """Perturbing branch s changes every other branch's output (after randomising params)."""
    randomize_parameters(module)
    module.eval()
    with torch.no_grad():
        base = module(feats)
        for s in feats:
            perturbed = dict(feats)
            perturbed[s] = feats[s] + torch.randn_like(feats[s])
            out = module(perturbed)
            for t in feats:
                if t != s:
                    change = (out[t] - base[t]).abs().max().item()
                    assert change > 1e-4, f"output {t!r} does not depend on input {s!r} (max change {change:g})"


def check_state_dict_round_trip(name: str, channels: dict[str, int], feats: Feats, **options) -> None:
    """Train-mode step (updates BN statistics), then load into a differently seeded twin."""
    source = build(name, channels, seed=0, **options)
    randomize_parameters(source)
    source.train()
    with torch.no_grad():
        source(feats)
    target = build(name, channels, seed=123, **options)
    target.load_state_dict(source.state_dict())
    source.eval()
    target.eval()
    with torch.no_grad():
        a, b = source(feats), target(feats)
    for t in feats:
        assert torch.equal(a[t], b[t]), f"{t}: outputs differ after state_dict round trip"


def check_deterministic(name: str, channels: dict[str, int], feats: Feats, **options) -> None:
    outs = []
    for _ in range(2):
        module = build(name, channels, seed=7, **options)
        module.train()
        outs.append(module(feats))
    for t in feats:
        assert torch.equal(outs[0][t], outs[1][t]), f"{t}: same seed gave different outputs"


def check_bf16_autocast(module: nn.Module, feats: Feats) -> None:
    """Runs under CPU bf16 autocast with float32 and with bf16 inputs; finite, dtype kept."""
    randomize_parameters(module)
    module.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        check_contract(module, feats)
        check_contract(module, {t: x.bfloat16() for t, x in feats.items()})


class _PositionalWrapper(nn.Module):
    """ONNX takes positional tensors: feed them as a dict, return a tuple in key order."""

    def __init__(self, module: nn.Module, names: list[str]):
        super().__init__()
        self.module = module
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.module(dict(zip(self.names, tensors)))
        return tuple(out[n] for n in self.names)


def check_onnx_export(module: nn.Module, feats: Feats) -> None:
    """Export with the TorchScript exporter (opset 17, dynamic batch and size); onnxruntime
    must match PyTorch on the export inputs and on inputs of another batch and size.

    ``dynamo=False``: the torch.export-based default exporter needs the onnxscript package.
    """
    import onnxruntime

    randomize_parameters(module)
    names = list(feats)
    wrapper = _PositionalWrapper(module, names).eval()  # export restores the wrapper's mode
    dynamic = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        torch.onnx.export(
            wrapper, tuple(feats[n] for n in names), buffer, opset_version=17, dynamo=False,
            input_names=[f"in_{n}" for n in names], output_names=[f"out_{n}" for n in names],
            dynamic_axes={f"{p}_{n}": dynamic for n in names for p in ("in", "out")},
        )
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    other = make_feats({n: x.shape[1] for n, x in feats.items()}, batch=2, height=9, width=7, seed=5)
    for inputs in (feats, other):
        got = session.run([f"out_{n}" for n in names], {f"in_{n}": inputs[n].numpy() for n in names})
        with torch.no_grad():
            expected = wrapper(*(inputs[n] for n in names))
        for n, g, e in zip(names, got, expected):
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-4, atol=1e-5, err_msg=f"ONNX output {n}")


def check_unknown_option_is_named(name: str) -> None:
    try:
        build(name, TWO, kernal_size=3)
    except ConfigError as exc:
        assert str(exc).startswith(f"test.{name}.kernal_size: unknown option"), f"unexpected message: {exc}"
    else:
        raise AssertionError("an unknown option 'kernal_size' was accepted")


def check_forward_backward(name: str, channels: dict[str, int], shape: tuple[int, int, int], **options) -> None:
    feats = make_feats(channels, *shape)
    module = build(name, channels, **options)
    check_contract(module, feats)
    check_backward(module, feats)
    check_no_dead_parameters(module, feats)


def interaction_checks(name: str, options: dict, workdir) -> list:
    cls = INTERACTIONS.get(name)
    widest = UNEQUAL if supports_tasks(name, 3) else TWO
    checks = []
    for label, channels in (("2 tasks", TWO), ("3 tasks", THREE), ("unequal widths", UNEQUAL)):
        if not supports_tasks(name, len(channels)):
            checks.append((f"{label} refused (pairwise only)", lambda: check_rejects_three_branches(name, **options)))
            continue
        for shape in ((1, 8, 12), (2, 6, 10)):
            checks.append((f"{label}, batch/size {shape}",
                           lambda c=channels, s=shape: check_forward_backward(name, c, s, **options)))
    checks.append(("one branch is a no-op", lambda: check_single_branch_is_noop(name, **options)))
    if getattr(cls, "mixes_tasks", True):
        checks += [(f"mixes tasks ({label})", lambda c=c: check_mixes_tasks(build(name, c, **options), make_feats(c)))
                   for label, c in (("2 tasks", TWO), ("unequal widths", UNEQUAL)) if supports_tasks(name, len(c))]
    checks += [
        ("state dict round trip", lambda: check_state_dict_round_trip(name, widest, make_feats(widest), **options)),
        ("fixed seed is deterministic", lambda: check_deterministic(name, TWO, make_feats(TWO), **options)),
        ("bf16 autocast", lambda: check_bf16_autocast(build(name, widest, **options), make_feats(widest, 2, 6, 10))),
        ("unknown option is a one-line ConfigError", lambda: check_unknown_option_is_named(name)),
    ]
    if getattr(cls, "onnx_exportable", True):
        checks.append(("ONNX export", lambda: check_onnx_export(build(name, widest, **options),
                                                                make_feats(widest, 1, 6, 10))))
    else:
        checks.append(("onnx_unsupported_reason given", lambda: _assert_reason(cls)))
    return checks


def _assert_reason(cls) -> None:
    assert getattr(cls, "onnx_unsupported_reason", ""), "onnx_exportable = False needs onnx_unsupported_reason"
