"""What a bench run reports: the learning curve, model selection on ``val``, one ``test`` score.

Protocol (issue 9 §3): a run trains for the grid's schedule and is evaluated on ``val`` after
every ``trainer.eval_every_epochs`` epochs (the learning curve, read back from the run's
``metrics.csv`` written by the ``csv`` logger). The checkpoint the trainer marked ``best`` on
``trainer.monitor`` (default ``val/loss``) is the selected model; it is scored ONCE on the
``test`` split, and those test metrics are the run's result. A run without a ``test`` split
falls back to the final validation metrics and says so (``scored_split: val``).

Plateau criterion (reported per run, never used to stop): the monitored validation value of
the last ``PLATEAU_TAIL`` of the evaluations changed by less than ``PLATEAU_TOLERANCE``
(relative) between the best of the earlier evaluations and the best of the tail, i.e. the
last quarter of training no longer improved the selection metric by more than 2 %.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from mtdense.engine.checkpoint import read_checkpoint

PLATEAU_TAIL = 0.25
PLATEAU_TOLERANCE = 0.02


def split_metrics(values: dict[str, float], tasks: list[str], split: str = "val") -> dict[str, dict[str, float]]:
    """``{"<split>/depth/rmse": x}`` -> ``{"depth": {"rmse": x}}`` for the run's tasks."""
    out: dict[str, dict[str, float]] = {t: {} for t in tasks}
    for key, value in values.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == split and parts[1] in out:
            out[parts[1]][parts[2]] = value
    return out


def learning_curve(run_dir: Path) -> list[dict[str, float]]:
    """Every validation evaluation of the run: ``[{"step": s, "val/...": x, ...}]`` in step order."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/loss")]
    curve = []
    for r in rows:
        point = {"step": int(r["step"])}
        point.update({k: float(v) for k, v in r.items() if k.startswith("val/") and v not in ("", None)})
        curve.append(point)
    return sorted(curve, key=lambda p: p["step"])


def plateaued(curve: list[dict[str, float]], monitor: str, mode: str) -> bool | None:
    """The plateau criterion of the module docstring (None: fewer than 4 evaluations)."""
    values = [p[monitor] for p in curve if monitor in p and math.isfinite(p[monitor])]
    if len(values) < 4:
        return None
    tail = max(1, round(len(values) * PLATEAU_TAIL))
    pick = min if mode == "min" else max
    before, last = pick(values[:-tail]), pick(values[-tail:])
    gain = (before - last) if mode == "min" else (last - before)
    return gain <= PLATEAU_TOLERANCE * max(abs(before), 1e-12)


def score_selected(trainer: Any, tasks: list[str]) -> dict[str, Any]:
    """Load the ``best`` checkpoint into ``trainer`` and score it once on ``test``."""
    cfg = trainer.cfg
    best = Path(cfg.trainer.out_dir) / "checkpoints" / "best"
    if "test" not in cfg.data or cfg.data.test is None or not best.is_file():
        return {"scored_split": "val", "selected_step": None, "test_metrics": None}
    ckpt = read_checkpoint(best)
    trainer.model.load_state_dict(ckpt["weights"])
    test = trainer.evaluate("test")
    return {"scored_split": "test", "selected_step": int(best.read_text().strip().split("_")[-1]),
            "test_metrics": split_metrics(test, tasks, "test")}
