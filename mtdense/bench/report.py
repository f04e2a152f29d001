"""The bench report: per pair, every variant's metrics as mean ± std over seeds, Δm against
the single-task baselines in both variants with 95 % CIs, paired differences against the
grid's reference variant with Holm-corrected verdicts and the minimum detectable effect, the
cost columns, and learning curves; Markdown + JSON (+ PNGs).

Δm (Maninis et al. CVPR 2019; Vandenhende et al. TPAMI 2021) is computed by
``mtdense.metrics.delta_m.delta_m`` for each seed of a multi-task variant against the
baselines' run of the SAME seed (same data order, same initialisation of the common parts),
or against the mean over the baseline seeds when that seed's baseline is missing.
``per_task`` uses the one metric per task declared in the grid, ``per_metric`` the mean over
all declared (task, metric) pairs; both headers say which. Statistics: ``mtdense.bench.statistics``.

Non-learned rules (``kind: rule``, ``mtdense.bench.rules``) appear in every table marked
"non-learned rule", with 0 parameters and no training; their one record, repeated per seed, is
compared seed by seed like a variant's.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mtdense.bench.grid import Grid, Pair
from mtdense.bench.statistics import compare_variants, mean_interval

DELTA_VARIANTS = {"per_task": "Δm per-task", "per_metric": "Δm per-metric"}
SCORED_KINDS = ("multitask", "composite", "rule")  # kinds compared with the single-task baselines
NON_LEARNED = "non-learned rule"


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


def _baseline_metrics(recs: list[dict], tasks: list[str], seed: int | None) -> dict[str, dict[str, float]]:
    """A baseline's metrics for ``seed`` (its run of that seed) or the mean over its seeds (seed None)."""
    chosen = [r for r in recs if r["seed"] == seed] if seed is not None else recs
    out: dict[str, dict[str, float]] = {}
    for t in tasks:
        names = {m for r in chosen for m in r["metrics"].get(t, {})}
        out[t] = {m: stats([r["metrics"][t].get(m) for r in chosen])["mean"] for m in names}
    return out


def summarize_pair(pair: Pair, records: list[dict], reference: str | None = None,
                   costs: dict[str, Any] | None = None, order: list[str] | None = None) -> dict[str, Any]:
    """One pair's table: metrics, Δm per seed, paired comparisons, and the interleaved costs
    (``mtdense.bench.costs``; ``costs`` is that pair's entry of costs.json, None if not measured).
    Rows: baselines first, then in ``order`` (the grid's), whatever order the runs finished in."""
    measured = (costs or {}).get("variants", {})
    rank = {name: i for i, name in enumerate(order or [])}
    by_variant: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: (r["kind"] != "baseline", rank.get(r["variant"], len(rank)), r["seed"])):
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
            "metrics_per_seed": {r["seed"]: {f"{t}/{m}": r["metrics"].get(t, {}).get(m)
                                             for t, m in declared if t in tasks} for r in recs},
            "params": stats([r["params"] for r in recs]), "flops_per_image": stats([r["flops_per_image"] for r in recs]),
            "cost": measured.get(name),
            "scored_split": sorted({r.get("scored_split", "val") for r in recs}),
            "plateau": {"reached": sum(1 for r in recs if r.get("plateau")),
                        "assessed": sum(1 for r in recs if r.get("plateau") is not None), "runs": len(recs)},
            "curves": {r["seed"]: r.get("curve", []) for r in recs},
            "monitor": recs[0].get("monitor"),
        }
        if recs[0]["kind"] == "rule":
            variants[name]["rule"] = {"options": recs[0].get("rule"), "citation": recs[0].get("citation")}
    for name, v in variants.items():
        if v["kind"] not in SCORED_KINDS:
            continue
        missing = [b for b in v["baselines"] if b not in variants]
        v["delta_m"] = {}
        if missing:
            v["delta_m_missing"] = missing
            continue
        v["delta_m_seeds"] = {}
        for dv in DELTA_VARIANTS:
            sel = _selection(pair, dv)
            per_seed = {}
            for r in by_variant[name]:
                paired = all(any(b_r["seed"] == r["seed"] for b_r in by_variant[b]) for b in v["baselines"])
                baseline = {}
                for b in v["baselines"]:
                    baseline.update(_baseline_metrics(by_variant[b], variants[b]["tasks"], r["seed"] if paired else None))
                try:
                    per_seed[r["seed"]] = _delta_m_per_seed(r, baseline, sel, dv)
                except ValueError as exc:  # e.g. a baseline scored 0: the relative change is undefined
                    per_seed[r["seed"]] = None
                    v.setdefault("delta_m_undefined", {})[r["seed"]] = str(exc)
            finite = [x for x in per_seed.values() if x is not None and math.isfinite(x)]
            v["delta_m"][dv] = {**stats(finite), **mean_interval(finite)}
            v["delta_m_seeds"][dv] = per_seed
    first_baselines = next((v["baselines"] for v in variants.values() if v["kind"] == "multitask"), [])
    total = {k: sum(variants[b][k]["mean"] or 0.0 for b in first_baselines if b in variants)
             for k in ("params", "flops_per_image")}
    total["latency_ms"] = (sum(measured[b]["latency_ms"] for b in first_baselines)
                           if first_baselines and all(b in measured for b in first_baselines) else None)
    config = Path(pair.config)
    shown = config.relative_to(Path.cwd()) if config.is_relative_to(Path.cwd()) else config
    multitask = {vn: v for vn, v in variants.items() if v["kind"] in SCORED_KINDS and "delta_m_seeds" in v}
    paired = {}
    if reference in multitask:
        for dv in DELTA_VARIANTS:
            paired[dv] = compare_variants({vn: v["delta_m_seeds"][dv] for vn, v in multitask.items()}, reference)
    protocol = next((r["protocol"] for r in records if r.get("protocol")), {})
    return {"config": str(shown), "data": pair.data, "protocol": protocol,
            "reference": reference, "paired": paired,
            "delta_m": {"per_task": pair.per_task, "per_metric": pair.per_metric},
            "variants": variants, "single_task_total": {"baselines": first_baselines, **total}}


