"""Run a benchmark grid and keep it resumable (``mtdense bench GRID.yaml``).

Every (pair, variant, seed) and every single-task baseline is trained with ``Trainer`` into
``<out>/runs/<pair>/<variant>/seed<k>``, evaluated on ``val`` during training, its best-on-val
checkpoint scored once on ``test`` (``mtdense.bench.scoring``), sized (parameters, FLOPs)
and appended to ``<out>/results.jsonl`` with its key and a fingerprint of its
config. A restarted bench (``--resume``) skips finished keys, refuses results whose
fingerprint no longer matches the grid, and continues an interrupted run from its own last
checkpoint with ``Trainer.fit(resume=...)``, which resumes exactly. Non-learned rules
(``mtdense.bench.rules``) are built and scored first, so a bad rule fails before any training.
Timings are not taken inside the runs (two workers share the machine, so a run's time
measures its neighbour too): before the runs start, ``mtdense.bench.costs`` times every
variant once, interleaved, in this process.
"""

from __future__ import annotations

import copy
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from mtdense.bench.composite import evaluate_composite
from mtdense.bench.costs import measure_costs, read_costs
from mtdense.bench.executor import execute_runs
from mtdense.bench.grid import Grid, Run, fingerprint, load_grid
from mtdense.bench.prepare import run_prepare
from mtdense.bench.profile import count_parameters, flops_per_image
from mtdense.bench.results import ResultsFile
from mtdense.bench.rules import evaluate_rule, rule_fingerprint
from mtdense.bench.scoring import learning_curve, plateaued, score_selected, split_metrics
from mtdense.engine.builder import check_experiment
from mtdense.engine.checkpoint import resolve_checkpoint
from mtdense.engine.monitor import Monitor
from mtdense.engine.trainer import Trainer
from mtdense.errors import ConfigError


def check_configs(runs: list[Run], fingerprints: dict[str, str], grid_path: Path) -> None:
    """Build every distinct config of ``runs`` once (``check_experiment``) so that an unknown
    plugin name or a bad option fails before the first run, not after hours of others."""
    seen = set()
    for run in runs:
        if fingerprints[run.key] in seen:
            continue
        seen.add(fingerprints[run.key])
        try:
            check_experiment(copy.deepcopy(run.config))
        except ConfigError as exc:
            raise type(exc)(f"{exc.message} (in {grid_path}: pairs.{run.pair} variant {run.variant})",
                            key=exc.key) from None


def machine_info() -> dict[str, Any]:
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": nproc, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "processor": platform.processor() or platform.machine()}


def execute(run: Run, profile: dict[str, Any]) -> dict[str, Any]:
    """Train (or finish) one run and measure it; returns its result record."""
    cfg = run.config
    if "val" not in cfg.data:
        raise ConfigError(f"{run.key}: data.val is not configured; the bench reports validation metrics")
    run_dir = Path(cfg.trainer.out_dir)
    resume = run_dir if (run_dir / "checkpoints" / "last").is_file() else None
    resumed_from = int(resolve_checkpoint(run_dir).name.split("_")[-1]) if resume else 0
    tic, cpu_tic = time.perf_counter(), time.process_time()
    trainer = Trainer(cfg)
    val = trainer.fit(resume=resume)
    if not val:  # the checkpoint was written after the last epoch: nothing left to train
        val = trainer.evaluate("val")
    seconds, cpu_seconds = time.perf_counter() - tic, time.process_time() - cpu_tic
    shape = tuple(trainer.exp.dataset("train")[0]["image"].shape)
    model = trainer.model
    curve = learning_curve(run_dir)
    monitor = Monitor.from_config(cfg.trainer)
    selected = score_selected(trainer, run.tasks)  # loads the best-on-val weights: profile after this
    val_metrics = split_metrics(val, run.tasks, "val")
    return {
        "key": run.key, "pair": run.pair, "variant": run.variant, "seed": run.seed, "kind": run.kind,
        "tasks": run.tasks, "baselines": run.baselines, "labels": run.labels,
        "metrics": selected["test_metrics"] or val_metrics, "val_metrics": val_metrics, **selected,
        "val_loss": val.get("val/loss"), "curve": curve, "monitor": monitor.key,
        "plateau": plateaued(curve, monitor.key, "max" if monitor.maximize else "min"),
        "params": count_parameters(model),
        "flops_per_image": flops_per_image(model, shape),
        "train_seconds": seconds, "train_cpu_seconds": cpu_seconds, "resumed_from_step": resumed_from,
        "protocol": {"input_shape": list(shape), "train_images": len(trainer.exp.dataset("train")),
                     "val_images": len(trainer.exp.dataset("val")), "epochs": int(cfg.trainer.max_epochs),
                     "test_images": len(trainer.exp.dataset("test")) if selected["scored_split"] == "test" else 0,
                     "batch_size": int(cfg.data.batch_size), "steps": trainer.global_step},
        "machine": machine_info(), "run_dir": str(run_dir),
    }


