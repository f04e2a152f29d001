"""Band (input-channel) importance of a trained checkpoint, for the band analysis of MTCF-style
precipitation retrievals (Yang et al., Remote Sensing 13:2310, 2021, section 4.5; the paper's
own method is unknown, see docs seeds.md 1.2). Three measures, each streamed over a split:

(a) Permutation importance (Breiman, Machine Learning 45, 2001; Fisher, Rudin & Dominici, JMLR
    20, 2019, "model reliance"): channel c of sample i is replaced by channel c of sample π(i)
    and every task metric is recomputed over the whole split. π is a fixed random cyclic
    permutation (no sample keeps its own channel) drawn from (seed, repeat). The split is read
    once, in order, in batches; each sample arrives together with the images of its R partners
    (``PartneredSamples`` loads them by index from the dataset), and for every repeat and channel
    a swapped copy of the batch goes through the model. Memory is (1 + R) batches of images plus
    one metric accumulator per (repeat, channel, task). Importance = change of the metric towards
    "worse" (``mtdense.metrics.delta_m.badness``): positive means the metric got worse without
    the channel's information.
(b) Integrated gradients (Sundararajan, Taly & Yan, ICML 2017) from the zero input — the mean
    scene for z-scored bands — with a right Riemann sum of ``steps`` points (``steps=1`` is
    input × gradient). The attributed score per task is a sum over the task's valid pixels of:
    the regression output (``task.predict``), the log-probability of the event class
    (threshold classification, ``event_probability``), or the log-probability of the class
    predicted at the real input (segmentation). Per channel: Σ|attribution| over the split,
    normalised to sum 1.
(c) Pearson correlation of each channel with a continuous target within intensity bins
    [t_k, t_{k+1}) given by thresholds (and over all valid pixels), from float64 sums. Pearson's r
    is unchanged by a per-channel affine normalisation with positive scale (z-scores), so the
    normalised images give the correlations of the raw brightness temperatures.

Analysis runs in float32 whatever ``trainer.precision`` says, so small metric changes and
gradients are not bf16 rounding. Results: ``importance.csv`` (channel, metric, baseline,
permuted_mean, permuted_std, importance; attribution rows carry the share in ``importance``),
``correlation.csv``, and one bar chart per metric family.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.utils.data import Dataset

from mtdense.analysis.figures import grouped_bars, save_figure
from mtdense.engine.builder import Experiment, make_loader, predictions
from mtdense.engine.evaluator import Evaluator
from mtdense.inference.predict import load_experiment
from mtdense.engine.runtime import Runtime, move_batch
from mtdense.metrics.delta_m import badness, base_name
from mtdense.errors import ConfigError

CSV_COLUMNS = ("channel", "metric", "baseline", "permuted_mean", "permuted_std", "importance")


def cyclic_permutation(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation with one cycle through all n items: π(i) ≠ i for every i (n ≥ 2)."""
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return partner


class PartneredSamples(Dataset):
    """Sample i of ``dataset`` plus ``partners``: the images of samples perms[r, i], R×C×H×W."""

    def __init__(self, dataset: Any, perms: np.ndarray):
        self.dataset, self.perms = dataset, perms

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        sample = dict(self.dataset[i])
        sample["partners"] = torch.stack([self.dataset[int(p[i])]["image"] for p in self.perms])
        return sample


class _Analysis:
    """The pieces of a loaded experiment the measures share: model forward, tasks, loader."""

    def __init__(self, exp: Experiment, split: str):
        self.exp, self.split = exp, split
        self.device = Runtime.from_trainer_config(exp.cfg.trainer).device
        self.tasks = exp.tasks.to(self.device)
        model = exp.model.to(self.device).eval()
        self.evaluator = Evaluator(model, self.tasks, exp.couplings, exp.coupling_weights, Runtime(self.device))  # fp32
        self.dataset = exp.dataset(split)

    def loader(self, dataset: Any = None):
        return make_loader(self.exp.cfg, dataset if dataset is not None else self.dataset, self.split, shuffle=False)

    def new_metrics(self) -> dict[str, torch.nn.ModuleList]:
        return {name: task.build_metrics().to(self.device) for name, task in self.tasks.items()}

    def update(self, metrics: Mapping[str, torch.nn.ModuleList], image: torch.Tensor, batch: Mapping) -> None:
        preds = predictions(self.tasks, self.evaluator.outputs(image))
        for name, task in self.tasks.items():
            target, valid = task.target_from(batch)
            for m in metrics[name]:
                m.update(preds[name], target, valid)


