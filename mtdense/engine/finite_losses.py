"""Non-finite training losses, found without a host synchronisation per step.

The trainer records every micro-batch's losses and whether its input was finite, as tensors
on the device; ``check`` moves them (and the values to log) to the host in one
transfer — at each logging interval and before checkpoints and evaluations — and raises
``TrainingError`` for the first non-finite loss, naming the step, the losses, the samples and
whether the input itself held NaN/Inf.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from mtdense.errors import TrainingError


class FiniteLossCheck:
    """``record(step, losses, batch)`` per micro-batch; ``check(extra)`` raises for a non-finite loss
    since the last check. ``last_good`` (the checkpoint folder) is named in the error."""

    def __init__(self, last_good: Path):
        self.last_good = last_good
        self._pending: list[tuple] = []  # (step, loss names, device values + input finiteness, sample ids)

    def record(self, step: int, losses: dict[str, torch.Tensor], batch: dict[str, Any]) -> None:
        """Remember this micro-batch's losses (on the device); no host sync."""
        values = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
        inputs_ok = torch.isfinite(batch["image"]).all().float()[None]
        ids = batch.get("meta", {}).get("id")
        self._pending.append((step, list(losses), torch.cat([values, inputs_ok]),
                              list(ids)[:8] if ids is not None else None))

    def check(self, extra: dict[str, Any] | None = None) -> dict[str, float]:
        """Raise ``TrainingError`` for the first non-finite loss since the last check; return
        ``extra``'s tensors as floats. One host synchronisation for both."""
        extra = extra or {}
        tensors = [k for k, v in extra.items() if isinstance(v, torch.Tensor)]
        pending, self._pending = self._pending, []
        parts = [torch.stack([extra[k].detach().double().reshape(()) for k in tensors])] if tensors else []
        parts += [row.double() for *_, row, _ in pending]
        host = torch.cat(parts).tolist() if parts else []  # the one host synchronisation
        out = {k: (host[tensors.index(k)] if k in tensors else v) for k, v in extra.items()}
        offset = len(tensors)
        for step, names, row, ids in pending:
            values, inputs_ok = host[offset:offset + len(names)], host[offset + len(names)]
            offset += len(names) + 1
            bad = [(k, v) for k, v in zip(names, values) if not math.isfinite(v)]
            if bad:
                hint = ("the input batch itself contains NaN/Inf: check the dataset's fill handling and normalisation"
                        if not inputs_ok else
                        "lower trainer.lr, set trainer.grad_clip, use trainer.precision=fp32, or check the target "
                        "transform")
                raise TrainingError(
                    f"step {step}: non-finite loss for {', '.join(k for k, _ in bad)} "
                    f"({', '.join(f'{k}={v:.4g}' for k, v in bad)}); {hint}. "
                    f"Samples: {ids if ids is not None else 'unknown'}. The last good checkpoint is in {self.last_good}")
        return out
