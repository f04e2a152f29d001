"""One ``Trainer`` for single-process and torchrun/DDP training.

A step: forward under ``torch.autocast`` (bf16 on CPU when asked) → per-task losses on valid
pixels + coupling losses → ``balancer.backward`` (which owns how losses or per-task gradients
are combined) for each of ``accumulate`` micro-batches → ``balancer.finalize`` → clipping →
optimizer and schedule step. The trainer has no method-specific branches: balancers that
combine per-task gradients say ``reduces_gradients`` and do their own single reduction.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from mtdense.errors import TrainingError
from mtdense.config import plain, to_yaml
from mtdense.engine import distributed as dist_utils
from mtdense.engine.builder import Experiment, build_experiment, make_loader
from mtdense.engine.checkpoint import prune_checkpoints, read_checkpoint, save_checkpoint, write_pointer
from mtdense.engine.evaluator import Evaluator, move_batch, precision_context
from mtdense.engine.schedule import build_optimizer, build_scheduler
from mtdense.engine.seeding import rng_state, seed_everything, set_rng_state
from mtdense.registry import BALANCERS, LOGGERS
from mtdense.errors import ConfigError


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("cuda requested but no CUDA device is available; use auto or cpu", key="trainer.device")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


class Trainer:
    def __init__(self, cfg: DictConfig, experiment: Experiment | None = None):
        self.cfg = cfg
        t = cfg.trainer
        self.device = pick_device(t.device)
        self.distributed = dist_utils.init_distributed(self.device.type)
        seed_everything(int(cfg.seed), t.deterministic)
        self.exp = experiment or build_experiment(cfg)
        self.model = self.exp.model.to(self.device)
        self.tasks = self.exp.tasks.to(self.device)
        self.couplings = self.exp.couplings.to(self.device)
        if t.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        objectives = list(self.tasks) + list(self.couplings)
        self.balancer = BALANCERS.build(plain(cfg.balancer), "balancer", tasks=objectives).to(self.device)
        self.shared_params = self.model.shared_parameters()
        self.net: nn.Module = self.model
        if self.distributed:
            self.net = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if t.compile:
            self.net = torch.compile(self.net)
        # balancers with learnable state (uncertainty, GradNorm, FAMO) update it themselves in finalize
        self.optimizer = build_optimizer(t, list(self.model.parameters()))
        self.run_dir = Path(t.out_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.global_step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best: float | None = None
        self.epoch_losses: dict[str, float] = {}  # running mean train losses of the current epoch
        self.loggers: list = []

    # ---------------------------------------------------------------- data
    def _loader(self, split: str, shuffle: bool, epoch: int = 0, start_batch: int = 0) -> DataLoader:
        return make_loader(self.cfg, self.exp.dataset(split), split, shuffle, epoch, start_batch,
                           pin_memory=self.device.type == "cuda")

    # ---------------------------------------------------------------- step
    def _losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image = batch["image"]
        if self.cfg.trainer.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with precision_context(self.cfg.trainer.precision, self.device):
            outputs = self.net(image)
        losses = {name: task.compute_loss(outputs[name], batch) for name, task in self.tasks.items()}
        for name, coupling in self.couplings.items():
            losses[name] = coupling(outputs, batch)
        return losses

    def _check_finite(self, losses: dict[str, torch.Tensor], batch: dict[str, Any]) -> None:
        bad = [k for k, v in losses.items() if not torch.isfinite(v.detach()).all()]
        if not bad:
            return
        inputs_ok = bool(torch.isfinite(batch["image"]).all())
        hint = ("the input batch itself contains NaN/Inf: check the dataset's fill handling and normalisation"
                if not inputs_ok else
                "lower trainer.lr, set trainer.grad_clip, use trainer.precision=fp32, or check the target transform")
        ids = batch.get("meta", {}).get("id")
        raise TrainingError(
            f"step {self.global_step}: non-finite loss for {', '.join(bad)} "
            f"({', '.join(f'{k}={float(losses[k].detach()):.4g}' for k in bad)}); {hint}. "
            f"Samples: {list(ids)[:8] if ids is not None else 'unknown'}. The last good checkpoint is in {self.ckpt_dir}"
        )

    def train_step(self, micro_batches: list[dict[str, Any]]) -> dict[str, float]:
        """One optimizer step over ``len(micro_batches)`` accumulated micro-batches."""
        self.net.train()
        n = len(micro_batches)
        logged: dict[str, float] = {}
        for i, batch in enumerate(micro_batches):
            batch = move_batch(batch, self.device)
            # DDP reduces gradients during the last micro-batch's backward, unless the balancer
            # combines per-task gradients and does its own single reduction in finalize
            local = self.balancer.reduces_gradients or i < n - 1
            ctx = self.net.no_sync() if (self.distributed and local) else contextlib.nullcontext()
            with ctx:  # forward and backward both inside no_sync
                losses = self._losses(batch)
                self._check_finite(losses, batch)
                self.balancer.backward({k: v / n for k, v in losses.items()}, self.shared_params)
            for k, v in losses.items():
                logged[f"loss/{k}"] = logged.get(f"loss/{k}", 0.0) + float(v.detach()) / n
        self.balancer.finalize(self.shared_params)
        for k, w in self.balancer.last_weights.items():
            logged[f"weight/{k}"] = float(w)
        if self.cfg.trainer.grad_clip:
            logged["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.trainer.grad_clip))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        logged["lr"] = self.optimizer.param_groups[0]["lr"]
        return logged

    # ---------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "balancer": self.balancer.state_dict(), "global_step": self.global_step, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "best": self.best, "epoch_losses": self.epoch_losses,
                "rng": rng_state()}

    def save(self, is_best: bool = False) -> Path | None:
        if not dist_utils.is_main():
            return None
        name = f"step_{self.global_step:08d}"
        folder = save_checkpoint(self.ckpt_dir / name, self.model.state_dict(), to_yaml(self.cfg), self.exp.spec(), self.state())
        write_pointer(self.ckpt_dir / "last", name)
        protect = {name}
        if is_best:
            write_pointer(self.ckpt_dir / "best", name)
        best_ptr = self.ckpt_dir / "best"
        if best_ptr.is_file():
            protect.add(best_ptr.read_text().strip())
        prune_checkpoints(self.ckpt_dir, int(self.cfg.trainer.keep_checkpoints), protect)
        return folder

    def restore(self, path: str | Path) -> None:
        ckpt = read_checkpoint(path, with_state=True)
        self.model.load_state_dict(ckpt["weights"])
        s = ckpt["state"]
        self.optimizer.load_state_dict(s["optimizer"])
        self.scheduler.load_state_dict(s["scheduler"])
        self.balancer.load_state_dict(s["balancer"])
        self.global_step, self.epoch, self.batch_in_epoch, self.best = s["global_step"], s["epoch"], s["batch_in_epoch"], s["best"]
        self.epoch_losses = dict(s["epoch_losses"])
        set_rng_state(s["rng"])

    # ---------------------------------------------------------------- fit
    def steps_per_epoch(self) -> int:
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

    def _start_loggers(self, total: int) -> None:
        if not dist_utils.is_main():
            return
        cfg_plain = OmegaConf.to_container(self.cfg, resolve=True)
        for i, lcfg in enumerate(plain(self.cfg.logging.get("loggers", [])) or []):
            self.loggers.append(LOGGERS.build(lcfg, f"logging.loggers.{i}", run_dir=self.run_dir, config=cfg_plain))
        for lg in self.loggers:
            lg.start(total, self.global_step)

    def _log(self, metrics: dict[str, float]) -> None:
        for lg in self.loggers:
            lg.log(metrics, self.global_step)

    def fit(self, resume: str | Path | None = None) -> dict[str, float]:
        t = self.cfg.trainer
        per_epoch = self.steps_per_epoch()
        total = per_epoch * int(t.max_epochs)
        self.scheduler = build_scheduler(t, self.optimizer, total)
        if resume is not None:
            self.restore(resume)
        if dist_utils.is_main():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(to_yaml(self.cfg))
        self._start_loggers(total)
        evaluator = Evaluator(self.net, self.tasks, self.couplings, self.device, t.precision, t.channels_last)
        acc = int(t.accumulate)
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
                    for k, v in logged.items():
                        if k.startswith("loss/"):
                            self.epoch_losses[k[5:]] = self.epoch_losses.get(k[5:], 0.0) + v / per_epoch
                    for lg in self.loggers:
                        lg.advance(self.global_step, {k: v for k, v in logged.items() if k.startswith("loss/")})
                    if self.global_step % int(t.log_every_steps) == 0:
                        self._log({f"train/{k}": v for k, v in dist_utils.all_reduce_mean(logged).items()})
                    if t.checkpoint_every_steps and self.global_step % int(t.checkpoint_every_steps) == 0:
                        self.save()
                del it, loader
                self.epoch += 1
                self.batch_in_epoch = 0
                epoch_time = time.perf_counter() - tic
                is_best = False
                due = self.epoch % int(t.eval_every_epochs) == 0 or self.epoch == int(t.max_epochs)
                if "val" in self.cfg.data and due:
                    last_metrics = evaluator.run(self._loader("val", shuffle=False), "val")
                    last_metrics["train/epoch_seconds"] = epoch_time
                    is_best = self._update_best(last_metrics)
                    self._log(last_metrics)
                self.balancer.on_epoch_end(dist_utils.all_reduce_mean(self.epoch_losses))
                self.epoch_losses = {}
                self.save(is_best=is_best)
        finally:
            for lg in self.loggers:
                lg.close()
            self.loggers = []
        dist_utils.barrier()  # every rank returns only after rank 0 has written the last checkpoint
        return last_metrics

    def _update_best(self, metrics: dict[str, float]) -> bool:
        key = self.cfg.trainer.monitor or "val/loss"
        if key not in metrics:
            raise ConfigError(f"{key!r} is not among the evaluation results: {', '.join(sorted(metrics))}",
                              key="trainer.monitor")
        value = metrics[key]
        better = self.best is None or (value < self.best if self.cfg.trainer.monitor_mode == "min" else value > self.best)
        if better and math.isfinite(value):
            self.best = value
            return True
        return False

    def evaluate(self, split: str = "val") -> dict[str, float]:
        evaluator = Evaluator(self.net, self.tasks, self.couplings, self.device, self.cfg.trainer.precision,
                              self.cfg.trainer.channels_last)
        return evaluator.run(self._loader(split, shuffle=False), split)
