"""The bench report: per pair, every variant's metrics as mean ± std over seeds, Δm against
the single-task baselines in both variants, and the cost columns; Markdown + JSON (+ PNG).

Δm (Maninis et al. CVPR 2019; Vandenhende et al. TPAMI 2021) is computed by
``mtdense.metrics.delta_m.delta_m`` for each seed of a multi-task variant against the mean
over seeds of its baselines, then averaged: the table shows mean ± std (sample standard
deviation, n − 1) over seeds. ``per_task`` uses the one metric per task declared in the grid,
``per_metric`` the mean over all declared (task, metric) pairs; both headers say which.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mtdense.bench.grid import Grid, Pair

DELTA_VARIANTS = {"per_task": "Δm per-task", "per_metric": "Δm per-metric"}


def stats(values: list[float | None]) -> dict[str, Any]:
    """Mean and sample std of the finite values; ``n`` counts them."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return {"mean": statistics.fmean(xs) if xs else None,
            "std": statistics.stdev(xs) if len(xs) > 1 else None, "n": len(xs)}


def _declared(pair: Pair) -> list[tuple[str, str]]:
    seen = dict.fromkeys([(t, m) for t, m in pair.per_task.items()]
                         + [(t, m) for t, ms in pair.per_metric.items() for m in ms])
    return list(seen)


def _selection(pair: Pair, variant: str) -> dict[str, list[str]]:
    return {t: [m] for t, m in pair.per_task.items()} if variant == "per_task" else dict(pair.per_metric)


def _delta_m_per_seed(record: dict, baseline: dict[str, dict[str, float]], selection: dict[str, list[str]],
                      variant: str) -> float | None:
    from mtdense.metrics.delta_m import delta_m

    mtl = {t: {m: record["metrics"].get(t, {}).get(m) for m in ms} for t, ms in selection.items()}
    if any(v is None for ms in mtl.values() for v in ms.values()):
        return None  # a non-finite metric in this seed: left out, the seed count shows it
    return delta_m(mtl, baseline, selection, variant)


def summarize_pair(pair: Pair, records: list[dict]) -> dict[str, Any]:
    by_variant: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: (r["kind"] != "baseline", r["seed"])):
        by_variant.setdefault(r["variant"], []).append(r)
    declared = _declared(pair)
    variants: dict[str, Any] = {}
    for name, recs in by_variant.items():
        tasks = recs[0]["tasks"]
        variants[name] = {
            "kind": recs[0]["kind"], "tasks": tasks, "seeds": [r["seed"] for r in recs],
            "baselines": recs[0]["baselines"],
            "metrics": {f"{t}/{m}": stats([r["metrics"].get(t, {}).get(m) for r in recs])
                        for t, m in declared if t in tasks},
            "params": stats([r["params"] for r in recs]), "flops_per_image": stats([r["flops_per_image"] for r in recs]),
            "latency_ms": stats([r["latency_ms"] for r in recs]),
            "throughput_img_s": stats([r["throughput_img_s"] for r in recs]),
        }
    for name, v in variants.items():
        if v["kind"] != "multitask":
            continue
        missing = [b for b in v["baselines"] if b not in variants]
        v["delta_m"] = {}
        if missing:
            v["delta_m_missing"] = missing
            continue
        baseline = {}
        for b in v["baselines"]:
            for t in variants[b]["tasks"]:
                baseline[t] = {key.split("/", 1)[1]: s["mean"] for key, s in variants[b]["metrics"].items()
                               if key.startswith(f"{t}/")}
        for dv in DELTA_VARIANTS:
            sel = _selection(pair, dv)
            v["delta_m"][dv] = stats([_delta_m_per_seed(r, baseline, sel, dv) for r in by_variant[name]])
    first_baselines = next((v["baselines"] for v in variants.values() if v["kind"] == "multitask"), [])
    total = {k: sum(variants[b][k]["mean"] or 0.0 for b in first_baselines if b in variants)
             for k in ("params", "flops_per_image", "latency_ms")}
    config = Path(pair.config)
    shown = config.relative_to(Path.cwd()) if config.is_relative_to(Path.cwd()) else config
    return {"config": str(shown), "data": pair.data, "protocol": records[0]["protocol"] if records else {},
            "delta_m": {"per_task": pair.per_task, "per_metric": pair.per_metric},
            "variants": variants, "single_task_total": {"baselines": first_baselines, **total}}


def summarize(grid: Grid, records: dict[str, dict]) -> dict[str, Any]:
    keys = {run.key for run in grid.runs(Path("."))}
    current = [r for r in records.values() if r["key"] in keys]
    machines = []
    for r in current:
        if r["machine"] not in machines:
            machines.append(r["machine"])
    return {
        "name": grid.name, "grid": str(grid.path), "seeds": grid.seeds, "protocol_overrides": grid.protocol,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machines": machines,
        "pairs": {p.name: summarize_pair(p, [r for r in current if r["pair"] == p.name]) for p in grid.active_pairs()},
        "skipped": {p.name: p.skip for p in grid.pairs if p.skip},
    }


# ---------------------------------------------------------------------------- Markdown
def _pm(s: dict, fmt: str) -> str:
    if s is None or s["mean"] is None:
        return "–"
    text = format(s["mean"], fmt)
    return f"{text} ± {format(s['std'], fmt.lstrip('+'))}" if s["std"] is not None else text


