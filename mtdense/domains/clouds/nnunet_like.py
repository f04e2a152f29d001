"""The built-in nnU-Net-like 2D cloud teacher: fingerprint → plan → train → teacher plugin.

nnU-Net v2 (Isensee et al., Nature Methods 2021; ``nnUNetTrainer``): the network and plan of
``planner.py``; z-score normalisation with the dataset's per-channel mean/std; random patches
with mirroring along both axes (p = 0.5 each); Dice + CE at every decoder resolution (deep
supervision: weights 1/2^i, the coarsest dropped, normalised to sum 1; targets downsampled
with nearest neighbour); SGD with Nesterov momentum 0.99, weight decay 3e-5, lr 1e-2 with the
poly schedule (1 − it/its)^0.9, gradient norm clipped at 12. Invalid (nodata) pixels are left
out of the loss. Validation and teacher inference use Gaussian sliding windows of the patch
size (``mtdense.inference.sliding_window``) and mirroring test-time augmentation.

Training records a validation curve (every ``validate_every`` iterations: mean training loss
since the last point and the validation split's dataset-level Jaccard and Dice of the cloud
class — nnU-Net logs a pseudo-Dice per epoch the same way) and can resume: every
``checkpoint_every`` iterations the model, optimizer, schedule, sampling generator, losses and
curve go to OUT/resume.pt, and a restarted call continues from there bit for bit.

Why its own loop and not ``Trainer``: the core model contract gives one output per task, while
deep supervision needs PlainConvUNet's per-stage outputs and its own decoder; wrapping it as a
backbone would discard that decoder. The trained teacher enters distillation through the
TEACHERS kind (``{type: nnunet_like, path: ...}``) like any other teacher.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtdense.domains.clouds.metrics import CloudMetrics
from mtdense.domains.clouds.planner import Fingerprint, Plan, plan_2d
from mtdense.domains.clouds.teacher_network import build_plain_unet
from mtdense.engine.teachers import FEATURE_KEY, Teacher
from mtdense.errors import CheckpointError, ConfigError
from mtdense.inference.sliding_window import sliding_window
from mtdense.losses.pixel_losses import DiceCE
from mtdense.registry import TEACHERS


def fingerprint(dataset, target: str = "cloud", max_samples: int = 256, num_classes: int = 2) -> Fingerprint:
    """Median shape, count, channels and per-channel mean/std over valid pixels of ≤ ``max_samples`` samples."""
    idx = np.linspace(0, len(dataset) - 1, min(len(dataset), max_samples)).round().astype(int)
    shapes, sums, sq, n = [], 0.0, 0.0, 0
    for i in sorted(set(idx.tolist())):
        s = dataset[i]
        shapes.append(tuple(s["image"].shape[-2:]))
        v = s["valid"][target]
        px = s["image"][:, v].double()
        sums, sq, n = sums + px.sum(1), sq + (px**2).sum(1), n + px.shape[1]
    mean = sums / max(n, 1)
    std = (sq / max(n, 1) - mean**2).clamp(min=1e-12).sqrt()
    median = tuple(int(m) for m in np.median(np.array(shapes), axis=0))
    return Fingerprint(median, len(dataset), int(s["image"].shape[0]), mean.tolist(), std.tolist(), num_classes)


class NormalisedUNet(nn.Module):
    """z-score normalisation + PlainConvUNet; ``forward`` gives the deep-supervision list in training
    mode when ``deep_supervision`` is on, else the full-resolution logits."""

    def __init__(self, plan: dict, deep_supervision: bool = True):
        super().__init__()
        fp = plan["fingerprint"]
        self.register_buffer("mean", torch.tensor(fp["mean"], dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(fp["std"], dtype=torch.float32).view(1, -1, 1, 1))
        self.net = build_plain_unet(plan, fp["channels"], fp["num_classes"], deep_supervision)

    def forward(self, image: torch.Tensor):
        out = self.net((image - self.mean) / self.std)
        return out if self.training and isinstance(out, (list, tuple)) else (out[0] if isinstance(out, (list, tuple)) else out)


def deep_supervision_weights(n: int) -> list[float]:
    """nnU-Net: 1/2^i per output (finest first), the coarsest 0, normalised to sum 1."""
    w = np.array([1 / 2**i for i in range(n)])
    if n > 1:
        w[-1] = 0
    return (w / w.sum()).tolist()


def deep_supervision_loss(outputs: list[torch.Tensor], target: torch.Tensor, valid: torch.Tensor, loss: nn.Module) -> torch.Tensor:
    total = outputs[0].new_zeros(())
    for weight, out in zip(deep_supervision_weights(len(outputs)), outputs):
        if weight == 0:
            continue
        size = out.shape[-2:]
        t = F.interpolate(target[:, None].float(), size=size, mode="nearest")[:, 0].long()
        v = F.interpolate(valid[:, None].float(), size=size, mode="nearest")[:, 0].bool()
        total = total + weight * loss(out, t, v)
    return total


def random_patch(sample: dict, patch: tuple[int, int], target: str, gen: torch.Generator):
    """A random crop (zero-padded if the image is smaller; padding invalid) with random mirroring."""
    image, t, v = sample["image"], sample["targets"][target], sample["valid"][target]
    ph, pw = patch
    h, w = image.shape[-2:]
    if h < ph or w < pw:
        pad = (0, max(pw - w, 0), 0, max(ph - h, 0))
        image, t, v = F.pad(image, pad), F.pad(t, pad), F.pad(v, pad)
        h, w = image.shape[-2:]
    y = int(torch.randint(0, h - ph + 1, (1,), generator=gen))
    x = int(torch.randint(0, w - pw + 1, (1,), generator=gen))
    crop = [a[..., y:y + ph, x:x + pw] for a in (image, t, v)]
    for axis in (-1, -2):
        if torch.rand((), generator=gen) < 0.5:
            crop = [a.flip(axis) for a in crop]
    return crop


@torch.no_grad()
def validation_scores(model: nn.Module, dataset, patch: tuple[int, int], target: str = "cloud") -> dict[str, float]:
    """Dataset-level Jaccard and Dice of the cloud class over ``dataset`` (Gaussian sliding windows
    of the plan patch, no mirroring); the model is put back in training mode."""
    model.eval()
    metric = CloudMetrics()
    for i in range(len(dataset)):
        s = dataset[i]
        logits = sliding_window(model, s["image"][None], patch)
        metric.update(logits.argmax(1), s["targets"][target][None], s["valid"][target][None])
    model.train()
    jaccard = float(metric.compute()["jaccard"])
    return {"jaccard": jaccard, "dice": 2 * jaccard / (1 + jaccard)}


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    tmp.replace(path)


def train_nnunet_like(dataset, out: str | Path, iterations: int = 250, memory_gb: float = 8.0, base_features: int = 32,
                      max_features: int = 512, batch_size: int | None = None, lr: float = 1e-2, seed: int = 0,
                      target: str = "cloud", log_every: int = 50, val_dataset=None, validate_every: int = 0,
                      checkpoint_every: int = 0) -> Path:
    """Plan and train a teacher on ``dataset``; writes OUT/plan.json, OUT/model.pt, OUT/training.json
    (with the validation curve on ``val_dataset`` every ``validate_every`` iterations and at the end).
    With ``checkpoint_every``, OUT/resume.pt is kept while training and a rerun resumes from it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    fp = fingerprint(dataset, target)
    plan: Plan = plan_2d(fp, memory_gb, base_features, max_features)
    plan_d = plan.to_dict()
    if batch_size:
        plan_d["batch_size"] = int(batch_size)  # a CPU override, recorded in the plan
    model = NormalisedUNet(plan_d).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.99, nesterov=True, weight_decay=3e-5)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: (1 - it / iterations) ** 0.9)
    loss_fn = DiceCE()
    gen = torch.Generator().manual_seed(seed)
    losses, curve, start, seconds, cpu_seconds = [], [], 0, 0.0, 0.0
    resume = out / "resume.pt"
    setup = {"plan": json.loads(json.dumps(plan_d)), "iterations": iterations, "lr": lr, "seed": seed}
    if resume.is_file():
        state = torch.load(resume, map_location="cpu", weights_only=False)
        if state["setup"] != setup:
            raise CheckpointError(f"{resume}: made for another plan or schedule; delete it to start over")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        gen.set_state(state["generator"])
        losses, curve, start = state["losses"], state["curve"], state["iteration"]
        seconds, cpu_seconds = state["seconds"], state["cpu_seconds"]
        print(f"[nnunet_like] resuming {out} at iteration {start}/{iterations}", flush=True)
    tic, cpu_tic = time.perf_counter(), time.process_time()
    patch = tuple(plan_d["patch_size"])
    for it in range(start, iterations):
        picks = torch.randint(0, len(dataset), (plan_d["batch_size"],), generator=gen).tolist()
        crops = [random_patch(dataset[i], patch, target, gen) for i in picks]
        image, t, v = (torch.stack(parts) for parts in zip(*crops))
        loss = deep_supervision_loss(model(image), t, v, loss_fn)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        done = it + 1
        if log_every and done % log_every == 0:
            print(f"[nnunet_like] it {done}/{iterations} loss {np.mean(losses[-log_every:]):.4f}", flush=True)
        if val_dataset is not None and validate_every and (done % validate_every == 0 or done == iterations):
            since = curve[-1]["iteration"] if curve else 0
            point = {"iteration": done, "train_loss": float(np.mean(losses[since:done])),
                     **{f"val_{k}": v for k, v in validation_scores(model, val_dataset, patch, target).items()},
                     "cpu_seconds": cpu_seconds + time.process_time() - cpu_tic}
            curve.append(point)
            print(f"[nnunet_like] it {done}: val Jaccard {point['val_jaccard']:.4f} Dice {point['val_dice']:.4f}",
                  flush=True)
        if checkpoint_every and done % checkpoint_every == 0 and done < iterations:
            _save_atomic({"setup": setup, "iteration": done, "model": model.state_dict(),
                          "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                          "generator": gen.get_state(), "losses": losses, "curve": curve,
                          "seconds": seconds + time.perf_counter() - tic,
                          "cpu_seconds": cpu_seconds + time.process_time() - cpu_tic}, resume)
    _save_atomic(model.state_dict(), out / "model.pt")
    (out / "plan.json").write_text(json.dumps(plan_d, indent=1))
    (out / "training.json").write_text(json.dumps({
        "iterations": iterations, "seconds": seconds + time.perf_counter() - tic,
        "cpu_seconds": cpu_seconds + time.process_time() - cpu_tic, "loss": losses[-1], "seed": seed,
        "curve": curve}, indent=1))
    resume.unlink(missing_ok=True)
    return out


