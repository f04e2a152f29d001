"""Cost of every variant of a grid, measured once, interleaved, in one process.

Timings taken inside the runs of a bench cannot be compared: two workers share the cores
(and, on a virtual machine, the host's), so a run's wall time — and even its CPU time, through
shared caches — depends on what its neighbour does (measured: the same single-task model
timed at 4.9 and 7.7 ms per image by two grids running side by side). Costs are therefore
measured here, before the runs start, in the bench's own process: every variant of a pair
(multi-task variants and single-task baselines, built untrained from seed 0's config — cost
does not depend on the weights) is timed in ``rounds`` rounds, the variants in a rotated
order within each round, so a drift of the machine's load hits all of them alike. A round
times ``train_steps`` optimizer steps (``Trainer.train_step``: forward, the balancer's
backward, optimizer step; on one real training batch, so data loading is excluded) and
``latency_runs`` batch-1 forwards in eval mode. A variant's cost is the median over rounds;
its ratio to the reference is the median of the per-round ratios (the ratio within a round is
what the interleaving protects). With one torch thread the clock is the CPU time of the
calling thread (waiting for a core is not counted); with more threads only wall time means
latency, and the clock used is stored.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from mtdense.atomic_write import write_text
from mtdense.bench.grid import Grid, Run
from mtdense.engine.builder import make_loader
from mtdense.engine.trainer import Trainer
from mtdense.errors import DataError

COSTS_FILE = "costs.json"


def cost_clock() -> tuple[Callable[[], float], str]:
    """The clock costs are timed with and its name."""
    if torch.get_num_threads() == 1:
        return time.thread_time, "thread CPU"
    return time.perf_counter, "wall"


class _Timed:
    """One variant, ready to be timed: a trainer on one training batch and a batch-1 input."""

    def __init__(self, name: str, config, folder: Path):
        cfg = config.copy()
        cfg.trainer.out_dir = str(folder / name.replace(":", "_"))
        self.trainer = Trainer(cfg)
        self.batch = next(iter(make_loader(cfg, self.trainer.exp.dataset("train"), "train", False)))
        self.image = self.batch["image"][:1]

    def train(self, steps: int, clock: Callable[[], float]) -> float:
        tic = clock()
        for _ in range(steps):
            self.trainer.train_step([self.batch])
        self.trainer.check_finite()  # steps queue finiteness checks; drain them like the training loop does
        return (clock() - tic) / steps

    def forward(self, runs: int, clock: Callable[[], float]) -> float:
        net = self.trainer.model
        net.eval()
        times = []
        with torch.inference_mode():
            for _ in range(runs):
                tic = clock()
                net(self.image)
                times.append(clock() - tic)
        net.train()
        return statistics.median(times)


def measure_variants(configs: dict[str, Any], reference: str | None, profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Interleaved cost of ``configs`` (variant name → experiment config; its ``trainer.out_dir``
    is replaced by a temporary folder) → per variant: medians and ratios to ``reference``.
    ``profile``: rounds, train_steps, warmup, latency_runs."""
    clock, clock_name = cost_clock()
    rounds, steps = int(profile["rounds"]), int(profile["train_steps"])
    if rounds < 1 or steps < 1:
        raise ValueError(f"profile: need rounds >= 1 and train_steps >= 1, got {rounds} and {steps}")
    with tempfile.TemporaryDirectory(prefix="mtdense-costs-") as tmp:
        timed = {name: _Timed(name, cfg, Path(tmp)) for name, cfg in configs.items()}
        for t in timed.values():  # warm-up: allocator, first-batch shared-parameter search, kernels
            t.train(max(1, int(profile["warmup"]) // 2), clock)
            t.forward(int(profile["warmup"]), clock)
        names = list(timed)
        step = {n: [] for n in names}
        latency = {n: [] for n in names}
        for r in range(rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                step[n].append(timed[n].train(steps, clock) * 1000.0)
                latency[n].append(timed[n].forward(int(profile["latency_runs"]), clock) * 1000.0)
    ref = reference if reference in timed else None
    out = {}
    for n in names:
        out[n] = {"clock": clock_name, "rounds": rounds, "train_steps": steps,
                  "latency_runs": int(profile["latency_runs"]),
                  "step_ms": statistics.median(step[n]), "latency_ms": statistics.median(latency[n]),
                  "step_vs_reference": statistics.median(a / b for a, b in zip(step[n], step[ref])) if ref else None,
                  "latency_vs_reference": (statistics.median(a / b for a, b in zip(latency[n], latency[ref]))
                                           if ref else None)}
    return out


def measure_costs(grid: Grid, out: Path, fingerprints: dict[str, str], log: Callable[[str], None] = print) -> Path:
    """Measure every pair's variants once into ``<out>/costs.json`` (kept while their configs are unchanged)."""
    path = Path(out) / COSTS_FILE
    stored = read_costs(out)
    first = grid.seeds[0]
    by_pair: dict[str, list[Run]] = {}
    for run in grid.runs(Path(out)):
        if run.seed == first:
            by_pair.setdefault(run.pair, []).append(run)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(int(grid.profile["threads"] or 1))
    try:
        for pair, runs in by_pair.items():
            wanted = {run.variant: fingerprints[run.key] for run in runs}
            if stored.get(pair, {}).get("fingerprints") == wanted:
                continue
            log(f"{pair}: measuring the cost of {len(runs)} variants, interleaved in this process "
                f"({grid.profile['rounds']} rounds)")
            stored[pair] = {"fingerprints": wanted, "threads": torch.get_num_threads(),
                            "variants": measure_variants({r.variant: r.config for r in runs}, grid.reference,
                                                         grid.profile)}
            write_text(path, json.dumps(stored, indent=1, allow_nan=False) + "\n")
    finally:
        torch.set_num_threads(threads_before)
    return path


def read_costs(out: Path) -> dict[str, Any]:
    """The costs of a bench folder ({} before they are measured)."""
    path = Path(out) / COSTS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); delete it and rerun `mtdense bench --resume` to measure "
                        "the costs again") from None
