"""The benchmark grid: experiments to run, the axes they vary along, their single-task baselines.

A grid YAML (``config:`` paths are relative to the grid file; data and output paths inside
experiment configs stay relative to the working directory, as everywhere in mtdense)::

    name: interactions               # report: <report_dir>/<name>.md, .json, .png
    seeds: 5                         # count (seeds 0..N-1) or an explicit list
    reference: identity              # the plain multi-task variant (default: the first)
    report_dir: benchmarks/results
    profile: {threads: 1, latency_runs: 30, warmup: 5, rounds: 5, train_steps: 3}  # mtdense.bench.costs
    protocol: {trainer.max_epochs: 8, data.batch_size: 8}   # dotted overrides for every run
    prepare: [{type: synth_street, root: data/synthetic/street, n_train: 128, n_val: 32}]
    pairs:
      - name: street
        config: ../street/seg_depth.yaml
        data: synthetic              # synthetic | real (printed in the protocol)
        overrides: {}                # dotted overrides for this pair only
        prepare: []                  # hooks for this pair only
        baselines:                   # single-task models: the tasks each one keeps
          - {name: semantic, tasks: [semantic]}
          - {name: depth, tasks: [depth], overrides: {}}
        delta_m:
          per_task: {semantic: miou, depth: abs_rel}            # one metric per task
          per_metric: {semantic: [miou], depth: [abs_rel, rmse, delta1]}
        skip: null                   # a reason string: listed in the report, not run
        composites: []               # single-task baselines scored together (mtdense.bench.composite)
        rules: []                    # non-learned baselines, e.g. [{name: gpi, type: gpi, scored_as: gated}]
                                     # (mtdense.bench.rules: scored once, the same record for every seed)
    axes:                            # the cartesian product of all axes is run
      - key: model.interactions
        values:
          - {label: identity, value: [{type: identity, stages: all}]}
          - {label: cbim, value: [{type: cbim, stages: all}]}
      - values:                      # no key: each value sets several dotted keys
          - {label: gated, overrides: {}}
          - {label: ungated, overrides: {tasks.rain_rate.gate: null}}

A baseline config is the pair's config (with protocol and pair overrides, the variant's axis
values, then the baseline's own overrides) minus the other tasks, minus interaction modules
when one branch is left, minus couplings that name a removed task (all couplings when one
task is left), with a plain ``{type: fixed}`` balancer. Variants whose baselines come out
identical share them, so an interaction axis trains each baseline once, while e.g. a
backbone-width axis gets baselines of every width (same backbone, resolution and schedule,
as Δm requires); the first keeps the plain name ``baseline:<name>``, the others are named
``baseline:<name>@<variant>``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf, open_dict

from mtdense.config import load_config, plain, validate
from mtdense.errors import ConfigError, check_keys
from mtdense.registry import RULES

GRID_KEYS = ("name", "seeds", "report_dir", "reference", "profile", "protocol", "prepare", "pairs", "axes")
PAIR_KEYS = ("name", "config", "data", "overrides", "prepare", "baselines", "composites", "rules", "delta_m", "skip")
PROFILE_DEFAULTS = {"threads": None, "latency_runs": 30, "warmup": 5, "rounds": 5, "train_steps": 3}
BASELINE_PREFIX = "baseline:"
REFERENCE_KEYS = ("task", "tasks")  # option names by which a task refers to another task


@dataclass
class Baseline:
    name: str
    tasks: list[str]
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pair:
    name: str
    config: Path
    data: str
    overrides: dict[str, Any]
    prepare: list[dict]
    baselines: list[Baseline]
    per_task: dict[str, str]
    per_metric: dict[str, list[str]]
    skip: str | None
    #: composite baselines: {name, members: [baseline names], scored_as: variant label}
    composites: list[dict[str, Any]] = field(default_factory=list)
    #: non-learned rules: {name, scored_as: variant label or None (the first), rule: {type, **options}, where}
    rules: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Axis:
    key: str | None  # None: every value is a mapping of dotted overrides (a variant = several keys)
    values: list[tuple[str, Any]]  # (label, value)


@dataclass
class Run:
    """One training run of the bench: a (pair, variant, seed) with its full config."""

    pair: str
    variant: str
    seed: int
    kind: str  # "multitask" or "baseline"
    config: DictConfig
    tasks: list[str]
    baselines: list[str]  # baseline variants a multi-task run is compared with (Δm)
    labels: dict[str, str]  # axis key -> label of the value used

    @property
    def key(self) -> str:
        return run_key(self.pair, self.variant, self.seed)


def run_key(pair: str, variant: str, seed: int) -> str:
    return f"{pair}/{variant}/seed{seed}"


@dataclass
class Grid:
    name: str
    path: Path
    seeds: list[int]
    report_dir: Path
    profile: dict[str, Any]
    protocol: dict[str, Any]
    prepare: list[dict]
    pairs: list[Pair]
    axes: list[Axis]
    #: label of the plain multi-task variant the paired differences are taken against
    reference: str | None = None

    def active_pairs(self) -> list[Pair]:
        return [p for p in self.pairs if not p.skip]

    def runs(self, out: Path) -> list[Run]:
        """Every run, seed-major (all of seed 0 first, so a partial bench covers all variants)."""
        per_pair = [self._pair_runs(pair) for pair in self.active_pairs()]
        runs = []
        for seed in self.seeds:
            for pair, templates in zip(self.active_pairs(), per_pair):
                for t in templates:
                    cfg = copy.deepcopy(t.config)
                    key = run_key(pair.name, t.variant, seed)
                    with open_dict(cfg):
                        cfg.seed = seed
                        cfg.trainer.out_dir = str(out / "runs" / pair.name / _safe(t.variant) / f"seed{seed}")
                        cfg.meta.name = key
                    runs.append(Run(pair.name, t.variant, seed, t.kind, cfg, t.tasks, t.baselines, t.labels))
        return runs

    def composite_runs(self, out: Path) -> list["CompositeRun"]:
        """Every composite baseline (``mtdense.bench.composite``) of every active pair and seed."""
        from mtdense.bench.composite import CompositeRun

        runs = self.runs(out)
        found = []
        for pair in self.active_pairs():
            for comp in pair.composites:
                for seed in self.seeds:
                    scored = next((r for r in runs if r.pair == pair.name and r.variant == comp["scored_as"]
                                   and r.seed == seed), None)
                    if scored is None:
                        raise ConfigError(f"{self.path}: pairs.{pair.name}.composites.{comp['name']}.scored_as: "
                                          f"{comp['scored_as']!r} is not a variant of this grid")
                    members = {}
                    for name in comp["members"]:
                        variant = next((b for b in scored.baselines if b.split("@")[0] == f"{BASELINE_PREFIX}{name}"), None)
                        if variant is None:
                            raise ConfigError(f"{self.path}: pairs.{pair.name}.composites.{comp['name']}.members: "
                                              f"{name!r} is not a baseline of this pair")
                        members[variant] = out / "runs" / pair.name / _safe(variant) / f"seed{seed}"
                    found.append(CompositeRun(pair.name, comp["name"], seed, copy.deepcopy(scored.config), members,
                                              list(scored.tasks), list(scored.baselines)))
        return found

    def rule_runs(self, out: Path) -> list["RuleRun"]:
        """Every non-learned rule (``mtdense.bench.rules``) of every active pair, for all seeds."""
        from mtdense.bench.rules import RuleRun

        runs = self.runs(out)
        found = []
        for pair in self.active_pairs():
            for rule in pair.rules:
                scored = next(r for r in runs if r.pair == pair.name and r.variant == rule["scored_as"])
                found.append(RuleRun(pair.name, rule["name"], list(self.seeds), dict(rule["rule"]),
                                     copy.deepcopy(scored.config), list(scored.baselines), rule["where"]))
        return found

    def _pair_runs(self, pair: Pair) -> list[Run]:
        where = f"{self.path}: pairs.{pair.name}"
        common = load_config(pair.config)
        apply_overrides(common, self.protocol, f"{self.path}: protocol")
        apply_overrides(common, pair.overrides, f"{where}.overrides")
        variants = []
        # a keyless axis is named by its position: labels keep one string key per axis (stored as JSON)
        names = [axis.key or f"axes.{i}" for i, axis in enumerate(self.axes)]
        for combo in itertools.product(*[axis.values for axis in self.axes]):
            cfg = copy.deepcopy(common)
            for axis, name, (label, value) in zip(self.axes, names, combo):
                apply_overrides(cfg, value if axis.key is None else {axis.key: value}, f"{self.path}: {name}.{label}")
            label = "+".join(lbl for lbl, _ in combo) or "default"
            labels = {name: lbl for name, (lbl, _) in zip(names, combo)}
            variants.append((label, validate(cfg, where=f"{where} variant {label}"), labels))
        task_names = list(common.tasks)
        for task in list(pair.per_task) + list(pair.per_metric):
            if task not in task_names:
                raise ConfigError(f"{task!r} is not a task of {pair.config}; tasks: {', '.join(task_names)}", key=f"{where}.delta_m")

        baseline_runs: dict[tuple[str, str], Run] = {}  # (baseline name, fingerprint) -> run
        compared_with: list[list[tuple[str, str]]] = []  # per variant: its baselines' keys
        for label, cfg, _ in variants:
            keys = []
            for b in pair.baselines:
                bcfg = copy.deepcopy(cfg)
                apply_overrides(bcfg, b.overrides, f"{where}.baselines.{b.name}.overrides")
                bcfg = single_task_config(bcfg, b.tasks, f"{where}.baselines.{b.name}")
                bcfg = validate(bcfg, where=f"{where}.baselines.{b.name}")
                key = (b.name, fingerprint(bcfg))
                if key not in baseline_runs:
                    baseline_runs[key] = Run(pair.name, f"{BASELINE_PREFIX}{b.name}", 0, "baseline", bcfg,
                                             list(b.tasks), [], {})
                    if sum(1 for name, _ in baseline_runs if name == b.name) > 1:
                        # the axes change this baseline: name it after the variant that needs it
                        baseline_runs[key].variant += f"@{label}"
                keys.append(key)
            compared_with.append(keys)
        multitask_runs = [Run(pair.name, label, 0, "multitask", cfg, task_names,
                              [baseline_runs[k].variant for k in keys], labels)
                          for (label, cfg, labels), keys in zip(variants, compared_with)]
        return list(baseline_runs.values()) + multitask_runs


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+@-]", "_", label)


def apply_overrides(cfg: DictConfig, overrides: Mapping[str, Any], where: str) -> None:
    """Set dotted keys (``trainer.max_epochs``) to values; lists and mappings replace whole nodes."""
    for key, value in (overrides or {}).items():
        if not isinstance(key, str) or not key or key.startswith(".") or key.endswith("."):
            raise ConfigError(f"{key!r} is not a dotted config key such as trainer.max_epochs", key=where)
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value, merge=False, force_add=True)


def _mentions(node: Any, names: set[str], keys: tuple[str, ...] | None, path: str = "") -> list[str]:
    """Dotted paths in ``node`` whose string value is one of ``names`` (only values under an
    option named in ``keys`` when given, e.g. ``gate.task`` but not ``target``)."""
    found = []
    if isinstance(node, Mapping):
        for k, v in node.items():
            found += _mentions(v, names, None if keys is None or k in keys else keys, f"{path}.{k}")
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            found += _mentions(v, names, keys, f"{path}.{i}")
    elif keys is None and isinstance(node, str) and node in names:
        found.append(path)
    return found


def single_task_config(cfg: DictConfig, keep: list[str], where: str) -> DictConfig:
    """``cfg`` reduced to the tasks in ``keep`` (see the module docstring for the rules)."""
    tasks = list(cfg.tasks)
    unknown = [t for t in keep if t not in tasks]
    if not keep or unknown:
        raise ConfigError(f"{unknown or keep!r} must name tasks of the experiment; tasks: {', '.join(tasks)}", key=f"{where}.tasks")
    removed = set(tasks) - set(keep)
    out = copy.deepcopy(cfg)
    data = plain(out)
    data["tasks"] = {t: data["tasks"][t] for t in tasks if t in keep}
    for name, task in data["tasks"].items():
        refs = _mentions(task, removed, REFERENCE_KEYS, f"tasks.{name}")
        if refs:
            raise ConfigError(
                f"{where}: {refs[0]} refers to a removed task; give this baseline overrides that remove "
                f"the reference, e.g. overrides: {{{refs[0].rsplit('.', 1)[0]}: null}}"
            )
    model = data["model"]
    branches = model.get("branches")
    if branches:
        model["branches"] = {b: {**c, "tasks": [t for t in c.get("tasks", []) if t in keep]} for b, c in branches.items()}
        model["branches"] = {b: c for b, c in model["branches"].items() if c["tasks"]}
    if "heads" in model and model["heads"]:
        model["heads"] = {t: h for t, h in model["heads"].items() if t in keep}
    if len(model.get("branches") or keep) <= 1:
        model["interactions"] = []
    if len(keep) == 1:
        data["couplings"] = []
    else:
        data["couplings"] = [c for c in data.get("couplings") or [] if not _mentions(c, removed, None)]
    data["balancer"] = {"type": "fixed"}
    monitor = data["trainer"].get("monitor")
    if monitor and any(f"/{t}/" in monitor for t in removed):
        data["trainer"]["monitor"], data["trainer"]["monitor_mode"] = None, "min"  # val/loss
    return OmegaConf.create(data)


def fingerprint(cfg: DictConfig) -> str:
    """A hash of what determines a run's result apart from its seed and where it is written."""
    data = plain(cfg)
    data.pop("meta", None)
    data.pop("seed", None)
    data.get("trainer", {}).pop("out_dir", None)
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(data), sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- loading
def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"must be a mapping, got {type(value).__name__}", key=where)
    return value


