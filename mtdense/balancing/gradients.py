"""Shared machinery of gradient-combination balancers (PCGrad, CAGrad, IMTL-G, Aligned-MTL).

Per micro-batch, ``GradientBalancer.backward``
  1. takes the gradient of every task loss (and of the weighted couplings, kept apart)
     w.r.t. the shared parameters
     (``torch.autograd.grad(..., retain_graph=True)``), flattens it into one row of a
     T×P float32 matrix and adds it to the step's buffer;
  2. back-propagates the plain sum of the losses into the task-specific parameters only
     (``inputs=`` the graph's other leaves), so each head receives its own loss' gradient.
In ``finalize`` (once per optimizer step, after gradient accumulation) it
  3. under DDP averages the per-task shared gradients *and* the task-specific gradients
     over the ranks in ONE all_reduce of one flat buffer;
  4. asks the method for coefficients alpha (T,) from the float64 Gram matrix G Gᵀ — every
     method here is a function of the task gradients' inner products only;
  5. writes alpha @ G + g_couplings into the shared parameters' ``.grad``.
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
from mtdense.errors import CheckpointError


def graph_leaves(root: Tensor) -> list[Tensor]:
    """Leaf tensors requiring grad that ``root`` depends on, in discovery order."""
    return [leaf for leaf, _ in _walk(root).values()]


def graph_depths(root: Tensor) -> dict[int, int]:
    """``id(leaf)`` -> fewest autograd nodes between ``root`` and each leaf it depends on.

    Breadth-first over ``grad_fn``: a leaf close to the loss (a head) has a small depth, the
    first encoder layer a large one.
    """
    return {key: depth for key, (_, depth) in _walk(root).items()}


def _walk(root: Tensor) -> dict[int, tuple[Tensor, int]]:
    depths: dict[int, tuple[Tensor, int]] = {}
    seen: set = set()
    frontier = [root.grad_fn] if root.grad_fn is not None else []
    depth = 0
    while frontier:
        following = []
        for node in frontier:
            if node in seen:
                continue
            seen.add(node)
            variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold the leaf
            if variable is not None:
                depths.setdefault(id(variable), (variable, depth))
                continue
            following.extend(child for child, _ in node.next_functions if child is not None)
        frontier, depth = following, depth + 1
    return depths


def shared_parameters(model: nn.Module, losses: Mapping[str, Tensor]) -> list[nn.Parameter]:
    """Parameters of ``model`` (in ``model.parameters()`` order) that two or more task losses reach.

    The one definition of "shared" in mtdense (as in LibMTL and Nash-MTL): whatever the
    autograd graphs of at least two task losses contain — the encoder, multi-task decoder
    branches, and with interaction modules also every per-task decoder stage upstream of an
    interaction, while an interaction parameter that feeds only one task is task-specific.
    The trainer calls it once, on the task losses of its first batch (couplings excluded),
    and saves the names in the checkpoint (``parameter_names``/``parameters_named``).
    """
    reached: dict[int, int] = {}
    for loss in losses.values():
        for leaf in graph_leaves(loss):
            reached[id(leaf)] = reached.get(id(leaf), 0) + 1
    return [p for p in model.parameters() if reached.get(id(p), 0) >= 2 and p.requires_grad]


def last_common_layer(losses: Mapping[str, Tensor] | list[Tensor], candidates: list[nn.Parameter]) -> nn.Parameter | None:
    """The parameter with >= 2 dims reached by *every* loss that lies closest to the losses.

    "Closest" = smallest sum over the losses of the autograd depth (``graph_depths``): the last
    layer all tasks share (GradNorm's W). ``None`` if no candidate is reached by all losses.
    """
    graphs = [graph_depths(loss) for loss in (losses.values() if isinstance(losses, Mapping) else losses)]
    common = [p for p in candidates if p.dim() >= 2 and all(id(p) in g for g in graphs)]
    if not common:
        return None
    return min(common, key=lambda p: sum(g[id(p)] for g in graphs))


def parameter_names(model: nn.Module, params: list[nn.Parameter]) -> list[str]:
    """Names (``model.named_parameters()``) of ``params``, to store them with a run."""
    ids = {id(p) for p in params}
    return [name for name, p in model.named_parameters() if id(p) in ids]


def parameters_named(model: nn.Module, names: list[str]) -> list[nn.Parameter]:
    """The parameters of ``model`` called ``names`` (inverse of ``parameter_names``)."""
    table = dict(model.named_parameters())
    missing = [n for n in names if n not in table]
    if missing:
        raise CheckpointError(f"stored shared parameter(s) {missing[:3]} are not in this model; resume with "
                              "the model configuration the run was trained with")
    return [table[n] for n in names]


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
    ``alpha @ G (+ g_c)`` where G holds one flattened task gradient per row and g_c is the
    gradient of the (already weighted) couplings, which never enters the Gram matrix.
    Task-specific parameters receive the gradient of the unweighted sum of losses (their own
    loss) plus the couplings.
    """

    reduces_gradients = True

    def __init__(self, tasks: list[str]):
        super().__init__(tasks)
        self._task_grads: Tensor | None = None  # (T+1)×P sum over the step's micro-batches; last row: couplings
        self._used: list[bool] = []
        self._specific: dict[int, nn.Parameter] = {}

    @abc.abstractmethod
    def coefficients(self, gram: Tensor) -> Tensor:
        """Combination coefficients alpha (T,) from the float64 Gram matrix G Gᵀ (T×T)."""

    def backward(self, losses: Mapping[str, Tensor], shared_params: list[nn.Parameter],
                 couplings: Tensor | None = None) -> dict[str, float]:
        stacked = self.stack_losses(losses)
        shared = [p for p in shared_params if p.requires_grad]
        if not shared:
            raise ValueError(
                f"{type(self).__name__}: no shared parameter requires grad; gradient balancers need "
                f"the shared (backbone/decoder) parameters, or use a loss-weighting balancer"
            )
        coupling = couplings.float().reshape(()) if couplings is not None and couplings.requires_grad else None
        objectives = torch.cat([stacked, coupling.reshape(1)]) if coupling is not None else stacked
        grads, used = task_gradients(objectives, shared)
        if coupling is None:
            grads = torch.cat([grads, torch.zeros_like(grads[:1])])
        if self._task_grads is None:
            self._task_grads, self._used = grads, used
        else:
            self._task_grads += grads
            self._used = [a or b for a, b in zip(self._used, used)]
        shared_ids = {id(p) for p in shared}
        specific = [leaf for leaf in graph_leaves(objectives.sum()) if id(leaf) not in shared_ids]
        if specific:
            torch.autograd.backward(objectives.sum(), inputs=specific)
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
        task_grads, coupling_grad = grads[:-1], grads[-1]
        alpha = self.coefficients((task_grads @ task_grads.T).double())
        shared = [p for p in shared_params if p.requires_grad]
        write_gradient(alpha.to(grads.dtype) @ task_grads + coupling_grad, shared, used)
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
