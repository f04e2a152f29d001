"""The public Python API, re-exported lazily by ``mtdense/__init__.py`` (``import mtdense`` stays
light; torch is imported on first use):

- ``build_model(cfg)``: the multi-task model of a config, without opening any dataset;
- ``load(run_or_checkpoint)``: a ``Predictor`` whose ``.predict(array)`` maps raw arrays to
  every task's prediction (normalisation and post-processing from the checkpoint);
- ``list_plugins(kind=None, pattern=None)``: registered plugin names per kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mtdense.errors import ConfigError


def build_model(cfg: Mapping[str, Any] | str | Path, in_channels: int | None = None):
    """The ``MultiTaskModel`` (untrained) of an experiment config — a mapping with ``model`` and
    ``tasks`` sections, or a YAML path — taking ``in_channels`` (argument, else
    ``model.in_channels``) input channels. No dataset is opened."""
    from omegaconf import OmegaConf

    from mtdense.config import load_config
    from mtdense.engine.builder import build_model as build, build_tasks

    cfg = load_config(cfg) if isinstance(cfg, (str, Path)) else OmegaConf.create(dict(cfg))
    for section in ("model", "tasks"):
        if section not in cfg:
            raise ConfigError("missing; build_model needs the model and tasks sections", key=section)
    channels = in_channels if in_channels is not None else cfg.model.get("in_channels")
    if channels is None:
        raise ConfigError("not set; give model.in_channels (or in_channels=...) — build_model opens no dataset",
                          key="model.in_channels")
    return build(cfg, build_tasks(cfg), int(channels))


def load(run_or_checkpoint: str | Path, device: str = "cpu"):
    """A ``Predictor`` for a run folder (its last checkpoint), a checkpoint folder or its
    ``model.safetensors``."""
    from mtdense.inference.predictor import Predictor

    return Predictor.from_checkpoint(run_or_checkpoint, device)


def list_plugins(kind: str | None = None, pattern: str | None = None) -> dict[str, list[str]]:
    """``{kind: [names]}`` for every kind, or only ``kind`` (singular or plural: "loss",
    "losses"), names filtered by a shell ``pattern`` such as ``"mit_*"``."""
    from mtdense.registry import ALL_REGISTRIES, registry_of

    registries = ALL_REGISTRIES.values() if kind is None else [registry_of(kind)]
    return {reg.kind: reg.names(pattern) for reg in registries}
