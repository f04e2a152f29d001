"""Build the parts of an experiment from a validated config: datasets, tasks, model, couplings.

Everything here is shared by training, evaluation, prediction, export and distillation, so a
checkpoint's stored config rebuilds exactly the model that was trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig, open_dict
from torch import nn
from torch.utils.data import DataLoader

from mtdense.config import plain
from mtdense.data.normalization import dataset_normalization
from mtdense.data.transforms import build_transform
from mtdense.engine.distributed import ResumableSampler
from mtdense.engine.weight_schedule import build_weight_schedule
from mtdense.errors import ConfigError, DataError, closest
from mtdense.metrics.delta_m import HIGHER_IS_BETTER, LOWER_IS_BETTER, base_name
from mtdense.models.multitask import MultiTaskModel
from mtdense.registry import COUPLINGS, DATASETS, TASKS


def build_dataset(cfg: DictConfig, split: str):
    if split not in cfg.data or cfg.data[split] is None:
        raise ConfigError("not configured; add a dataset for this split or choose another split", key=f"data.{split}")
    options = plain(cfg.data[split])
    if isinstance(options, dict) and isinstance(options.get("transform"), (dict, list)):
        options["transform"] = build_transform(options["transform"], f"data.{split}.transform")
    ds = DATASETS.build(options, f"data.{split}")
    if len(ds) == 0:
        raise ConfigError("the dataset is empty; check its path and split", key=f"data.{split}")
    return ds


def make_loader(cfg: DictConfig, dataset: Any, split: str, shuffle: bool, epoch: int = 0, start_batch: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader whose order depends only on (seed, epoch), sharded across DDP ranks. A shuffled
    loader uses the dataset's own ``make_sampler(batch_size, seed)`` if it has one (e.g. fixed
    labelled/unlabelled counts per batch, ``mtdense.data.semisup``)."""
    bs = cfg.data.batch_size if split == "train" else (cfg.data.eval_batch_size or cfg.data.batch_size)
    if shuffle and hasattr(dataset, "make_sampler"):
        sampler = dataset.make_sampler(int(bs), int(cfg.seed))
    else:
        sampler = ResumableSampler(len(dataset), int(bs), shuffle, int(cfg.seed), drop_last=shuffle)
    sampler.set_epoch(epoch, start_batch)
    gen = torch.Generator().manual_seed(int(cfg.seed) * 1000 + epoch)
    return DataLoader(dataset, batch_size=int(bs), sampler=sampler, num_workers=int(cfg.data.num_workers),
                      generator=gen, pin_memory=pin_memory)


def build_tasks(cfg: DictConfig) -> nn.ModuleDict:
    return nn.ModuleDict({name: TASKS.build(plain(t), f"tasks.{name}", name=name) for name, t in cfg.tasks.items()})


