"""Dataset-level evaluation: losses averaged over batches weighted by size, task metrics
accumulated over the whole split (torchmetrics states, summed across DDP ranks).

Inputs are checked, never trusted: pixels with NaN/Inf in any input channel are set to 0 before
the forward pass and masked out of losses and metrics (a warning says how many), so a hole in
the data is never scored as a confident prediction. A task without a single valid label in the
split is an error naming it, not a row of NaN scores.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

import torch
from torch import nn

from mtdense.engine import distributed as dist_utils
from mtdense.engine.builder import predictions
from mtdense.engine.runtime import Runtime
from mtdense.errors import DataError


def finite_inputs(batch: dict[str, Any]) -> tuple[dict[str, Any], torch.Tensor]:
    """``batch`` with non-finite input values set to 0 and those pixels removed from every valid
    mask, and the B×H×W mask of such pixels (no host synchronisation)."""
    image = batch["image"]
    finite = torch.isfinite(image)
    bad = ~finite.all(dim=1)
    valid = {k: v & ~bad for k, v in batch["valid"].items()}
    return {**batch, "image": torch.where(finite, image, torch.zeros_like(image)), "valid": valid}, bad


def warn_nonfinite_inputs(pixels: int, samples: int, split: str) -> None:
    if pixels:
        warnings.warn(f"split {split!r}: {pixels} pixels in {samples} samples have NaN/Inf input values; they were "
                      "set to 0 for the model and left out of every metric (their predictions are masked)",
                      stacklevel=3)


class Evaluator:
    """Scores a model on a loader: ``run(loader, split)`` → ``{split/loss/..., split/task/metric: value}``.

    ``split/loss/<name>`` is each task's or coupling's own (unweighted) mean loss; ``split/loss`` is
    the objective the network descends with equal task weights: the sum of the task losses plus
    ``coupling_weights[c] · L_c`` for every coupling (couplings keep their configured weight, as in
    training; see ``mtdense.balancing.base``). A coupling's ``weight_schedule`` is not applied here:
    ``val/loss`` uses the weight the ramp ends at, so evaluations at different steps stay comparable.

    ``net`` is whatever is evaluated (the student, a DDP wrapper, or a teacher's network); the
    runtime decides device, precision and memory format. Outputs are cast to float32 before
    losses and metrics.
    """

    def __init__(self, net: nn.Module, tasks: nn.ModuleDict, couplings: nn.ModuleDict,
                 coupling_weights: Mapping[str, float], runtime: Runtime):
        self.net, self.tasks, self.couplings, self.runtime = net, tasks, couplings, runtime
        self.coupling_weights = {name: float(coupling_weights[name]) for name in couplings}
        self.device = runtime.device

    def outputs(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.float() for k, v in self.runtime.forward(self.net, image).items()}

    @torch.no_grad()
    def run(self, loader, split: str, progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        """Metrics of the whole split; ``progress(done, total)`` is called after every batch."""
        was_training = self.net.training
        self.net.eval()
        metrics = {name: task.build_metrics().to(self.device) for name, task in self.tasks.items()}
        loss_sums: dict[str, torch.Tensor] = {}
        labelled = torch.zeros(len(self.tasks), dtype=torch.float64, device=self.device)
        bad_pixels = torch.zeros(2, dtype=torch.float64, device=self.device)  # pixels, samples
        n = 0
        for done, batch in enumerate(loader, 1):
            batch, bad = finite_inputs(self.runtime.batch(batch))
            bad_pixels += torch.stack([bad.sum(), bad.flatten(1).any(1).sum()])
            out = self.outputs(batch["image"])
            bs = batch["image"].shape[0]
            n += bs
            losses = {name: task.compute_loss(out[name], batch) for name, task in self.tasks.items()}
            losses.update({name: c(out, batch) for name, c in self.couplings.items()})
            for k, v in losses.items():  # summed on the device: no host sync per batch
                loss_sums[k] = loss_sums.get(k, 0.0) + v.detach().double() * bs
            preds = predictions(self.tasks, out)
            for i, (name, task) in enumerate(self.tasks.items()):
                target, valid = task.target_from(batch)
                labelled[i] += valid.sum()
                for m in metrics[name]:
                    m.update(preds[name], target, valid)
            if progress is not None:
                progress(done, len(loader))
        totals = torch.cat([torch.tensor([float(n)], dtype=torch.float64, device=self.device), labelled, bad_pixels,
                            *[torch.as_tensor(v, dtype=torch.float64, device=self.device).reshape(1)
                              for v in loss_sums.values()]])
        totals = dist_utils.sum_across_ranks(totals).cpu().tolist()
        n_all, labelled_all = max(1.0, totals[0]), totals[1:1 + len(self.tasks)]
        at = 1 + len(self.tasks)
        warn_nonfinite_inputs(int(totals[at]), int(totals[at + 1]), split)
        unlabelled = [name for name, count in zip(self.tasks, labelled_all) if count == 0]
        if unlabelled and totals[0] > 0:
            targets = ", ".join(f"{name!r} (target {self.tasks[name].target!r})" for name in unlabelled)
            raise DataError(f"split {split!r} has no valid label for task {targets}: every pixel is masked invalid; "
                            "check the split's files and the dataset's fill/valid handling, or remove the task")
        result = {f"{split}/loss/{k}": v / n_all for k, v in zip(loss_sums, totals[at + 2:])}
        result[f"{split}/loss"] = (sum(result[f"{split}/loss/{t}"] for t in self.tasks)
                                   + sum(w * result[f"{split}/loss/{c}"] for c, w in self.coupling_weights.items()))
        for name, mlist in metrics.items():
            for m in mlist:
                for key, value in m.compute().items():
                    result[f"{split}/{name}/{key}"] = float(value)
        self.net.train(was_training)
        return result