def _computed(metrics: Mapping[str, torch.nn.ModuleList]) -> dict[str, float]:
    return {f"{task}/{key}": float(value) for task, mlist in metrics.items() for m in mlist
            for key, value in m.compute().items()}


def _selected(key: str, selectors: Sequence[str] | None) -> bool:
    if not selectors:
        return True
    name = key.split("/", 1)[1]
    return any(s in (key, name, base_name(name)) for s in selectors)


def _badness(key: str, value: float) -> float:
    task, name = key.split("/", 1)
    return badness(task, name, value)


def _orientable(key: str) -> bool:
    """Whether ``mtdense.metrics.delta_m`` knows if higher or lower is better for this metric."""
    try:
        _badness(key, 0.0)
        return True
    except ConfigError:
        return False


@torch.no_grad()
def permutation_importance(exp: Experiment, split: str = "test", repeats: int = 1, seed: int | None = None,
                           metrics: Sequence[str] | None = None) -> list[dict]:
    """Rows (channel, metric, baseline, permuted_mean, permuted_std, importance) for every channel
    and every selected dataset-level task metric; ``metrics`` selects by full key
    (``rain/f1@2``), name (``f1@2``) or family (``f1``). ``permuted_std`` is the sample standard
    deviation over the repeats (0 for one repeat)."""
    if repeats < 1:
        raise ConfigError(f"bands: repeats={repeats} must be at least 1")
    run = _Analysis(exp, split)
    n = len(run.dataset)
    if n < 2:
        raise ConfigError(f"bands: split {split!r} has {n} sample; permutation needs at least 2")
    seed = int(exp.cfg.seed if seed is None else seed)
    perms = np.stack([cyclic_permutation(n, np.random.default_rng((seed, r))) for r in range(repeats)])
    channels = list(exp.channel_names)
    base = run.new_metrics()
    swapped = [[run.new_metrics() for _ in channels] for _ in range(repeats)]
    for batch in run.loader(PartneredSamples(run.dataset, perms)):
        batch = move_batch(batch, run.device)
        image, partners = batch["image"], batch.pop("partners")
        run.update(base, image, batch)
        for r in range(repeats):
            for c in range(len(channels)):
                changed = image.clone()
                changed[:, c] = partners[:, r, c]
                run.update(swapped[r][c], changed, batch)
    computed = _computed(base)
    baseline = {k: v for k, v in computed.items() if _selected(k, metrics)}
    unoriented = [k for k in baseline if not _orientable(k)]
    if unoriented and metrics:
        raise ConfigError(f"bands: cannot tell whether higher or lower is better for {', '.join(unoriented)}; "
                          "leave it out of --metrics")
    if unoriented:
        warnings.warn(f"bands: skipping {', '.join(unoriented)}: unknown whether higher or lower is better")
        baseline = {k: v for k, v in baseline.items() if k not in unoriented}
    if not baseline:
        raise ConfigError(f"bands: --metrics {','.join(metrics or [])} selects none of {', '.join(computed)}")
    permuted = [[_computed(swapped[r][c]) for r in range(repeats)] for c in range(len(channels))]
    rows = []
    for key, b in baseline.items():
        for c, channel in enumerate(channels):
            values = np.array([permuted[c][r][key] for r in range(repeats)])
            change = np.mean([_badness(key, v) - _badness(key, b) for v in values])
            rows.append({"channel": channel, "metric": key, "baseline": b, "permuted_mean": float(values.mean()),
                         "permuted_std": float(values.std(ddof=1)) if repeats > 1 else 0.0,
                         "importance": float(change)})
    return rows


def integrated_gradients(forward: Callable[[torch.Tensor], Any], image: torch.Tensor,
                         scores: Mapping[str, Callable[[Any], torch.Tensor]], steps: int) -> dict[str, torch.Tensor]:
    """Signed integrated gradients of each scalar ``scores[name](forward(x))`` w.r.t. ``image``
    from the zero baseline: x · (1/m) Σ_{k=1..m} ∂score/∂x at (k/m)·x. Same shape as ``image``."""
    if steps < 1:
        raise ConfigError(f"bands: attribution steps={steps} must be at least 1")
    grads = {name: torch.zeros_like(image) for name in scores}
    for k in range(1, steps + 1):
        point = (image * (k / steps)).detach().requires_grad_(True)
        out = forward(point)
        for i, (name, score) in enumerate(scores.items()):
            (g,) = torch.autograd.grad(score(out), point, retain_graph=i < len(scores) - 1)
            grads[name] += g
    return {name: image * g / steps for name, g in grads.items()}


