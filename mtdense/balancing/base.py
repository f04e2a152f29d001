"""The balancer interface: how per-task losses become gradients.

One interface serves loss weighting (fixed, uncertainty, DWA, ...) and gradient
combination (PCGrad, CAGrad, IMTL-G, ...). The trainer drives every balancer the same way,
in one process or under DDP, with no method-specific branches:

    balancer = BALANCERS.build(cfg["balancer"], path="balancer", tasks=task_names).to(device)
    optimizer = build_optimizer(model.parameters())      # never balancer.parameters()
    shared = shared_parameters(model, first_batch_losses)  # mtdense.balancing.gradients:
    # the parameters two or more task losses depend on (backbone, shared decoder, interactions)

    every optimizer step, with k micro-batches:
        optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(micro_batches):
            local = balancer.reduces_gradients or i < k - 1
            with ddp_model.no_sync() if (ddp and local) else nullcontext():  # forward AND backward
                preds = ddp_model(batch["image"])
                losses = {t: task_loss[t] / k for t in task_names}  # scalar means, 1/k scaled
                balancer.backward(losses, shared)
        balancer.finalize(shared)             # on every rank; gradient methods all-reduce here
        clip_grad_norm_(...); optimizer.step(); scheduler.step()
        log(balancer.last_weights)            # the step's task weights / coefficients
    after every epoch:
        balancer.on_epoch_end()               # DWA averages the step losses it saw itself
    checkpoint: trainer_state["balancer"] = balancer.state_dict()   # load_state_dict on resume

Conventions every balancer follows:

* The losses of one step are the *sum* of the losses passed since the last ``finalize``
  (with the 1/k scaling above this is the full-batch mean). Balancer statistics (loss
  histories, per-task gradients) use this sum, so gradient accumulation is exact wherever
  the method allows it (``exact_under_accumulation``).
* Parameters not in ``shared_params`` receive the gradient of the balancer's weighted loss
  (loss weighting) or of the plain sum of the losses, i.e. their own task's loss (gradient
  methods).
* Learnable balancer state (uncertainty log-variances, GradNorm weights, FAMO logits) is
  updated by the balancer itself in ``finalize`` with a small internal optimizer. Its
  parameters never go into the trainer's optimizer, and their gradients are computed from
  all-reduced step statistics, so every DDP rank keeps identical state.
* Losses arrive unscaled by any GradScaler (bf16 autocast needs none); under fp16 the
  trainer sets ``grad_scaler`` and loss-weighting balancers scale the weighted total they
  back-propagate (``scaled``); gradient methods refuse fp16 (``supports_grad_scaler``).
  Per-task gradients are kept in float32 and combination coefficients are computed in float64.
* ``last_weights`` holds 0-dim tensors on the balancer's device, so logging them costs no
  host synchronisation until they are actually written out.
* ``backward`` returns the weights it applied. Gradient methods decide theirs in
  ``finalize``, so their ``backward`` returns the previous step's coefficients; log
  ``last_weights`` after ``finalize``.
* ``state_dict()`` holds everything needed to resume exactly: parameters, buffers
  (histories, step counters) and, as ``_extra_state``, the internal optimizer and random
  generator states. It is a pickled dict (``torch.save``), not a safetensors file.
"""

from __future__ import annotations

import abc
import copy
from typing import Any, ClassVar, Mapping

import torch
from torch import Tensor, nn

from mtdense.engine.distributed import mean_across_ranks
from mtdense.errors import ConfigError


