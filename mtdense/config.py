"""Experiment configuration: OmegaConf YAML, a one-level ``defaults:`` list, dotlist overrides.

An experiment file may start with ``defaults: [relative/path.yaml, ...]``; those files are
merged in order, then the experiment file itself, then command-line overrides such as
``trainer.max_epochs=5``. There is no deeper inheritance and no ``_delete_``: what you read
is what runs. ``validate`` checks the structure and reports problems with their key path.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mtdense.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The shipped experiment configs (package data; ``configs/`` in a clone points here)."""

SECTIONS = ("data", "model", "tasks", "couplings", "balancer", "teachers", "hooks", "trainer", "logging", "seed", "meta")

# Keys the engine reads from each fixed section, with their defaults. Plugin sections
# (anything with ``type:``) are checked against the plugin's signature when built instead.
TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 10,
    "optimizer": "adamw",  # adamw | sgd
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "momentum": 0.9,  # sgd only
    "nesterov": False,  # sgd only
    "schedule": "cosine",  # cosine | poly | constant
    "poly_power": 0.9,
    "warmup_steps": 0,
    "min_lr_ratio": 0.0,
    "accumulate": 1,
    "grad_clip": None,
    "precision": "fp32",  # fp32 | bf16 (torch.autocast; bf16 runs on CPU and CUDA)
    "channels_last": False,
    "compile": False,
    "deterministic": True,
    "out_dir": "runs/${meta.name}",
    "checkpoint_every_steps": 0,
    "keep_checkpoints": 2,
    "eval_every_epochs": 1,
    "monitor": None,  # e.g. "val/loss" (min) or "val/rain_rate/rmse" ; None = val/loss
    "monitor_mode": "min",
    "device": "auto",  # auto | cpu | cuda
    "log_every_steps": 10,
    "max_steps_per_epoch": None,
    "eval_model": "student",  # student | teacher:<name> (a teacher of the ``teachers`` section)
}
DATA_DEFAULTS: dict[str, Any] = {"batch_size": 8, "num_workers": 0, "eval_batch_size": None, "batch_transforms": []}
ALLOWED_VALUES = {
    "trainer.optimizer": ("adamw", "sgd"),
    "trainer.schedule": ("cosine", "poly", "constant"),
    "trainer.precision": ("fp32", "bf16"),
    "trainer.device": ("auto", "cpu", "cuda"),
    "trainer.monitor_mode": ("min", "max"),
}


def _load_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml.YAMLError and friends
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: top level must be a mapping of sections ({', '.join(SECTIONS)})")
    return cfg


def find_config(path: str | Path) -> Path:
    """``path`` itself if it exists, else the shipped config of that name (``precip/mtcf.yaml``
    or ``configs/precip/mtcf.yaml`` work from any directory)."""
    path = Path(path)
    if path.is_file():
        return path
    parts = path.parts[1:] if path.parts and path.parts[0] == "configs" else path.parts
    shipped = CONFIG_DIR.joinpath(*parts) if parts else CONFIG_DIR
    return shipped if shipped.is_file() else path


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> DictConfig:
    """Load ``path`` with its ``defaults:`` list and apply dotlist ``overrides``; validate."""
    path = find_config(path)
    own = _load_yaml(path)
    parts = []
    defaults = own.pop("defaults", [])
    if not isinstance(defaults, (ListConfig, list)):
        raise ConfigError(f"{path}: defaults: must be a list of YAML paths relative to this file")
    for entry in defaults:
        base = _load_yaml((path.parent / str(entry)).resolve())
        if "defaults" in base:
            raise ConfigError(
                f"{path.parent / str(entry)}: defaults: only one level of defaults is supported; "
                "merge that file's defaults into the experiment instead"
            )
        parts.append(base)
    parts.append(own)
    overrides = list(overrides)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. trainer.max_epochs=5")
    try:
        cfg = OmegaConf.merge(*parts, OmegaConf.from_dotlist(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{path}: cannot merge config: {exc}".replace("\n", " ")) from exc
    cfg.setdefault("meta", {})
    cfg.meta.setdefault("name", path.stem)
    cfg.meta.setdefault("config_path", str(path))
    return validate(cfg, source=str(path))


def from_dict(data: Mapping[str, Any]) -> DictConfig:
    """Build and validate a config from a plain mapping (tests, programmatic use)."""
    cfg = OmegaConf.create(dict(data))
    cfg.setdefault("meta", {})
    cfg.meta.setdefault("name", "experiment")
    return validate(cfg, source="<dict>")


def _check_keys(section: Mapping, defaults: Mapping, prefix: str, source: str) -> None:
    for key in section:
        if key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{source}: {prefix}.{key}: unknown key{hint}; accepted: {', '.join(defaults)}")


def validate(cfg: DictConfig, source: str = "<config>") -> DictConfig:
    """Fill engine defaults and check the fixed structure, naming key paths on error."""
    for key in cfg:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), SECTIONS, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{source}: {key}: unknown top-level section{hint}; accepted: {', '.join(SECTIONS)}")
    for required in ("data", "model", "tasks"):
        if required not in cfg:
            raise ConfigError(f"{source}: missing section {required!r}")
    cfg.setdefault("seed", 0)
    cfg.setdefault("couplings", [])
    cfg.setdefault("balancer", {"type": "fixed"})
    cfg.setdefault("teachers", {})
    cfg.setdefault("hooks", [])
    cfg.setdefault("logging", {"loggers": [{"type": "console"}, {"type": "csv"}]})
    trainer = cfg.get("trainer") or {}
    _check_keys(trainer, TRAINER_DEFAULTS, "trainer", source)
    cfg.trainer = OmegaConf.merge(TRAINER_DEFAULTS, trainer)
    data_fixed = {k: v for k, v in cfg.data.items() if k not in ("train", "val", "test")}
    _check_keys(data_fixed, DATA_DEFAULTS, "data", source)
    for k, v in DATA_DEFAULTS.items():
        cfg.data.setdefault(k, v)
    if "train" not in cfg.data:
        raise ConfigError(f"{source}: data.train: missing; give a dataset, e.g. data.train: {{type: ..., split: train}}")
    for dotted, allowed in ALLOWED_VALUES.items():
        value = OmegaConf.select(cfg, dotted)
        if value not in allowed:
            raise ConfigError(f"{source}: {dotted}: {value!r} is not one of {', '.join(map(str, allowed))}")
    if not isinstance(cfg.tasks, DictConfig) or len(cfg.tasks) == 0:
        raise ConfigError(f"{source}: tasks: must map task names to task definitions (with 'type')")
    for name, task in cfg.tasks.items():
        if not isinstance(task, DictConfig) or "type" not in task:
            raise ConfigError(f"{source}: tasks.{name}: needs a 'type' (see `mtdense registry list task`)")
    for int_key in ("trainer.max_epochs", "trainer.accumulate", "data.batch_size"):
        value = OmegaConf.select(cfg, int_key)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{source}: {int_key}: must be a positive integer, got {value!r}")
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def plain(node: Any) -> Any:
    """A resolved plain-Python copy of a config node (for ``Registry.build``)."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node