def _task_score(task: torch.nn.Module, raw: torch.Tensor, valid: torch.Tensor) -> Callable:
    """The scalar the attribution explains, summed over the task's valid pixels; ``raw`` is the
    task's output at the real input (it fixes the class whose log-probability is explained)."""
    name, valid = task.name, valid.float()
    if hasattr(task, "event_probability"):
        return lambda out: (task.event_probability(out[name]).clamp_min(1e-12).log() * valid).sum()
    if hasattr(task, "probabilities"):
        fixed = raw.argmax(1, keepdim=True)
        return lambda out: (out[name].float().log_softmax(1).gather(1, fixed)[:, 0] * valid).sum()
    if not task.predict(raw).is_floating_point():
        raise ConfigError(f"bands: task {name!r} predicts integers and has no probabilities to attribute")
    return lambda out: (task.predict(out[name]) * valid).sum()


def channel_attribution(exp: Experiment, split: str = "test", steps: int = 8) -> dict[str, dict[str, float]]:
    """{task: {channel: share}}: Σ|integrated gradients| per channel over the split, summing to 1."""
    run = _Analysis(exp, split)
    totals = {name: torch.zeros(len(exp.channel_names), dtype=torch.float64) for name in run.tasks}
    for batch in run.loader():
        batch = move_batch(batch, run.device)
        image = batch["image"]
        with torch.no_grad():
            out = run.evaluator.outputs(image)
        scores = {name: _task_score(task, out[name], task.target_from(batch)[1]) for name, task in run.tasks.items()}
        attributions = integrated_gradients(run.evaluator.outputs, image, scores, steps)
        for name, a in attributions.items():
            totals[name] += a.detach().abs().sum(dim=(0, 2, 3)).double().cpu()
    shares = {}
    for name, total in totals.items():
        norm = float(total.sum())
        shares[name] = {ch: (float(v) / norm if norm > 0 else math.nan) for ch, v in zip(exp.channel_names, total)}
    return shares


def binned_correlation(dataset: Any, target: str, thresholds: Sequence[float], channel_names: Sequence[str],
                       batch_size: int = 8) -> list[dict]:
    """Pearson r of each channel with ``target`` at valid pixels, per bin [t_k, t_{k+1}) (the
    last bin open-ended) and over all valid pixels (bin_low = bin_high = nan). r is NaN where
    the channel or the target is constant within the bin."""
    edges = sorted(float(t) for t in thresholds)
    bins = [(-math.inf, math.inf)] + list(zip(edges, edges[1:] + [math.inf]))
    nc = len(channel_names)
    sums = np.zeros((len(bins), nc, 6))  # n, Σx, Σy, Σx², Σy², Σxy
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in loader:
        if target not in batch["targets"]:
            raise ConfigError(f"bands: the dataset has no target {target!r}; targets: {', '.join(batch['targets'])}")
        y = batch["targets"][target].double()
        valid = batch["valid"][target] & torch.isfinite(y)
        x = batch["image"].double().permute(1, 0, 2, 3)  # C×B×H×W
        for b, (low, high) in enumerate(bins):
            keep = valid & (y >= low) & (y < high)
            yk, xk = y[keep], x[:, keep]
            sums[b, :, 0] += keep.sum().item()
            sums[b, :, 1] += xk.sum(1).numpy()
            sums[b, :, 2] += yk.sum().item()
            sums[b, :, 3] += (xk * xk).sum(1).numpy()
            sums[b, :, 4] += (yk * yk).sum().item()
            sums[b, :, 5] += (xk * yk).sum(1).numpy()
    rows = []
    for b, (low, high) in enumerate(bins):
        for c, channel in enumerate(channel_names):
            n, sx, sy, sxx, syy, sxy = sums[b, c]
            var_x, var_y = n * sxx - sx * sx, n * syy - sy * sy
            r = (n * sxy - sx * sy) / math.sqrt(var_x * var_y) if n > 1 and var_x > 0 and var_y > 0 else math.nan
            rows.append({"channel": channel, "target": target, "bin_low": low if b else math.nan,
                         "bin_high": high if b else math.nan, "pixels": int(n), "pearson": float(r)})
    return rows


