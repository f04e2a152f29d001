"""Dataset-level evaluation: losses averaged over batches weighted by size, task metrics
accumulated over the whole split (torchmetrics states, summed across DDP ranks)."""

from __future__ import annotations

import torch
from torch import nn

from mtdense.engine import distributed as dist_utils
from mtdense.engine.builder import predictions
from mtdense.engine.runtime import Runtime


class Evaluator:
    """Scores a model on a loader: ``run(loader, split)`` → ``{split/loss/..., split/task/metric: value}``.

    ``net`` is whatever is evaluated (the student, a DDP wrapper, or a teacher's network); the
    runtime decides device, precision and memory format. Outputs are cast to float32 before
    losses and metrics.
    """

    def __init__(self, net: nn.Module, tasks: nn.ModuleDict, couplings: nn.ModuleDict, runtime: Runtime):
        self.net, self.tasks, self.couplings, self.runtime = net, tasks, couplings, runtime
        self.device = runtime.device

    def outputs(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.float() for k, v in self.runtime.forward(self.net, image).items()}

    @torch.no_grad()
    def run(self, loader, split: str) -> dict[str, float]:
        was_training = self.net.training
        self.net.eval()
        metrics = {name: task.build_metrics().to(self.device) for name, task in self.tasks.items()}
        loss_sums: dict[str, torch.Tensor] = {}
        n = 0
        for batch in loader:
            batch = self.runtime.batch(batch)
            out = self.outputs(batch["image"])
            bs = batch["image"].shape[0]
            n += bs
            losses = {name: task.compute_loss(out[name], batch) for name, task in self.tasks.items()}
            losses.update({name: c(out, batch) for name, c in self.couplings.items()})
            for k, v in losses.items():  # summed on the device: no host sync per batch
                loss_sums[k] = loss_sums.get(k, 0.0) + v.detach().double() * bs
            preds = predictions(self.tasks, out)
            for name, task in self.tasks.items():
                target, valid = task.target_from(batch)
                for m in metrics[name]:
                    m.update(preds[name], target, valid)
        totals = torch.stack([torch.tensor(float(n), dtype=torch.float64, device=self.device),
                              *[torch.as_tensor(v, dtype=torch.float64, device=self.device) for v in loss_sums.values()]])
        if dist_utils.is_distributed():
            torch.distributed.all_reduce(totals)
        totals = totals.cpu()
        n_all = max(1.0, float(totals[0]))
        result = {f"{split}/loss/{k}": float(v) / n_all for k, v in zip(loss_sums, totals[1:].tolist())}
        result[f"{split}/loss"] = sum(result.values())
        for name, mlist in metrics.items():
            for m in mlist:
                for key, value in m.compute().items():
                    result[f"{split}/{name}/{key}"] = float(value)
        self.net.train(was_training)
        return result
