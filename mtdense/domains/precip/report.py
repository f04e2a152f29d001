"""``mtdense report RUN [--split test]``: verification of any precipitation run on its tile store.

Predicts every tile of the split with the checkpoint (its own normalisation and post-processing),
scores the gated rain rate and the rain probability against the labels next to the GPI-like
rule (Arkin & Meisner 1987, on B13 when the model has it), and writes to OUT: ``report.md``,
``scores.json``, ``per_scene.csv`` (scores per scan) and the figures of
``verification_figures`` (latitude/longitude maps of the wettest tile, log–log density scatter,
performance diagram, reliability diagram).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import torch

from mtdense.domains.precip.gpi_baseline import gpi_rain_rate
from mtdense.domains.precip.verification import THRESHOLDS, all_scores, probability_scores
from mtdense.domains.precip.verification_figures import (latlon_rain_maps, loglog_scatter, performance_diagram,
                                                         reliability_diagram)
from mtdense.errors import ConfigError

LABEL_GRID_DEG = 0.1   # IMERG grid spacing: tiles of a store regridded ahi_to_label are on it


def _store_of(run, split: str) -> Path:
    from mtdense.engine.checkpoint import read_checkpoint

    cfg = read_checkpoint(run)["config"]
    section = cfg.get("data", {}).get(split)
    if not section or section.get("type") != "precip_tiles":
        raise ConfigError(f"the run's data.{split} is not a precip_tiles store; report needs a precipitation run",
                          key=f"data.{split}")
    return Path(section["path"])


@torch.inference_mode()
def _predict_tiles(predictor, store: Path, split: str, batch_size: int = 16) -> dict[str, np.ndarray]:
    from mtdense.data.normalization import normalize
    from mtdense.domains.precip.tile_store import PrecipTiles
    from mtdense.engine.builder import predictions

    tiles = PrecipTiles(store, split=split, bands=predictor.channel_names, normalize=False)
    class_task = next((n for n, t in predictor.tasks.items() if hasattr(t, "event_probability")), None)
    rate_task = next(n for n, p in predictor.spec["postprocessing"].items() if p.get("type") == "regression")
    out: dict[str, list] = {"obs": [], "valid": [], "rate": [], "prob": [], "gpi": []}
    b13 = predictor.channel_names.index("B13") if "B13" in predictor.channel_names else None
    for start in range(0, len(tiles), batch_size):
        batch = [tiles[i] for i in range(start, min(start + batch_size, len(tiles)))]
        image = torch.stack([b["image"] for b in batch]).to(predictor.device)
        raw = predictor.model(normalize(image, predictor.normalization))
        out["rate"].append(predictions(predictor.tasks, raw)[rate_task].cpu().numpy())
        if class_task:
            out["prob"].append(predictor.tasks[class_task].event_probability(raw[class_task]).cpu().numpy())
        if b13 is not None:
            out["gpi"].append(gpi_rain_rate(image[:, b13]).cpu().numpy())
        out["obs"].append(torch.stack([b["targets"]["rain_rate"] for b in batch]).numpy())
        out["valid"].append(torch.stack([b["valid"]["rain_rate"] for b in batch]).numpy().astype(bool))
    arrays = {k: np.concatenate(v) for k, v in out.items() if v}
    with h5py.File(store, "r") as f:
        idx = f[f"split/{split}"][:]
        arrays["scene"] = f["tile_scene"][:][idx]
        arrays["latlon"] = f["tile_latlon"][:][idx]
        arrays["scan_time"] = np.array([s.decode() if isinstance(s, bytes) else str(s) for s in f["scenes/scan_time"][:]])
        arrays["regrid"] = np.array(str(f.attrs.get("regrid", "")))
        arrays["synthetic"] = np.array(bool(f.attrs.get("synthetic", False)))
    return arrays


def _per_scene(a: dict, path: Path) -> Path:
    fields = ["scene", "scan_time", "n", "csi@0.5", "pod@0.5", "far@0.5", "hss@0.5", "cc", "rmse", "bias", "brier"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for scene in np.unique(a["scene"]):
            sel = a["scene"] == scene
            s = all_scores(a["obs"][sel], a["rate"][sel], a["valid"][sel], a["prob"][sel] if "prob" in a else None,
                           thresholds=(0.5,))
            writer.writerow({"scene": int(scene), "scan_time": a["scan_time"][scene],
                             **{k: (f"{s[k]:.4g}" if k in s else "") for k in fields[2:]}})
    return path


def _table(rows: dict[str, dict[str, float]], keys: list[str]) -> list[str]:
    lines = ["| | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, s in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{s.get(k, float('nan')):.3f}" for k in keys) + " |")
    return lines


def write_report(run: str | Path, out: str | Path, split: str = "test", device: str = "cpu") -> Path:
    import mtdense

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    predictor = mtdense.load(run, device)
    store = _store_of(run, split)
    a = _predict_tiles(predictor, store, split)
    prob = a.get("prob")
    models = {"model": all_scores(a["obs"], a["rate"], a["valid"], prob)}
    if "gpi" in a:
        models["GPI rule (B13 < 235 K → 3 mm h⁻¹)"] = all_scores(a["obs"], a["gpi"], a["valid"])
    (out / "scores.json").write_text(json.dumps(models, indent=1))
    _per_scene(a, out / "per_scene.csv")
    synthetic = bool(a["synthetic"])
    source = "IMERG (SYNTHETIC)" if synthetic else "IMERG"
    wettest = int(np.argmax(np.where(a["valid"], a["obs"], 0).sum(axis=(1, 2))))
    when = f"scan {a['scan_time'][a['scene'][wettest]]} UTC"
    maps = {f"{source}, rain rate (mm h⁻¹)": np.where(a["valid"][wettest], a["obs"][wettest], np.nan),
            "model, rain rate (mm h⁻¹)": a["rate"][wettest]}
    if "gpi" in a:
        maps["GPI rule, rain rate (mm h⁻¹)"] = a["gpi"][wettest]
    figures = {}
    if str(a["regrid"]) == "ahi_to_label":
        h, w = a["obs"].shape[1:]
        lat0, lon0 = a["latlon"][wettest]
        lat, lon = lat0 - LABEL_GRID_DEG * np.arange(h), lon0 + LABEL_GRID_DEG * np.arange(w)
        figures["Rain rate, wettest tile"] = latlon_rain_maps(maps, lat, lon, out / "figures" / "maps.png", when)
    valid = a["valid"]
    figures["Estimated vs observed rain rate"] = loglog_scatter(a["obs"][valid], a["rate"][valid], models["model"],
                                                               out / "figures" / "scatter.png", "model")
    points = {name: {t: (s[f"pod@{t:g}"], s[f"far@{t:g}"]) for t in THRESHOLDS} for name, s in models.items()}
    figures["Performance diagram"] = performance_diagram(points, out / "figures" / "performance.png")
    if prob is not None:
        rel = probability_scores(a["obs"][valid] >= 0.1, prob[valid])
        figures["Reliability of the rain probability"] = reliability_diagram(rel["reliability"], models["model"],
                                                                             out / "figures" / "reliability.png")
    cat = [f"{k}@{t:g}" for t in (0.5, 2.0, 10.0) for k in ("pod", "far", "csi", "f1", "bias", "hss", "ets")]
    lines = [f"# Verification of `{run}` on the {split} split", "",
             ("**The data are SYNTHETIC**: these scores say the pipeline works, not how it does on real "
              "Himawari/IMERG data." if synthetic else f"Tile store: `{store}`."), "",
             f"{int(valid.sum())} valid label pixels in {len(a['obs'])} tiles of {len(np.unique(a['scene']))} scans. "
             "Event = rate ≥ threshold (mm h⁻¹). Scores pooled over all valid pixels; per scan in `per_scene.csv`.",
             "", "## Categorical scores", *_table(models, cat), "",
             "## Continuous scores (mm h⁻¹) and rain probability", *_table(models, ["n", "cc", "rmse", "bias", "brier",
                                                                              "roc_auc"]), "",
             "## Figures", *[f"### {t}\n![{t}]({Path(p).relative_to(out)})\n" for t, p in figures.items()]]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
