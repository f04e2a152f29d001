"""The ``mtdense`` command (verb first, like nnU-Net's): train, evaluate, predict, inspect.

Core verbs are defined here; domains add theirs (``demo``, ``data synth-precip``, ...) through the
``CLI`` module their plugin module names. Start-up imports only argparse and the plugin modules,
so ``mtdense --help``, ``config show`` and ``registry list`` stay fast; each verb imports what it
needs when it runs.

Errors a user can fix (any ``MtdenseError``: config keys, unknown plugin names, corrupt files,
non-finite losses) and operating-system errors are printed as one line naming the key or file;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from mtdense.strict_json import dumps


def _run_config(resume: str) -> str:
    """The ``config.yaml`` of the run that ``resume`` (a run folder, a checkpoint folder or file, or a
    pointer) belongs to: the first one found in it or up to three folders above."""
    from pathlib import Path

    from mtdense.errors import ConfigError

    start = Path(resume).absolute()
    for folder in [start, *start.parents][:4]:
        if (folder / "config.yaml").is_file():
            return str(folder / "config.yaml")
    raise ConfigError(f"{resume}: no config.yaml in this run folder or above it; pass the experiment YAML: "
                      f"mtdense train CONFIG --resume {resume}")


def _train(args) -> int:
    from mtdense.config import load_config
    from mtdense.engine.trainer import Trainer

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and args.resume:  # `train KEY=VALUE --resume RUN`
        config, overrides = None, [config, *overrides]
    if config is None:
        if not args.resume:
            raise SystemExit("mtdense train: error: give CONFIG (an experiment YAML), or --resume RUN")
        config = _run_config(args.resume)
    cfg = load_config(config, overrides)
    metrics = Trainer(cfg).fit(resume=args.resume)
    print(dumps(metrics, indent=1))
    return 0


def _evaluate(args) -> int:
    from mtdense.inference.predict import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, args.split, args.overrides)
    text = dumps(metrics, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


def _predict(args) -> int:
    from mtdense.inference.predict import predict_checkpoint

    print(predict_checkpoint(args.checkpoint, args.split, args.out, args.overrides))
    return 0


def _comma_list(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in _comma_list(text) or []]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0.5,2,5,10; got {text!r}") from None


def _bands(args) -> int:
    from mtdense.analysis.band_importance import band_importance, ranking_lines

    result = band_importance(args.checkpoint, args.split, args.out, args.repeats, args.seed, _comma_list(args.metrics),
                             args.steps, args.correlate, args.bins, args.overrides)
    print("\n".join(ranking_lines(result) + [str(p) for p in result["files"]]))
    return 0


def _export(args) -> int:
    from mtdense.inference.export import check_export, export_model

    path, wrapper = export_model(args.checkpoint, args.out, args.format, args.height, args.width, args.opset,
                                 args.predictions, args.overrides)
    print(path)
    if args.check:
        for record in check_export(path, wrapper, args.height, args.width, args.format):
            print(json.dumps(record))
    return 0


def _registry_kind(kind: str | None) -> list[str]:
    from mtdense.errors import ConfigError
    from mtdense.registry import ALL_REGISTRIES

    if kind is None:
        return list(ALL_REGISTRIES)
    if kind not in ALL_REGISTRIES:
        raise ConfigError(f"unknown kind {kind!r}; kinds: {', '.join(ALL_REGISTRIES)}", key="registry")
    return [kind]


def _registry_list(args) -> int:
    from mtdense.registry import ALL_REGISTRIES

    for kind in _registry_kind(args.kind):
        print(f"{kind}: {', '.join(ALL_REGISTRIES[kind].listed_names(args.pattern)) or '(none)'}")
    return 0


def _registry_show(args) -> int:
    import inspect

    from mtdense.errors import RegistryError
    from mtdense.registry import ALL_REGISTRIES

    kinds = [k for k in _registry_kind(args.kind) if args.name in ALL_REGISTRIES[k]]
    if not kinds:
        raise RegistryError("no plugin of that name in any kind; try `mtdense registry list`", key=args.name)
    for kind in kinds:
        reg = ALL_REGISTRIES[kind]
        fn = reg.get(args.name)
        doc = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
        print(f"{kind} {args.name!r} ({fn.__module__}.{fn.__qualname__})" + (f": {doc}" if doc else ""))
        for key, default in reg.options(args.name).items():
            print(f"  {key} = {'(required)' if default is inspect.Parameter.empty else repr(default)}")
    return 0


def _bench(args) -> int:
    from mtdense.bench.runner import bench

    paths = bench(args.grid, args.out, args.seeds, args.resume, args.report_dir, scheduler=args.scheduler,
                  workers=args.workers, report_only=args.report_only)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))
    return 0


def _config_show(args) -> int:
    from mtdense.config import load_config, to_yaml

    cfg = load_config(args.config, args.overrides)
    if not args.no_check:
        from mtdense.engine.builder import check_experiment

        note = check_experiment(cfg)
        if note:
            print(f"mtdense: note: {note}", file=sys.stderr)
    print(to_yaml(cfg), end="")
    return 0


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show every option's default in ``--help`` (unless its help already explains it) and keep
    description line breaks."""

    def _get_help_string(self, action):
        text = action.help or ""
        return text if "(default" in text else super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An argument parser (and, through ``add_subparsers``, every sub-parser) using ``_Formatter``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _overrides(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="config overrides in dot notation, e.g. trainer.max_epochs=5 data.batch_size=4")


