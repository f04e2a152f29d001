"""``mtdense`` verbs of the precipitation domain: ``data synth-precip``, ``data prepare-precip``, ``demo``,
``predict-scene``, ``report``, ``gpi``.

Imports only argparse at start-up; each verb imports its implementation when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys


def _synth(args: argparse.Namespace) -> int:
    from mtdense.domains.precip.synth import synth_precip

    written = synth_precip(args.out, n_scenes=args.scenes, height=args.height, width=args.width, seed=args.seed,
                           decoy_channels=args.decoys)
    print(json.dumps({k: len(v) for k, v in written.items()}))
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from mtdense.domains.precip.prepare import prepare_precip

    summary = prepare_precip(args.ahi, args.imerg, args.out, tile_size=args.tile, stride=args.stride,
                             regrid=args.regrid, min_valid_fraction=args.min_valid,
                             bands=[int(b) for b in args.bands.split(",")],
                             extra_channels=[c for c in args.extra.split(",") if c], seed=args.seed,
                             split_by=args.split, block_hours=args.block_hours, gap_hours=args.gap_hours,
                             val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                             label_variable=args.label_variable, min_quality=args.min_quality,
                             mask_space=not args.keep_space, scheduler=args.scheduler, workers=args.workers,
                             log=lambda message: print(message, file=sys.stderr))  # stdout: the JSON summary
    print(json.dumps({k: v for k, v in summary.items() if k != "files"}, default=str))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mtdense.domains.precip.demo import run_precip_demo

    report = run_precip_demo(args.out, scenes=args.scenes, size=args.size, tile=args.tile, epochs=args.epochs,
                             seed=args.seed, overrides=args.overrides)
    print(f"report: {report}")
    return 0


def _predict_scene(args: argparse.Namespace) -> int:
    from mtdense.domains.precip.products import predict_scenes

    for path in predict_scenes(args.checkpoint, args.files, args.out, window=args.window, overlap=args.overlap,
                               batch_size=args.batch_size, flip_tta=args.flip_tta, device=args.device,
                               mask_space=not args.keep_space, geotiff=args.geotiff):
        print(path)
    return 0


def _report(args: argparse.Namespace) -> int:
    from mtdense.domains.precip.report import write_report

    out = args.out or f"{args.checkpoint}/report_{args.split}"
    print(f"report: {write_report(args.checkpoint, out, args.split, args.device)}")
    return 0


def _gpi(args: argparse.Namespace) -> int:
    from mtdense.domains.precip.gpi_baseline import gpi_baseline_scores

    print(json.dumps(gpi_baseline_scores(args.store, args.split, args.band, args.threshold_k, args.rate), indent=1))
    return 0


def add_commands(commands, data) -> None:
    """Add ``demo`` to the top-level verbs and the precipitation actions to ``mtdense data``."""
    d = data.add_parser("synth-precip", help="write SYNTHETIC AHI P-Tree NetCDF + IMERG V07 HDF5 files")
    d.add_argument("--out", required=True, help="folder; files go to OUT/ahi and OUT/imerg")
    d.add_argument("--scenes", type=int, default=48, help="half-hour scenes")
    d.add_argument("--height", type=int, default=128, help="label-grid rows (0.1°)")
    d.add_argument("--width", type=int, default=128, help="label-grid columns (0.1°)")
    d.add_argument("--decoys", type=int, default=1, help="information-free decoy channels (decoy_NN)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(run=_synth)

    d = data.add_parser("prepare-precip", help="pair AHI scans with IMERG half-hours, regrid, tile → HDF5 store",
                        description="Per-scan work runs on Dask workers (a LocalCluster by default); only this "
                                    "process writes. A re-run after an interruption skips the scans in OUT.parts/.")
    d.add_argument("--ahi", required=True,
                   help="folder of P-Tree NC_H*.nc scans and/or HSD HS_H*_B*.DAT(.bz2) segments (grouped by time)")
    d.add_argument("--imerg", required=True, help="folder of IMERG 3B-HHR* granules (V06 or V07)")
    d.add_argument("--out", required=True, help="output tile store (.h5)")
    d.add_argument("--tile", type=int, default=64, help="tile size in label pixels")
    d.add_argument("--stride", type=int, default=None, help="tile stride (default: tile size)")
    d.add_argument("--regrid", choices=["ahi_to_label", "label_to_ahi"], default="ahi_to_label")
    d.add_argument("--min-valid", type=float, default=0.5, help="drop tiles with a smaller valid-label fraction")
    d.add_argument("--bands", default="8,9,10,11,12,13,14,15,16", help="AHI bands, comma-separated")
    d.add_argument("--extra", default="", help="extra NetCDF variables as channels, comma-separated (e.g. decoy_01)")
    d.add_argument("--seed", type=int, default=0, help="seed of the train/val/test split")
    d.add_argument("--split", choices=["blocked", "random"], default="blocked",
                   help="blocked: whole blocks of consecutive hours per split (default); random: per half hour")
    d.add_argument("--block-hours", type=float, default=None,
                   help="block length for --split blocked (default: longest of 24/12/6/3/1 h giving >= 10 blocks)")
    d.add_argument("--gap-hours", type=float, default=0.0,
                   help="leave out half hours within this many hours of a split ranked above theirs (test > val > train)")
    d.add_argument("--val-fraction", type=float, default=0.1, help="fraction of half hours in the val split")
    d.add_argument("--test-fraction", type=float, default=0.2, help="fraction of half hours in the test split")
    d.add_argument("--label-variable", default=None,
                   help="IMERG variable (default: precipitation in V07, precipitationCal in V06; e.g. MWprecipitation)")
    d.add_argument("--min-quality", type=float, default=None,
                   help="label pixels with IMERG precipitationQualityIndex below this become invalid (default: no filter)")
    d.add_argument("--keep-space", action="store_true",
                   help="HSD: keep pixels off the earth disk (default: set to missing by navigation)")
    d.add_argument("--workers", type=int, default=None, help="LocalCluster single-thread workers (default 2, ≤ cores)")
    d.add_argument("--scheduler", default=None,
                   help="Dask scheduler address (tcp://host:8786) of an existing cluster, or 'inline' (no Dask)")
    d.set_defaults(run=_prepare)

    sp = commands.add_parser("demo", help="the flagship demo: synthetic Himawari/IMERG → MTCF → report.md",
                             description="Synthesise files, prepare tiles, train the shipped precip/mtcf.yaml, "
                                         "evaluate, draw figures, rank bands, and write OUT/report.md.")
    sp.add_argument("--out", default="demo_output/precip")
    sp.add_argument("--scenes", type=int, default=96, help="synthetic half-hour scenes")
    sp.add_argument("--size", type=int, default=128, help="label-grid size of each scene (0.1° pixels)")
    sp.add_argument("--tile", type=int, default=64, help="tile size")
    sp.add_argument("--epochs", type=int, default=15)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. trainer.lr=1e-3")
    sp.set_defaults(run=_demo)

    sp = commands.add_parser("predict-scene", help="whole scenes → CF NetCDF rain rate / probability / class",
                             description="Run a trained precipitation model over whole scenes (P-Tree NetCDF files, "
                                         "or HSD segments grouped by observation time) with overlapping windows "
                                         "and Gaussian blending; write one CF-1.8 NetCDF per scene to OUT.")
    sp.add_argument("checkpoint", metavar="RUN", help="run folder or checkpoint")
    sp.add_argument("files", nargs="+", help="P-Tree NC_H*.nc files and/or HSD HS_H*_B*.DAT(.bz2) segments")
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--window", type=int, default=256, help="window size in pixels (a multiple of 2^depth)")
    sp.add_argument("--overlap", type=float, default=0.5, help="overlap fraction of neighbouring windows")
    sp.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    sp.add_argument("--flip-tta", action="store_true", help="average over horizontal/vertical flips (4× slower)")
    sp.add_argument("--device", default="cpu", help="device of the model (the scene stays in CPU memory)")
    sp.add_argument("--geotiff", action="store_true", help="also write the rain classes as GeoTIFF (in the NetCDF's CRS)")
    sp.add_argument("--keep-space", action="store_true", help="HSD: do not mask pixels off the earth disk")
    sp.set_defaults(run=_predict_scene)

    sp = commands.add_parser("report", help="verification report of a precipitation run (maps, scores, diagrams)",
                             description="Scores (POD/FAR/CSI/F1/bias/HSS/ETS, N/CC/RMSE/bias, Brier, ROC AUC) next to "
                                         "the GPI-like rule, per-scan CSV, lat/lon maps, log-log scatter, "
                                         "performance and reliability diagrams → OUT/report.md.")
    sp.add_argument("checkpoint", metavar="RUN", help="run folder or checkpoint of a precipitation run")
    sp.add_argument("--split", default="test")
    sp.add_argument("--out", default=None, help="output folder (default: RUN/report_SPLIT)")
    sp.add_argument("--device", default="cpu")
    sp.set_defaults(run=_report)

    sp = commands.add_parser("gpi", help="score the GPI-like rule (B13 < 235 K → 3 mm/h) on a tile store")
    sp.add_argument("store", help="tile store (.h5) from prepare-precip")
    sp.add_argument("--split", default="test")
    sp.add_argument("--band", default="B13", help="window channel")
    sp.add_argument("--threshold-k", type=float, default=235.0)
    sp.add_argument("--rate", type=float, default=3.0, help="rain rate (mm/h) below the threshold")
    sp.set_defaults(run=_gpi)
