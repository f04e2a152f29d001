"""One ``Trainer`` for single-process and torchrun/DDP training.

A step, for each of ``accumulate`` micro-batches: teachers predict (``batch["teacher"]``) →
batch transforms (seeded by run seed, step and micro-batch, so exact on resume) → hooks'
``before_forward`` → forward (``Runtime``: device, autocast, memory format) → hooks'
``before_loss`` → per-task losses on valid pixels + coupling losses → ``balancer.backward``
(which owns how losses or per-task gradients are combined); then ``balancer.finalize`` →
clipping → optimizer and schedule step → hooks' ``after_optimizer_step`` (e.g. EMA teachers).
The trainer has no method-specific branches: balancers that combine per-task gradients say
``reduces_gradients`` and do their own single reduction; teachers, batch transforms and hooks
are plugins (``mtdense.engine.hooks``).

Around the loop, each in its own module: the run folder and its checkpoints (``run_folder``),
resuming (``resume``), the deferred non-finite loss check (``finite_losses``), the first-epoch
label check (``label_coverage``), best-checkpoint selection (``monitor``), the run's loggers
(``logger_group``) and stopping on a signal (``stop_signals``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from mtdense.config import plain, to_yaml
from mtdense.engine import distributed as dist_utils
from mtdense.engine.builder import Experiment, build_experiment, make_loader
from mtdense.engine.evaluator import Evaluator
from mtdense.engine.finite_losses import FiniteLossCheck
from mtdense.engine.label_coverage import LabelCoverage
from mtdense.engine.logger_group import LoggerGroup
from mtdense.engine.monitor import Monitor
from mtdense.engine.resume import load_for_resume
from mtdense.engine.run_folder import RunFolder
from mtdense.engine.runtime import Runtime
from mtdense.engine.schedule import build_optimizer, build_scheduler, set_base_lr
from mtdense.engine.seeding import rng_state, seed_everything, set_rng_state
from mtdense.balancing.base import build_balancer
from mtdense.balancing.gradients import parameter_names, parameters_named, shared_parameters
from mtdense.engine.stop_signals import StopOnSignal
from mtdense.errors import ConfigError, TrainingError
from mtdense.models.seeded_init import seeded
from mtdense.registry import BATCH_TRANSFORMS, HOOKS, TEACHERS


class Trainer:
    """Trains an experiment from its config: ``Trainer(cfg).fit(resume=None)`` → last validation metrics.

    Everything is built in ``__init__`` (experiment, optimizer, LR schedule, balancer, teachers,
    batch transforms, hooks), so ``train_step`` works before ``fit``. Checkpoints (weights,
    config, spec, trainer state incl. balancer, teacher and hook state and RNG) go to
    ``trainer.out_dir/checkpoints``; ``fit(resume=PATH)`` continues exactly.
    """

    def __init__(self, cfg: DictConfig, experiment: Experiment | None = None):
        self.cfg = cfg
        t = cfg.trainer
        self.runtime = Runtime.from_trainer_config(t)
        self.device = self.runtime.device
        self.distributed = dist_utils.init_distributed(self.device.type, float(t.ddp_timeout_minutes))
        seed_everything(int(cfg.seed), t.deterministic)
        self.exp = experiment or build_experiment(cfg)
        self.model = self.runtime.prepare_model(self.exp.model)
        self.tasks = self.exp.tasks.to(self.device)
        self.couplings = self.exp.couplings.to(self.device)
        # couplings are not tasks: the balancer weights task losses only (mtdense.balancing.base)
        self.balancer = build_balancer(plain(cfg.balancer), list(self.tasks), run_seed=int(cfg.seed)).to(self.device)
        if self.runtime.grad_scaler is not None and not self.balancer.supports_grad_scaler:
            raise ConfigError(f"fp16 needs loss scaling, which balancer {cfg.balancer.type!r} (a gradient method) does "
                              "not support; use trainer.precision=bf16 or fp32", key="trainer.precision")
        self.balancer.grad_scaler = self.runtime.grad_scaler
        self.label_coverage = LabelCoverage(self.tasks, self.device)  # counted in the first epoch
        #: parameters two or more task losses reach, from the first batch's autograd graph (saved with the run)
        self.shared_params: list[nn.Parameter] | None = None
        self.teachers = nn.ModuleDict({
            name: TEACHERS.build(plain(tc), f"teachers.{name}", student=self.model, tasks=self.tasks)
            for name, tc in (cfg.get("teachers") or {}).items()}).to(self.device)
        self.batch_transforms = [BATCH_TRANSFORMS.build(plain(bt), f"data.batch_transforms.{i}", tasks=self.tasks)
                                 for i, bt in enumerate(cfg.data.get("batch_transforms") or [])]
        self.hooks = [HOOKS.build(plain(h), f"hooks.{i}", tasks=self.tasks) for i, h in enumerate(cfg.get("hooks") or [])]
        self._connect_couplings()
        self.eval_net = self._eval_net(str(t.eval_model))
        self.net: nn.Module = self.model
        if self.distributed:
            self.net = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if t.compile:
            self.net = torch.compile(self.net)
        # balancers with learnable state (uncertainty, GradNorm, FAMO) update it themselves in finalize
        self.optimizer = build_optimizer(t, [*self.model.parameters(), *self.couplings.parameters()])
        self.steps_per_epoch = self._steps_per_epoch()
        if "val" in cfg.data:  # a bad validation dataset fails now, not after the first epoch
            self.exp.dataset("val")
        self.scheduler = build_scheduler(t, self.optimizer, self.steps_per_epoch * int(t.max_epochs))
        self.run_dir = Path(t.out_dir)
        self.run_folder = RunFolder(self.run_dir, int(t.keep_checkpoints))
        self.finite_losses = FiniteLossCheck(last_good=self.run_folder.checkpoints)
        self.global_step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.monitor = Monitor.from_config(t)
        self.best: float | None = None  # the monitored value of the best checkpoint
        self.loggers = LoggerGroup()
        self.saved_step: int | None = None  # the step of the newest checkpoint this process wrote
        self.notes: list[str] = []  # what a resume or start-up did that the user should know

    def _connect_couplings(self) -> None:
        """Couplings with an optional ``connect(student, teachers)`` see the student and the teachers
        before the optimizer is built, so they may create parameters that depend on both (e.g. the
        1×1 adapters of feature distillation); those are trained with the model, seeded by (seed,
        coupling path), and saved in the trainer state."""
        for i, (name, coupling) in enumerate(self.couplings.items()):
            if hasattr(coupling, "connect"):
                try:
                    with seeded(int(self.cfg.seed), f"couplings.{i}"):
                        coupling.connect(student=self.model, teachers=self.teachers)
                except ConfigError as exc:
                    raise exc.under(f"couplings.{i}") from None
        self.couplings.to(self.device)

    def _eval_net(self, choice: str) -> nn.Module | None:
        """``student`` (None: evaluate what is trained) or ``teacher:<name>``."""
        if choice == "student":
            return None
        name = choice.split(":", 1)[1] if choice.startswith("teacher:") else None
        if name not in self.teachers:
            raise ConfigError(f"{choice!r} is not 'student' or 'teacher:<name>' with a name of the teachers "
                              f"section ({', '.join(self.teachers) or 'none configured'})", key="trainer.eval_model")
        return self.teachers[name].net

    @property
    def step_hooks(self) -> list:
        """Teachers first, then the configured hooks: the order their methods are called in."""
        return [*self.teachers.values(), *self.hooks]

    # ---------------------------------------------------------------- data
    def _loader(self, split: str, shuffle: bool, epoch: int = 0, start_batch: int = 0) -> DataLoader:
        return make_loader(self.cfg, self.exp.dataset(split), split, shuffle, epoch, start_batch,
                           pin_memory=self.device.type == "cuda")

    def _steps_per_epoch(self) -> int:
        loader_batches = self._loader("train", shuffle=True).sampler.num_batches()
        steps = loader_batches // int(self.cfg.trainer.accumulate)
        cap = self.cfg.trainer.max_steps_per_epoch
        steps = min(steps, int(cap)) if cap else steps
        if steps == 0:
            raise ConfigError(
                f"{self.cfg.data.batch_size} × accumulate {self.cfg.trainer.accumulate} × "
                f"{dist_utils.world_size()} process(es) exceeds the {len(self.exp.dataset('train'))} training samples",
                key="data.batch_size")
        return steps

    # ---------------------------------------------------------------- step
    def _prepare_batch(self, batch: dict[str, Any], micro: int) -> dict[str, Any]:
        """Device, teachers' predictions, batch transforms and hooks, in that order."""
        batch = self.runtime.batch(batch)
        if len(self.teachers):
            with self.runtime.autocast():
                batch["teacher"] = {name: t.predict(batch["image"]) for name, t in self.teachers.items()}
        if self.batch_transforms:
            generator = torch.Generator().manual_seed(hash((int(self.cfg.seed), self.global_step, micro)) % 2**63)
            for bt in self.batch_transforms:
                batch = bt(batch, generator)
        for hook in self.hooks:
            batch = hook.before_forward(batch, self.global_step)
        return batch

    def _losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        outputs = self.runtime.forward(self.net, batch["image"])
        for hook in self.hooks:
            hook.before_loss(batch, outputs)
        losses = {name: task.compute_loss(outputs[name], batch) for name, task in self.tasks.items()}
        for name, coupling in self.couplings.items():
            losses[name] = coupling(outputs, batch)
        return losses

    def _weighted_couplings(self, losses: dict[str, torch.Tensor], n: int) -> torch.Tensor | None:
        """sum_c weight_c · r_c(step) · L_c / n: added to the update outside the balancer (None without
        couplings); r_c is the coupling's ``weight_schedule`` (1 without), a function of the step only."""
        if not len(self.couplings):
            return None
        return sum(self.exp.coupling_weight(c, self.global_step) * losses[c] / n for c in self.couplings)

    def check_finite(self, extra: dict[str, Any] | None = None) -> dict[str, float]:
        """Raise ``TrainingError`` for the first non-finite loss since the last check; return
        ``extra``'s tensors as floats. One host synchronisation for both (the trainer calls this
        at each logging interval and before checkpoints and evaluations)."""
        return self.finite_losses.check(extra)

    def train_step(self, micro_batches: list[dict[str, Any]]) -> dict[str, Any]:
        """One optimizer step over ``len(micro_batches)`` accumulated micro-batches.

        Returns the step's losses, task weights and gradient norm as 0-dim tensors on the device
        and ``lr``: no host synchronisation happens here (fp16's GradScaler aside); ``check_finite``
        turns them into floats and raises for a non-finite loss of any step since its last call.
        """
        self.net.train()
        n = len(micro_batches)
        logged: dict[str, Any] = {}
        prepared = []
        for i, batch in enumerate(micro_batches):
            batch = self._prepare_batch(batch, i)
            # DDP reduces gradients during the last micro-batch's backward, unless the balancer
            # combines per-task gradients and does its own single reduction in finalize
            local = self.balancer.reduces_gradients or i < n - 1
            ctx = self.net.no_sync() if (self.distributed and local) else contextlib.nullcontext()
            with ctx:  # forward and backward both inside no_sync
                losses = self._losses(batch)
                task_losses = {k: losses[k] / n for k in self.tasks}
                if self.shared_params is None:
                    self.shared_params = shared_parameters(self.model, task_losses)
                self.balancer.backward(task_losses, self.shared_params, self._weighted_couplings(losses, n))
            self.finite_losses.record(self.global_step, losses, batch)
            if self.epoch == 0:  # valid label pixels per task, checked once after the first epoch
                self.label_coverage.count(batch)
            if self.balancer.needs_post_step_losses:
                prepared.append(batch)
            for k, v in losses.items():
                logged[f"loss/{k}"] = logged.get(f"loss/{k}", 0.0) + v.detach().float() / n
        self.balancer.finalize(self.shared_params)
        if self.distributed:  # coupling parameters (adapters) live outside DDP's module
            for p in self.couplings.parameters():
                if p.grad is not None:
                    dist_utils.mean_across_ranks(p.grad)
        for k, w in self.balancer.last_weights.items():
            logged[f"weight/{k}"] = w
        for c in self.exp.coupling_schedules:  # the weight this step used
            logged[f"weight/{c}"] = self.exp.coupling_weight(c, self.global_step)
        scaler = self.runtime.grad_scaler
        if scaler is not None:
            scaler.unscale_(self.optimizer)
        if self.cfg.trainer.grad_clip:
            logged["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                                 self.cfg.trainer.grad_clip).detach()
        if scaler is not None:
            scaler.step(self.optimizer)  # skips the step when the scaled gradients overflowed
            scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        if prepared:  # FAMO: the same micro-batches' task losses after the step (one no-grad forward each)
            with torch.no_grad():
                outputs = [self.runtime.forward(self.net, batch["image"]) for batch in prepared]
                self.balancer.after_optimizer_step({name: sum(task.compute_loss(o[name], b) for o, b in zip(outputs, prepared)) / n
                                                    for name, task in self.tasks.items()})
        for hook in self.step_hooks:
            hook.after_optimizer_step(self)
        logged["lr"] = self.optimizer.param_groups[0]["lr"]
        return logged

    # ---------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "balancer": self.balancer.state_dict(), "global_step": self.global_step, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "best": self.best, "rng": rng_state(),
                "shared_params": None if self.shared_params is None else parameter_names(self.model, self.shared_params),
                "teachers": {name: t.state_dict() for name, t in self.teachers.items()},
                "hooks": [h.state_dict() for h in self.hooks], "couplings": self.couplings.state_dict(),
                "grad_scaler": self.runtime.grad_scaler.state_dict() if self.runtime.grad_scaler else None}

    def save(self, is_best: bool = False) -> Path | None:
        """Write a checkpoint (new folder → pointers switched → old ones pruned; never over an
        existing folder); refused, with the previous checkpoints kept, if anything is non-finite."""
        self.check_finite()
        if not dist_utils.is_main():
            return None
        folder = self.run_folder.save(self.global_step, self.model.state_dict(), to_yaml(self.cfg), self.exp.spec(),
                                      self.state(), is_best)
        self.saved_step = self.global_step
        return folder

    def restore(self, path: str | Path) -> None:
        """Continue exactly from ``path`` (a run folder falls back to its newest complete checkpoint
        when ``last`` is dangling or corrupt). Config values that differ from the checkpoint's are
        reported and applied (a new ``trainer.lr`` reaches the restored schedule); model changes
        that make the weights unusable are named by config key."""
        s = load_for_resume(path, self.cfg, self.model, self.notes)
        self.optimizer.load_state_dict(s["optimizer"])
        self.scheduler.load_state_dict(s["scheduler"])
        set_base_lr(self.optimizer, self.scheduler, float(self.cfg.trainer.lr))
        self.balancer.load_state_dict(s["balancer"])
        self.global_step, self.epoch, self.batch_in_epoch, self.best = s["global_step"], s["epoch"], s["batch_in_epoch"], s["best"]
        if s.get("shared_params") is not None:
            self.shared_params = parameters_named(self.model, s["shared_params"])
        for name, teacher in self.teachers.items():
            teacher.load_state_dict(s.get("teachers", {}).get(name, {}))
        for hook, state in zip(self.hooks, s.get("hooks", [{}] * len(self.hooks))):
            hook.load_state_dict(state)
        if "couplings" in s:  # absent in checkpoints written before couplings could hold parameters
            self.couplings.load_state_dict(s["couplings"])
        if self.runtime.grad_scaler is not None and s.get("grad_scaler"):
            self.runtime.grad_scaler.load_state_dict(s["grad_scaler"])
        set_rng_state(s["rng"])
        self.saved_step = self.global_step

    # ---------------------------------------------------------------- evaluation
    def evaluator(self) -> Evaluator:
        """Scores ``trainer.eval_model``: the student being trained, or one of the teachers."""
        net = self.net if self.eval_net is None else self.eval_net
        return Evaluator(net, self.tasks, self.couplings, self.exp.coupling_weights, self.runtime)

    def evaluate(self, split: str = "val") -> dict[str, float]:
        return self.evaluator().run(self._loader(split, shuffle=False), split)

    def _update_best(self, metrics: dict[str, float]) -> bool:
        value = metrics[self.monitor.key]  # checked when the experiment was built
        if self.monitor.improves(value, self.best):
            self.best = value
            return True
        return False

    # ---------------------------------------------------------------- fit
    def fit(self, resume: str | Path | None = None) -> dict[str, float]:
        try:
            if dist_utils.is_main():
                self.run_folder.claim(resuming=resume is not None, notes=self.notes)
            if resume is not None:
                self.restore(resume)
            if dist_utils.is_main():
                self.run_folder.write_config(to_yaml(self.cfg))
                for note in self.notes:
                    print(f"mtdense: note: {note}", file=sys.stderr)
            with StopOnSignal() as stop:
                return self._fit(stop)
        except RuntimeError as exc:  # a collective that timed out: name the rank, not a C++ trace
            if self.distributed and "timed out" in str(exc).lower():
                raise TrainingError(f"rank {dist_utils.rank()}: a collective timed out after "
                                    f"{self.cfg.trainer.ddp_timeout_minutes} min (trainer.ddp_timeout_minutes) — "
                                    "another rank stalled or died; see its log") from exc
            raise
        finally:
            self.run_folder.release()

    def _stop_requested(self, stop: StopOnSignal) -> None:
        """After a step: if any rank got SIGINT/SIGTERM, save and raise ``Interrupted``. Under DDP the
        ranks agree at logging steps only (one all-reduce), so no extra host sync per step."""
        if self.distributed and self.global_step % int(self.cfg.trainer.log_every_steps):
            return
        last = self.run_folder.checkpoints / "last"
        stop.stop_if_requested(self.global_step, self.run_dir, device=self.device,
                               save=lambda: self.save() if self.saved_step != self.global_step else last)

    def _fit(self, stop: StopOnSignal) -> dict[str, float]:
        t = self.cfg.trainer
        per_epoch = self.steps_per_epoch
        self.loggers.start(self.cfg, self.run_dir, per_epoch * int(t.max_epochs), self.global_step, self.best)
        for hook in self.step_hooks:
            hook.on_fit_start(self)
        evaluator = self.evaluator()
        acc = int(t.accumulate)
        from_scratch = self.global_step == 0
        last_metrics: dict[str, float] = {}
        try:
            while self.epoch < int(t.max_epochs):
                loader = self._loader("train", shuffle=True, epoch=self.epoch, start_batch=self.batch_in_epoch)
                it = iter(loader)
                tic = time.perf_counter()
                while self.batch_in_epoch < per_epoch * acc:
                    micro = [next(it) for _ in range(acc)]
                    logged = self.train_step(micro)
                    self.batch_in_epoch += acc
                    self.loggers.advance(self.global_step)
                    if self.global_step % int(t.log_every_steps) == 0:
                        logged = dist_utils.all_reduce_mean(self.check_finite(logged))
                        self.loggers.log({f"train/{k}": v for k, v in logged.items()}, self.global_step)
                    last_of_epoch = self.batch_in_epoch >= per_epoch * acc  # saved below, after evaluation
                    if t.checkpoint_every_steps and self.global_step % int(t.checkpoint_every_steps) == 0 \
                            and not last_of_epoch:
                        self.save()
                    self._stop_requested(stop)
                del it, loader
                self.epoch += 1
                if self.epoch == 1 and from_scratch:
                    self.label_coverage.check()
                self.batch_in_epoch = 0
                epoch_time = time.perf_counter() - tic
                is_best = False
                due = self.epoch % int(t.eval_every_epochs) == 0 or self.epoch == int(t.max_epochs)
                if "val" in self.cfg.data and due:
                    self.check_finite()
                    last_metrics = evaluator.run(self._loader("val", shuffle=False), "val", progress=self.loggers.eval_progress)
                    last_metrics["train/epoch_seconds"] = epoch_time
                    is_best = self._update_best(last_metrics)
                    self.loggers.log(last_metrics, self.global_step)
                self.balancer.on_epoch_end()
                for hook in self.step_hooks:
                    hook.on_epoch_end(self)
                self.save(is_best=is_best)
        finally:
            self.loggers.close()
        dist_utils.barrier()  # every rank returns only after rank 0 has written the last checkpoint
        return last_metrics
