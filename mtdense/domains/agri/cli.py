"""``mtdense data synth-agri``: SYNTHETIC UAV crop fields in the agri folder layout (idempotent)."""

from __future__ import annotations

import argparse
import json


def _synth(args: argparse.Namespace) -> int:
    from mtdense.domains.agri.synth import synth_agri_once

    counts = {"train": args.n_train, "val": args.n_val, "test": args.n_test}
    print(json.dumps(synth_agri_once(args.root, counts, args.height, args.width, args.nir, args.seed)))
    return 0


def add_commands(commands, data) -> None:
    d = data.add_parser("synth-agri", help="write SYNTHETIC UAV crop fields (plants, rows, plant centres)",
                        description="Does nothing when ROOT already holds fields made with the same options; "
                                    "refuses a ROOT holding other data.")
    d.add_argument("--root", required=True)
    for option, default in (("--n-train", 128), ("--n-val", 32), ("--n-test", 32), ("--height", 64), ("--width", 64)):
        d.add_argument(option, type=int, default=default)
    d.add_argument("--nir", action="store_true", help="add a near-infrared band (4-channel TIFF images)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(run=_synth)
