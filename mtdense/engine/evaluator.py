"""Dataset-level evaluation: losses averaged over batches weighted by size, task metrics
accumulated over the whole split (torchmetrics states, summed across DDP ranks)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from mtdense.engine import distributed as dist_utils
from mtdense.engine.builder import predictions


def precision_context(precision: str, device: torch.device):
    """The autocast context for ``trainer.precision`` (bf16 autocast, or nothing for fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def move_batch(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_batch(v, device) for k, v in batch.items()}
    return batch


class Evaluator:
    def __init__(self, net: nn.Module, tasks: nn.ModuleDict, couplings: nn.ModuleDict, device: torch.device,
                 precision: str = "fp32", channels_last: bool = False):
        self.net, self.tasks, self.couplings, self.device = net, tasks, couplings, device
        self.precision, self.channels_last = precision, channels_last

    def outputs(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with precision_context(self.precision, self.device):
            return {k: v.float() for k, v in self.net(image).items()}

    @torch.no_grad()
    def run(self, loader, split: str) -> dict[str, float]:
        was_training = self.net.training
        self.net.eval()
        metrics = {name: task.build_metrics().to(self.device) for name, task in self.tasks.items()}
        loss_sums: dict[str, float] = {}
        n = 0
        for batch in loader:
            batch = move_batch(batch, self.device)
            out = self.outputs(batch["image"])
            bs = batch["image"].shape[0]
            n += bs
            losses = {name: task.compute_loss(out[name], batch) for name, task in self.tasks.items()}
            losses.update({name: c(out, batch) for name, c in self.couplings.items()})
            for k, v in losses.items():
                loss_sums[k] = loss_sums.get(k, 0.0) + float(v) * bs
            preds = predictions(self.tasks, out)
            for name, task in self.tasks.items():
                target, valid = task.target_from(batch)
                for m in metrics[name]:
                    m.update(preds[name], target, valid)
        totals = torch.tensor([n] + list(loss_sums.values()), dtype=torch.float64)
        dist_utils.sum_across_ranks(totals)
        n_all = max(1.0, float(totals[0]))
        result = {f"{split}/loss/{k}": float(v) / n_all for k, v in zip(loss_sums, totals[1:].tolist())}
        result[f"{split}/loss"] = sum(result.values())
        for name, mlist in metrics.items():
            for m in mlist:
                for key, value in m.compute().items():
                    result[f"{split}/{name}/{key}"] = float(value)
        self.net.train(was_training)
        return result
