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


def _train_teacher(args: argparse.Namespace) -> int:
    from mtdense.config import load_config, plain
    from mtdense.domains.clouds.nnunet_like import train_nnunet_like
    from mtdense.registry import DATASETS

    cfg = load_config(args.config, args.overrides)
    train = plain(cfg.data.train)
    train.pop("transform", None)  # the teacher draws its own patches and mirrors them
    val = None
    if args.validate_every and cfg.data.get("val") is not None:
        options = plain(cfg.data.val)
        options.pop("transform", None)
        val = DATASETS.build(options, "data.val")
    out = train_nnunet_like(DATASETS.build(train, "data.train"), args.out, iterations=args.iterations,
                            memory_gb=args.memory_gb, base_features=args.base_features,
                            max_features=args.max_features, batch_size=args.batch_size, seed=args.seed,
                            val_dataset=val, validate_every=args.validate_every,
                            checkpoint_every=args.checkpoint_every)
    print(f"teacher: {out}")
    return 0


def _distill(args: argparse.Namespace) -> int:
    from mtdense.domains.clouds.distill import distill

    result = distill(args.config, args.overrides, cache=args.cache, resume=args.resume)
    print(json.dumps(result, indent=1, default=str))
    return 0


def _export_nnunet(args: argparse.Namespace) -> int:
    from mtdense.config import load_config, plain
    from mtdense.domains.clouds.nnunetv2_bridge import export_nnunet
    from mtdense.registry import DATASETS

    cfg = load_config(args.config, args.overrides)
    options = plain(cfg.data[args.split])
    options.pop("transform", None)
    print(f"wrote {export_nnunet(DATASETS.build(options, f'data.{args.split}'), args.out, args.name)}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mtdense.domains.clouds.demo import run_clouds_demo

    print(f"report: {run_clouds_demo(args.out, teacher_its=args.teacher_its, epochs=args.epochs, seed=args.seed)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from mtdense.domains.clouds.onboard_export import export_onboard

    print(f"wrote {export_onboard(args.source, args.out, sensor=args.sensor)}")
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

    d = data.add_parser("export-nnunet", help="write a config's cloud data as an nnU-Net v2 raw dataset",
                        description="imagesTr/<case>_000c.png (16-bit DN per channel), labelsTr/<case>.png "
                                    "(0 clear, 1 cloud, 2 ignore = nodata), dataset.json.")
    d.add_argument("config")
    d.add_argument("--out", required=True, help="the nnUNet_raw folder")
    d.add_argument("--name", default="Dataset500_Clouds")
    d.add_argument("--split", default="train")
    d.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    d.set_defaults(run=_export_nnunet)

    sp = commands.add_parser("train-teacher", help="plan and train the built-in nnU-Net-like 2D teacher",
                             description="Fingerprints CONFIG's data.train, plans patch/batch size, depth and "
                                         "features as nnU-Net v2 does for the memory budget, trains PlainConvUNet "
                                         "with deep supervision, writes OUT/plan.json, OUT/model.pt and "
                                         "OUT/training.json (with the validation curve); rerun the same command "
                                         "to resume from OUT/resume.pt.")
    sp.add_argument("config")
    sp.add_argument("--out", required=True)
    sp.add_argument("--iterations", type=int, default=250)
    sp.add_argument("--memory-gb", type=float, default=8.0, help="nnU-Net's GPU memory target")
    sp.add_argument("--base-features", type=int, default=32, help="nnU-Net: 32")
    sp.add_argument("--max-features", type=int, default=512, help="nnU-Net 2D: 512")
    sp.add_argument("--batch-size", type=int, default=None, help="override the planned batch size (CPU)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--validate-every", type=int, default=50,
                    help="iterations between validation points on data.val (0: none)")
    sp.add_argument("--checkpoint-every", type=int, default=50, help="iterations between resume checkpoints (0: none)")
    sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    sp.set_defaults(run=_train_teacher)

    sp = commands.add_parser("distill", help="train a student from a frozen teacher (on the fly or cached soft targets)")
    sp.add_argument("config")
    sp.add_argument("--cache", default=None, help="HDF5 file for the teacher's soft targets (built once)")
    sp.add_argument("--resume", default=None, help="run folder to continue")
    sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    sp.set_defaults(run=_distill)

    sp = commands.add_parser("export-onboard", help="ONNX graph from raw DN (uint16) to a cloud mask (uint8)")
    sp.add_argument("source", help="mtdense checkpoint/run folder or nnU-Net-like teacher folder")
    sp.add_argument("--out", required=True)
    sp.add_argument("--sensor", default=None, choices=["landsat8_l1", "sentinel2_l2a"],
                    help="DN → reflectance scaling (default: from the training dataset)")
    sp.set_defaults(run=_export)

    sp = commands.add_parser("demo-clouds", help="cloud demo: SYNTHETIC scenes → teacher → distilled student → ONNX → report")
    sp.add_argument("--out", default="demo_output/clouds")
    sp.add_argument("--teacher-its", type=int, default=40)
    sp.add_argument("--epochs", type=int, default=4)
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(run=_demo)