def _core_commands(sub, data) -> None:
    sp = sub.add_parser("train", help="train a model from an experiment YAML",
                        description="Train from CONFIG; the resolved config and checkpoints go to trainer.out_dir.")
    sp.add_argument("config", nargs="?", help="experiment YAML, e.g. configs/precip/mtcf.yaml (shipped configs work "
                                              "from any directory as precip/mtcf.yaml); optional with --resume, "
                                              "which then uses the run folder's config.yaml")
    _overrides(sp)
    sp.add_argument("--resume", metavar="RUN", help="run folder or checkpoint to continue from (exactly)")
    sp.set_defaults(run=_train)

    sp = sub.add_parser("evaluate", help="evaluate a checkpoint on a split",
                        description="Dataset-level metrics of CHECKPOINT on SPLIT, as JSON.")
    sp.add_argument("checkpoint", help="checkpoint folder, its model.safetensors, or a run folder (uses last)")
    _overrides(sp)
    sp.add_argument("--split", default="val", help="data split to evaluate")
    sp.add_argument("--out", help="also write the metrics JSON here")
    sp.set_defaults(run=_evaluate)

    sp = sub.add_parser("predict", help="write predictions of a checkpoint to HDF5",
                        description="One (N, H, W) dataset per task plus sample ids.")
    sp.add_argument("checkpoint")
    _overrides(sp)
    sp.add_argument("--split", default="test")
    sp.add_argument("--out", required=True, help="output .h5 file")
    sp.set_defaults(run=_predict)

    sp = sub.add_parser("bands", help="input-band importance of a checkpoint (permutation, attribution, correlation)",
                        description="Permutation importance of every input channel for every task metric, "
                                    "integrated-gradients attribution per task and, with --correlate, binned "
                                    "Pearson correlation with a target; CSVs and bar charts go to --out.")
    sp.add_argument("checkpoint")
    _overrides(sp)
    sp.add_argument("--split", default="test")
    sp.add_argument("--out", default="bands", help="output folder")
    sp.add_argument("--repeats", type=int, default=1, help="permutations per channel (mean ± std)")
    sp.add_argument("--seed", type=int, help="permutation seed (default: the checkpoint's seed)")
    sp.add_argument("--metrics", help="comma-separated metrics to keep: full keys (rain/f1@2), names (f1@2) or families (f1)")
    sp.add_argument("--steps", type=int, default=8, help="integrated-gradients steps (1 = input × gradient)")
    sp.add_argument("--correlate", metavar="TARGET", help="target key to correlate each channel with, e.g. rain_rate")
    sp.add_argument("--bins", type=_floats, default=[], help="bin edges for --correlate, e.g. 0.5,2,5,10")
    sp.set_defaults(run=_bands)

    sp = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript",
                        description="One output per task (raw, or predictions with --predictions); dynamic batch, "
                                    "height and width.")
    sp.add_argument("checkpoint")
    _overrides(sp)
    sp.add_argument("--out", required=True, help="output file, e.g. model.onnx")
    sp.add_argument("--format", default="onnx", help="onnx or torchscript")
    sp.add_argument("--height", type=int, default=64, help="height of the example input used for export")
    sp.add_argument("--width", type=int, default=64)
    sp.add_argument("--opset", type=int, default=17)
    sp.add_argument("--predictions", action="store_true", help="export task predictions instead of raw outputs")
    sp.add_argument("--check", action="store_true", help="compare the exported file with PyTorch on random inputs")
    sp.set_defaults(run=_export)

    sp = sub.add_parser("bench", help="train a grid of multi-task variants and single-task baselines; report Δm",
                        description="Run every (pair, variant, seed) of GRID and its single-task baselines, "
                                    "profile them and write <report_dir>/<name>.md, .json and .png.")
    sp.add_argument("grid", help="grid YAML, e.g. configs/bench/interactions.yaml")
    sp.add_argument("--out", help="bench folder for runs and results.jsonl (default: runs/bench/<grid name>)")
    sp.add_argument("--seeds", type=int, metavar="N", help="use seeds 0..N-1 instead of the grid's")
    sp.add_argument("--resume", action="store_true",
                    help="continue the bench in --out: skip finished runs, resume interrupted ones from their checkpoints")
    sp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="Dask scheduler address of an existing cluster (default: a LocalCluster on this machine; "
                         "'inline': no Dask, one run after another in this process)")
    sp.add_argument("--report-only", action="store_true",
                    help="write the report from the runs finished so far (marked PARTIAL), run nothing")
    sp.add_argument("--workers", type=int, default=None,
                    help="LocalCluster size: single-thread worker processes (default: min(2, cores))")
    sp.add_argument("--report-dir", help="where the report goes (default: the grid's report_dir)")
    sp.set_defaults(run=_bench)

    sp = sub.add_parser("registry", help="list registered plugins, or show one")
    rsub = sp.add_subparsers(dest="action", required=True, metavar="ACTION")
    kinds = "backbone, decoder, head, interaction, task, loss, coupling, balancer, metric, dataset, logger"
    rl = rsub.add_parser("list", help="list plugin names, of every kind or of one")
    rl.add_argument("kind", nargs="?", help=kinds)
    rl.add_argument("--pattern", help="shell pattern on names, e.g. 'mit_*'")
    rl.set_defaults(run=_registry_list)
    rs = rsub.add_parser("show", help="a plugin's options, defaults and docstring")
    rs.add_argument("name")
    rs.add_argument("--kind", help=kinds)
    rs.set_defaults(run=_registry_show)

    sp = sub.add_parser("config", help="inspect experiment configs")
    csub = sp.add_subparsers(dest="action", required=True, metavar="ACTION")
    cs = csub.add_parser("show", help="print the fully resolved config (defaults + file + overrides)")
    cs.add_argument("config")
    _overrides(cs)
    cs.add_argument("--no-check", action="store_true",
                    help="only merge and print; do not build the experiment to check plugin options")
    cs.set_defaults(run=_config_show)


