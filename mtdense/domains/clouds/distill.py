"""``mtdense distill CONFIG``: train a student from a frozen teacher, on the fly or from cached soft targets.

The CONFIG is an ordinary experiment with a ``teachers`` section (any TEACHERS entry: the
built-in ``nnunet_like``, ``nnunetv2``, an mtdense ``checkpoint`` — multi-task teachers
included) and distillation couplings (``kd_pixel``, ``kd_regression``). On the fly, the
trainer asks the teacher for every batch. With ``cache``, the teacher runs once over the
training set (``cache_soft_targets``), the teacher is dropped from the config (a second, hint-only
teacher read only by ``kd_feature`` stays on the fly for the encoder features), the training
data is wrapped in ``with_soft_targets`` and the ``soft_targets`` hook feeds the same couplings —
no distillation branch anywhere in the trainer. Returns the validation metrics plus timings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from omegaconf import OmegaConf, open_dict

from mtdense.config import load_config, plain
from mtdense.errors import ConfigError
from mtdense.registry import DATASETS, TEACHERS


def hint_teachers(cfg) -> set[str]:
    """Teachers that only feature couplings (``kd_feature``) read: they must run on the fly, since
    the cache holds output logits, not encoder maps (e.g. an ``nnunet_like`` with ``logits: false``)."""
    readers: dict[str, set[str]] = {}
    for c in plain(cfg.get("couplings") or []):
        if "teacher" in c:
            readers.setdefault(c["teacher"], set()).add(c.get("type"))
    return {name for name, kinds in readers.items() if kinds == {"kd_feature"}}


def only_teacher(cfg) -> tuple[str, dict]:
    """The one teacher whose outputs are cached (hint-only teachers are not counted)."""
    hints = hint_teachers(cfg)
    teachers = {k: v for k, v in plain(cfg.get("teachers") or {}).items() if k not in hints}
    if len(teachers) != 1:
        raise ConfigError(f"cached soft targets need exactly one teacher besides hint-only ones, found "
                          f"{len(teachers)}", key="teachers")
    return next(iter(teachers.items()))


def use_cache(cfg, cache: Path) -> None:
    """Rewrite ``cfg``: training data wrapped with the cached soft targets, teacher → ``soft_targets``
    hook; hint-only teachers stay and run on the fly."""
    name, _ = only_teacher(cfg)
    OmegaConf.resolve(cfg)  # a hint-only teacher may point at the cached teacher's path, deleted below
    train = plain(cfg.data.train)
    transform = train.pop("transform", None)
    with open_dict(cfg):
        cfg.data.train = {"type": "with_soft_targets", "dataset": train, "cache": str(cache), "teacher": name,
                          **({"transform": transform} if transform is not None else {})}
        del cfg.teachers[name]
        cfg.hooks = list(plain(cfg.get("hooks") or [])) + [{"type": "soft_targets", "teacher": name}]


def build_cache(cfg, cache: Path) -> dict:
    """Run the configured teacher once over ``data.train`` (without its transform) into ``cache``."""
    from mtdense.domains.clouds.soft_targets import cache_soft_targets

    name, tcfg = only_teacher(cfg)
    train = plain(cfg.data.train)
    train.pop("transform", None)
    teacher = TEACHERS.build(tcfg, f"teachers.{name}")
    return {"teacher": name, **cache_soft_targets(teacher, DATASETS.build(train, "data.train"), cache)}


def distill(config: str | Path, overrides: Iterable[str] = (), cache: str | Path | None = None,
            resume: str | None = None) -> dict:
    """Train the student of ``config``; with ``cache`` (a path) from soft targets stored there
    (built unless it exists and the run is resumed)."""
    from mtdense.engine.trainer import Trainer

    cfg = load_config(config, overrides)
    if not cfg.get("teachers"):
        raise ConfigError("distillation needs a teachers section (e.g. {big: {type: nnunet_like, path: ...}})",
                          key="teachers")
    result: dict = {}
    if cache is not None:
        cache = Path(cache)
        if resume is None or not cache.is_file():
            result["cache"] = build_cache(cfg, cache)
        use_cache(cfg, cache)
    trainer = Trainer(cfg)
    tic = time.perf_counter()
    metrics = trainer.fit(resume=resume)
    seconds = time.perf_counter() - tic
    result.update(metrics=metrics, train_seconds=seconds, steps=trainer.global_step,
                  seconds_per_step=seconds / max(trainer.global_step, 1), run_dir=str(trainer.run_dir))
    return result
