"""Benchmark harness: grid expansion and baseline configs, results/resume, profiling values, report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import mtdense.bench.runner as runner_mod
from conftest import tiny_config
from mtdense.bench.grid import fingerprint, load_grid, single_task_config
from mtdense.bench.costs import cost_clock, measure_costs, read_costs
from mtdense.bench.profile import count_parameters, flops_per_image
from mtdense.bench.report import _pair_markdown, _plateau, summarize_pair
from mtdense.bench.results import ResultsFile
from mtdense.bench.runner import run_bench
from mtdense.config import from_dict
from mtdense.engine.builder import build_experiment
from mtdense.engine.trainer import Trainer
from mtdense.errors import ConfigError, DataError


def write_grid(folder, seeds=2, epochs=1, axes=None):
    """A tiny grid on synthetic shapes: 2 balancer variants, 2 single-task baselines, 1 skipped pair."""
    cfg = tiny_config(folder / "unused")
    cfg["tasks"]["height"]["metrics"] = [{"type": "depth", "min_depth": 0.01, "max_depth": 10.0}]
    OmegaConf.save(OmegaConf.create(cfg), folder / "tiny.yaml")
    grid = {
        "name": "tiny", "seeds": seeds, "report_dir": str(folder / "report"),
        "profile": {"threads": 1, "latency_runs": 3, "warmup": 1, "rounds": 2, "train_steps": 1},
        "protocol": {"trainer.max_epochs": epochs},
        "pairs": [
            {"name": "shapes", "config": "tiny.yaml", "data": "synthetic",
             "baselines": [{"name": "semantic", "tasks": ["semantic"]}, {"name": "height", "tasks": ["height"]}],
             "delta_m": {"per_task": {"semantic": "miou", "height": "rmse"},
                         "per_metric": {"semantic": ["miou"], "height": ["rmse", "abs_rel"]}}},
            {"name": "precip", "config": "missing.yaml", "skip": "waiting for the precipitation pipeline"},
        ],
        "axes": axes or [{"key": "balancer", "values": [
            {"label": "equal", "value": {"type": "fixed"}},
            {"label": "height_x3", "value": {"type": "fixed", "weights": {"semantic": 1.0, "height": 3.0}}}]}],
    }
    path = folder / "grid.yaml"
    OmegaConf.save(OmegaConf.create(grid), path)
    return path


def test_grid_expands_variants_and_shared_baselines(tmp_path):
    grid = load_grid(write_grid(tmp_path), seeds=2)
    runs = grid.runs(tmp_path / "out")
    assert [r.key for r in runs[:4]] == ["shapes/baseline:semantic/seed0", "shapes/baseline:height/seed0",
                                         "shapes/equal/seed0", "shapes/height_x3/seed0"]
    assert len(runs) == 8 and {r.seed for r in runs[4:]} == {1}
    mtl = runs[3]
    assert mtl.baselines == ["baseline:semantic", "baseline:height"]
    assert OmegaConf.to_container(mtl.config.balancer) == {"type": "fixed", "weights": {"semantic": 1.0, "height": 3.0}}
    assert mtl.config.trainer.max_epochs == 1 and mtl.config.seed == 0
    assert mtl.config.trainer.out_dir == str(tmp_path / "out" / "runs" / "shapes" / "height_x3" / "seed0")
    base = runs[1].config
    assert list(base.tasks) == ["height"] and base.balancer.type == "fixed" and list(base.model.interactions) == []
    assert runs[1].config.trainer.out_dir.endswith("baseline_height/seed0")


def test_axis_that_changes_baselines_gets_its_own(tmp_path):
    axes = [{"key": "model.backbone.width", "values": [{"label": "w4", "value": 4}, {"label": "w6", "value": 6}]}]
    runs = load_grid(write_grid(tmp_path, axes=axes), seeds=1).runs(tmp_path / "out")
    assert [r.variant for r in runs] == ["baseline:semantic", "baseline:height", "baseline:semantic@w6",
                                         "baseline:height@w6", "w4", "w6"]
    assert runs[-1].baselines == ["baseline:semantic@w6", "baseline:height@w6"]
    assert runs[2].config.model.backbone.width == 6


def test_single_task_config_prunes_branches_couplings_and_references():
    cfg = from_dict(tiny_config("unused"))
    cfg.model.branches = {"shared": {"tasks": ["semantic", "height"]}}
    cfg.model.interactions = [{"type": "anything", "stages": "all"}]
    cfg.couplings = [{"type": "consistency", "regression": "height"}]
    out = single_task_config(cfg, ["semantic"], "baselines.semantic")
    assert OmegaConf.to_container(out.model.branches) == {"shared": {"tasks": ["semantic"]}}
    assert list(out.model.interactions) == [] and list(out.couplings) == []
    cfg.tasks.semantic.target = "height"  # a target key, not a task reference
    assert list(single_task_config(cfg, ["semantic"], "b").tasks) == ["semantic"]
    cfg.tasks.semantic.gate = {"task": "height"}
    with pytest.raises(ConfigError, match=r"tasks.semantic.gate.task refers to a removed task.*\{tasks.semantic.gate: null\}"):
        single_task_config(cfg, ["semantic"], "baselines.semantic")
    with pytest.raises(ConfigError, match=r"baselines.x.tasks: \['depth'\]"):
        single_task_config(cfg, ["depth"], "baselines.x")


def test_grid_errors_name_the_key(tmp_path):
    path = write_grid(tmp_path)
    raw = OmegaConf.load(path)
    raw.pairs[0].delta_m.per_task.semantic = ["miou", "pixel_acc"]
    OmegaConf.save(raw, path)
    with pytest.raises(ConfigError, match="pairs.shapes.delta_m.per_task.semantic: one metric name per task"):
        load_grid(path)
    raw.pairs[0].delta_m.per_task.semantic = "miou"
    raw.pairs[0].baselines[1].tasks = ["semantic", "height"]
    OmegaConf.save(raw, path)
    with pytest.raises(ConfigError, match="task 'semantic' must be kept by exactly one baseline"):
        load_grid(path)


def test_flops_and_params_of_a_known_layer():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)  # 4*8*8 outputs, 3*3*3 multiply-adds each
    assert flops_per_image(conv, (3, 8, 8)) == 2 * 4 * 8 * 8 * 27
    assert count_parameters(conv) == 4 * 27 + 4


def test_cost_clock_does_not_count_waiting_for_a_core():
    # the bench's two workers share the cores: time spent waiting (here: sleeping) must not count
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clock, name = cost_clock()
        tic = clock()
        time.sleep(0.03)
        waited = clock() - tic
    finally:
        torch.set_num_threads(threads)
    assert name == "thread CPU" and waited < 0.01


def test_costs_are_measured_once_interleaved_not_inside_the_runs(finished_bench):
    # before: every run timed itself while the other worker ran, so one grid's table showed a
    # 0-parameter identity module 3x slower than cbim and the same baseline at 4.9 vs 7.7 ms
    grid, folder, records = finished_bench
    assert all("latency_ms" not in r and "throughput_img_s" not in r for r in records.values())
    costs = read_costs(folder / "out")["shapes"]
    assert set(costs["variants"]) == {"equal", "height_x3", "baseline:semantic", "baseline:height"}
    equal, x3 = costs["variants"]["equal"], costs["variants"]["height_x3"]
    assert equal["step_vs_reference"] == 1.0 and equal["latency_vs_reference"] == 1.0
    assert equal["clock"] == "thread CPU" and equal["rounds"] == 2 and x3["step_ms"] > 0 and x3["latency_ms"] > 0
    # kept while the configs are unchanged: a resumed bench does not measure again
    before = (folder / "out" / "costs.json").stat().st_mtime_ns
    measure_costs(grid, folder / "out", {r.key: fingerprint(r.config) for r in grid.runs(folder / "out")},
                  log=lambda m: pytest.fail(f"measured again: {m}"))
    assert (folder / "out" / "costs.json").stat().st_mtime_ns == before


def test_a_corrupt_costs_file_is_one_line_naming_it(tmp_path):
    (tmp_path / "costs.json").write_text('{"shapes": ')
    with pytest.raises(DataError, match=r"costs.json: not valid JSON .*delete it and rerun"):
        read_costs(tmp_path)


def test_results_file_is_strict_json_and_names_bad_lines(tmp_path):
    store = ResultsFile(tmp_path / "results.jsonl")
    store.append({"key": "a/b/seed0", "x": float("nan")})
    store.append({"key": "a/b/seed1", "x": 1.5})
    assert [json.loads(line)["x"] for line in store.path.read_text().splitlines()] == [None, 1.5]
    with open(store.path, "a") as f:
        f.write('{"key": "a/b/seed2", "x": 1\n')  # a truncated line
    with pytest.raises(DataError, match=r"results.jsonl:3: not a bench result line"):
        store.read()


@pytest.fixture(scope="module")
def finished_bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    grid = load_grid(write_grid(folder), seeds=2)
    store = run_bench(grid, folder / "out", log=lambda msg: None, scheduler="inline")
    return grid, folder, store.read()


def test_results_have_metrics_and_costs(finished_bench):
    grid, folder, records = finished_bench
    assert len(records) == 8
    rec = records["shapes/equal/seed1"]
    assert rec["kind"] == "multitask" and rec["baselines"] == ["baseline:semantic", "baseline:height"]
    assert set(rec["metrics"]) == {"semantic", "height"}
    assert 0.0 <= rec["metrics"]["semantic"]["miou"] <= 1.0 and rec["metrics"]["height"]["rmse"] > 0
    assert records["shapes/baseline:height/seed0"]["metrics"] == {"height": records["shapes/baseline:height/seed0"]["metrics"]["height"]}
    assert rec["protocol"] == {"input_shape": [3, 16, 24], "train_images": 16, "val_images": 8, "test_images": 0,
                               "epochs": 1, "batch_size": 4, "steps": 4}
    assert rec["scored_split"] == "val" and rec["curve"][0]["step"] == 4 and "val/semantic/miou" in rec["curve"][0]
    assert rec["resumed_from_step"] == 0
    for variant in ("equal", "height_x3", "baseline:semantic"):
        flops = {records[f"shapes/{variant}/seed{s}"]["flops_per_image"] for s in (0, 1)}
        assert len(flops) == 1 and flops.pop() > 0
    # the two balancer variants are the same network; a single-task model is smaller
    assert records["shapes/equal/seed0"]["params"] == records["shapes/height_x3/seed0"]["params"]
    assert records["shapes/baseline:semantic/seed0"]["params"] < rec["params"]
    run = next(r for r in grid.runs(folder / "out") if r.key == "shapes/equal/seed1")
    assert rec["params"] == count_parameters(build_experiment(run.config).model)


def test_resume_skips_finished_runs(finished_bench, monkeypatch):
    grid, folder, records = finished_bench
    constructed = []
    monkeypatch.setattr(runner_mod, "Trainer", lambda cfg: constructed.append(cfg) or Trainer(cfg))
    with pytest.raises(ConfigError, match="pass --resume"):
        run_bench(grid, folder / "out", log=lambda msg: None, scheduler="inline")
    store = run_bench(grid, folder / "out", resume=True, log=lambda msg: None, scheduler="inline")
    assert constructed == [] and store.read() == records


def test_interrupted_bench_continues_and_resumes_the_run_exactly(tmp_path, monkeypatch):
    grid = load_grid(write_grid(tmp_path, seeds=1, epochs=2))
    out = tmp_path / "out"

    def stop_after_first(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_bench(grid, out, on_record=stop_after_first, log=lambda msg: None, scheduler="inline")
    first_line = (out / "results.jsonl").read_text()
    assert [json.loads(line)["key"] for line in first_line.splitlines()] == ["shapes/baseline:semantic/seed0"]

    original = Trainer.train_step

    def crash_in_second_epoch(self, micro):
        if self.global_step == 5:  # 4 steps per epoch: the epoch-1 checkpoint exists
            raise KeyboardInterrupt
        return original(self, micro)

    monkeypatch.setattr(Trainer, "train_step", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_bench(grid, out, resume=True, log=lambda msg: None, scheduler="inline")
    monkeypatch.setattr(Trainer, "train_step", original)
    records = run_bench(grid, out, resume=True, log=lambda msg: None, scheduler="inline").read()
    assert (out / "results.jsonl").read_text().startswith(first_line)
    assert list(records) == [r.key for r in grid.runs(out)]
    resumed = records["shapes/baseline:height/seed0"]
    assert resumed["resumed_from_step"] == 4 and resumed["protocol"]["steps"] == 8
    cfg = next(r for r in grid.runs(out) if r.key == "shapes/baseline:height/seed0").config
    cfg.trainer.out_dir = str(tmp_path / "clean")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the grid's profile.threads: float sums depend on the thread count
    try:
        clean = Trainer(cfg).fit()
    finally:
        torch.set_num_threads(threads)
    assert resumed["metrics"]["height"]["rmse"] == clean["val/height/rmse"]


def test_delta_m_columns_by_hand():
    pytest.importorskip("mtdense.metrics.delta_m")
    grid_pair = type("P", (), {"per_task": {"semantic": "miou", "height": "rmse"},
                               "per_metric": {"semantic": ["miou"], "height": ["rmse", "abs_rel"]},
                               "config": "tiny.yaml", "data": "synthetic"})()

    def rec(variant, kind, seed, metrics, baselines=()):
        return {"variant": variant, "kind": kind, "seed": seed, "tasks": list(metrics), "baselines": list(baselines),
                "metrics": metrics, "params": 10, "flops_per_image": 100,
                "protocol": {}}

    bl = ["baseline:semantic", "baseline:height"]
    records = [rec("baseline:semantic", "baseline", 0, {"semantic": {"miou": 0.4}}),
               rec("baseline:semantic", "baseline", 1, {"semantic": {"miou": 0.6}}),
               rec("baseline:height", "baseline", 0, {"height": {"rmse": 2.0, "abs_rel": 0.2}}),
               rec("baseline:height", "baseline", 1, {"height": {"rmse": 2.0, "abs_rel": 0.2}}),
               rec("mtl", "multitask", 0, {"semantic": {"miou": 0.55}, "height": {"rmse": 1.8, "abs_rel": 0.2}}, bl),
               rec("mtl", "multitask", 1, {"semantic": {"miou": 0.5}, "height": {"rmse": 2.2, "abs_rel": 0.3}}, bl)]
    summary = summarize_pair(grid_pair, records)
    dm = summary["variants"]["mtl"]["delta_m"]
    # rows follow the grid (baselines first), not the order in which runs happened to finish
    shuffled = summarize_pair(grid_pair, records[::-1], order=["baseline:semantic", "baseline:height", "mtl"])
    assert list(shuffled["variants"]) == ["baseline:semantic", "baseline:height", "mtl"]
    # a baseline that scored 0 makes that seed's relative change undefined: said, not a traceback
    collapsed = [rec("baseline:semantic", "baseline", 0, {"semantic": {"miou": 0.0}}), *records[1:]]
    text = "\n".join(_pair_markdown("shapes", summarize_pair(grid_pair, collapsed)))
    assert "Δm of mtl, seed 0: undefined" in text and "semantic/miou is 0" in text
    # every seed's scored values are kept, so paired analyses work from the report alone
    assert summary["variants"]["mtl"]["metrics_per_seed"][1] == {"semantic/miou": 0.5, "height/rmse": 2.2,
                                                                  "height/abs_rel": 0.3}
    # each seed against the baselines of the same seed:
    # runs with too few evaluations are "not assessed", never counted as "not at plateau"
    assert summary["variants"]["mtl"]["plateau"] == {"reached": 0, "assessed": 0, "runs": 2}
    assert _plateau(summary["variants"]["mtl"]["plateau"]) == "not assessed (2 runs with < 4 evaluations)"
    assert _plateau({"reached": 1, "assessed": 2, "runs": 3}) == "1/2 (1 not assessed)"
    # per task: seed 0 (+37.5 miou vs 0.4, +10 rmse)/2 = 23.75; seed 1 (-16.67 vs 0.6, -10)/2 = -13.33
    assert dm["per_task"]["mean"] == pytest.approx((23.75 - 40 / 3) / 2)
    # per metric: seed 0 (37.5 + 10 + 0)/3; seed 1 (-16.67 - 10 - 50)/3
    assert dm["per_metric"]["mean"] == pytest.approx(((47.5 / 3) + (-(50 / 3) - 60) / 3) / 2)


def test_report_markdown_json_and_plot(finished_bench, tmp_path):
    pytest.importorskip("mtdense.metrics.delta_m")
    from mtdense.cli import main

    grid, folder, _ = finished_bench
    code = main(["bench", str(grid.path), "--out", str(folder / "out"), "--resume", "--seeds", "2",
                 "--report-dir", str(tmp_path)])
    assert code == 0
    text = (tmp_path / "tiny.md").read_text()
    assert "Δm per-task [%]" in text and "Δm per-metric [%]" in text
    assert "(T=2): semantic/miou, height/rmse" in text and "(K=3)" in text
    assert "| equal | 2 (0, 1) |" in text and " ± " in text and "PARTIAL" not in text
    assert "train step [ms] | step × equal | latency [ms] | latency × equal |" in text and "| 1.00× |" in text
    assert "- precip: waiting for the precipitation pipeline" in text and "nproc" in text
    summary = json.loads((tmp_path / "tiny.json").read_text())
    equal = summary["pairs"]["shapes"]["variants"]["equal"]
    assert equal["delta_m"]["per_task"]["n"] == 2 and equal["seeds"] == [0, 1]
    assert (tmp_path / "tiny.png").stat().st_size > 1000


def test_prepare_hooks_are_idempotent_and_refuse_other_data(tmp_path, capsys):
    from mtdense.bench.prepare import run_prepare

    args = ["data", "synth-street", "--root", str(tmp_path / "street"), "--n-train", "2", "--n-val", "1",
            "--height", "8", "--width", "16"]
    run_prepare([{"type": "mtdense", "args": args}], "prepare")
    assert len(list((tmp_path / "street" / "leftImg8bit" / "train").glob("*/*.png"))) == 2
    capsys.readouterr()
    run_prepare([{"type": "mtdense", "args": args}], "prepare")
    assert '"already_present": true' in capsys.readouterr().out
    with pytest.raises(ConfigError, match="failed with exit code 2"):
        run_prepare([{"type": "mtdense", "args": ["3" if a == "2" else a for a in args]}], "prepare")
    assert "made with" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"^prepare.0.arg: unknown option \(did you mean 'args'\?\)"):
        run_prepare([{"type": "mtdense", "arg": args}], "prepare")
    with pytest.raises(ConfigError, match="did not create"):
        run_prepare([{"type": "mtdense", "args": ["registry", "list", "balancer"], "creates": str(tmp_path / "x")}], "prepare")


def test_composite_scores_single_task_models_together(tmp_path):
    """The composite of the two baselines of a seed reproduces each baseline's own scores (no gate
    here), is recorded once, and enters the report's paired comparisons as a variant."""
    path = write_grid(tmp_path, seeds=1)
    grid_yaml = OmegaConf.load(path)
    grid_yaml.pairs[0].composites = [{"name": "separate", "members": ["semantic", "height"], "scored_as": "equal"}]
    grid_yaml.reference = "separate"
    OmegaConf.save(grid_yaml, path)
    grid = load_grid(path)
    records = run_bench(grid, tmp_path / "out", log=lambda msg: None, scheduler="inline").read()
    comp = records["shapes/separate/seed0"]
    assert comp["kind"] == "composite" and comp["members"] == ["baseline:height", "baseline:semantic"]
    semantic = records["shapes/baseline:semantic/seed0"]["metrics"]["semantic"]
    height = records["shapes/baseline:height/seed0"]["metrics"]["height"]
    assert comp["metrics"]["semantic"]["miou"] == pytest.approx(semantic["miou"], rel=1e-6)
    assert comp["metrics"]["height"]["rmse"] == pytest.approx(height["rmse"], rel=1e-6)
    summary = summarize_pair(grid.pairs[0], list(records.values()), reference="separate")
    assert set(summary["paired"]["per_task"]["comparisons"]) == {"equal", "height_x3"}