def _write_csv(path: Path, rows: Iterable[Mapping], columns: Sequence[str]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _bar_chart(path: Path, title: str, ylabel: str, values: Mapping[str, Mapping[str, float]],
               errors: Mapping[str, Mapping[str, float]] | None, channels: Sequence[str]) -> Path:
    fig = Figure(figsize=(max(5.0, 0.9 * len(channels) + 2), 4), layout="constrained")
    ax = fig.subplots()
    grouped_bars(ax, values, errors, categories=list(channels))
    ax.set(title=title, xlabel="channel", ylabel=ylabel)
    return save_figure(fig, path)


def _charts(out: Path, rows: list[dict], attribution: Mapping, correlation: list[dict], channels: Sequence[str]) -> list[Path]:
    files = []
    families: dict[str, list[dict]] = {}
    for row in rows:
        task, name = row["metric"].split("/", 1)
        families.setdefault(f"{task}/{base_name(name)}", []).append(row)
    for family, members in families.items():
        values: dict[str, dict[str, float]] = {}
        errors: dict[str, dict[str, float]] = {}
        for row in members:
            values.setdefault(row["metric"], {})[row["channel"]] = row["importance"]
            errors.setdefault(row["metric"], {})[row["channel"]] = row["permuted_std"]
        path = out / f"permutation_{family.replace('/', '_')}.png"
        files.append(_bar_chart(path, f"permutation importance: {family}", "metric change (positive = worse)",
                                values, errors, channels))
    files.append(_bar_chart(out / "attribution.png", "integrated-gradients attribution", "share of |attribution|",
                            attribution, None, channels))
    if correlation:
        values = {}
        for row in correlation:
            label = "all" if math.isnan(row["bin_low"]) else f"[{row['bin_low']:g}, {row['bin_high']:g})"
            values.setdefault(label, {})[row["channel"]] = row["pearson"]
        files.append(_bar_chart(out / "correlation.png", f"Pearson r with {correlation[0]['target']} per bin",
                                "Pearson r", values, None, channels))
    return files


def band_importance(checkpoint: str | Path, split: str = "test", out: str | Path = "bands", repeats: int = 1,
                    seed: int | None = None, metrics: Sequence[str] | None = None, steps: int = 8,
                    correlate: str | None = None, bins: Sequence[float] = (), overrides: Iterable[str] = ()) -> dict:
    """Run (a) permutation importance, (b) attribution and, if ``correlate`` names a target,
    (c) binned correlation for a checkpoint; write CSVs and charts into ``out``.

    Returns ``{"permutation": rows, "attribution": {task: {channel: share}},
    "correlation": rows, "files": [paths]}``.
    """
    exp = load_experiment(checkpoint, overrides)
    targets = list(getattr(exp.dataset(split), "target_keys", None) or [])
    if correlate and targets and correlate not in targets:
        raise ConfigError(f"bands: the dataset has no target {correlate!r}; targets: {', '.join(targets)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = permutation_importance(exp, split, repeats, seed, metrics)
    attribution = channel_attribution(exp, split, steps)
    correlation = []
    if correlate:
        batch_size = int(exp.cfg.data.eval_batch_size or exp.cfg.data.batch_size)
        correlation = binned_correlation(exp.dataset(split), correlate, bins, exp.channel_names, batch_size)
    attribution_rows = [{"channel": ch, "metric": f"attribution/{task}", "baseline": "", "permuted_mean": "",
                         "permuted_std": "", "importance": share}
                        for task, shares in attribution.items() for ch, share in shares.items()]
    files = [_write_csv(out / "importance.csv", rows + attribution_rows, CSV_COLUMNS)]
    if correlation:
        files.append(_write_csv(out / "correlation.csv", correlation, list(correlation[0])))
    files += _charts(out, rows, attribution, correlation, exp.channel_names)
    return {"permutation": rows, "attribution": attribution, "correlation": correlation, "files": files}


def ranking_lines(result: Mapping) -> list[str]:
    """One line per metric: channels from most to least important."""
    by_metric: dict[str, list[tuple[float, str]]] = {}
    for row in result["permutation"]:
        by_metric.setdefault(row["metric"], []).append((row["importance"], row["channel"]))
    for task, shares in result["attribution"].items():
        by_metric[f"attribution/{task}"] = [(v, ch) for ch, v in shares.items()]
    return [f"{metric}: " + ", ".join(f"{ch} {v:+.4g}" for v, ch in sorted(items, key=lambda t: -t[0]))
            for metric, items in by_metric.items()]
