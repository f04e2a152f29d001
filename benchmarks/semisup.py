"""Semi-supervised street benchmark report: every variant against the supervised-only model,
paired by seed, with 95 % confidence intervals and the minimum detectable effect.

Reads the results of ``mtdense bench`` on configs/bench/semisup_supervised.yaml,
configs/bench/semisup.yaml and configs/bench/semisup_ccam.yaml run into one folder
(runs/bench/semisup_v2/results.jsonl; partial results are fine) and writes
benchmarks/results/semisup.md and .json. The grids share the pair names ``f8`` and ``f4`` (the
label fraction); a variant's label names its method, batch transforms and CCAM
(``meanteacher+both+ccam``).

Statistics, per label fraction and for every variant V:

- per seed s, Δm_s = Δm of V_s against the supervised-only, no-augmentation, no-CCAM model of
  the same fraction and the SAME seed (Maninis et al. 2019 / Vandenhende et al. 2021 via
  ``mtdense.metrics.delta_m``; "per_metric" over mIoU, AbsRel, RMSE, δ1 and "per_task" over
  mIoU and AbsRel), and the raw paired differences of each metric;
- mean over seeds with a 95 % t-interval (n − 1 degrees of freedom) of the paired values, the
  paired t-test p-value (H0: no difference) and its Holm-adjusted value over all variants of
  the fraction (per_metric Δm);
- minimum detectable effect of a paired t-test at α = 0.05 (two-sided) and 80 % power,
  MDE = (t_{0.975, n−1} + t_{0.80, n−1}) · sd / √n, from the observed sd of Δm;
- the same paired statistics for the CONTRASTS that isolate one part (e.g. AffineMix: mean
  teacher + AffineMix vs mean teacher alone, same seed).

    python benchmarks/semisup.py [--results runs/bench/semisup_v2/results.jsonl]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from pathlib import Path

from mtdense.bench.grid import load_grid
from mtdense.bench.report import write_report
from mtdense.bench.results import ResultsFile
from mtdense.bench.statistics import holm, minimum_detectable_effect, t_interval, t_test_p
from mtdense.metrics.delta_m import delta_m

ROOT = Path(__file__).resolve().parents[1]
METRICS = {"semantic": ["miou"], "depth": ["abs_rel", "rmse", "delta1"]}
PER_TASK = {"semantic": ["miou"], "depth": ["abs_rel"]}
FRACTIONS = {"f8": "1/8 (16 of 128 images labelled)", "f4": "1/4 (32 of 128 images labelled)"}
GRIDS = ("semisup_supervised", "semisup", "semisup_ccam")
REFERENCE = "supervised+none+noccam"
#: (variant, compared with, what the difference isolates)
CONTRASTS = [
    ("meanteacher+none+noccam", "supervised+none+noccam", "mean teacher (unlabelled images, pseudo-labels, depth consistency)"),
    ("meanteacher+affinemix+noccam", "meanteacher+none+noccam", "AffineMix, given the mean teacher"),
    ("meanteacher+coloraug+noccam", "meanteacher+none+noccam", "ColorAug, given the mean teacher"),
    ("meanteacher+both+noccam", "meanteacher+none+noccam", "ColorAug + AffineMix, given the mean teacher"),
    ("supervised+none+ccam", "supervised+none+noccam", "CCAM, supervised-only"),
    ("meanteacher+none+ccam", "meanteacher+none+noccam", "CCAM, given the mean teacher"),
    ("meanteacher+affinemix+ccam", "meanteacher+affinemix+noccam", "CCAM, given mean teacher + AffineMix"),
    ("meanteacher+coloraug+ccam", "meanteacher+coloraug+noccam", "CCAM, given mean teacher + ColorAug"),
    ("meanteacher+none+ccam", "supervised+none+ccam", "mean teacher, given CCAM"),
    ("meanteacher+both+ccam", "meanteacher+both+noccam", "CCAM, given mean teacher + both augmentations"),
    ("meanteacher+both+ccam", "supervised+none+ccam", "mean teacher + both augmentations, given CCAM"),
    ("meanteacher+both+ccam", "supervised+none+noccam", "the whole system vs supervised-only"),
]


def paired(values: list[float]) -> dict:
    """Mean, 95 % t-interval, p (H0: mean 0) and the MDE of paired per-seed values."""
    n = len(values)
    sd = statistics.stdev(values) if n >= 2 else None
    return {"n": n, "mean": statistics.fmean(values) if values else math.nan, "ci": t_interval(values),
            "p": t_test_p(values), "mde": minimum_detectable_effect(sd, n), "sd": sd}


def holm_or_none(pvalues: dict[str, float | None]) -> dict[str, float | None]:
    """Holm-adjusted p-values of the variants that have one (None for the others)."""
    adjusted, _ = holm({k: p for k, p in pvalues.items() if p is not None})
    return {k: adjusted.get(k) for k in pvalues}


def compare(seeds: dict[int, dict], reference: dict[int, dict]) -> dict:
    """Paired per-seed statistics of one variant against another (seeds both have)."""
    common = sorted(set(seeds) & set(reference))
    return {"seeds": common,
            "metrics": {f"{t}/{m}": statistics.fmean(seeds[s][t][m] for s in common) if common else None
                        for t, ms in METRICS.items() for m in ms},
            "diff": {f"{t}/{m}": paired([seeds[s][t][m] - reference[s][t][m] for s in common])
                     for t, ms in METRICS.items() for m in ms},
            "delta_m": {name: paired([delta_m(seeds[s], reference[s], sel, name) for s in common])
                        for name, sel in (("per_metric", METRICS), ("per_task", PER_TASK))}}


def analyse(records: dict[str, dict]) -> dict:
    by = {}  # (fraction, variant) -> {seed: metrics}
    for r in records.values():
        if r["kind"] == "multitask" and r["pair"] in FRACTIONS:
            by.setdefault((r["pair"], r["variant"]), {})[r["seed"]] = r["metrics"]
    out = {}
    for fraction in FRACTIONS:
        reference = by.get((fraction, REFERENCE), {})
        rows = {variant: {"variant": variant, **compare(seeds, reference)}
                for (frac, variant), seeds in sorted(by.items()) if frac == fraction and variant != REFERENCE}
        adjusted = holm_or_none({k: r["delta_m"]["per_metric"]["p"] for k, r in rows.items()})
        for k, r in rows.items():
            r["delta_m"]["per_metric"]["p_holm"] = adjusted[k]
        ref_metrics = {f"{t}/{m}": statistics.fmean(v[t][m] for v in reference.values()) if reference else None
                       for t, ms in METRICS.items() for m in ms}
        contrasts = [{"variant": a, "against": b, "isolates": what, **compare(by[(fraction, a)], by[(fraction, b)])}
                     for a, b, what in CONTRASTS if (fraction, a) in by and (fraction, b) in by]
        out[fraction] = {"reference_seeds": sorted(reference), "reference": ref_metrics, "rows": rows,
                         "contrasts": contrasts}
    return out


def _ci(s: dict, fmt: str = "+.2f") -> str:
    if s["ci"] is None:
        return format(s["mean"], fmt) if s["n"] else "–"
    return f"{format(s['mean'], fmt)} [{format(s['ci'][0], fmt)}, {format(s['ci'][1], fmt)}]"


DIAGNOSIS = """## Why v2 uses GroupNorm: BatchNorm with label-less images (measured on the void v1 protocol)