def summarize(grid: Grid, records: dict[str, dict], costs: dict[str, Any] | None = None) -> dict[str, Any]:
    keys = ({run.key for run in grid.runs(Path("."))} | {run.key for run in grid.composite_runs(Path("."))}
            | {rule.key(seed) for rule in grid.rule_runs(Path(".")) for seed in rule.seeds})
    current = [r for r in records.values() if r["key"] in keys]
    order = list(dict.fromkeys([run.variant for run in grid.runs(Path("."))]
                               + [c.variant for c in grid.composite_runs(Path("."))]
                               + [rule.variant for rule in grid.rule_runs(Path("."))]))
    machines = []
    for r in current:
        if r["machine"] and r["machine"] not in machines:
            machines.append(r["machine"])
    expected = len(keys)
    return {
        "name": grid.name, "grid": str(grid.path), "seeds": grid.seeds, "protocol_overrides": grid.protocol,
        "finished_runs": len(current), "expected_runs": expected,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machines": machines,
        "reference": grid.reference,
        "pairs": {p.name: summarize_pair(p, [r for r in current if r["pair"] == p.name], grid.reference,
                                         (costs or {}).get(p.name), order)
                  for p in grid.active_pairs()},
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
             f"Config `{p['config']}`; {proto.get('train_images', '?')} train / {proto.get('val_images', '?')} val / "
             f"{proto.get('test_images', 0) or 'no'} test images "
             f"of {shape}; epochs: {proto.get('epochs', '?')}, batch: {proto.get('batch_size', '?')}, "
             f"optimizer steps: {proto.get('steps', '?')}.", ""]
    per_task = ", ".join(f"{t}/{m}" for t, m in p["delta_m"]["per_task"].items())
    per_metric = [f"{t}/{m}" for t, ms in p["delta_m"]["per_metric"].items() for m in ms]
    lines += [f"- {DELTA_VARIANTS['per_task']} (T={len(p['delta_m']['per_task'])}): {per_task}",
              f"- {DELTA_VARIANTS['per_metric']} (K={len(per_metric)}): {', '.join(per_metric)}", ""]
    present = {k for v in p["variants"].values() for k in v["metrics"]}
    declared = [f"{t}/{m}" for t, m in p["delta_m"]["per_task"].items()] + per_metric
    metric_cols = [k for k in dict.fromkeys(declared) if k in present]
    costs = [v["cost"] for v in p["variants"].values() if v.get("cost")]
    ref = p.get("reference") if any(c["step_vs_reference"] is not None for c in costs) else None
    cost_cols = (["train step [ms]", f"step × {ref}", "latency [ms]", f"latency × {ref}"] if ref
                 else ["train step [ms]", "latency [ms]"]) if costs else []
    header = (["variant", "seeds"] + [c.replace("/", " ") for c in metric_cols]
              + [f"{DELTA_VARIANTS['per_task']} [%]", f"{DELTA_VARIANTS['per_metric']} [%]",
                 "params", "MFLOPs/img"] + cost_cols)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for vname, v in p["variants"].items():
        dm = v.get("delta_m") or {}
        row = [_label(vname, v), f"{len(v['seeds'])} ({', '.join(map(str, v['seeds']))})"]
        row += [_pm(v["metrics"].get(c), ".4f") for c in metric_cols]
        row += [_pm(dm.get(dv), "+.2f") if v["kind"] != "baseline" else "(reference)" for dv in DELTA_VARIANTS]
        params = v["params"]["mean"]
        flops = v["flops_per_image"]["mean"]
        row += [f"{params:,.0f}" if params is not None else "–", f"{flops / 1e6:,.1f}" if flops is not None else "–"]
        if cost_cols:
            c = v.get("cost") or {}
            cells = [(c.get("step_ms"), ".1f", ""), (c.get("step_vs_reference"), ".2f", "×"),
                     (c.get("latency_ms"), ".2f", ""), (c.get("latency_vs_reference"), ".2f", "×")]
            row += [f"{x:{fmt}}{unit}" if x is not None else "–" for x, fmt, unit in (cells if ref else cells[::2])]
        lines.append("| " + " | ".join(row) + " |")
    if costs:
        c = costs[0]
        lines += ["", f"Costs measured once before the runs, in one process, the variants interleaved "
                      f"(mtdense.bench.costs): median over {c['rounds']} rounds of {c['train_steps']} training steps "
                      f"(one training batch; forward, balancer backward, optimizer step; no data loading) and "
                      f"{c['latency_runs']} batch-1 forwards; clock: {c['clock']} time; ratios = median of the "
                      "per-round ratios."]
    else:
        lines += ["", "Costs not measured for this bench folder (they are measured when `mtdense bench` starts "
                      "its runs; `--report-only` measures nothing)."]
    tot = p["single_task_total"]
    if tot["baselines"]:
        latency = f", {tot['latency_ms']:.2f} ms" if tot.get("latency_ms") is not None else ""
        lines += ["", f"Single-task baselines together ({', '.join(tot['baselines'])}): {tot['params']:,.0f} params, "
                      f"{tot['flops_per_image'] / 1e6:,.1f} MFLOPs/img{latency}."]
    rules = {vn: v["rule"] for vn, v in p["variants"].items() if v["kind"] == "rule"}
    if rules:
        lines += ["", "Non-learned rules, scored once on the same split as the learned variants (deterministic: "
                      "the same value stands for every seed, so their paired differences vary with the reference's "
                      "seeds only; 0 parameters, no training):"]
        lines += [f"- `{vn}` (`{r['options']}`): {r['citation']}" for vn, r in rules.items()]
    missing = {vn: v["delta_m_missing"] for vn, v in p["variants"].items() if v.get("delta_m_missing")}
    for vn, bl in missing.items():
        lines.append(f"\nΔm of {vn} needs the unfinished baseline(s) {', '.join(bl)}.")
    for vn, v in p["variants"].items():
        for seed, why in (v.get("delta_m_undefined") or {}).items():
            lines.append(f"\nΔm of {vn}, seed {seed}: undefined and left out of its mean and paired tests ({why}).")
    return lines + [""] + _paired_markdown(p)