def _list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"must be a list, got {type(value).__name__}", key=where)
    return value


def _load_pair(raw: Any, i: int, base: Path, src: str) -> Pair:
    where = f"{src}: pairs.{i}"
    raw = _mapping(raw, where)
    check_keys(raw, PAIR_KEYS, under=where)
    for req in ("name", "config"):
        if not raw.get(req):
            raise ConfigError("missing", key=f"{where}.{req}")
    name = str(raw["name"])
    where = f"{src}: pairs.{name}"
    baselines = []
    for j, b in enumerate(_list(raw.get("baselines"), f"{where}.baselines")):
        b = _mapping(b, f"{where}.baselines.{j}")
        check_keys(b, ("name", "tasks", "overrides"), under=f"{where}.baselines.{j}")
        tasks = b.get("tasks")
        if not b.get("name") or not isinstance(tasks, list) or not tasks:
            raise ConfigError("needs a name and a non-empty list of tasks to keep", key=f"{where}.baselines.{j}")
        baselines.append(Baseline(str(b["name"]), [str(t) for t in tasks], _mapping(b.get("overrides"), f"{where}.baselines.{j}.overrides")))
    delta = _mapping(raw.get("delta_m"), f"{where}.delta_m")
    check_keys(delta, ("per_task", "per_metric"), under=f"{where}.delta_m")
    per_task = {str(t): m for t, m in _mapping(delta.get("per_task"), f"{where}.delta_m.per_task").items()}
    for t, m in per_task.items():
        if not isinstance(m, str):
            raise ConfigError(f"one metric name per task (per-task Δm), got {m!r}", key=f"{where}.delta_m.per_task.{t}")
    per_metric = {str(t): [m] if isinstance(m, str) else list(m)
                  for t, m in _mapping(delta.get("per_metric"), f"{where}.delta_m.per_metric").items()}
    skip = raw.get("skip")
    if not skip:
        if not per_task or not per_metric:
            raise ConfigError("declare both per_task ({task: metric}) and per_metric ({task: [metrics]})", key=f"{where}.delta_m")
        for task in set(per_task) | set(per_metric):
            owners = [b.name for b in baselines if task in b.tasks]
            if len(owners) != 1:
                raise ConfigError(f"task {task!r} must be kept by exactly one baseline, found {owners or 'none'}", key=f"{where}.baselines")
    data = raw.get("data", "synthetic")
    if data not in ("synthetic", "real"):
        raise ConfigError(f"{data!r} is not one of synthetic, real", key=f"{where}.data")
    composites = []
    for j, c in enumerate(_list(raw.get("composites"), f"{where}.composites")):
        c = _mapping(c, f"{where}.composites.{j}")
        check_keys(c, ("name", "members", "scored_as"), under=f"{where}.composites.{j}")
        if not c.get("name") or not isinstance(c.get("members"), list) or len(c["members"]) < 2 or not c.get("scored_as"):
            raise ConfigError("needs a name, members (>= 2 baseline names) and scored_as (the variant whose tasks "
                              "score it)", key=f"{where}.composites.{j}")
        composites.append({"name": str(c["name"]), "members": [str(m) for m in c["members"]],
                           "scored_as": str(c["scored_as"])})
    rules = []
    for j, r in enumerate(_list(raw.get("rules"), f"{where}.rules")):
        r = dict(_mapping(r, f"{where}.rules.{j}"))
        rule_name, scored_as = r.pop("name", None), r.pop("scored_as", None)
        if not rule_name or "type" not in r:
            raise ConfigError("needs a name (its variant label) and a type (a registered rule; see "
                              "`mtdense registry list rule`); other keys are the rule's options", key=f"{where}.rules.{j}")
        RULES.get(str(r["type"]), f"{where}.rules.{j}.type")
        rules.append({"name": str(rule_name), "scored_as": None if scored_as is None else str(scored_as), "rule": r,
                      "where": f"{where}.rules.{j}"})
    return Pair(name, (base / str(raw["config"])).resolve(), data, _mapping(raw.get("overrides"), f"{where}.overrides"),
                _list(raw.get("prepare"), f"{where}.prepare"), baselines, per_task, per_metric, skip or None, composites,
                rules)