Single runs (seed 0, 1/8 labelled, v1 protocol: 60 steps, BatchNorm model), val mIoU / AbsRel:

| run | BatchNorm | GroupNorm (backbone and decoder) |
|---|---|---|
| supervised-only, 8 labelled per batch | 0.472 / 0.369 | 0.444 / 0.400 |
| + 8 unlabelled images per batch (masks all false, no teacher, no coupling) | 0.367 / 0.715 | 0.440 / 0.388 |
| + the same 8 images with their labels kept (`keep_targets: [semantic, depth]`) | 0.489 / 0.324 | – |
| mean teacher with both coupling weights 0 | 0.367 / 0.715 (identical to the row without teacher) | – |

Images that carry no loss but share BatchNorm's batch statistics with the labelled images let the network use
them to shape the normalisation of the labelled ones; evaluation with running statistics then loses most of what
was learned. With GroupNorm the same label-less images cost nothing, so the v2 model has GroupNorm in backbone,
decoder and heads (`configs/street/semisup_base.yaml`). The v1 tables are kept, marked void, in
[semisup_v1_void.md](semisup_v1_void.md).
"""


def findings(summary: dict) -> list[str]:
    """Which variants and parts differ, by the 95 % interval of Δm (per-metric) excluding 0."""
    lines = ["## Findings (computed from the tables)", ""]
    for fraction, data in summary.items():
        better, worse, unclear = [], [], []
        for key, row in data["rows"].items():
            pm = row["delta_m"]["per_metric"]
            if pm["ci"] is None:
                continue
            text = f"{key} ({pm['mean']:+.1f} % [{pm['ci'][0]:+.1f}, {pm['ci'][1]:+.1f}])"
            (better if pm["ci"][0] > 0 else worse if pm["ci"][1] < 0 else unclear).append(text)
        lines += [f"- {FRACTIONS[fraction]}, vs supervised-only: better: {', '.join(better) or 'none'}; "
                  f"worse: {', '.join(worse) or 'none'}; interval includes 0: {', '.join(unclear) or 'none'}."]
        parts = []
        for c in data["contrasts"]:
            pm = c["delta_m"]["per_metric"]
            if pm["ci"] is None:
                continue
            verdict = "helps" if pm["ci"][0] > 0 else "hurts" if pm["ci"][1] < 0 else "no detectable effect"
            parts.append(f"{c['isolates']}: {verdict} ({pm['mean']:+.1f} % [{pm['ci'][0]:+.1f}, {pm['ci'][1]:+.1f}], "
                         f"MDE {pm['mde']:.1f} %)")
        if parts:
            lines += [f"- {FRACTIONS[fraction]}, parts (Δm per-metric, paired): " + "; ".join(parts) + "."]
    return lines + [""]


def _row_cells(row: dict) -> str:
    m, d, dm = row["metrics"], row["diff"], row["delta_m"]
    pm = dm["per_metric"]
    miou_pt = {**d["semantic/miou"], "mean": 100 * d["semantic/miou"]["mean"],
               "ci": None if d["semantic/miou"]["ci"] is None else [100 * c for c in d["semantic/miou"]["ci"]]}
    return (f"{len(row['seeds'])} | {m['semantic/miou']:.4f} | {_ci(miou_pt)} | {m['depth/abs_rel']:.4f} | "
            f"{_ci(d['depth/abs_rel'], '+.4f')} | {m['depth/rmse']:.3f} | {m['depth/delta1']:.4f} | {_ci(pm)} | "
            f"{'–' if pm['mde'] is None else format(pm['mde'], '.1f')} | {_ci(dm['per_task'])} |")


HEADER = ("seeds | mIoU | ΔmIoU [pt] (95 % CI) | AbsRel | ΔAbsRel (95 % CI) | RMSE [m] | δ1 | "
          "Δm per-metric [%] (95 % CI) | MDE [%] | Δm per-task [%] (95 % CI) |")


def _table(data: dict) -> list[str]:
    """The reference line, one row per variant of one fraction, and the contrasts."""
    ref = data["reference"]
    if not data["reference_seeds"]:
        return ["(no supervised-only reference finished yet)", ""]
    lines = [f"Supervised-only reference `{REFERENCE}` (seeds {', '.join(map(str, data['reference_seeds']))}): "
             f"mIoU {ref['semantic/miou']:.4f}, AbsRel {ref['depth/abs_rel']:.4f}, RMSE {ref['depth/rmse']:.3f} m, "
             f"δ1 {ref['depth/delta1']:.4f}.", "",
             "Every variant vs the reference (paired by seed; Holm over the variants of this fraction):", "",
             "| variant | " + HEADER.replace("MDE [%] |", "p / Holm p | MDE [%] |"), "|" + "---|" * 13]
    for row in data["rows"].values():
        if not row["seeds"]:
            continue
        pm = row["delta_m"]["per_metric"]
        p = "–" if pm["p"] is None else f"{pm['p']:.3f} / {pm['p_holm']:.3f}"
        cells = _row_cells(row).split(" | ")
        lines.append(f"| {row['variant']} | " + " | ".join(cells[:8]) + f" | {p} | " + " | ".join(cells[8:]))
    if data["contrasts"]:
        lines += ["", "Contrasts that isolate one part (variant vs the variant without that part, paired by seed; "
                  "metric columns are the variant's; no multiplicity adjustment):", "",
                  "| part | variant vs | " + HEADER, "|" + "---|" * 13]
        for c in data["contrasts"]:
            if c["seeds"]:
                lines.append(f"| {c['isolates']} | {c['variant']} vs {c['against']} | " + _row_cells(c))
    return lines + [""]


def markdown(summary: dict, n_records: int, expected: int) -> str:
    partial = n_records < expected
    lines = [
        "# Semi-supervised segmentation + depth (SYNTHETIC street scenes), v2", "",
        "Produced by `mtdense bench` on `configs/bench/semisup_supervised.yaml`, `configs/bench/semisup.yaml` and "
        "`configs/bench/semisup_ccam.yaml` (one results folder, runs/bench/semisup_v2) + `python benchmarks/semisup.py` "
        f"({n_records} of {expected} runs finished"
        + (": **PARTIAL** — the bench was stopped at the deadline; rows with fewer than 3 seeds have wider or no "
           "intervals; continue with the same commands and --resume)." if partial else ")."), "",
        "The first grid (v1: BatchNorm, no ramp-up, 60 steps) is void: [semisup_v1_void.md](semisup_v1_void.md) says why.", "",
        *(["To finish the grid (finished runs are skipped, interrupted ones continue from their checkpoints):", "",
           "```bash", *[f"mtdense bench configs/bench/{g}.yaml --out runs/bench/semisup_v2 --resume --workers 1"
                        for g in GRIDS], "python benchmarks/semisup.py", "```", ""] if partial else []),
        "## Protocol (short; read the numbers as a small-scale comparison)", "",
        "- Data: SYNTHETIC street scenes (`mtdense data synth-street`, 128 train / 32 val, 32×64 px, 7 categories "
        "+ metric depth). Labelled subset: 1/8 or 1/4 of the 128 training images (deterministic SHA-256 rule, "
        "split_seed 0, the same subset for every seed); the other images are unlabelled for BOTH tasks.",
        "- Model: U-Net encoder (width 8, depth 4) with one decoder branch per task, GroupNorm everywhere; CCAM "
        "(mtdense reconstruction) at every decoder stage where marked `ccam`.",
        "- Training: 160 AdamW steps (lr 1e-2, cosine, 10 warm-up steps). *supervised*: 8 labelled images per batch. "
        "*meanteacher*: 8 labelled + 8 unlabelled per batch, EMA teacher (decay 0.99 after a 20-step warm-up), "
        "pseudo-label CE for segmentation on pixels where the teacher's confidence ≥ 0.9 (weight 1) and L1 "
        "consistency of log(1+depth) with the teacher (weight 0.1), on pixels without labels; both weights ramped "
        "up by exp(−5(1−t)²) from step 20 to step 100 (Laine & Aila 2017). Batch transforms: `affinemix` (p 0.5, "
        "s∈[0.5,1.5], ±10°, ±25 %), `coloraug` (p 0.5, half the classes), `both` (ColorAug then AffineMix), on "
        "labels/depth where valid, else the teacher's prediction.",
        "- Evaluation: the STUDENT, once after the last step, on the 32 val images (mIoU over 7 categories; depth "
        "AbsRel, RMSE [m], δ1 on valid pixels ≤ 80 m).",
        "- Statistics: seeds 0–2 planned (init, batch order, augmentation draws; column `seeds` says how many a row "
        "has). Every variant is compared with the "
        "supervised-only model (no transforms, no CCAM) of the same fraction and the same seed: paired per-seed "
        "differences, mean with a 95 % t-interval (n − 1 degrees of freedom: 2 with 3 seeds, 1 with 2 — very wide; "
        "none with 1), paired t-test p "
        "and Holm-adjusted p over the variants of a fraction, and the minimum detectable effect (MDE, α 0.05 "
        "two-sided, 80 % power) of Δm from the observed spread. Δm per-metric = mean over mIoU, AbsRel, RMSE, δ1; "
        "Δm per-task = mean over mIoU and AbsRel; positive = better than the compared model. ΔmIoU and ΔAbsRel "
        "are raw differences (variant − compared model): higher mIoU and lower AbsRel are better.",
        "- The single-task baselines (the bench's own reports, Δm vs single-task) are shared by the three grids "
        "(same pair names, same configs).", ""]
    for fraction, data in summary.items():
        lines += [f"## Label fraction {FRACTIONS[fraction]}", ""] + _table(data)
    lines += findings(summary) + [DIAGNOSIS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(ROOT / "runs" / "bench" / "semisup_v2" / "results.jsonl"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "semisup"))
    parser.add_argument("--bench-reports", action="store_true",
                        help="also rewrite the three grids' own reports (Δm vs single-task) from all records")
    parser.add_argument("--expected", type=int, default=54, help="distinct runs of the three grids (24 + 24 + 6)")
    args = parser.parse_args(argv)
    records = ResultsFile(args.results).read()
    summary = analyse(records)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(summary, len(records), args.expected))
    if args.bench_reports:
        for grid in GRIDS:
            os.chdir(ROOT)  # the reports name the grid and configs relative to the repository
            write_report(load_grid(f"configs/bench/{grid}.yaml"), records, out.parent)
    print(f"{len(records)} runs -> {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
