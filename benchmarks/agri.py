"""MTLSegFormer benchmark on SYNTHETIC crop fields: report + paired per-task gains.

The runs come from ``mtdense bench configs/bench/agri.yaml --resume`` (runs/bench/agri). This
script writes ``benchmarks/results/agri.md`` (.json, .png) from the seeds whose runs have all
finished (the bench's own report: mean ± std, Δm against the baselines' seed means), then
appends the paired analysis the conclusion rests on: for every multi-task variant and seed s,
the relative gain of each task over the single-task SegFormer *of the same seed*,

    g_t(s) = 100 · (M_t^MTL(s) − M_t^ST(s)) / M_t^ST(s)      (higher-is-better metrics)

with mean and 95 % Student-t confidence interval over seeds, and the per-seed difference
g_rows(s) − g_plants(s) with its interval ("does the row task gain more than the plant task?").

    python benchmarks/agri.py                   # from the finished runs
    python benchmarks/agri.py --from-json       # from the per-seed values kept in agri.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from pathlib import Path

from scipy import stats as scipy_stats

from mtdense.bench.grid import load_grid
from mtdense.bench.report import write_report

ROOT = Path(__file__).resolve().parents[1]
METRICS = [("plants", "jaccard"), ("plants", "f1@0"), ("rows", "jaccard"), ("rows", "f1@0"), ("rows", "f1@2")]
PAIRED_HEADING = "## Paired per-task gains over the single-task SegFormers (same seed)"
CONTRAST = [("rows", "f1@2", "plants", "jaccard"), ("rows", "jaccard", "plants", "jaccard")]


def mean_ci(xs: list[float]) -> str:
    if len(xs) < 2:
        return f"{xs[0]:+.1f} (n=1)" if xs else "–"
    m, half = statistics.fmean(xs), scipy_stats.t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return f"{m:+.1f} [{m - half:+.1f}, {m + half:+.1f}]"


def paired_section(records: list[dict], seeds: list[int]) -> str:
    by = {(r["variant"], r["seed"]): r["metrics"] for r in records}
    variants = list(dict.fromkeys(r["variant"] for r in records if r["kind"] == "multitask"))

    def gain(variant: str, seed: int, task: str, metric: str) -> float:
        mtl, single = by[(variant, seed)][task][metric], by[(f"baseline:{task}", seed)][task][metric]
        return 100 * (mtl - single) / single

    head = " | ".join(f"{t} {m}" for t, m in METRICS)
    contrast = " | ".join(f"{a} {am} − {b} {bm}" for a, am, b, bm in CONTRAST)
    lines = ["", PAIRED_HEADING, "",
             "SYNTHETIC crop fields (mtdense.domains.agri). Relative gain in % per seed, mean [95 % t-interval] "
             f"over seeds {seeds} (n = {len(seeds)}); positive = the multi-task model is better. The last columns "
             "are per-seed differences of gains (positive = rows gain more than plants). Latencies above were "
             "measured while other jobs shared the 2 CPU cores: compare them only roughly.", "",
             f"| variant | {head} | {contrast} |", "|---" * (1 + len(METRICS) + len(CONTRAST)) + "|"]
    for v in variants:
        ok = [s for s in seeds if all(k in by for k in [(v, s), ("baseline:plants", s), ("baseline:rows", s)])]
        cells = [mean_ci([gain(v, s, t, m) for s in ok]) for t, m in METRICS]
        cells += [mean_ci([gain(v, s, a, am) - gain(v, s, b, bm) for s in ok]) for a, am, b, bm in CONTRAST]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def records_from_summary(summary: dict) -> tuple[list[dict], list[int]]:
    """The per-seed scored values a bench report keeps (``metrics_per_seed``) as result records."""
    records = []
    for pair in summary["pairs"].values():
        for name, v in pair["variants"].items():
            for seed, values in v["metrics_per_seed"].items():
                metrics: dict[str, dict[str, float]] = {}
                for key, value in values.items():
                    task, metric = key.split("/", 1)
                    metrics.setdefault(task, {})[metric] = value
                records.append({"variant": name, "kind": v["kind"], "seed": int(seed), "metrics": metrics})
    return records, list(summary["seeds"])


def append_paired_section(markdown: Path, records: list[dict], seeds: list[int]) -> None:
    text = markdown.read_text().split(PAIRED_HEADING)[0].rstrip("\n") + "\n"
    markdown.write_text(text + paired_section(records, seeds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="configs/bench/agri.yaml")
    parser.add_argument("--out", default="runs/bench/agri")
    parser.add_argument("--from-json", action="store_true",
                        help="recompute the paired section from benchmarks/results/agri.json (no run store needed)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if args.from_json:
        report = ROOT / "benchmarks/results/agri"
        records, seeds = records_from_summary(json.loads(report.with_suffix(".json").read_text()))
        append_paired_section(report.with_suffix(".md"), records, seeds)
        return
    records = [json.loads(line) for line in (Path(args.out) / "results.jsonl").read_text().splitlines() if line]
    grid = load_grid(args.grid)
    runs_per_seed = len(grid.runs(Path(args.out))) // len(grid.seeds)
    seeds = [s for s in grid.seeds if sum(r["seed"] == s for r in records) == runs_per_seed]
    if not seeds:
        raise SystemExit(f"{args.out}: no seed has all {runs_per_seed} runs finished yet")
    grid = load_grid(args.grid, len(seeds))
    keep = {run.key for run in grid.runs(Path(args.out))}
    done = {r["key"]: r for r in records if r["key"] in keep}
    paths = write_report(grid, done, grid.report_dir)
    append_paired_section(paths["markdown"], list(done.values()), seeds)
    print(json.dumps({k: str(p) for k, p in paths.items()}))


if __name__ == "__main__":
    main()
