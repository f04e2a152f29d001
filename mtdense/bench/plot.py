"""The bench figure: per task pair, Δm (per-task) of every multi-task variant against its
parameter count and its CPU latency, with the single-task baselines together as the
reference at Δm = 0 (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plot(summary: dict[str, Any], path: Path, delta_label: str) -> Path | None:
    """Write the PNG; None when no pair has a multi-task variant with Δm yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for name, pair in summary["pairs"].items():
        points = [(vn, v) for vn, v in pair["variants"].items()
                  if v["kind"] == "multitask" and (v.get("delta_m") or {}).get("per_task", {}).get("mean") is not None]
        if points:
            rows.append((name, pair, points))
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 4.2 * len(rows)), squeeze=False)
    for (name, pair, points), row in zip(rows, axes):
        for ax, cost, xlabel in ((row[0], "params", "parameters"), (row[1], "latency_ms", "latency, batch 1 [ms]")):
            for vn, v in points:
                dm = v["delta_m"]["per_task"]
                x = v["params"]["mean"] if cost == "params" else (v.get("cost") or {}).get("latency_ms")
                if x is None:  # costs not measured for this bench folder
                    continue
                ax.errorbar(x, dm["mean"], yerr=dm["std"], fmt="o", capsize=3)
                ax.annotate(vn, (x, dm["mean"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
            total = pair["single_task_total"]
            if total["baselines"] and total[cost] is not None:
                ax.plot([total[cost]], [0.0], "k*", markersize=10, label="single-task models together")
            ax.axhline(0.0, color="grey", linestyle="--", linewidth=0.8)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{delta_label} [%]")
            ax.set_title(f"{name} ({pair['data']})")
            ax.grid(alpha=0.3)
        row[0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_curves(summary: dict[str, Any], path: Path) -> Path | None:
    """Learning curves: per pair, the monitored validation value vs optimizer step, mean over the
    finished seeds of every variant (thin lines: single seeds). None when no run logged a curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    pairs = [(n, p) for n, p in summary["pairs"].items()
             if any(c for v in p["variants"].values() for c in v.get("curves", {}).values())]
    if not pairs:
        return None
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 4.5), squeeze=False)
    for ax, (name, pair) in zip(axes[0], pairs):
        for i, (vn, v) in enumerate(pair["variants"].items()):
            monitor = v.get("monitor") or "val/loss"
            curves = [c for c in v.get("curves", {}).values() if c]
            if not curves:
                continue
            color = f"C{i % 10}"
            for c in curves:
                ax.plot([pt["step"] for pt in c], [pt.get(monitor, np.nan) for pt in c], color=color, alpha=0.2, lw=0.7)
            length = min(len(c) for c in curves)
            steps = [pt["step"] for pt in curves[0][:length]]
            mean = np.nanmean([[pt.get(monitor, np.nan) for pt in c[:length]] for c in curves], axis=0)
            ax.plot(steps, mean, color=color, lw=1.6, label=f"{vn} (n={len(curves)})")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(next(iter(pair["variants"].values())).get("monitor") or "val/loss")
        ax.set_title(f"{name} ({pair['data']})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
