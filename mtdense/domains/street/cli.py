"""``mtdense data synth-street``: SYNTHETIC street scenes in the Cityscapes layout (idempotent);
``mtdense data middlebury-street``: the real Middlebury pair bundled with scikit-image, same layout."""

from __future__ import annotations

import argparse
import json


def _synth(args: argparse.Namespace) -> int:
    from mtdense.domains.street.synth import synth_street_once

    print(json.dumps(synth_street_once(args.root, args.n_train, args.n_val, args.height, args.width, args.seed),
                     default=str))
    return 0


def _middlebury(args: argparse.Namespace) -> int:
    from mtdense.domains.street.middlebury import write_middlebury_cityscapes

    print(json.dumps(write_middlebury_cityscapes(args.root)))
    return 0


def add_commands(commands, data) -> None:
    d = data.add_parser("synth-street", help="write SYNTHETIC street scenes in the Cityscapes layout",
                        description="Does nothing when ROOT already holds scenes made with the same options; "
                                    "refuses a ROOT holding other data.")
    d.add_argument("--root", required=True)
    d.add_argument("--n-train", type=int, default=100)
    d.add_argument("--n-val", type=int, default=20)
    d.add_argument("--height", type=int, default=128)
    d.add_argument("--width", type=int, default=256)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(run=_synth)
    m = data.add_parser("middlebury-street", help="write the REAL Middlebury Motorcycle pair (bundled with scikit-image) "
                                                  "in the Cityscapes layout, for smoke tests",
                        description="Real images and disparity; the label maps are a depth-derived stand-in.")
    m.add_argument("--root", required=True)
    m.set_defaults(run=_middlebury)