def _label(name: str, v: dict[str, Any]) -> str:
    return f"{name} ({NON_LEARNED})" if v["kind"] == "rule" else name


def _ci(ci: Any, fmt: str = "+.2f") -> str:
    return "–" if ci is None else f"[{format(ci[0], fmt)}, {format(ci[1], fmt)}]"


def _plateau(p: dict[str, int]) -> str:
    """Runs at plateau out of the runs the criterion could judge (it needs ≥ 4 evaluations)."""
    if not p["assessed"]:
        return f"not assessed ({p['runs']} runs with < 4 evaluations)"
    unjudged = p["runs"] - p["assessed"]
    return f"{p['reached']}/{p['assessed']}" + (f" ({unjudged} not assessed)" if unjudged else "")


def _plateau_of(v: dict[str, Any]) -> str:
    return "– (not trained)" if v["kind"] == "rule" else _plateau(v["plateau"])


def _paired_markdown(p: dict[str, Any]) -> list[str]:
    """Δm vs single-task with its CI, paired differences vs the reference, Holm verdicts, MDE."""
    lines = []
    for dv, result in p.get("paired", {}).items():
        label = DELTA_VARIANTS[dv]
        lines += [f"### {label}: paired differences vs `{p['reference']}`", "",
                  f"d = {label}(variant) − {label}(`{p['reference']}`) per seed, in percentage points (pp); "
                  "positive = the variant is better. CIs are 95 % (t and percentile bootstrap); p is the paired "
                  "t-test, Holm-adjusted across this table's variants; the Holm-level CI (level in brackets) "
                  "decides the verdict.", "",
                  f"| variant | seeds | {label} vs single-task [%] (95 % CI) | d [pp] | 95 % CI t | 95 % CI bootstrap "
                  f"| p (Holm) | Holm-level CI | verdict | runs at plateau |", "|" + "---|" * 10]
        ref = p["variants"][p["reference"]]
        dm = ref["delta_m"][dv]
        lines.append(f"| {_label(p['reference'], ref)} (reference) | {dm['n']} | {_fmt(dm['mean'])} {_ci(dm['ci_t'])} "
                     f"| – | – | – | – | – | – | {_plateau_of(ref)} |")
        for vn, c in result["comparisons"].items():
            v = p["variants"][vn]
            dm = v["delta_m"][dv]
            level = f" ({c['holm_level']:.4f})" if c["holm_level"] is not None else ""
            p_holm = "–" if c["p_holm"] is None else f"{c['p_holm']:.3g}"
            lines.append(f"| {_label(vn, v)} | {c['n']} | {_fmt(dm['mean'])} {_ci(dm['ci_t'])} | {_fmt(c['mean'])} | {_ci(c['ci_t'])} "
                         f"| {_ci(c['ci_bootstrap'])} | {p_holm} | {_ci(c['ci_holm'])}{level} | **{c['verdict']}** "
                         f"| {_plateau_of(v)} |")
        mde = result["mde"]
        lines += ["", f"Minimum detectable effect (paired t-test, two-sided α = 0.05/{result['m']} (Holm's strictest step), "
                      f"power 0.8, n = {result['n']} seeds, pooled sd of d = {_fmt(result['sd'], '.2f')} pp): "
                      f"**± {_fmt(mde, '.2f')} pp**.", ""]
    return lines