def load_grid(path: str | Path, seeds: int | None = None) -> Grid:
    """Read and check a grid YAML; ``seeds`` (a count) replaces the grid's seeds."""
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise ConfigError("grid file not found", key=src)
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    raw = _mapping(raw, src)
    check_keys(raw, GRID_KEYS, under=src)
    if not raw.get("name") or not re.fullmatch(r"[A-Za-z0-9_.-]+", str(raw["name"])):
        raise ConfigError("name: needs a file-name-safe name (letters, digits, _ . -)", key=src)
    seed_spec = seeds if seeds is not None else raw.get("seeds", 3)
    seed_list = list(range(seed_spec)) if isinstance(seed_spec, int) else seed_spec
    if not isinstance(seed_list, list) or not seed_list or not all(isinstance(s, int) for s in seed_list):
        raise ConfigError(f"seeds: {seed_spec!r} must be a positive count or a list of integer seeds", key=src)
    profile = dict(PROFILE_DEFAULTS)
    prof_raw = _mapping(raw.get("profile"), f"{src}: profile")
    check_keys(prof_raw, tuple(PROFILE_DEFAULTS), under=f"{src}: profile")
    profile.update(prof_raw)
    axes = []
    for i, a in enumerate(_list(raw.get("axes"), f"{src}: axes")):
        a = _mapping(a, f"{src}: axes.{i}")
        check_keys(a, ("key", "values"), under=f"{src}: axes.{i}")
        values = _list(a.get("values"), f"{src}: axes.{i}.values")
        if not values:
            raise ConfigError(f"axes.{i}: needs a dotted key and a non-empty list of values", key=src)
        parsed = []
        for j, v in enumerate(values):
            v = _mapping(v, f"{src}: axes.{i}.values.{j}")
            check_keys(v, ("label", "value", "overrides"), under=f"{src}: axes.{i}.values.{j}")
            label = v.get("label")
            if not label or not isinstance(label, str) or label.startswith(BASELINE_PREFIX) or "+" in label or "/" in label:
                raise ConfigError(f"{src}: axes.{i}.values.{j}.label: {label!r}; give a short label without '+', '/' "
                                  f"or the prefix {BASELINE_PREFIX!r}")
            if a.get("key"):
                if "value" not in v:
                    raise ConfigError(f"axes.{i}.values.{j}: missing value (use value: null to set null)", key=src)
                parsed.append((label, v["value"]))
            else:  # no key: each value is a set of dotted overrides
                parsed.append((label, _mapping(v.get("overrides"), f"{src}: axes.{i}.values.{j}.overrides")))
        if len({lbl for lbl, _ in parsed}) != len(parsed):
            raise ConfigError(f"axes.{i}: labels must be distinct", key=src)
        axes.append(Axis(str(a["key"]) if a.get("key") else None, parsed))
    pairs = [_load_pair(p, i, path.parent, src) for i, p in enumerate(_list(raw.get("pairs"), f"{src}: pairs"))]
    if not pairs:
        raise ConfigError("pairs: list at least one task pair", key=src)
    if len({p.name for p in pairs}) != len(pairs):
        raise ConfigError("pairs: names must be distinct", key=src)
    labels = ["+".join(c) for c in itertools.product(*[[lbl for lbl, _ in a.values] for a in axes])] or ["default"]
    variants = list(labels)
    for p in pairs:
        for r in p.rules:
            r["scored_as"] = r["scored_as"] or variants[0]
            if r["scored_as"] not in variants:
                raise ConfigError(f"{r['scored_as']!r} is not a variant of this grid; variants: {', '.join(variants)}",
                                  key=f"{r['where']}.scored_as")
        own = [c["name"] for c in p.composites] + [r["name"] for r in p.rules]
        for label in own:
            if label in variants or own.count(label) > 1 or label.startswith(BASELINE_PREFIX) or "/" in label:
                raise ConfigError(f"{label!r}: a composite or rule needs a name of its own (not a variant label, no "
                                  f"'/' or prefix {BASELINE_PREFIX!r})", key=f"{src}: pairs.{p.name}")
        labels += [label for label in own if label not in labels]
    reference = raw.get("reference", labels[0])
    if reference not in labels:
        raise ConfigError(f"{reference!r} is not a variant of this grid; variants: {', '.join(labels)}",
                          key=f"{src}: reference")
    return Grid(str(raw["name"]), path, seed_list, Path(raw.get("report_dir", "benchmarks/results")), profile,
                _mapping(raw.get("protocol"), f"{src}: protocol"), _list(raw.get("prepare"), f"{src}: prepare"), pairs, axes,
                reference)