def run_bench(grid: Grid, out: str | Path, resume: bool = False,
              on_record: Callable[[dict[str, Any]], None] | None = None,
              log: Callable[[str], None] = print, scheduler: str | None = None, workers: int | None = None,
              processes: bool = True) -> ResultsFile:
    """Run every unfinished run of ``grid`` into ``out``; ``on_record`` sees each new record.

    ``scheduler``/``workers``/``processes`` choose where runs execute (``mtdense.bench.executor``:
    a Dask LocalCluster by default, an existing cluster's address, or ``"inline"``); the store
    is written here, by this process only.
    """
    out = Path(out)
    store = ResultsFile(out / "results.jsonl")
    done = store.read()
    if not resume and (done or (out / "runs").exists()):
        raise ConfigError(f"{out}: holds an earlier bench ({len(done)} finished runs); pass --resume to continue "
                          "it or choose another --out")
    for message in run_prepare(grid.prepare, f"{grid.path}: prepare"):
        log(message)
    for pair in grid.active_pairs():
        for message in run_prepare(pair.prepare, f"{grid.path}: pairs.{pair.name}.prepare"):
            log(message)
    runs = grid.runs(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(grid.path, out / "grid.yaml")
    todo, fingerprints = [], {}
    for run in runs:
        fp = fingerprints[run.key] = fingerprint(run.config)  # before training: building a run adds keys to its config
        if run.key not in done:
            todo.append(run)
        else:
            check_recorded(store, done[run.key], fp)
    check_configs(todo, fingerprints, grid.path)
    run_rules(grid, out, store, log)
    measure_costs(grid, out, fingerprints, log)
    log(f"{len(runs) - len(todo)} of {len(runs)} runs already finished; {len(todo)} to run")
    position = {run.key: i for i, run in enumerate(runs, start=1)}

    def finished(run: Run, record: dict[str, Any]) -> None:
        record = {**record, "fingerprint": fingerprints[run.key]}
        store.append(record)
        done[run.key] = record
        pair = next(p for p in grid.pairs if p.name == run.pair)
        shown = ", ".join(f"{t}/{m}={record['metrics'][t].get(m)}" for t, m in pair.per_task.items() if t in run.tasks)
        log(f"[{position[run.key]}/{len(runs)}] {run.key}: {record['train_seconds']:.1f} s "
            f"({record['train_cpu_seconds']:.1f} s CPU), {record['params']} params; {shown}")
        if on_record is not None:
            on_record(record)

    threads_before = torch.get_num_threads()
    try:
        execute_runs(todo, grid.profile, finished, log, scheduler, workers, processes)
    finally:
        torch.set_num_threads(threads_before)
        run_composites(grid, out, store, log)
    return store


def check_recorded(store: ResultsFile, record: dict[str, Any], fp: str) -> None:
    """Refuse a finished record whose config fingerprint no longer matches the grid."""
    if record.get("fingerprint") != fp:
        raise ConfigError(
            f"{store.path}: run {record['key']} was recorded with another config (fingerprint "
            f"{record.get('fingerprint')} vs {fp}: the grid or an experiment config changed); "
            "use a new --out, or delete that line (and its run folder) to rerun it"
        )


def run_rules(grid: Grid, out: Path, store: ResultsFile, log: Callable[[str], None]) -> None:
    """Score every non-learned rule once and store its record for each seed that lacks one."""
    done = store.read()
    for rule in grid.rule_runs(out):
        fp = rule_fingerprint(rule)
        for seed in rule.seeds:
            if rule.key(seed) in done:
                check_recorded(store, done[rule.key(seed)], fp)
        missing = [seed for seed in rule.seeds if rule.key(seed) not in done]
        if not missing:
            continue
        record = evaluate_rule(rule)
        for seed in missing:
            store.append({**record, "key": rule.key(seed), "seed": seed, "fingerprint": fp})
        log(f"{rule.pair}/{rule.variant}: non-learned rule {rule.rule['type']!r} scored once on {record['scored_split']}; "
            f"the same record stored for seed(s) {', '.join(map(str, missing))}")


def run_composites(grid: Grid, out: Path, store: ResultsFile, log: Callable[[str], None]) -> None:
    """Score every composite baseline whose member runs of that seed have finished (in this process)."""
    done = store.read()
    for comp in grid.composite_runs(out):
        members_done = all(f"{comp.pair}/{m}/seed{comp.seed}" in done for m in comp.members)
        if comp.key in done or not members_done:
            continue
        record = evaluate_composite(comp)
        store.append({**record, "fingerprint": fingerprint(comp.config)})
        log(f"{comp.key}: composite of {', '.join(comp.members)} scored on {record['scored_split']}")


def bench(grid_path: str | Path, out: str | Path | None = None, seeds: int | None = None, resume: bool = False,
          report_dir: str | Path | None = None, log: Callable[[str], None] = print, scheduler: str | None = None,
          workers: int | None = None, report_only: bool = False) -> dict[str, Path]:
    """``mtdense bench``: run the grid, then write its report; returns the written paths.

    ``report_only``: write the report from the runs finished so far (marked PARTIAL if any are
    missing) without running anything, e.g. while the bench is still running elsewhere.
    """
    from mtdense.bench.report import write_report

    grid = load_grid(grid_path, seeds)
    out = Path(out) if out is not None else Path("runs") / "bench" / grid.name
    if report_only:
        store = ResultsFile(out / "results.jsonl")
        if not store.path.is_file():
            raise ConfigError(f"{store.path}: no results yet; run the bench first")
    else:
        store = run_bench(grid, out, resume=resume, log=log, scheduler=scheduler, workers=workers)
    paths = write_report(grid, store.read(), Path(report_dir) if report_dir is not None else grid.report_dir,
                         read_costs(out))
    return {"results": store.path, **paths}