def _fmt(x: float | None, fmt: str = "+.2f") -> str:
    return "–" if x is None else format(x, fmt)


def markdown(summary: dict[str, Any], plot_name: str | None) -> str:
    lines = [f"# Benchmark `{summary['name']}`", ""]
    if summary["finished_runs"] < summary["expected_runs"]:
        lines += [f"> **PARTIAL RESULTS: {summary['finished_runs']} of {summary['expected_runs']} runs finished.** "
                  "The seeds column gives each variant's finished seeds; verdicts and CIs use only those, and "
                  "variants missing the reference's seeds are compared on the seeds both have. "
                  "Rerun `mtdense bench --resume` to complete the grid.", ""]
    lines += [f"Produced by `mtdense bench {summary['grid']}` ({summary['generated']}).", "", "## Protocol", "",
             f"- Seeds: {', '.join(map(str, summary['seeds']))}; shared overrides: "
             + (", ".join(f"`{k}={v}`" for k, v in summary["protocol_overrides"].items()) or "none")]
    for m in summary["machines"]:
        lines.append(f"- Machine: nproc {m['nproc']}, torch {m['torch']}, torch threads: {m['threads']}, "
                     f"Python {m['python']}, {m['processor']}")
    lines += [
        "- Metrics: each run is evaluated on val after every epoch (learning curves in the _curves PNG); the "
        "best-on-val checkpoint (`trainer.monitor`) is scored ONCE on the test split (runs without a test split: "
        "final val, marked). Plateau: the last quarter of the evaluations improved the monitored value by "
        "< 2 % over the best earlier one (mtdense.bench.scoring). Δm = mean over the selected metrics of "
        "±(M_mtl − M_stl)/M_stl × 100 (positive = better than single-task), per seed against the baselines "
        "of the same seed; mean ± sample std over seeds, 95 % CIs in the paired tables.",
        "- Cost: parameters; FLOPs of one batch-1 forward at the training resolution "
        "(torch.utils.flop_counter: conv/matmul, 1 multiply-add = 2 FLOPs); training step time and "
        "batch-1 latency measured once per variant, interleaved in one process (below each table), because "
        "timings inside the runs measure the neighbouring worker too.", ""]
    for name, p in summary["pairs"].items():
        lines += _pair_markdown(name, p)
    if summary["skipped"]:
        lines += ["## Not run", ""] + [f"- {n}: {why}" for n, why in summary["skipped"].items()] + [""]
    if plot_name:
        lines += [f"![{DELTA_VARIANTS['per_task']} vs parameters and latency]({plot_name})", ""]
    return "\n".join(lines)


def write_report(grid: Grid, records: dict[str, dict], report_dir: Path,
                 costs: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``<report_dir>/<name>.md``, ``.json``, ``.png`` and ``_curves.png``; returns their paths."""
    from mtdense.bench.plot import write_curves, write_plot

    report_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(grid, records, costs)
    paths = {"json": report_dir / f"{grid.name}.json", "markdown": report_dir / f"{grid.name}.md"}
    png = write_plot(summary, report_dir / f"{grid.name}.png", DELTA_VARIANTS["per_task"])
    if png is not None:
        paths["plot"] = png
    curves = write_curves(summary, report_dir / f"{grid.name}_curves.png")
    if curves is not None:
        paths["curves"] = curves
    paths["json"].write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    paths["markdown"].write_text(markdown(summary, png.name if png else None))
    return paths
