"""``mtdense`` verbs of the cloud domain: ``data synth-clouds``, ``data export-nnunet``, ``distill``,
``export-onboard``, ``demo-clouds``.

Imports only argparse at start-up; each verb imports its implementation when it runs.
"""

from __future__ import annotations

import argparse
import json


def _synth(args: argparse.Namespace) -> int:
    from mtdense.domains.clouds.synth_writers import synth_clouds

    summary = synth_clouds(args.out, train_scenes=args.train_scenes, test_scenes=args.test_scenes,
                           scene_size=args.scene_size, patch=args.patch, chips=args.chips, chip=args.chip,
                           seed=args.seed)
    print(json.dumps({k: v for k, v in summary.items() if k != "options"}))
    return 0


def add_commands(commands, data) -> None:
    """Add the cloud verbs to ``mtdense`` and the cloud actions to ``mtdense data``."""
    d = data.add_parser("synth-clouds", help="write SYNTHETIC cloud scenes in the 38-Cloud and On Cloud N layouts",
                        description="Writes OUT/38-Cloud_training, OUT/38-Cloud_test (with Entire_scene_gts) and "
                                    "OUT/oncloudn. Does nothing if OUT already holds the same synthetic data.")
    d.add_argument("--out", required=True)
    d.add_argument("--train-scenes", type=int, default=8, help="Landsat-8-like scenes cut into training patches")
    d.add_argument("--test-scenes", type=int, default=2, help="scenes in the test layout (full-scene masks only)")
    d.add_argument("--scene-size", type=int, default=256, help="scene side in pixels (each scene 80-100%% of it)")
    d.add_argument("--patch", type=int, default=128, help="38-Cloud patch side (the real dataset: 384)")
    d.add_argument("--chips", type=int, default=16, help="On Cloud N chips")
    d.add_argument("--chip", type=int, default=128, help="On Cloud N chip side (the real dataset: 512)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(run=_synth)
