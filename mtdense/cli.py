"""The ``mtdense`` command (verb first, like nnU-Net's): train, evaluate, predict, inspect.

Errors a user can fix (config keys, unknown plugin names, missing files, non-finite losses)
are printed as one line naming the key or file; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn

    return deco


@command("train")
def _train(args) -> int:
    from mtdense.config import load_config
    from mtdense.engine.trainer import Trainer

    cfg = load_config(args.config, args.overrides)
    metrics = Trainer(cfg).fit(resume=args.resume)
    print(json.dumps(metrics, indent=1))
    return 0


@command("evaluate")
def _evaluate(args) -> int:
    from mtdense.engine.inference import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, args.split, args.overrides)
    text = json.dumps(metrics, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


@command("predict")
def _predict(args) -> int:
    from mtdense.engine.inference import predict_checkpoint

    print(predict_checkpoint(args.checkpoint, args.split, args.out, args.overrides))
    return 0


def _comma_list(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in _comma_list(text) or []]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0.5,2,5,10; got {text!r}") from None


@command("bands")
def _bands(args) -> int:
    from mtdense.analysis.band_importance import band_importance, ranking_lines

    result = band_importance(args.checkpoint, args.split, args.out, args.repeats, args.seed, _comma_list(args.metrics),
                             args.steps, args.correlate, args.bins, args.overrides)
    print("\n".join(ranking_lines(result) + [str(p) for p in result["files"]]))
    return 0


@command("export")
def _export(args) -> int:
    from mtdense.export import check_export, export_model

    path, wrapper = export_model(args.checkpoint, args.out, args.format, args.height, args.width, args.opset,
                                 args.predictions, args.overrides)
    print(path)
    if args.check:
        for record in check_export(path, wrapper, args.height, args.width, args.format):
            print(json.dumps(record))
    return 0


@command("registry")
def _registry(args) -> int:
    from mtdense.registry import ALL_REGISTRIES, ConfigError

    kinds = [args.kind] if args.kind else list(ALL_REGISTRIES)
    for kind in kinds:
        if kind not in ALL_REGISTRIES:
            raise ConfigError(f"registry list: unknown kind {kind!r}; kinds: {', '.join(ALL_REGISTRIES)}")
        print(f"{kind}: {', '.join(ALL_REGISTRIES[kind].names()) or '(none)'}")
    return 0


@command("bench")
def _bench(args) -> int:
    from mtdense.bench.runner import bench

    paths = bench(args.grid, args.out, args.seeds, args.resume, args.report_dir)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))
    return 0


@command("config")
def _config(args) -> int:
    from mtdense.config import load_config, to_yaml

    print(to_yaml(load_config(args.config, args.overrides)), end="")
    return 0


@command("data")
def _data(args) -> int:
    if args.action == "synth-precip":
        from mtdense.data.synth_precip import synth_precip

        written = synth_precip(args.out, n_scenes=args.scenes, height=args.height, width=args.width, seed=args.seed,
                               decoy_channels=args.decoys)
        print(json.dumps({k: len(v) for k, v in written.items()}))
    elif args.action == "prepare-precip":
        from mtdense.data.precip_prepare import prepare_precip

        summary = prepare_precip(args.ahi, args.imerg, args.out, tile_size=args.tile, stride=args.stride,
                                 regrid=args.regrid, min_valid_fraction=args.min_valid,
                                 bands=[int(b) for b in args.bands.split(",")],
                                 extra_channels=[c for c in args.extra.split(",") if c], seed=args.seed)
        print(json.dumps({k: v for k, v in summary.items() if k != "files"}, default=str))
    else:
        from mtdense.data.synth_street import synth_street

        print(json.dumps(synth_street(args.root, args.n_train, args.n_val, args.height, args.width, args.seed), default=str))
    return 0


@command("demo")
def _demo(args) -> int:
    from mtdense.demo import run_precip_demo

    report = run_precip_demo(args.out, scenes=args.scenes, size=args.size, tile=args.tile, epochs=args.epochs,
                             seed=args.seed, overrides=args.overrides)
    print(f"report: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mtdense", description="Dense multi-task learning assembled from YAML.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def overrides(sp):
        sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides in dot notation, e.g. trainer.max_epochs=5 data.batch_size=4")

    sp = sub.add_parser("train", help="train a model from an experiment YAML",
                        description="Train from CONFIG; the resolved config and checkpoints go to trainer.out_dir.")
    sp.add_argument("config", help="experiment YAML, e.g. configs/precip/mtcf.yaml")
    overrides(sp)
    sp.add_argument("--resume", metavar="PATH", help="run folder or checkpoint to continue from (exactly)")

    sp = sub.add_parser("evaluate", help="evaluate a checkpoint on a split",
                        description="Dataset-level metrics of CHECKPOINT on SPLIT, as JSON.")
    sp.add_argument("checkpoint", help="checkpoint folder, its model.safetensors, or a run folder (uses last)")
    overrides(sp)
    sp.add_argument("--split", default="val", help="data split to evaluate (default: val)")
    sp.add_argument("--out", help="also write the metrics JSON here")

    sp = sub.add_parser("predict", help="write predictions of a checkpoint to HDF5",
                        description="One (N, H, W) dataset per task plus sample ids.")
    sp.add_argument("checkpoint")
    overrides(sp)
    sp.add_argument("--split", default="test")
    sp.add_argument("--out", required=True, help="output .h5 file")

    sp = sub.add_parser("bands", help="input-band importance of a checkpoint (permutation, attribution, correlation)",
                        description="Permutation importance of every input channel for every task metric, "
                                    "integrated-gradients attribution per task and, with --correlate, binned "
                                    "Pearson correlation with a target; CSVs and bar charts go to --out.")
    sp.add_argument("checkpoint")
    overrides(sp)
    sp.add_argument("--split", default="test")
    sp.add_argument("--out", default="bands", help="output folder (default: bands)")
    sp.add_argument("--repeats", type=int, default=1, help="permutations per channel (mean ± std)")
    sp.add_argument("--seed", type=int, help="permutation seed (default: the checkpoint's seed)")
    sp.add_argument("--metrics", help="comma-separated metrics to keep: full keys (rain/f1@2), names (f1@2) or families (f1)")
    sp.add_argument("--steps", type=int, default=8, help="integrated-gradients steps (1 = input × gradient)")
    sp.add_argument("--correlate", metavar="TARGET", help="target key to correlate each channel with, e.g. rain_rate")
    sp.add_argument("--bins", type=_floats, default=[], help="bin edges for --correlate, e.g. 0.5,2,5,10")

    sp = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript",
                        description="One output per task (raw, or predictions with --predictions); dynamic batch, "
                                    "height and width.")
    sp.add_argument("checkpoint")
    overrides(sp)
    sp.add_argument("--out", required=True, help="output file, e.g. model.onnx")
    sp.add_argument("--format", default="onnx", help="onnx (default) or torchscript")
    sp.add_argument("--height", type=int, default=64, help="height of the example input used for export")
    sp.add_argument("--width", type=int, default=64)
    sp.add_argument("--opset", type=int, default=17)
    sp.add_argument("--predictions", action="store_true", help="export task predictions instead of raw outputs")
    sp.add_argument("--check", action="store_true", help="compare the exported file with PyTorch on random inputs")

    sp = sub.add_parser("data", help="generate synthetic data or prepare real files",
                        description="synth-precip / prepare-precip: Himawari + IMERG → tile store; synth-street: "
                                    "synthetic street scenes in the Cityscapes layout.")
    dsub = sp.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = dsub.add_parser("synth-precip", help="write SYNTHETIC AHI P-Tree NetCDF + IMERG V07 HDF5 files")
    d.add_argument("--out", required=True, help="folder; files go to OUT/ahi and OUT/imerg")
    d.add_argument("--scenes", type=int, default=48, help="half-hour scenes (default 48)")
    d.add_argument("--height", type=int, default=128, help="label-grid rows (0.1°)")
    d.add_argument("--width", type=int, default=128, help="label-grid columns (0.1°)")
    d.add_argument("--decoys", type=int, default=1, help="information-free decoy channels (decoy_NN)")
    d.add_argument("--seed", type=int, default=0)
    d = dsub.add_parser("prepare-precip", help="pair AHI scans with IMERG half-hours, regrid, tile → HDF5 store")
    d.add_argument("--ahi", required=True, help="folder (or file) of P-Tree NC_H*.nc scans")
    d.add_argument("--imerg", required=True, help="folder of IMERG 3B-HHR* granules (V06 or V07)")
    d.add_argument("--out", required=True, help="output tile store (.h5)")
    d.add_argument("--tile", type=int, default=64, help="tile size in label pixels")
    d.add_argument("--stride", type=int, default=None, help="tile stride (default: tile size)")
    d.add_argument("--regrid", choices=["ahi_to_label", "label_to_ahi"], default="ahi_to_label")
    d.add_argument("--min-valid", type=float, default=0.5, help="drop tiles with a smaller valid-label fraction")
    d.add_argument("--bands", default="8,9,10,11,12,13,14,15,16", help="AHI bands, comma-separated")
    d.add_argument("--extra", default="", help="extra NetCDF variables as channels, comma-separated (e.g. decoy_01)")
    d.add_argument("--seed", type=int, default=0, help="seed of the train/val/test split")
    d = dsub.add_parser("synth-street", help="write SYNTHETIC street scenes in the Cityscapes layout")
    d.add_argument("--root", required=True)
    d.add_argument("--n-train", type=int, default=100)
    d.add_argument("--n-val", type=int, default=20)
    d.add_argument("--height", type=int, default=128)
    d.add_argument("--width", type=int, default=256)
    d.add_argument("--seed", type=int, default=0)

    sp = sub.add_parser("demo", help="the flagship demo: synthetic Himawari/IMERG → MTCF → report.md",
                        description="Synthesise files, prepare tiles, train configs/precip/mtcf.yaml, evaluate, "
                                    "draw figures, rank bands, and write OUT/report.md.")
    sp.add_argument("--out", default="demo_output/precip")
    sp.add_argument("--scenes", type=int, default=96, help="synthetic half-hour scenes")
    sp.add_argument("--size", type=int, default=128, help="label-grid size of each scene (0.1° pixels)")
    sp.add_argument("--tile", type=int, default=64, help="tile size")
    sp.add_argument("--epochs", type=int, default=15)
    sp.add_argument("--seed", type=int, default=0)
    overrides(sp)

    sp = sub.add_parser("bench", help="train a grid of multi-task variants and single-task baselines; report Δm",
                        description="Run every (pair, variant, seed) of GRID and its single-task baselines, "
                                    "profile them and write <report_dir>/<name>.md, .json and .png.")
    sp.add_argument("grid", help="grid YAML, e.g. configs/bench/interactions.yaml")
    sp.add_argument("--out", help="bench folder for runs and results.jsonl (default: runs/bench/<grid name>)")
    sp.add_argument("--seeds", type=int, metavar="N", help="use seeds 0..N-1 instead of the grid's")
    sp.add_argument("--resume", action="store_true",
                    help="continue the bench in --out: skip finished runs, resume interrupted ones from their checkpoints")
    sp.add_argument("--report-dir", help="where the report goes (default: the grid's report_dir)")

    sp = sub.add_parser("registry", help="list registered plugins")
    rsub = sp.add_subparsers(dest="action", required=True, metavar="ACTION")
    rl = rsub.add_parser("list", help="list plugin names, of every kind or of one")
    rl.add_argument("kind", nargs="?", help="backbone, decoder, head, interaction, task, loss, coupling, balancer, metric, dataset, logger")

    sp = sub.add_parser("config", help="inspect experiment configs")
    csub = sp.add_subparsers(dest="action", required=True, metavar="ACTION")
    cs = csub.add_parser("show", help="print the fully resolved config (defaults + file + overrides)")
    cs.add_argument("config")
    overrides(cs)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mtdense.engine.checkpoint import CheckpointError
    from mtdense.engine.trainer import TrainingError
    from mtdense.export import ExportError
    from mtdense.registry import ConfigError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, CheckpointError, TrainingError, ExportError, FileNotFoundError, KeyError) as exc:
        if args.debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"mtdense: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
