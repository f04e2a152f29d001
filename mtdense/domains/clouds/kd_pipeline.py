"""The synth → teacher → distil → export → score pipeline shared by the cloud demo and benchmark.

Every model ends as an on-board ONNX graph (raw DN → mask) and is scored the same way: test
scenes of the 38-Cloud test layout reassembled from patches (``scene_eval.scene_scores``), in
PyTorch-equivalent fp32 ONNX and in static int8; plus parameters, ONNX size on disk and
forward FLOPs of one 4×512×512 chip (``torch.utils.flop_counter`` via ``mtdense.bench.profile``).
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np

from mtdense.bench.profile import count_parameters, flops_per_image
from mtdense.config import find_config, load_config
from mtdense.domains.clouds.cloud38 import Cloud38Dataset, read_patch
from mtdense.domains.clouds.onboard_export import export_onboard, onboard_module, quantize_int8
from mtdense.domains.clouds.scene_eval import onnx_predictor, scene_scores, session_cost

SCORE_KEYS = ("jaccard", "mean_chip_jaccard", "precision", "recall", "specificity", "accuracy")


def data_overrides(data: Path) -> list[str]:
    root = data / "38-Cloud_training"
    return [f"data.train.root={root}", f"data.val.root={root}"]


def student_overrides(width: int, depth: int, seed: int, epochs: int, out: Path) -> list[str]:
    return [f"model.backbone.width={width}", f"model.backbone.depth={depth}", f"seed={seed}",
            f"trainer.max_epochs={epochs}", f"trainer.out_dir={out}"]


def calibration_tiles(data: Path, n: int = 8) -> list[np.ndarray]:
    ds = Cloud38Dataset(str(data / "38-Cloud_training"), part="train", val_fraction=0.25, nonempty_only=True)
    picks = np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int)
    return [read_patch(ds.root, ds.names[i])["dn"] for i in picks]


def train_student(data: Path, out: Path, width: int, depth: int, seed: int, epochs: int,
                  cache: Path | None = None, extra: list[str] | None = None, config: str | None = None) -> dict:
    """A student trained with ``config``: by default labels only (``clouds/student.yaml``) without
    ``cache``, distillation from cached soft targets (``clouds/distill.yaml``) with it; a config
    with a ``teachers`` section and no ``cache`` distils with the teacher on the fly. Returns wall
    and CPU (process) seconds of the training and the validation Jaccard after every epoch."""
    from mtdense.domains.clouds.distill import distill
    from mtdense.engine.trainer import Trainer

    if out.exists():  # an interrupted run restarts from scratch (runs are short)
        shutil.rmtree(out)
    overrides = data_overrides(data) + student_overrides(width, depth, seed, epochs, out) + list(extra or [])
    config = config or ("clouds/student.yaml" if cache is None else "clouds/distill.yaml")
    tic, cpu_tic = time.perf_counter(), time.process_time()
    cfg = load_config(find_config(config), overrides)
    if cfg.get("teachers"):
        distill(find_config(config), overrides, cache=cache)
    else:
        Trainer(cfg).fit()
    return {"train_seconds": time.perf_counter() - tic, "train_cpu_seconds": time.process_time() - cpu_tic,
            "val_jaccard_curve": metric_curve(out), "run": str(out)}


def metric_curve(run: Path, key: str = "val/cloud/jaccard") -> list[float]:
    """``key`` at every evaluation of a run, in order (from its ``metrics.csv``)."""
    with open(run / "metrics.csv", newline="") as f:
        return [float(row[key]) for row in csv.DictReader(f) if row.get(key)]


def score_model(source: Path, data: Path, out_dir: Path, cost: bool = True) -> dict:
    """Export ``source`` (checkpoint/run or teacher folder) fp32 + int8, score both on the test scenes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    module, _ = onboard_module(source)
    fp32 = export_onboard(source, out_dir / "model.onnx")
    int8 = quantize_int8(fp32, out_dir / "model.int8.onnx", calibration_tiles(data))
    test = data / "38-Cloud_test"
    record = {"params": count_parameters(module.net), "flops_512": flops_per_image(module.net, (4, 512, 512)),
              "mb_fp32": fp32.stat().st_size / 2**20, "mb_int8": int8.stat().st_size / 2**20,
              "fp32": scene_scores(onnx_predictor(fp32), test), "int8": scene_scores(onnx_predictor(int8), test)}
    if cost:
        record["cost_fp32"] = session_cost(fp32)
        record["cost_int8"] = session_cost(int8)
    return record
