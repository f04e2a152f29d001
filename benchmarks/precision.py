"""Does the default ``trainer.precision: auto`` / ``channels_last: auto`` keep the flagship's accuracy,
and what does each mode cost per step on this machine?

1. Step cost: one MTCF training step (forward + backward, batch 16 of 10×64×64, 1 thread) in fp32,
   fp32 + channels_last, bf16 autocast and bf16 + channels_last, median of repeated steps.
2. Paired seeds: `configs/precip/mtcf.yaml` trained in each of ``MODES`` — fp32 (no
   channels_last), ``auto`` (what it resolves to on this machine is recorded) and bf16 +
   channels_last (what ``auto`` picks on bf16 hardware) — on the same SYNTHETIC tiles, seeds
   0..N-1 (same initialisation and batch order across modes), scored once on the test split from
   the checkpoint chosen by validation; per-seed differences mode − fp32 with their mean and 95 %
   Student-t confidence interval, and the training time of each mode.

    python benchmarks/precision.py [--out runs/bench_precision] [--seeds 5] [--epochs 10] [--scenes 48]
writes benchmarks/results/precision.md and precision.json; resumable (finished runs are skipped).
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from pathlib import Path

import torch

from mtdense.bench.results import ResultsFile
from mtdense.bench.statistics import t_interval
from mtdense.config import load_config
from mtdense.domains.precip.prepare import prepare_precip
from mtdense.domains.precip.synth import synth_precip
from mtdense.engine.checkpoint import resolve_checkpoint
from mtdense.engine.runtime import cpu_has_native_bf16
from mtdense.engine.trainer import Trainer
from mtdense.inference.predict import evaluate_checkpoint
from mtdense.strict_json import dumps

ROOT = Path(__file__).resolve().parents[1]
MODES = {"fp32": ("fp32", False), "auto": ("auto", "auto"), "bf16": ("bf16", True)}  # mode: (trainer.precision, trainer.channels_last)
STEP_MODES = {"fp32": (False, False), "fp32 + channels_last": (False, True), "bf16": (True, False),
              "bf16 + channels_last": (True, True)}  # label: (bf16 autocast, channels_last)
METRICS = {  # label: (key, higher is better)
    "F1@0.5": ("test/rain_rate/f1@0.5", True), "F1@2": ("test/rain_rate/f1@2", True),
    "F1@5": ("test/rain_rate/f1@5", True), "F1@10": ("test/rain_rate/f1@10", True),
    "CSI@2": ("test/rain_rate/csi@2", True), "RMSE": ("test/rain_rate/rmse", False),
    "CC": ("test/rain_rate/cc", True), "rain IoU": ("test/rain_class/jaccard", True),
}


def paired(diffs: list[float]) -> tuple[float, float, float]:
    """Mean of paired differences and its 95 % Student-t confidence interval (NaN with < 2 seeds)."""
    ci = t_interval(diffs) or (math.nan, math.nan)
    return statistics.fmean(diffs), ci[0], ci[1]


def run_variant(config: str, seed: int, store: Path, out: Path, epochs: int, batch: int,
                precision: str, channels_last: bool | str) -> dict:
    """Train ``configs/precip/<config>.yaml`` on ``store`` (resuming an interrupted run) and score
    its best-on-validation checkpoint once on the test split."""
    run_dir = out / f"{config}_seed{seed}"
    overrides = [f"data.{s}.path={store}" for s in ("train", "val", "test")] + [
        f"trainer.out_dir={run_dir}", f"trainer.max_epochs={epochs}", f"data.batch_size={batch}", f"seed={seed}",
        f"trainer.precision={precision}", f"trainer.channels_last={channels_last}", "logging.loggers=[{type: csv}]"]
    cfg = load_config(ROOT / "configs" / "precip" / f"{config}.yaml", overrides)
    resume = run_dir if (run_dir / "checkpoints" / "last").is_file() else None
    tic = time.perf_counter()
    trainer = Trainer(cfg)
    trainer.fit(resume=resume)
    seconds = time.perf_counter() - tic
    test = evaluate_checkpoint(resolve_checkpoint(run_dir / "checkpoints" / "best"), "test")
    resolved = {"precision": trainer.runtime.precision, "channels_last": trainer.runtime.channels_last}
    return {"metrics": test, "train_seconds": seconds, "resolved": resolved}


def write_results(res: Path, lines: list[str], summary: dict) -> None:
    """``res``.md (the report) and ``res``.json (the numbers; undefined scores as null); print the report."""
    res.parent.mkdir(parents=True, exist_ok=True)
    res.with_suffix(".md").write_text("\n".join(lines) + "\n")
    res.with_suffix(".json").write_text(dumps(summary, indent=1))
    print("\n".join(lines))


def step_cost(repeats: int = 5) -> dict[str, float]:
    """Median milliseconds of one MTCF training step per mode of ``STEP_MODES`` (1 thread)."""
    import mtdense

    torch.set_num_threads(1)
    net = mtdense.build_model(ROOT / "configs" / "precip" / "mtcf.yaml", in_channels=10)
    image = torch.randn(16, 10, 64, 64)
    out = {}
    for label, (bf16, channels_last) in STEP_MODES.items():
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        net, x = net.to(memory_format=fmt), image.contiguous(memory_format=fmt)
        times = []
        for i in range(repeats + 2):  # two warm-up steps
            tic = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = sum(v.float().mean() for v in net(x).values())
            loss.backward()
            if i >= 2:
                times.append(time.perf_counter() - tic)
        out[label] = 1000 * statistics.median(times)
        print(f"step {label}: {out[label]:.0f} ms", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_precision"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--scenes", type=int, default=48)
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "precision"))
    args = ap.parse_args()
    out = Path(args.out)
    store = out / "tiles.h5"
    if not store.is_file():
        synth_precip(out / "raw", n_scenes=args.scenes, height=128, width=128, seed=1234)
        prepare_precip(out / "raw" / "ahi", out / "raw" / "imerg", store, tile_size=64,
                       extra_channels=["decoy_01"], seed=1234)
    results = ResultsFile(out / "results.jsonl")
    for seed in range(args.seeds):
        for mode in MODES:  # interleaved, so machine load affects both modes alike
            key = f"{mode}/seed{seed}"
            if key not in results.read():
                precision, channels_last = MODES[mode]
                record = run_variant("mtcf", seed, store, out / mode, args.epochs, 16, precision, channels_last)
                results.append({"key": key, "mode": mode, "seed": seed, **record})
                print(f"{key}: {record['train_seconds']:.0f} s", flush=True)
    done = results.read()
    seeds = [s for s in range(args.seeds) if all(f"{m}/seed{s}" in done for m in MODES)]
    steps = step_cost()
    resolved = done[f"auto/seed{seeds[0]}"]["resolved"]
    summary = {"seeds": seeds, "epochs": args.epochs, "scenes": args.scenes, "metrics": {}, "step_ms": steps,
               "auto_resolved": resolved, "cpu_has_native_bf16": cpu_has_native_bf16()}
    secs = {m: [done[f"{m}/seed{s}"]["train_seconds"] for s in seeds] for m in MODES}
    summary["train_seconds"] = secs
    auto_text = f"{resolved['precision']}" + (" + channels_last" if resolved["channels_last"] else "")
    lines = [
        "# Precision: the default `auto` (and bf16) vs fp32 on the flagship (SYNTHETIC data)",
        "",
        f"On this machine `precision: auto, channels_last: auto` resolved to **{auto_text}** (CPU with native bf16: "
        f"{cpu_has_native_bf16()}; `mtdense.engine.runtime.resolve_precision`). The bf16 rows show what `auto` "
        "would pick on a CPU or GPU with bf16 hardware (here it is emulated, hence slow).",
        "",
        "## Cost of one training step",
        "",
        "MTCF (`configs/precip/mtcf.yaml`), forward + backward, batch 16 of 10×64×64 random inputs, 1 torch thread, "
        "median of 5 steps after 2 warm-up steps, all modes in one process one after another.",
        "",
        "| mode | ms / step | vs fp32 |",
        "|---|---|---|",
        *[f"| {m} | {ms:.0f} | {steps['fp32'] / ms:.2f}× |" for m, ms in steps.items()],
        "",
        "## Accuracy and training time, paired seeds",
        "",
        f"**Data: SYNTHETIC** Himawari/IMERG tiles from `mtdense.domains.precip.synth` ({args.scenes} scenes of "
        "128×128, seed 1234, 64×64 tiles + one decoy channel). Model: `configs/precip/mtcf.yaml` (MTCF "
        f"reconstruction), {args.epochs} epochs, batch 16, checkpoint chosen by validation, scored once on the test "
        f"split. Seeds {', '.join(map(str, seeds))}: the same seed gives every mode the same initialisation and "
        "batch order, so the comparison is paired. Modes (trainer.precision, trainer.channels_last): "
        + ", ".join(f"{m} = ({p}, {c})" for m, (p, c) in MODES.items())
        + ". Difference = mode − fp32 per seed; mean and 95 % Student-t confidence interval over seeds; "
        "\"worse\" only when the whole interval is on the worse side.",
    ]
    for mode in [m for m in MODES if m != "fp32"]:
        lines += ["", f"### {mode} vs fp32", "", f"| test metric | fp32 mean | {mode} mean | mean diff | 95 % CI | verdict |",
                  "|---|---|---|---|---|---|"]
        for label, (key, higher) in METRICS.items():
            a = [done[f"fp32/seed{s}"]["metrics"].get(key) for s in seeds]
            b = [done[f"{mode}/seed{s}"]["metrics"].get(key) for s in seeds]
            pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
            diffs = [y - x for x, y in pairs]
            mean, lo, hi = paired(diffs)
            better = (lo > 0) if higher else (hi < 0)
            worse = (hi < 0) if higher else (lo > 0)
            verdict = ("fewer than 2 seeds: no CI" if len(diffs) < 2 else f"{mode} worse" if worse
                       else f"{mode} better" if better else "no detectable difference")
            summary["metrics"].setdefault(label, {"fp32": a})[mode] = {"values": b, "diff": diffs, "mean": mean,
                                                                       "ci95": [lo, hi]}
            lines.append(f"| {label} | {statistics.fmean(x for x, _ in pairs):.4f} | "
                         f"{statistics.fmean(y for _, y in pairs):.4f} | {mean:+.4f} | [{lo:+.4f}, {hi:+.4f}] | {verdict} |")
        speed = [f / m for f, m in zip(secs["fp32"], secs[mode])]
        lines += ["", f"Training time per run (data loading and evaluation included): fp32 "
                      f"{statistics.fmean(secs['fp32']):.0f} s, {mode} {statistics.fmean(secs[mode]):.0f} s; paired "
                      f"speed-up fp32/{mode} {statistics.fmean(speed):.2f}× (min {min(speed):.2f}, max {max(speed):.2f})."]
    lines += ["", f"Machine: {platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}; "
                  "the 2-core machine was shared with other jobs while these ran (modes interleaved per seed)."]
    write_results(Path(args.results), lines, summary)


if __name__ == "__main__":
    main()
