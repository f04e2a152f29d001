"""Experiment configuration: OmegaConf YAML, a one-level ``defaults:`` list, dotlist overrides.

An experiment file may start with ``defaults: [relative/path.yaml, ...]``; those files are
merged in order, then the experiment file itself, then command-line overrides such as
``trainer.max_epochs=5`` or ``model.interactions.0.kernel_size=3`` (list elements by index).
There is no deeper inheritance and no ``_delete_``: what you read is what runs. A later file or
override that changes a component's ``type`` replaces that component: the options written for
the old type are dropped, not passed to the new one. ``validate`` checks the structure, types
and ranges of the engine's own sections and reports problems with their key path.
Relative data paths (``path``, ``root``, ``*_path``, ``*_dir``) are made absolute when a config
is loaded, so a saved run evaluates from any directory.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mtdense.errors import ConfigError, check_keys, closest
from mtdense.options import Option

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The shipped experiment configs (package data; ``configs/`` in a clone points here)."""

SECTIONS = ("data", "model", "tasks", "couplings", "balancer", "teachers", "hooks", "trainer", "logging", "seed", "meta")
SPLITS = ("train", "val", "test")
"""The dataset splits a ``data:`` section may hold, in the order a run uses them."""

# Keys the engine reads from each fixed section: default, type and range. Plugin sections
# (anything with ``type:``) are checked against the plugin's signature when built instead.
TRAINER_OPTIONS: dict[str, Option] = {
    "max_epochs": Option(10, "int", minimum=1),
    "optimizer": Option("adamw", "str", choices=("adamw", "sgd")),
    "lr": Option(1e-3, "float", above=0),
    "weight_decay": Option(1e-4, "float", minimum=0),
    "momentum": Option(0.9, "float", minimum=0, below=1),  # sgd only
    "nesterov": Option(False, "bool"),  # sgd only
    "schedule": Option("cosine", "str", choices=("cosine", "poly", "constant")),
    "poly_power": Option(0.9, "float", above=0),
    "warmup_steps": Option(0, "int", minimum=0),
    "min_lr_ratio": Option(0.0, "float", minimum=0, maximum=1),
    "accumulate": Option(1, "int", minimum=1),
    "grad_clip": Option(None, "float", above=0, nullable=True, hint="null turns clipping off"),
    # auto: bf16 autocast where the hardware has bf16 (CUDA, CPUs with AVX512-BF16/AMX), fp16 + GradScaler
    # on CUDA without bf16, fp32 elsewhere (mtdense.engine.runtime.resolve_precision)
    # fp32 stays the default until paired seeds show auto keeps the flagship's accuracy (issue 10 §5)
    "precision": Option("auto", "str", choices=("auto", "fp32", "bf16", "fp16")),
    "channels_last": Option("auto", "choice", choices=("auto", True, False)),  # auto: CPU, or CUDA with autocast
    "compile": Option(False, "bool"),
    "deterministic": Option(True, "bool"),
    "out_dir": Option("runs/${meta.name}", "str"),
    "checkpoint_every_steps": Option(0, "int", minimum=0, hint="0 saves at the end of each epoch only"),
    "keep_checkpoints": Option(2, "int", minimum=1),
    "eval_every_epochs": Option(1, "int", minimum=1),
    "monitor": Option(None, "str", nullable=True),  # e.g. "val/loss" (min) or "val/rain_rate/rmse"; None = val/loss
    "monitor_mode": Option("min", "str", choices=("min", "max")),
    "device": Option("auto", "str", choices=("auto", "cpu", "cuda")),
    "log_every_steps": Option(10, "int", minimum=1),
    "max_steps_per_epoch": Option(None, "int", minimum=1, nullable=True, hint="null runs whole epochs"),
    "ddp_timeout_minutes": Option(10.0, "float", above=0),  # how long DDP collectives wait for a stalled rank
    "eval_model": Option("student", "str"),  # student | teacher:<name> (a teacher of the ``teachers`` section)
}
DATA_OPTIONS: dict[str, Option] = {
    "batch_size": Option(8, "int", minimum=1),
    "num_workers": Option(0, "int", minimum=0),
    "eval_batch_size": Option(None, "int", minimum=1, nullable=True),
    "batch_transforms": Option([], "list"),  # [{type: ...}] applied to training batches (BATCH_TRANSFORMS)
}
SEED = Option(0, "int", minimum=0)
TRAINER_DEFAULTS = {k: o.default for k, o in TRAINER_OPTIONS.items()}
DATA_DEFAULTS = {k: o.default for k, o in DATA_OPTIONS.items()}
PATH_KEYS = ("path", "root")
PATH_SUFFIXES = ("_path", "_dir", "_root")


