"""Throughput of ``mtdense data prepare-precip`` in scans per minute: in-process vs a Dask
LocalCluster of 1 and 2 single-thread workers, on SYNTHETIC P-Tree + IMERG files
(``mtdense data synth-precip``). Each setting runs in its own process; the worker peak memory
is the largest ``ru_maxrss`` among that process's children (the worker processes).

    nice -n 10 python benchmarks/prepare_throughput.py [--scenes 32 --size 192]

Writes benchmarks/results/prepare_throughput.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "prepare_throughput.md"
SETTINGS = [("in-process (scheduler inline)", "inline"), ("LocalCluster, 1 worker", "1"),
            ("LocalCluster, 2 workers", "2")]


def one(data: Path, setting: str) -> dict:
    from mtdense.domains.precip.prepare import prepare_precip

    marks = {}

    def log(message: str) -> None:
        if message.startswith("dask: LocalCluster"):
            marks["cluster_up"] = time.perf_counter()

    out = data / f"store_{setting}.h5"
    out.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    tic = time.perf_counter()
    summary = prepare_precip(data / "ahi", data / "imerg", out, scheduler="inline" if setting == "inline" else None,
                             workers=None if setting == "inline" else int(setting), log=log)
    toc = time.perf_counter()
    start = marks.get("cluster_up", tic)
    return {"scans": summary["scenes"], "tiles": sum(summary["tiles"].values()), "wall_s": toc - tic,
            "startup_s": start - tic, "work_s": toc - start, "load_before": load, "load_after": os.getloadavg()[0],
            "worker_peak_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6,
            "client_peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=32)
    parser.add_argument("--size", type=int, default=192, help="label-grid cells per side (AHI grid: twice that)")
    parser.add_argument("--data", default="/tmp/mtdense_prepare_throughput")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = Path(args.data)
    if args.one:
        print(json.dumps(one(data, args.one)))
        return
    from mtdense.domains.precip.synth import synth_precip

    if not (data / "ahi").is_dir() or len(list((data / "ahi").iterdir())) != args.scenes:
        synth_precip(data, n_scenes=args.scenes, height=args.size, width=args.size, seed=0)
    rows = []
    for label, setting in SETTINGS:
        done = subprocess.run([sys.executable, __file__, "--data", str(data), "--one", setting], check=True,
                              capture_output=True, text=True)
        rows.append((label, json.loads(done.stdout.strip().splitlines()[-1])))
        print(label, rows[-1][1], flush=True)
    base = rows[0][1]["work_s"]
    lines = [
        "# Throughput of `prepare-precip` (SYNTHETIC data)",
        "",
        f"Script: `benchmarks/prepare_throughput.py --scenes {args.scenes} --size {args.size}`. Data: SYNTHETIC "
        f"(`mtdense data synth-precip`, seed 0): {args.scenes} P-Tree scans of {2 * args.size}×{2 * args.size} "
        f"pixels (0.05°, 9 bands + 1 decoy variable) with IMERG V07 granules of {args.size}×{args.size} cells; "
        "default options (block mean to the label grid, 64×64 tiles, blocked splits). One run per setting, "
        "each in its own process; same store content in every setting.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(Python {platform.python_version()}); load average (1 min) before/after each run in the table.",
        "",
        "| setting | scans | tiles | wall (s) | cluster start (s) | scans/min after start | speed-up | "
        "worker peak RSS (GB) | client peak RSS (GB) | load before / after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(f"| {label} | {r['scans']} | {r['tiles']} | {r['wall_s']:.1f} | {r['startup_s']:.1f} | "
                     f"{60 * r['scans'] / r['work_s']:.1f} | {base / r['work_s']:.2f}× | "
                     f"{r['worker_peak_rss_gb'] if r['startup_s'] else 0:.2f} | {r['client_peak_rss_gb']:.2f} | "
                     f"{r['load_before']:.2f} / {r['load_after']:.2f} |")
    lines += [
        "",
        "\"scans/min after start\" counts from the moment the cluster is up (in-process: from the call) to the "
        "finished store, so it includes the single writer's pass over the finished scans. Cluster start is the "
        "one-off cost of spawning the worker processes. Worker peak RSS is the largest resident set of one "
        "worker process (0 in-process, where the work runs in the client). Times are single runs on a shared "
        "machine: read them as ±20 %.",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT)


if __name__ == "__main__":
    main()