def build_parser() -> argparse.ArgumentParser:
    from mtdense import __version__
    from mtdense.registry import PLUGINS

    p = _Parser(prog="mtdense", description="Dense multi-task learning assembled from YAML.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--version", action="version", version=f"mtdense {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sp = sub.add_parser("data", help="generate synthetic data or prepare real files (actions come from the domains)")
    data = sp.add_subparsers(dest="action", required=True, metavar="ACTION")
    _core_commands(sub, data)
    for module in PLUGINS.cli_modules():
        cli = PLUGINS.try_import(module, "mtdense CLI plugin")
        if cli is not None:
            cli.add_commands(sub, data)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``KEY=VALUE`` overrides may stand anywhere on it (after the verb),
    also after options: argparse leaves them over and they join the verb's overrides."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-") or "=" not in a]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def user_message(exc: BaseException) -> str:
    """One line for ``exc``. An error raised in a DataLoader worker arrives re-raised with the
    worker's traceback in its message; the original message is the traceback's last line."""
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
    if "Original Traceback" not in text:
        return " ".join(str(exc).split())
    last = [line for line in text.splitlines() if line.strip()][-1]
    name, _, message = last.partition(": ")
    return " ".join((message if message and name.replace(".", "").isidentifier() else last).split())


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as ``mtdense: warning: ...`` (the source line only with --debug)."""
    print(f"mtdense: warning: {' '.join(str(message).split())}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mtdense.errors import MtdenseError

    if not args.debug:
        warnings.showwarning = _one_line_warning
        # libraries' deprecation notices (e.g. timm's torch.jit.interface) are for developers
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)

    try:
        return args.run(args)
    except (MtdenseError, OSError) as exc:
        if args.debug:
            raise
        print(f"mtdense: error: {user_message(exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)


if __name__ == "__main__":
    sys.exit(main())