def build_couplings(cfg: DictConfig, tasks: nn.ModuleDict) -> tuple[nn.ModuleDict, dict[str, float], dict]:
    """The couplings by name, their configured ``weight`` (default 1) and their optional
    ``weight_schedule`` (``mtdense.engine.weight_schedule``). Couplings are not tasks: the trainer
    adds ``weight · r(step) · coupling`` to the update outside the balancer."""
    out, weights, schedules = nn.ModuleDict(), {}, {}
    for i, c in enumerate(cfg.couplings or []):
        c = plain(c)
        name = c.pop("name", None) or c.get("type")
        if name in out or name in tasks:
            raise ConfigError(f"{name!r} is already used; give each coupling a distinct name", key=f"couplings.{i}.name")
        weight = c.pop("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ConfigError(f"{weight!r} must be a number >= 0", key=f"couplings.{i}.weight")
        schedule = build_weight_schedule(c.pop("weight_schedule", None), f"couplings.{i}.weight_schedule")
        out[name] = COUPLINGS.build(c, f"couplings.{i}", tasks=tasks)
        weights[name] = float(weight)
        if schedule is not None:
            schedules[name] = schedule
    return out, weights, schedules


def build_model(cfg: DictConfig, tasks: nn.ModuleDict, in_channels: int) -> MultiTaskModel:
    model_cfg = {k: v for k, v in plain(cfg.model).items() if k != "in_channels"}
    return MultiTaskModel(model_cfg, {n: t.out_channels for n, t in tasks.items()}, in_channels)


def resolve_in_channels(cfg: DictConfig, dataset: Any) -> tuple[int, list[str]]:
    """Input channel count (config wins, else the dataset's ``channel_names``), recorded in ``cfg``."""
    names = list(getattr(dataset, "channel_names", []) or [])
    given = cfg.model.get("in_channels")
    if given is None:
        if not names:
            raise ConfigError("the dataset does not report channel_names; set model.in_channels", key="model.in_channels")
        given = len(names)
    elif names and given != len(names):
        raise ConfigError(f"{given} but the dataset has {len(names)} channels ({', '.join(names)})", key="model.in_channels")
    with open_dict(cfg):
        cfg.model.in_channels = int(given)
    return int(given), names or [f"ch{i}" for i in range(given)]


SPEC_VERSION = 2
"""1: in_channels, channel_names, tasks; 2 adds normalization and postprocessing."""


@dataclass
class Experiment:
    """The built parts of one experiment."""

    cfg: DictConfig
    tasks: nn.ModuleDict
    model: MultiTaskModel
    couplings: nn.ModuleDict
    channel_names: list[str]
    datasets: dict[str, Any] = field(default_factory=dict)
    normalization: dict[str, list[float]] | None = None
    coupling_weights: dict[str, float] = field(default_factory=dict)
    channel_info: dict[str, dict[str, Any]] | None = None   # dataset's per-channel description (units, wavelength)
    coupling_schedules: dict[str, Any] = field(default_factory=dict)  # coupling -> r(step), if it has a schedule

    def coupling_weight(self, name: str, step: int) -> float:
        """The weight training gives coupling ``name`` at optimizer step ``step``: weight · r(step)."""
        schedule = self.coupling_schedules.get(name)
        return self.coupling_weights[name] * (1.0 if schedule is None else schedule(step))

    def spec(self) -> dict[str, Any]:
        """What a checkpoint needs to turn a raw array into predictions without the data: input
        channels, the training data's per-channel ``normalization`` (raw units; None = raw input)
        and each task's output channels and ``postprocessing`` description."""
        return {"spec_version": SPEC_VERSION, "in_channels": self.cfg.model.in_channels,
                "channel_names": self.channel_names, "normalization": self.normalization,
                "channel_info": self.channel_info, "tasks": {n: t.out_channels for n, t in self.tasks.items()},
                "postprocessing": {n: t.postprocessing() for n, t in self.tasks.items()}}

    def dataset(self, split: str):
        if split not in self.datasets:
            self.datasets[split] = build_dataset(self.cfg, split)
        return self.datasets[split]


def build_experiment(cfg: DictConfig, channel_names: list[str] | None = None,
                     normalization: dict[str, list[float]] | None = None,
                     channel_info: dict[str, dict[str, Any]] | None = None) -> Experiment:
    """Build tasks, model and couplings; the train dataset is opened to learn the input channels
    and normalisation unless ``channel_names`` is given (as it is when rebuilding from a
    checkpoint, which then also gives its ``normalization``)."""
    datasets = {}
    if channel_names is None:
        datasets["train"] = build_dataset(cfg, "train")
        in_ch, channel_names = resolve_in_channels(cfg, datasets["train"])
        normalization = dataset_normalization(datasets["train"], in_ch)
        channel_info = getattr(datasets["train"], "channel_info", None)
    else:
        in_ch = len(channel_names)
        with open_dict(cfg):
            cfg.model.in_channels = in_ch
    tasks = build_tasks(cfg)
    model = build_model(cfg, tasks, in_ch)
    couplings, coupling_weights, coupling_schedules = build_couplings(cfg, tasks)
    target_keys = getattr(datasets.get("train"), "target_keys", None)
    check_monitor(cfg, bind_tasks(tasks, target_keys), list(couplings))
    return Experiment(cfg, tasks, model, couplings, channel_names, datasets, normalization, coupling_weights,
                      channel_info, coupling_schedules)


def check_experiment(cfg: DictConfig) -> str | None:
    """Build what ``train`` builds (datasets' channels and targets, tasks, metrics, couplings, model,
    monitor) so config errors surface at once. If the training data cannot be opened (not
    prepared yet), everything else is still checked with ``model.in_channels`` (or 1) input
    channels; the returned note says what was skipped."""
    try:
        build_experiment(cfg)
        return None
    except (DataError, OSError, ConfigError) as exc:
        if isinstance(exc, ConfigError) and not str(exc.key).startswith(("data.train.path", "data.train.root")):
            raise
        channels = int(cfg.model.get("in_channels") or 1)
        build_experiment(cfg, channel_names=[f"ch{i}" for i in range(channels)])
        return f"data.train not opened ({exc}); checks that need the data were skipped"


def bind_tasks(tasks: nn.ModuleDict, target_keys: list[str] | None = None) -> dict[str, list[str]]:
    """``Task.bind`` for every task: metric names per task; config errors name the full key."""
    names = {}
    for name, task in tasks.items():
        try:
            names[name] = task.bind(tasks, target_keys)
        except ConfigError as exc:
            raise exc.under(f"tasks.{name}") from None
    return names


def check_monitor(cfg: DictConfig, metric_names: dict[str, list[str]], couplings: list[str]) -> None:
    """``trainer.monitor`` must be a key the validation will report (``val/...``), and
    ``trainer.monitor_mode`` must agree with its direction when that is known (losses and the
    metrics of ``mtdense.metrics.delta_m``): overriding ``monitor`` alone used to keep a config's
    ``max`` and select the checkpoint with the HIGHEST validation loss."""
    monitor = cfg.trainer.get("monitor") or "val/loss"
    keys = ["val/loss"] + [f"val/loss/{n}" for n in [*metric_names, *couplings]]
    keys += [f"val/{task}/{m}" for task, names in metric_names.items() for m in names]
    if monitor not in keys:
        raise ConfigError(f"{monitor!r} is not reported by validation{closest(monitor, keys)}; "
                          f"choose one of: {', '.join(keys)}", key="trainer.monitor")
    name = monitor.split("/")[-1] if not monitor.startswith("val/loss") else "loss"
    base = base_name(name)
    wanted = "min" if base in LOWER_IS_BETTER else "max" if base in HIGHER_IS_BETTER else None
    mode = cfg.trainer.get("monitor_mode", "min")
    if wanted is not None and mode != wanted:
        raise ConfigError(f"trainer.monitor={monitor} is better when {'lower' if wanted == 'min' else 'higher'}, but "
                          f"trainer.monitor_mode={mode}, so the worst checkpoint would be selected; "
                          f"set trainer.monitor_mode={wanted}", key="trainer.monitor_mode")


def predictions(tasks: nn.ModuleDict, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each task's prediction in its own units (class ids, rain rate, depth)."""
    return {name: task.predict_from(outputs, tasks) for name, task in tasks.items()}