class Balancer(nn.Module, abc.ABC):
    """Turns per-task losses into gradients on the model's parameters.

    Subclasses set the two class attributes and implement ``backward``; ``finalize`` and
    ``on_epoch_end`` are hooks with no-op defaults.
    """

    #: True: the trainer runs ``backward`` under ``ddp_model.no_sync()`` and the balancer
    #: averages the gradients over ranks itself in ``finalize`` (gradient methods).
    reduces_gradients: ClassVar[bool] = False
    #: True: k micro-batches of losses/k give the same gradients and state as one batch.
    exact_under_accumulation: ClassVar[bool] = True
    #: True: ``backward`` back-propagates one total through ``scaled`` (fp16 GradScaler works).
    supports_grad_scaler: ClassVar[bool] = False

    def __init__(self, tasks: list[str]):
        super().__init__()
        tasks = list(tasks)
        if not tasks:
            raise ConfigError("no tasks to balance; define at least one task under 'tasks'")
        duplicates = sorted({t for t in tasks if tasks.count(t) > 1})
        if duplicates:
            raise ConfigError(f"task name(s) {duplicates} appear more than once; task names must be unique")
        self.tasks = tasks
        #: weights of the most recent step, for logging (gradient methods set them in finalize)
        self.last_weights: dict[str, float | Tensor] = dict.fromkeys(tasks, 1.0)
        #: the fp16 GradScaler of the run (set by the trainer), None otherwise
        self.grad_scaler: Any = None
        #: optimizer of the balancer's own parameters (subclasses that learn create it)
        self.optimizer: torch.optim.Optimizer | None = None
        #: random generator of stochastic balancers (same seed on every DDP rank)
        self.generator: torch.Generator | None = None

    @abc.abstractmethod
    def backward(self, losses: Mapping[str, Tensor], shared_params: list[nn.Parameter]) -> dict[str, float]:
        """Back-propagate one micro-batch; return the task weights used (for logging)."""

    def finalize(self, shared_params: list[nn.Parameter]) -> None:
        """Complete the step's gradients after the last micro-batch (before optimizer.step)."""

    def on_epoch_end(self) -> None:
        """Called after every epoch; a balancer keeps whatever epoch statistics it needs itself
        (in buffers, so they are saved with the checkpoint and a mid-epoch resume is exact)."""

    # -- helpers for subclasses ---------------------------------------------------------

    def stack_losses(self, losses: Mapping[str, Any]) -> Tensor:
        """The losses as one float32 vector in ``self.tasks`` order, checked for completeness."""
        missing = [t for t in self.tasks if t not in losses]
        extra = [k for k in losses if k not in self.tasks]
        if missing or extra:
            raise ValueError(
                f"{type(self).__name__}: losses have keys {sorted(losses)}, the balancer's tasks are "
                f"{self.tasks} (missing: {missing or 'none'}, unexpected: {extra or 'none'}); pass one "
                f"scalar loss per task (fold couplings into a task's loss)"
            )
        values = []
        for t in self.tasks:
            value = torch.as_tensor(losses[t])
            if value.numel() != 1:
                raise ValueError(
                    f"{type(self).__name__}: loss of task {t!r} has shape {tuple(value.shape)}; "
                    f"expected a scalar (reduce it to a mean first)"
                )
            values.append(value.reshape(()).float())
        return torch.stack(values)

    def weights_dict(self, weights: Tensor) -> dict[str, Tensor]:
        """Per-task weights keyed by task name: 0-dim float64 tensors where ``weights`` lives (no
        host synchronisation; ``float()`` them to log)."""
        return dict(zip(self.tasks, weights.detach().double().clone().unbind()))

    def scaled(self, total: Tensor) -> Tensor:
        """``total`` multiplied by the fp16 GradScaler's scale (unchanged without one)."""
        return total if self.grad_scaler is None else self.grad_scaler.scale(total)

    def step_own_parameter(self, param: nn.Parameter, grad: Tensor) -> None:
        """Apply ``grad`` to one of the balancer's own parameters with its internal optimizer."""
        param.grad = grad.detach().to(param.dtype)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "generator": None if self.generator is None else self.generator.get_state(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if (state["optimizer"] is None) != (self.optimizer is None):
            raise ValueError(
                f"{type(self).__name__}: checkpoint balancer state does not match this balancer "
                f"(internal optimizer present in checkpoint: {state['optimizer'] is not None}); "
                f"resume with the balancer configuration the checkpoint was trained with"
            )
        if self.optimizer is not None:  # a copy: Adam would otherwise update the source's tensors
            self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        if self.generator is not None and state["generator"] is not None:
            self.generator.set_state(state["generator"])


class WeightedLossBalancer(Balancer):
    """A balancer that back-propagates ``sum_t w_t L_t`` with weights fixed during a step.

    Subclasses implement ``current_weights``; the detached step losses (summed over the
    micro-batches) are kept for ``finalize`` via ``take_step_losses``.
    """

    supports_grad_scaler = True

    def __init__(self, tasks: list[str]):
        super().__init__(tasks)
        self.register_buffer("step_losses", torch.zeros(len(self.tasks)), persistent=False)
        self.micro_batches = 0

    @abc.abstractmethod
    def current_weights(self, losses: Tensor) -> Tensor:
        """Weights (T,) to apply to this micro-batch's detached losses (T,)."""

    def backward(self, losses: Mapping[str, Tensor], shared_params: list[nn.Parameter]) -> dict[str, float]:
        stacked = self.stack_losses(losses)
        detached = stacked.detach()
        weights = self.current_weights(detached).detach().to(stacked.device)
        self.step_losses += detached.to(self.step_losses.device)
        self.micro_batches += 1
        self.scaled((weights * stacked).sum()).backward()
        self.last_weights = self.weights_dict(weights)
        return self.last_weights

    def finalize(self, shared_params: list[nn.Parameter]) -> None:
        """Forget the step's losses; balancers that learn from them override this."""
        self.step_losses.zero_()
        self.micro_batches = 0

    def take_step_losses(self) -> Tensor | None:
        """This step's losses averaged over ranks (None if no micro-batch ran); resets them."""
        if self.micro_batches == 0:
            return None
        losses = mean_across_ranks(self.step_losses.clone())
        self.step_losses.zero_()
        self.micro_batches = 0
        return losses
