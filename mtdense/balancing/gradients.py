"""Shared machinery of gradient-combination balancers (PCGrad, CAGrad, IMTL-G, Aligned-MTL).

Per micro-batch, ``GradientBalancer.backward``
  1. takes the gradient of every task loss w.r.t. the shared parameters
     (``torch.autograd.grad(..., retain_graph=True)``), flattens it into one row of a
     T×P float32 matrix and adds it to the step's buffer;
  2. back-propagates the plain sum of the losses into the task-specific parameters only
     (``inputs=`` the graph's other leaves), so each head receives its own loss' gradient.
In ``finalize`` (once per optimizer step, after gradient accumulation) it
  3. under DDP averages the per-task shared gradients *and* the task-specific gradients
     over the ranks in ONE all_reduce of one flat buffer;
  4. asks the method for coefficients alpha (T,) from the float64 Gram matrix G Gᵀ — every
     method here is a function of the task gradients' inner products only;
  5. writes alpha @ G into the shared parameters' ``.grad``.
So the combination always sees the full-batch per-task gradients, and accumulation over
micro-batches equals one large batch exactly (for equal-sized micro-batches).
"""

from __future__ import annotations

import abc
from typing import Mapping

import torch
from torch import Tensor, nn

from mtdense.balancing.base import Balancer
from mtdense.engine.distributed import mean_across_ranks, world_size


def graph_leaves(root: Tensor) -> list[Tensor]:
    """Leaf tensors requiring grad that ``root`` depends on, in discovery order."""
    leaves: dict[int, Tensor] = {}
    seen: set = set()
    stack = [root.grad_fn] if root.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold the leaf
        if variable is not None:
            leaves.setdefault(id(variable), variable)
            continue
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return list(leaves.values())


def shared_parameters(model: nn.Module, losses: Mapping[str, Tensor]) -> list[nn.Parameter]:
    """Parameters of ``model`` (in ``model.parameters()`` order) that two or more losses depend on.

    What a balancer must treat as shared: the backbone, shared decoders, cross-task
    interaction modules and any branch whose output feeds another task through them.
    Call it once, on the losses of the first batch (the result does not change).
    """
    reached: dict[int, int] = {}
    for loss in losses.values():
        for leaf in graph_leaves(loss):
            reached[id(leaf)] = reached.get(id(leaf), 0) + 1
    return [p for p in model.parameters() if reached.get(id(p), 0) >= 2]


def task_gradients(losses: Tensor, params: list[nn.Parameter]) -> tuple[Tensor, list[bool]]:
    """Per-task flattened gradients (T×P float32) and, per parameter, whether any task reached it."""
    rows, used = [], [False] * len(params)
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        flat = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                flat.append(torch.zeros(p.numel(), device=p.device, dtype=torch.float32))
            else:
                used[i] = True
                flat.append(g.reshape(-1).float())
        rows.append(torch.cat(flat))
    return torch.stack(rows), used


def write_gradient(flat: Tensor, params: list[nn.Parameter], used: list[bool]) -> None:
    """Set ``.grad`` of each used parameter to its slice of ``flat`` (unused stay untouched)."""
    offset = 0
    for p, is_used in zip(params, used):
        n = p.numel()
        if is_used:
            value = flat[offset : offset + n].view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = value
            else:
                p.grad.copy_(value)
        offset += n


class GradientBalancer(Balancer):
    """A balancer that combines per-task gradients of the shared parameters.

    Subclasses implement ``coefficients(gram)``: the combined shared gradient is
    ``alpha @ G`` where G holds one flattened task gradient per row. Task-specific
    parameters receive the gradient of the unweighted sum of losses (their own loss).
    """

    reduces_gradients = True

    def __init__(self, tasks: list[str]):
        super().__init__(tasks)
        self._task_grads: Tensor | None = None  # T×P sum over the step's micro-batches
        self._used: list[bool] = []
        self._specific: dict[int, nn.Parameter] = {}

    @abc.abstractmethod
    def coefficients(self, gram: Tensor) -> Tensor:
        """Combination coefficients alpha (T,) from the float64 Gram matrix G Gᵀ (T×T)."""

    def backward(self, losses: Mapping[str, Tensor], shared_params: list[nn.Parameter]) -> dict[str, float]:
        stacked = self.stack_losses(losses)
        shared = [p for p in shared_params if p.requires_grad]
        if not shared:
            raise ValueError(
                f"{type(self).__name__}: no shared parameter requires grad; gradient balancers need "
                f"the shared (backbone/decoder) parameters, or use a loss-weighting balancer"
            )
        grads, used = task_gradients(stacked, shared)
        if self._task_grads is None:
            self._task_grads, self._used = grads, used
        else:
            self._task_grads += grads
            self._used = [a or b for a, b in zip(self._used, used)]
        shared_ids = {id(p) for p in shared}
        specific = [leaf for leaf in graph_leaves(stacked) if id(leaf) not in shared_ids]
        if specific:
            torch.autograd.backward(stacked.sum(), inputs=specific)
            for leaf in specific:
                self._specific.setdefault(id(leaf), leaf)
        return dict(self.last_weights)

    def finalize(self, shared_params: list[nn.Parameter]) -> None:
        if self._task_grads is None:
            return
        grads, used, specific = self._task_grads, self._used, list(self._specific.values())
        self._task_grads, self._used, self._specific = None, [], {}
        if world_size() > 1:
            self._average_over_ranks(grads, specific)
        alpha = self.coefficients((grads @ grads.T).double())
        shared = [p for p in shared_params if p.requires_grad]
        write_gradient(alpha.to(grads.dtype) @ grads, shared, used)
        self.last_weights = self.weights_dict(alpha)

    @staticmethod
    def _average_over_ranks(task_grads: Tensor, specific: list[Tensor]) -> None:
        """Average per-task shared gradients and task-specific ``.grad`` in one all_reduce."""
        parts = [task_grads.reshape(-1)] + [p.grad.reshape(-1).float() for p in specific]
        flat = mean_across_ranks(torch.cat(parts))
        task_grads.copy_(flat[: task_grads.numel()].view_as(task_grads))
        offset = task_grads.numel()
        for p in specific:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n