def _load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml.YAMLError and friends
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: top level must be a mapping of sections ({', '.join(SECTIONS)})")
    return OmegaConf.to_container(cfg, resolve=False)


def find_config(path: str | Path) -> Path:
    """``path`` itself if it exists, else the shipped config of that name (``precip/mtcf.yaml``
    or ``configs/precip/mtcf.yaml`` work from any directory)."""
    path = Path(path)
    if path.is_file():
        return path
    parts = path.parts[1:] if path.parts and path.parts[0] == "configs" else path.parts
    shipped = CONFIG_DIR.joinpath(*parts) if parts else CONFIG_DIR
    return shipped if shipped.is_file() else path


def merge(base: Any, new: Any) -> Any:
    """``new`` merged into ``base`` (plain containers): mappings merge key by key, anything else
    (lists, values) replaces; a mapping whose ``type`` differs from ``base``'s replaces it whole."""
    if not (isinstance(base, dict) and isinstance(new, dict)) or switches_type(base, new):
        return copy.deepcopy(new)
    out = dict(base)
    for key, value in new.items():
        out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def switches_type(old: Mapping, new: Mapping) -> bool:
    return "type" in new and "type" in old and old["type"] != new["type"]


def parse_override(item: str) -> tuple[str, Any]:
    """``"trainer.lr=0.01"`` → ``("trainer.lr", 0.01)``; the value is read as YAML."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or key.startswith(".") or key.endswith(".") or ".." in key:
        raise ConfigError(f"override {item!r}: expected key=value, e.g. trainer.max_epochs=5")
    try:
        value = OmegaConf.to_container(OmegaConf.from_dotlist([f"value={text}"]), resolve=False)["value"]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot read the value {text!r}: {exc}".replace("\n", " "), key=key) from exc
    return key, value


def set_key(data: dict, key: str, value: Any) -> None:
    """Set dotted ``key`` (list elements by index: ``model.interactions.0.kernel_size``) in the
    plain container ``data``. Setting ``x.type`` to another type drops the options of ``x``; a
    mapping or a plain name given for a component of another type replaces it."""
    *parents, last = key.split(".")
    node: Any = data
    for depth, part in enumerate(parents):
        here = ".".join(parents[: depth + 1])
        if isinstance(node, list):
            node = node[_index(node, part, here)]
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"is a value ({node!r}), not a section; cannot set {key}", key=here)
    if isinstance(node, list):
        node[_index(node, last, key)] = value
    elif last == "type" and switches_type(node, {"type": value}):
        node.clear()
        node["type"] = value
    else:
        node[last] = merge(node[last], value) if isinstance(node.get(last), dict) else copy.deepcopy(value)


def _index(items: list, part: str, key: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(items) <= int(part) < len(items):
        raise ConfigError(f"no element {part!r}; this list has {len(items)} element(s), indexed from 0", key=key)
    return int(part)


def apply_overrides(cfg: DictConfig | Mapping, overrides: Iterable[str]) -> DictConfig:
    """A copy of ``cfg`` with dotlist ``overrides`` applied; ``type`` switches are applied first,
    so ``model.backbone.name=resnet18 model.backbone.type=timm`` keeps the name."""
    data = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else copy.deepcopy(dict(cfg))
    items = [parse_override(item) for item in overrides]
    for key, value in sorted(items, key=lambda kv: not kv[0].endswith(".type")):  # stable: switches first
        set_key(data, key, value)
    return OmegaConf.create(data)


def resolve_data_paths(cfg: DictConfig, base: Path | None = None) -> None:
    """Make relative data paths of every split absolute (against ``base``, default: the current
    directory), so that a saved run's config works wherever ``evaluate`` is run from."""
    base = Path.cwd() if base is None else base
    for split in SPLITS:
        section = cfg.data.get(split)
        if isinstance(section, DictConfig):
            for key in list(section.keys()):
                if _is_path_key(str(key)) and not OmegaConf.is_interpolation(section, key) \
                        and isinstance(section[key], str):
                    path = Path(section[key]).expanduser()
                    section[key] = str(path if path.is_absolute() else (base / path).resolve())