def test_unknown_plugin_in_a_variant_fails_before_any_run(tmp_path, monkeypatch):
    """The agri grid kept `type: padnet` after the module was renamed `padnet_distillation`:
    its runs failed one by one after the other variants had trained for half an hour."""
    axes = [{"key": "model.interactions", "values": [
        {"label": "none", "value": []},
        {"label": "renamed", "value": [{"type": "padnet", "stages": "last"}]}]}]
    grid = load_grid(write_grid(tmp_path, seeds=1, axes=axes))
    constructed = []
    monkeypatch.setattr(runner_mod, "Trainer", lambda cfg: constructed.append(cfg) or Trainer(cfg))
    with pytest.raises(ConfigError, match=r"unknown interaction 'padnet'.*variant renamed"):
        run_bench(grid, tmp_path / "out", log=lambda msg: None, scheduler="inline")
    assert constructed == []


def test_keyless_axes_next_to_keyed_ones_give_storable_labels(tmp_path):
    """A keyless axis (values = override sets) used to be labelled under the key None, which a
    keyed axis beside it made unstorable (sorted JSON keys) and two keyless axes overwrote."""
    from mtdense.strict_json import dumps

    axes = [{"values": [{"label": "plain", "overrides": {}}]},
            {"values": [{"label": "lr_low", "overrides": {"trainer.lr": 1.0e-3}}]},
            {"key": "balancer", "values": [{"label": "equal", "value": {"type": "fixed"}}]}]
    runs = load_grid(write_grid(tmp_path, axes=axes), seeds=1).runs(tmp_path / "out")
    mtl = next(r for r in runs if r.kind == "multitask")
    assert mtl.variant == "plain+lr_low+equal" and mtl.config.trainer.lr == 1.0e-3
    assert mtl.labels == {"axes.0": "plain", "axes.1": "lr_low", "balancer": "equal"}
    assert json.loads(dumps({"labels": mtl.labels}, sort_keys=True))["labels"] == mtl.labels


