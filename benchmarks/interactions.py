"""Interaction-module zoo benchmark (CBIM, CCAM, MTLSegFormer re-weighting, cross-stitch, MTAN
attention, PAD-Net, identity) with Δm against single-task baselines: a thin wrapper around
``mtdense bench configs/bench/interactions.yaml``. Runs from the repository root, so the
synthetic data, the runs (runs/bench/interactions) and the report
(benchmarks/results/interactions.md, .json, .png) land where the grid says.

    python benchmarks/interactions.py            # the full grid (3 seeds)
    python benchmarks/interactions.py --resume   # continue after an interruption
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mtdense.bench.runner import bench

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="configs/bench/interactions.yaml", help="grid YAML (relative to the repository)")
    parser.add_argument("--out", help="bench folder (default: runs/bench/interactions)")
    parser.add_argument("--seeds", type=int, metavar="N", help="use seeds 0..N-1 instead of the grid's")
    parser.add_argument("--resume", action="store_true", help="skip finished runs, resume interrupted ones")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    for kind, path in bench(args.grid, args.out, args.seeds, args.resume).items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