def _pair_markdown(name: str, p: dict[str, Any]) -> list[str]:
    proto = p["protocol"]
    shape = "×".join(map(str, proto.get("input_shape", [])))
    lines = [f"## {name} ({p['data']} data)", "",
             f"Config `{p['config']}`; {proto.get('train_images', '?')} train / {proto.get('val_images', '?')} val images "
             f"of {shape}; epochs: {proto.get('epochs', '?')}, batch: {proto.get('batch_size', '?')}, "
             f"optimizer steps: {proto.get('steps', '?')}.", ""]
    per_task = ", ".join(f"{t}/{m}" for t, m in p["delta_m"]["per_task"].items())
    per_metric = [f"{t}/{m}" for t, ms in p["delta_m"]["per_metric"].items() for m in ms]
    lines += [f"- {DELTA_VARIANTS['per_task']} (T={len(p['delta_m']['per_task'])}): {per_task}",
              f"- {DELTA_VARIANTS['per_metric']} (K={len(per_metric)}): {', '.join(per_metric)}", ""]
    present = {k for v in p["variants"].values() for k in v["metrics"]}
    declared = [f"{t}/{m}" for t, m in p["delta_m"]["per_task"].items()] + per_metric
    metric_cols = [k for k in dict.fromkeys(declared) if k in present]
    header = (["variant", "seeds"] + [c.replace("/", " ") for c in metric_cols]
              + [f"{DELTA_VARIANTS['per_task']} [%]", f"{DELTA_VARIANTS['per_metric']} [%]",
                 "params", "MFLOPs/img", "CPU latency [ms]", "train [img/s]"])
    multitask = [vn for vn, v in p["variants"].items() if v["kind"] == "multitask"]
    ref_speed = p["variants"][multitask[0]]["throughput_img_s"]["mean"] if multitask else None
    if ref_speed:
        header.append(f"step time vs {multitask[0]}")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for vname, v in p["variants"].items():
        dm = v.get("delta_m") or {}
        row = [vname, str(len(v["seeds"]))]
        row += [_pm(v["metrics"].get(c), ".4f") for c in metric_cols]
        row += [_pm(dm.get(dv), "+.2f") if v["kind"] == "multitask" else "(reference)" for dv in DELTA_VARIANTS]
        params = v["params"]["mean"]
        flops = v["flops_per_image"]["mean"]
        row += [f"{params:,.0f}" if params is not None else "–", f"{flops / 1e6:,.1f}" if flops is not None else "–",
                _pm(v["latency_ms"], ".2f"), _pm(v["throughput_img_s"], ".1f")]
        if ref_speed:
            speed = v["throughput_img_s"]["mean"]
            row.append(f"{ref_speed / speed:.2f}×" if speed else "–")
        lines.append("| " + " | ".join(row) + " |")
    tot = p["single_task_total"]
    if tot["baselines"]:
        lines += ["", f"Single-task baselines together ({', '.join(tot['baselines'])}): {tot['params']:,.0f} params, "
                      f"{tot['flops_per_image'] / 1e6:,.1f} MFLOPs/img, {tot['latency_ms']:.2f} ms."]
    missing = {vn: v["delta_m_missing"] for vn, v in p["variants"].items() if v.get("delta_m_missing")}
    for vn, bl in missing.items():
        lines.append(f"\nΔm of {vn} needs the unfinished baseline(s) {', '.join(bl)}.")
    return lines + [""]


def markdown(summary: dict[str, Any], plot_name: str | None) -> str:
    lines = [f"# Benchmark `{summary['name']}`", "",
             f"Produced by `mtdense bench {summary['grid']}` ({summary['generated']}).", "", "## Protocol", "",
             f"- Seeds: {', '.join(map(str, summary['seeds']))}; shared overrides: "
             + (", ".join(f"`{k}={v}`" for k, v in summary["protocol_overrides"].items()) or "none")]
    for m in summary["machines"]:
        lines.append(f"- Machine: nproc {m['nproc']}, torch {m['torch']}, torch threads: {m['threads']}, "
                     f"Python {m['python']}, {m['processor']}")
    lines += [
        "- Metrics: final validation epoch. Δm = mean over the selected metrics of ±(M_mtl − M_stl)/M_stl × 100 "
        "(sign: positive = better than single-task), per seed against the mean of the baseline seeds; "
        "mean ± sample std over seeds.",
        "- Cost: parameters; FLOPs of one batch-1 forward at the training resolution "
        "(torch.utils.flop_counter: conv/matmul, 1 multiply-add = 2 FLOPs); CPU latency = median of batch-1 "
        "forwards after warm-up; training throughput = images of one epoch / last epoch's wall time "
        "(data loading included).", ""]
    for name, p in summary["pairs"].items():
        lines += _pair_markdown(name, p)
    if summary["skipped"]:
        lines += ["## Not run", ""] + [f"- {n}: {why}" for n, why in summary["skipped"].items()] + [""]
    if plot_name:
        lines += [f"![{DELTA_VARIANTS['per_task']} vs parameters and latency]({plot_name})", ""]
    return "\n".join(lines)


def write_report(grid: Grid, records: dict[str, dict], report_dir: Path) -> dict[str, Path]:
    """Write ``<report_dir>/<name>.md``, ``.json`` and ``.png``; returns their paths."""
    from mtdense.bench.plot import write_plot

    report_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(grid, records)
    paths = {"json": report_dir / f"{grid.name}.json", "markdown": report_dir / f"{grid.name}.md"}
    png = write_plot(summary, report_dir / f"{grid.name}.png", DELTA_VARIANTS["per_task"])
    if png is not None:
        paths["plot"] = png
    paths["json"].write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    paths["markdown"].write_text(markdown(summary, png.name if png else None))
    return paths