class ConstantRule:
    """Class 0 and height 1.5 everywhere (a test rule; Lehmann & Casella 1998, the constant estimator)."""

    def __init__(self, channel_names, height: float = 1.5):
        self.height, self.targets = height, ("semantic", "height")

    def __call__(self, image):
        b, _, h, w = image.shape
        return {"semantic": torch.zeros(b, h, w, dtype=torch.int64), "height": torch.full((b, h, w), self.height)}


@pytest.fixture
def constant_rule():
    from mtdense.registry import RULES

    RULES.register("constant")(ConstantRule)
    yield "constant"
    RULES._table.pop("constant", None)


def grid_with_rule(folder, rule, seeds=2):
    path = write_grid(folder, seeds=seeds)
    raw = OmegaConf.load(path)
    raw.pairs[0].rules = [rule]
    OmegaConf.save(raw, path)
    return load_grid(path)


def test_a_rule_is_scored_once_and_compared_like_a_variant(finished_bench, constant_rule, tmp_path, monkeypatch):
    """The finished tiny bench, resumed with a non-learned rule added: nothing trains, the rule is
    scored once on the same split (val here: the tiny grid has no test split), its record is stored
    for both seeds, it enters Δm and the paired comparisons, and the report labels it."""
    import shutil

    from mtdense.bench.report import markdown, summarize
    from mtdense.engine.builder import build_dataset

    _, folder, records = finished_bench
    out = tmp_path / "out"
    shutil.copytree(folder / "out", out)
    (tmp_path / "tiny.yaml").write_text((folder / "tiny.yaml").read_text())
    grid = grid_with_rule(tmp_path, {"name": "const", "type": "constant"})
    constructed, scored = [], []
    monkeypatch.setattr(runner_mod, "Trainer", lambda cfg: constructed.append(cfg) or Trainer(cfg))
    original = runner_mod.evaluate_rule
    monkeypatch.setattr(runner_mod, "evaluate_rule", lambda run: scored.append(run.key(0)) or original(run))
    new = run_bench(grid, out, resume=True, log=lambda msg: None, scheduler="inline").read()
    assert constructed == [] and scored == ["shapes/const/seed0"]
    assert set(new) - set(records) == {"shapes/const/seed0", "shapes/const/seed1"}
    r0, r1 = new["shapes/const/seed0"], new["shapes/const/seed1"]
    assert r0["kind"] == "rule" and r0["params"] == 0 and r0["train_seconds"] == 0.0 and r0["scored_split"] == "val"
    assert r0["metrics"] == r1["metrics"] and r0["tasks"] == ["semantic", "height"]
    assert r0["citation"].startswith("Class 0 and height 1.5 everywhere")
    # by hand on the val split: pixel accuracy of "class 0 everywhere", RMSE of 1.5 on the depth metric's range
    run = next(r for r in grid.runs(out) if r.variant == "equal")
    val = build_dataset(run.config, "val")
    samples = [val[i] for i in range(len(val))]
    sem = torch.stack([s["targets"]["semantic"] for s in samples])
    height = torch.stack([s["targets"]["height"] for s in samples]).double()
    valid = torch.stack([s["valid"]["semantic"] for s in samples])
    assert r0["metrics"]["semantic"]["pixel_acc"] == pytest.approx(((sem == 0) & valid).sum().item() / valid.sum().item())
    keep = valid & (height > 0.01) & (height <= 10.0)
    assert r0["metrics"]["height"]["rmse"] == pytest.approx(((height[keep] - 1.5) ** 2).mean().sqrt().item())
    # Δm per seed against that seed's baselines; paired difference per seed against the reference
    summary = summarize(grid, new)
    pair = summary["pairs"]["shapes"]
    const = pair["variants"]["const"]
    assert const["kind"] == "rule" and const["metrics"]["height/rmse"]["std"] == 0.0
    comparison = pair["paired"]["per_task"]["comparisons"]["const"]
    for seed in (0, 1):
        expected = const["delta_m_seeds"]["per_task"][seed] - pair["variants"]["equal"]["delta_m_seeds"]["per_task"][seed]
        assert comparison["differences"][seed] == pytest.approx(expected)
    text = markdown(summary, None)
    assert "| const (non-learned rule) | 2 (0, 1) |" in text and "– (not trained)" in text
    assert "- `const` (`{'type': 'constant'}`): Class 0 and height 1.5 everywhere" in text
    # resuming again scores nothing; changing the rule's options is refused like a changed config
    run_bench(grid, out, resume=True, log=lambda msg: None, scheduler="inline")
    assert scored == ["shapes/const/seed0"]
    changed = grid_with_rule(tmp_path, {"name": "const", "type": "constant", "height": 2.0})
    with pytest.raises(ConfigError, match="run shapes/const/seed0 was recorded with another config"):
        run_bench(changed, out, resume=True, log=lambda msg: None, scheduler="inline")


