"""Conformance of non-learned rules (kind ``rule``, scored by ``mtdense bench``: ``mtdense.bench.rules``).

A rule is built with the runtime argument ``channel_names`` if it takes it (the kit passes
``channel_names`` from ``conformance_kwargs``, else ``ch0, ch1, ch2``) and fed float images in
raw units, drawn uniformly from 0–400 (covering reflectances, 8-bit counts and brightness
temperatures in kelvin). Checked: ``targets`` names what it estimates and ``rule(image)`` returns
exactly those, each a finite B×H×W tensor, at any image size; repeated calls give the same
estimates and each sample's estimate does not depend on the rest of the batch; it has no
trainable parameters and leaves its input unchanged; its docstring's first line cites a source
(with its year).
"""

from __future__ import annotations

import inspect
import re

import torch
from torch import nn

from mtdense.registry import RULES

CHANNELS = ["ch0", "ch1", "ch2"]
RAW_RANGE = 400.0
SIZES = ((3, 16, 24), (2, 7, 9))  # (batch, height, width): even and odd


def _build(name: str, options: dict):
    options = dict(options)
    channels = list(options.pop("channel_names", CHANNELS))
    return RULES.build({"type": name, **options}, "rules.0", channel_names=channels), len(channels)


def _image(batch: int, channels: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return RAW_RANGE * torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))


def check_estimates(name: str, options: dict) -> None:
    rule, channels = _build(name, options)
    targets = getattr(rule, "targets", None)
    assert isinstance(targets, (tuple, list)) and targets and all(isinstance(t, str) for t in targets), \
        f"`targets` must list the target keys the rule estimates, got {targets!r}"
    for b, h, w in SIZES:
        out = rule(_image(b, channels, h, w))
        assert isinstance(out, dict) and set(out) == set(targets), \
            f"returned {sorted(out) if isinstance(out, dict) else type(out).__name__}, expected {sorted(targets)}"
        for key, value in out.items():
            assert isinstance(value, torch.Tensor) and tuple(value.shape) == (b, h, w), \
                f"{key}: shape {tuple(getattr(value, 'shape', ()))}, expected B×H×W = {(b, h, w)}"
            assert torch.isfinite(value.float()).all(), f"{key}: non-finite estimate"


def check_deterministic_per_sample(name: str, options: dict) -> None:
    rule, channels = _build(name, options)
    image = _image(3, channels, 16, 24)
    out, again = rule(image), rule(image)
    assert all(torch.equal(out[k], again[k]) for k in out), "two calls on the same images differ"
    for i in range(image.shape[0]):
        alone = rule(image[i:i + 1])
        assert all(torch.equal(alone[k][0], out[k][i]) for k in out), \
            f"sample {i} alone gives another estimate than within the batch"


def check_non_learned(name: str, options: dict) -> None:
    rule, channels = _build(name, options)
    if isinstance(rule, nn.Module):
        trainable = sum(p.numel() for p in rule.parameters() if p.requires_grad)
        assert trainable == 0, f"{trainable} trainable parameters: a rule is not learned"
    image = _image(2, channels, 8, 8)
    before = image.clone()
    rule(image)
    assert torch.equal(image, before), "the rule changed its input image"
    doc = (inspect.getdoc(RULES.get(name)) or "").partition("\n")[0]
    assert re.search(r"\b(1[89]|20)\d\d\b", doc), \
        f"the docstring's first line must cite the rule's source (author and year), got {doc!r}"


def rule_checks(name: str, options: dict, workdir) -> list:
    return [("estimates every declared target, B×H×W, finite", lambda: check_estimates(name, options)),
            ("deterministic, sample by sample", lambda: check_deterministic_per_sample(name, options)),
            ("non-learned, input unchanged, source cited", lambda: check_non_learned(name, options))]