def load_nnunet_like(folder: str | Path) -> tuple[NormalisedUNet, dict]:
    folder = Path(folder)
    for name in ("plan.json", "model.pt"):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder}: not an nnU-Net-like teacher folder (no {name}); "
                                  "train one with `mtdense train-teacher`")
    plan = json.loads((folder / "plan.json").read_text())
    model = NormalisedUNet(plan, deep_supervision=False)
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    return model.eval(), plan


@TEACHERS.register("nnunet_like")
class NnUNetLikeTeacher(Teacher):
    """A trained nnU-Net-like teacher folder; sliding-window (Gaussian) + mirroring predictions.

    ``logits: false`` makes a hints-only teacher: ``predict`` runs only the encoder stages up to
    the deepest requested feature stride and returns those features, no logits — for FitNets
    hints on the fly next to logits from the soft-target cache (the decoder and the deeper
    stages are the bulk of a forward)."""

    conformance_skip = "needs a trained teacher folder; tests/test_clouds_teacher_export.py trains one and checks it"

    def __init__(self, path: str, task: str = "cloud", mirror: bool = True, step_fraction: float = 0.5,
                 logits: bool = True):
        super().__init__()
        self.net, self.plan = load_nnunet_like(path)
        self.net.requires_grad_(False)
        self.task, self.mirror, self.step_fraction = task, bool(mirror), float(step_fraction)
        self.give_logits = bool(logits)

    def request_features(self, strides: list[int]) -> dict[int, int]:
        """From now on ``predict`` adds the encoder features at ``strides`` (``features@<stride>``, for
        feature distillation); returns every encoder stage's width by stride."""
        widths = dict(zip(self.encoder_strides(), map(int, self.plan["features_per_stage"])))
        self.feature_strides = [s for s in strides if s in widths]
        return widths

    def encoder_strides(self) -> list[int]:
        """Each encoder stage's output stride (the product of the plan's per-stage strides; square)."""
        return np.cumprod([int(max(s)) for s in self.plan["strides"]]).tolist()

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        patch = tuple(self.plan["patch_size"])
        run = lambda x: sliding_window(self.net, x, patch, overlap=1 - self.step_fraction)  # noqa: E731
        out = run(image)
        if self.mirror:
            for dims in ((-1,), (-2,), (-2, -1)):
                out = out + run(image.flip(dims)).flip(dims)
            out = out / 4
        return out

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        image = image.float()
        if not self.give_logits:
            return self.hints(image)
        if not self.feature_strides:
            return {self.task: self.logits(image)}
        self.net.eval()
        unet = self.net.net
        skips = unet.encoder((image - self.net.mean) / self.net.std)
        one_window = tuple(image.shape[-2:]) == tuple(self.plan["patch_size"]) and not self.mirror
        out = {self.task: unet.decoder(skips) if one_window else self.logits(image)}  # one window: no blending
        strides = self.encoder_strides()
        for stride in self.feature_strides:
            out[FEATURE_KEY.format(stride)] = skips[strides.index(stride)].float()
        return out

    def hints(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The requested encoder features only, from the encoder stages they need."""
        if not self.feature_strides:
            raise ConfigError("a teacher with logits: false gives encoder features only, and no feature "
                              "distillation (kd_feature) asked it for any", key="logits")
        self.net.eval()
        strides = self.encoder_strides()
        x = (image - self.net.mean) / self.net.std
        out = {}
        for stage, stride in zip(self.net.net.encoder.stages, strides):
            x = stage(x)
            if stride in self.feature_strides:
                out[FEATURE_KEY.format(stride)] = x.float()
            if stride >= max(self.feature_strides):
                break
        return out

    def state_dict(self, *args, **kwargs) -> dict:  # frozen: nothing to save with the run
        return {}

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        if state:
            raise ValueError("nnunet_like teacher: unexpected saved state; it is frozen and keeps none")
