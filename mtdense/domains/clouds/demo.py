"""The cloud demo: SYNTHETIC scenes → nnU-Net-like teacher → distilled student → on-board ONNX → report.

``mtdense demo-clouds`` (or ``bash scripts/demo.sh clouds``) runs the whole chain of the seed
(arXiv:2306.09886) at toy scale on the CPU and writes ``OUT/report.md``: threshold rule,
teacher, a compact student trained with and without distillation, each exported as a raw-DN →
mask ONNX graph, scored in fp32 and int8 on reassembled test scenes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mtdense.domains.clouds.cloud38 import Cloud38Dataset
from mtdense.domains.clouds.kd_pipeline import score_model, train_student
from mtdense.domains.clouds.nnunet_like import NnUNetLikeTeacher, train_nnunet_like
from mtdense.domains.clouds.scene_eval import scene_scores, threshold_predictor
from mtdense.domains.clouds.soft_targets import cache_soft_targets
from mtdense.domains.clouds.synth_writers import synth_clouds


def run_clouds_demo(out: str | Path, teacher_its: int = 40, epochs: int = 4, width: int = 4, depth: int = 3,
                    seed: int = 0) -> Path:
    out = Path(out)
    tic = time.perf_counter()
    data = out / "data"
    synth_clouds(data, train_scenes=8, test_scenes=3, scene_size=160, patch=64, chips=4, chip=64, seed=seed)
    train = Cloud38Dataset(str(data / "38-Cloud_training"), part="train", val_fraction=0.25)
    teacher = out / "teacher"
    if not (teacher / "model.pt").is_file():
        train_nnunet_like(train, teacher, iterations=teacher_its, base_features=16, max_features=256, seed=seed)
    cache = out / "soft_targets.h5"
    if not cache.is_file():
        cache_soft_targets(NnUNetLikeTeacher(str(teacher), mirror=True), train, cache)
    rows = {"threshold rule": {"params": 0, "fp32": scene_scores(
        threshold_predictor("landsat8_l1", ["red", "green", "blue", "nir"]), data / "38-Cloud_test")}}
    rows["teacher (nnU-Net-like)"] = score_model(teacher, data, out / "onnx" / "teacher", cost=False)
    for mode in ("sup", "kd"):
        run = out / "runs" / f"student_{mode}"
        train_student(data, run, width, depth, seed, epochs, cache=cache if mode == "kd" else None,
                      extra=[f"teachers.big.path={teacher}"] if mode == "kd" else None)
        rows[f"student w{width} d{depth} {mode}"] = score_model(run / "checkpoints" / "best", data,
                                                              out / "onnx" / f"student_{mode}", cost=False)
    teacher_j = rows["teacher (nnU-Net-like)"]["fp32"]["jaccard"]
    lines = ["# Cloud demo (SYNTHETIC data)", "",
             "Synthetic Landsat-8-like scenes in the 38-Cloud layout; test scenes reassembled from patches and scored "
             "against full-scene masks (dataset-level Jaccard). Every model is an on-board ONNX graph: uint16 DN in, "
             "uint8 mask out (255 = nodata). Toy scale: see benchmarks/results/clouds_kd.md for the measured study.", "",
             "| model | params | Jaccard fp32 | % of teacher | Jaccard int8 | ONNX MB fp32 / int8 |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        j8 = f"{r['int8']['jaccard']:.3f}" if "int8" in r else "–"
        mb = f"{r['mb_fp32']:.3f} / {r['mb_int8']:.3f}" if "mb_fp32" in r else "–"
        lines.append(f"| {name} | {r['params']:,} | {r['fp32']['jaccard']:.3f} | "
                     f"{100 * r['fp32']['jaccard'] / teacher_j:.1f} | {j8} | {mb} |")
    lines += ["", f"Total time: {time.perf_counter() - tic:.0f} s. ONNX files: `{out / 'onnx'}`."]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    return report