def _is_path_key(key: str) -> bool:
    return key in PATH_KEYS or key.endswith(PATH_SUFFIXES)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> DictConfig:
    """Load ``path`` with its ``defaults:`` list and apply dotlist ``overrides``; validate."""
    path = find_config(path)
    own = _load_yaml(path)
    defaults = own.pop("defaults", [])
    if not isinstance(defaults, list):
        raise ConfigError(f"{path}: defaults: must be a list of YAML paths relative to this file")
    merged: dict = {}
    for entry in defaults:
        base = _load_yaml((path.parent / str(entry)).resolve())
        if "defaults" in base:
            raise ConfigError(
                f"{path.parent / str(entry)}: defaults: only one level of defaults is supported; "
                "merge that file's defaults into the experiment instead"
            )
        merged = merge(merged, base)
    cfg = apply_overrides(merge(merged, own), overrides)
    cfg.setdefault("meta", {})
    cfg.meta.setdefault("name", path.stem)
    cfg.meta.setdefault("config_path", str(path))
    cfg = validate(cfg)
    resolve_data_paths(cfg)
    return cfg


def from_dict(data: Mapping[str, Any]) -> DictConfig:
    """Build and validate a config from a plain mapping (tests, programmatic use)."""
    cfg = OmegaConf.create(dict(data))
    cfg.setdefault("meta", {})
    cfg.meta.setdefault("name", "experiment")
    cfg = validate(cfg)
    resolve_data_paths(cfg)
    return cfg


def _check_section(cfg: DictConfig, name: str, options: Mapping[str, Option], fixed: Mapping) -> None:
    """Unknown keys, then each option's type and range; defaults filled in."""
    check_keys(fixed, options, under=name)
    for key, option in options.items():
        cfg[name].setdefault(key, option.default)
        option.check(_value(cfg, f"{name}.{key}"), f"{name}.{key}")


def _value(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot resolve: {exc}".replace("\n", " "), key=key) from exc


def validate(cfg: DictConfig, where: str | None = None) -> DictConfig:
    """Fill engine defaults and check the fixed structure, types and ranges, naming key paths;
    ``where`` (e.g. a bench grid's variant) is added to an error as ``(in …)``."""
    try:
        return _validate(cfg)
    except ConfigError as exc:
        if where is None:
            raise
        raise type(exc)(f"{exc.message} (in {where})", key=exc.key) from None


def _validate(cfg: DictConfig) -> DictConfig:
    for key in cfg:
        if key not in SECTIONS:
            raise ConfigError(f"unknown top-level section{closest(key, SECTIONS)}; accepted: {', '.join(SECTIONS)}",
                              key=str(key))
    for required in ("data", "model", "tasks"):
        if not isinstance(cfg.get(required), DictConfig):
            raise ConfigError("missing section (a mapping)", key=required)
    cfg.setdefault("seed", SEED.default)
    SEED.check(_value(cfg, "seed"), "seed")
    cfg.setdefault("couplings", [])
    cfg.setdefault("balancer", {"type": "fixed"})
    cfg.setdefault("teachers", {})
    cfg.setdefault("hooks", [])
    cfg.setdefault("logging", {"loggers": [{"type": "console"}, {"type": "csv"}]})
    if cfg.get("trainer") is None:
        cfg.trainer = {}
    if not isinstance(cfg.trainer, DictConfig):
        raise ConfigError("must be a mapping of trainer options", key="trainer")
    _check_section(cfg, "trainer", TRAINER_OPTIONS, cfg.trainer)
    _check_section(cfg, "data", DATA_OPTIONS, {k: v for k, v in cfg.data.items() if k not in SPLITS})
    if cfg.data.get("train") is None:
        raise ConfigError("missing; give a dataset, e.g. data.train: {type: ..., split: train}", key="data.train")
    for split in SPLITS:
        section = cfg.data.get(split)
        if section is not None and not (isinstance(section, DictConfig) and "type" in section):
            raise ConfigError("needs a dataset with a 'type' (see `mtdense registry list dataset`) or null",
                              key=f"data.{split}")
    if not isinstance(cfg.tasks, DictConfig) or len(cfg.tasks) == 0:
        raise ConfigError("must map task names to task definitions (with 'type')", key="tasks")
    for name, task in cfg.tasks.items():
        if not isinstance(task, DictConfig) or "type" not in task:
            raise ConfigError("needs a 'type' (see `mtdense registry list task`)", key=f"tasks.{name}")
    return cfg


def config_changes(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for every leaf that differs between two plain configs
    (``meta`` is ignored: it records where a config came from, not what runs)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if path == "meta":
                continue
            out += config_changes(old.get(key), new.get(key), path)
        return out
    return [] if old == new else [(prefix, old, new)]


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def plain(node: Any) -> Any:
    """A resolved plain-Python copy of a config node (for ``Registry.build``)."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node
