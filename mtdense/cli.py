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
    from mtdense.registry import ConfigError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, CheckpointError, TrainingError, FileNotFoundError, KeyError) as exc:
        if args.debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"mtdense: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