def test_a_bad_rule_fails_before_any_run_naming_the_key(tmp_path, constant_rule, monkeypatch):
    with pytest.raises(ConfigError) as info:
        grid_with_rule(tmp_path, {"name": "gpi", "type": "gpii"})
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{tmp_path / 'grid.yaml'}: pairs.shapes.rules.0.type: unknown rule 'gpii' "
                                      "(did you mean 'gpi'?)")
    with pytest.raises(ConfigError, match=r"pairs.shapes.rules.0.scored_as: 'gated' is not a variant"):
        grid_with_rule(tmp_path, {"name": "const", "type": "constant", "scored_as": "gated"})
    with pytest.raises(ConfigError, match=r"'equal': a composite or rule needs a name of its own"):
        grid_with_rule(tmp_path, {"name": "equal", "type": "constant"})
    grid = grid_with_rule(tmp_path, {"name": "const", "type": "constant", "hieght": 2.0})
    constructed = []
    monkeypatch.setattr(runner_mod, "Trainer", lambda cfg: constructed.append(cfg) or Trainer(cfg))
    with pytest.raises(ConfigError, match=r"pairs.shapes.rules.0.hieght: unknown option for rule 'constant' "
                                          r"\(did you mean 'height'\?\)"):
        run_bench(grid, tmp_path / "out", log=lambda msg: None, scheduler="inline")
    assert constructed == []


@pytest.mark.parametrize("grid_file", sorted((Path(__file__).resolve().parents[1] / "mtdense" / "configs" / "bench").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_shipped_grid_loads_and_names_its_reference(grid_file):
    grid = load_grid(grid_file)
    runs = grid.runs(Path("unused"))
    assert runs and len(grid.seeds) >= 3
    variants = {r.variant for r in runs} | {c.variant for c in grid.composite_runs(Path("unused"))}
    assert grid.reference is None or grid.reference in variants
