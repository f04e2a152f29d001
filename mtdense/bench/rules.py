"""Non-learned baselines: a registered rule (kind ``rule``) scored like a variant of the grid.

A rule maps a batch of input images, in the units of the raw data, to estimates of targets
(e.g. the GOES Precipitation Index: window-band brightness temperature < 235 K → 3 mm/h; the
precipitation domain registers it as ``gpi``). Nothing is trained. A grid lists rules per pair::

    rules:
      - {name: gpi, type: gpi, scored_as: gated, band: B13}   # name, scored_as: the bench's; the rest: the rule's

Contract of the kind (checked by ``mtdense.testing.rules``): built with the runtime argument
``channel_names`` (the input channels, in order) if it takes it; ``targets``, the target keys
it estimates; ``rule(image) -> {target: B×H×W}`` for a B×C×H×W float image in raw units,
deterministic, sample by sample, without learned parameters; a one-line docstring citing its
source.

Scoring: the rule is built and checked before any run of the bench; it predicts the evaluation
split (``test``, ``val`` when the config has none) of the variant named by ``scored_as`` (default:
the grid's first variant), images given back their raw units with the dataset's
``normalization`` and inputs that are not finite masked as in ``mtdense.engine.evaluator``.
Every task of that variant whose ``target`` the rule estimates is scored with its own metrics,
its prediction read from the estimate exactly as its label is read from the target
(``task.target_from``: a threshold classification takes the classes of the estimated rain rate,
a regression the value). The rule is deterministic, so it is scored ONCE and the same record is
stored for every seed of the grid (``kind: rule``, 0 parameters, no training): its Δm against
the single-task baselines of each seed and its paired differences against the reference are
then taken seed by seed like any variant's, and their spread is the learned side's alone.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from omegaconf import DictConfig, open_dict

from mtdense.bench.grid import fingerprint
from mtdense.data.normalization import dataset_normalization, denormalize
from mtdense.engine.builder import bind_tasks, build_dataset, build_tasks, make_loader
from mtdense.engine.evaluator import finite_inputs
from mtdense.errors import ConfigError
from mtdense.registry import RULES


@dataclass
class RuleRun:
    pair: str
    variant: str  # the rule entry's name
    seeds: list[int]
    rule: dict[str, Any]  # {type, **options}
    config: DictConfig  # the ``scored_as`` variant's config (tasks, data)
    baselines: list[str]
    where: str  # "<grid>: pairs.<pair>.rules.<index>", for errors

    def key(self, seed: int) -> str:
        return f"{self.pair}/{self.variant}/seed{seed}"


def rule_fingerprint(run: RuleRun) -> str:
    """What determines the rule's record: its options and the scored variant's config."""
    cfg = copy.deepcopy(run.config)
    with open_dict(cfg):
        cfg.rule = run.rule
    return fingerprint(cfg)


def citation(name: str) -> str:
    """The first line of the registered rule's docstring (its source)."""
    return (inspect.getdoc(RULES.get(name)) or "").partition("\n")[0]


def scored_tasks(run: RuleRun, rule: Any, tasks: Mapping[str, Any]) -> list[str]:
    """The tasks of ``scored_as`` whose target the rule estimates; an error when there is none."""
    names = [name for name, task in tasks.items() if task.target in rule.targets]
    if not names:
        raise ConfigError(f"the rule estimates {', '.join(rule.targets)} but no task of the scored variant reads it; "
                          f"tasks (targets): {', '.join(f'{n} ({t.target})' for n, t in tasks.items())}", key=run.where)
    return names


@dataclass
class PreparedRule:
    rule: Any
    split: str
    dataset: Any
    tasks: Any  # the scored variant's tasks (nn.ModuleDict)
    names: list[str]  # the tasks the rule is scored on


def prepare_rule(run: RuleRun) -> PreparedRule:
    """Build the rule against the evaluation split and find the tasks it is scored on; a
    one-line ``ConfigError`` naming the grid key for an unknown type or a bad option."""
    cfg = copy.deepcopy(run.config)
    split = "test" if "test" in cfg.data and cfg.data.test is not None else "val"
    dataset = build_dataset(cfg, split)
    channels = list(getattr(dataset, "channel_names", None) or [])
    rule = RULES.build(run.rule, run.where, channel_names=channels)
    tasks = build_tasks(cfg)
    bind_tasks(tasks, getattr(dataset, "target_keys", None))
    return PreparedRule(rule, split, dataset, tasks, scored_tasks(run, rule, tasks))


@torch.no_grad()
def evaluate_rule(run: RuleRun) -> dict[str, Any]:
    """Score the rule once on the evaluation split; returns its record (without seed and key)."""
    p = prepare_rule(run)
    norm = dataset_normalization(p.dataset, int(p.dataset[0]["image"].shape[0]))
    metrics = {name: p.tasks[name].build_metrics() for name in p.names}
    for batch in make_loader(run.config, p.dataset, p.split, shuffle=False):
        batch, _ = finite_inputs(batch)
        estimates = rule_estimates(p.rule, denormalize(batch["image"], norm), run.where)
        ones = {k: torch.ones(v.shape, dtype=torch.bool) for k, v in estimates.items()}
        for name in p.names:
            task = p.tasks[name]
            pred, _ = task.target_from({"targets": estimates, "valid": ones})
            target, valid = task.target_from(batch)
            for metric in metrics[name]:
                metric.update(pred, target, valid)
    scores = {name: {k: float(v) for m in ms for k, v in m.compute().items()} for name, ms in metrics.items()}
    return {"pair": run.pair, "variant": run.variant, "kind": "rule", "tasks": p.names, "baselines": run.baselines,
            "labels": {}, "rule": dict(run.rule), "citation": citation(run.rule["type"]), "deterministic": True,
            "metrics": scores, "scored_split": p.split, "params": 0, "flops_per_image": None,
            "train_seconds": 0.0, "train_cpu_seconds": 0.0, "resumed_from_step": 0,
            "protocol": {}, "curve": [], "plateau": None, "machine": None, "run_dir": None}


def rule_estimates(rule: Any, image: torch.Tensor, where: str) -> dict[str, torch.Tensor]:
    """``rule(image)``, checked: every declared target, each B×H×W."""
    out = rule(image)
    shape = (image.shape[0], *image.shape[-2:])
    for target in rule.targets:
        if target not in out or tuple(out[target].shape) != shape:
            got = tuple(out[target].shape) if target in out else "nothing"
            raise ConfigError(f"the rule returned {got} for target {target!r}, expected a {shape} tensor "
                              "(run mtdense.testing.check_plugin('rule', ...))", key=where)
    return out
