"""AffineMix: depth-aware, occlusion-consistent mixing of two samples of a batch.

Source: Bansal, Ji, Yuan, Xu, "Semantics-Depth-Symbiosis: Deeply Coupled Semi-Supervised
Learning of Semantics and Depth", arXiv:2206.10562 (2022) names AffineMix, a segmentation
augmentation that uses predicted depth; its exact rule is not public. This is mtdense's
reconstruction (docs/seeds.md §4.2) from its ancestors: ClassMix (Olsson et al., WACV 2021:
paste part of one image and its pseudo-labels onto another) and DepthMix (Hoyer et al.,
"Three Ways to Improve Semantic Segmentation with Self-Supervised Depth Estimation", CVPR
2021, and the depth-ordered mixing of Saha et al., "Learning to Relate Depth and Semantics
for Unsupervised Domain Adaptation", CVPR 2021: keep, at each pixel, the nearer surface).

Rule, for each sample i of the batch (target) with probability ``p``:

1. its source is sample π(i) of a random permutation π of the batch;
2. the source is warped by a random affine map about the image centre, in pixel units:
   x' = s·R(θ)·x + t with s ~ U(scale), θ ~ U(±rotate) degrees, t ~ U(±translate)·(W, H);
   the image and the teacher's raw outputs are resampled bilinearly, targets and validity
   masks with nearest neighbour (class ids are never blended);
3. enlarging by s looks like moving s times closer: warped depth targets become d / s,
   disparity targets d · s, and the teacher's depth prediction d̂ / s (converted back to a
   raw output with the task's ``raw_from_prediction``);
4. mask M = (warped pixel inside the source) ∧ (d_src / s < d_tgt), with d the depth target
   where valid, else the teacher's predicted depth (``teacher``), else +inf (unknown = far,
   so sky never occludes and is always covered);
5. image, every target, every validity mask and every teacher output take the warped
   source value where M, the target's own value elsewhere (the same M for all of them).

Parameter defaults: s ∈ [0.5, 1.5] (seeds.md §4.2), θ ∈ ±10°, t ∈ ±25 % of the image size;
they are mtdense's choices, not the paper's (which are unknown). Without a teacher the
transform is a supervised augmentation on true depth and labels. All randomness is drawn
from the ``generator`` the trainer passes, so a run and its resumption mix identically.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from mtdense.domains.street.pixel_sources import check_task, depth_map, uniform
from mtdense.errors import ConfigError
from mtdense.registry import BATCH_TRANSFORMS


def affine_theta(scale: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """B×2×3 ``affine_grid`` matrices (output → source, normalised coordinates) of the forward map
    x' = s·R(θ)·x + t in centred pixel units (θ in radians, t = (t_x, t_y) in pixels)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    tu, tv = shift[:, 0], shift[:, 1]
    # source = R(θ)ᵀ (x' − t) / s, with normalised x = u / (W/2), y = v / (H/2)
    a = torch.stack([cos, sin * height / width, -sin * width / height, cos], dim=1).view(-1, 2, 2)
    b = torch.stack([(cos * tu + sin * tv) / (width / 2), (-sin * tu + cos * tv) / (height / 2)], dim=1)
    return torch.cat([a, -b[:, :, None]], dim=2) / scale.view(-1, 1, 1)


def _warp(x: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """Resample B×…×H×W ``x`` (any dtype) at ``grid``; nearest keeps values exact; border padding
    keeps bilinear samples at the edge of the pasted region free of zeros."""
    lead = x.dim() == 3
    y = F.grid_sample((x[:, None] if lead else x).double(), grid.double(), mode=mode,
                      padding_mode="border", align_corners=False)
    return (y[:, 0] if lead else y).to(x.dtype)


@BATCH_TRANSFORMS.register("affinemix")
class AffineMix:
    """Batch transform ``bt(batch, generator) -> batch`` (see module docstring).

    Args:
        tasks: the experiment's tasks (supplied by mtdense).
        depth_task: the regression task whose target orders the pixels (depth or disparity).
        teacher: name of the teacher whose predicted depth fills pixels without a depth target
            (``None``: supervised, true depth only).
        p: probability that a sample is mixed.
        scale, rotate, translate: ranges of s, θ [degrees] and t [fraction of W, H].
        depth_keys, disparity_keys: target keys rescaled as d / s and d · s.
    """

    conformance_kwargs = {"depth_task": "height", "depth_keys": ["height"]}  # the kit's regression task

    def __init__(self, tasks: Mapping | None = None, depth_task: str = "depth", teacher: str | None = None,
                 p: float = 1.0, scale: Sequence[float] = (0.5, 1.5), rotate: float = 10.0,
                 translate: float = 0.25, depth_keys: Sequence[str] = ("depth",),
                 disparity_keys: Sequence[str] = ("disparity",)):
        check_task(tasks, depth_task, "depth_task", "raw_from_prediction")
        if not 0 <= p <= 1:
            raise ConfigError(f"{p!r} must be a probability in [0, 1]", key="p")
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ConfigError(f"{scale!r} must be [low, high] with 0 < low <= high", key="scale")
        if rotate < 0 or translate < 0:
            raise ConfigError("rotate and translate must be >= 0", key="rotate" if rotate < 0 else "translate")
        self.tasks, self.depth_task, self.teacher, self.p = tasks, tasks[depth_task], teacher, float(p)
        self.scale, self.rotate, self.translate = (float(scale[0]), float(scale[1])), float(rotate), float(translate)
        self.depth_keys, self.disparity_keys = set(depth_keys), set(disparity_keys)
        if self.depth_task.target not in self.depth_keys | self.disparity_keys:
            raise ConfigError(f"the target {self.depth_task.target!r} of task {depth_task!r} is in neither "
                              "depth_keys nor disparity_keys", key="depth_task")

    def _rescale(self, key: str, value: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        s = s.view(-1, *([1] * (value.dim() - 1))).to(value.dtype)
        if key in self.depth_keys:
            return value / s
        return value * s if key in self.disparity_keys else value

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        image = batch["image"]
        n, height, width = image.shape[0], image.shape[-2], image.shape[-1]
        source = torch.randperm(n, generator=generator, device=generator.device).to(image.device)
        draws = [uniform(generator, n, lo, hi).to(image.device) for lo, hi in (
            (0.0, 1.0), self.scale, (-self.rotate, self.rotate), (-self.translate, self.translate),
            (-self.translate, self.translate))]
        mixed, s, degrees, tx, ty = draws
        shift = torch.stack([tx * width, ty * height], dim=1)
        theta = affine_theta(s, degrees * math.pi / 180, shift, height, width)
        grid = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
        inside = (grid.abs() <= 1).all(dim=-1)

        disparity = self.depth_task.target in self.disparity_keys
        order_target = depth_map(batch, self.depth_task, self.teacher, disparity).double()
        order = order_target[source]
        known = _warp(torch.isfinite(order), grid, "nearest")
        nearer = _warp(torch.nan_to_num(order, posinf=0.0), grid, "nearest") / s.view(-1, 1, 1) < order_target
        mask = (mixed < self.p).view(-1, 1, 1) & inside & known & nearer

        def paste(value: torch.Tensor, mode: str) -> torch.Tensor:
            warped = _warp(value[source], grid, mode)
            m = mask.view(n, *([1] * (value.dim() - 3)), height, width)
            return torch.where(m, warped, value)

        out = dict(batch)
        out["image"] = paste(image, "bilinear")
        out["targets"] = {k: torch.where(mask, self._rescale(k, _warp(v[source], grid, "nearest"), s), v)
                          for k, v in batch["targets"].items()}
        out["valid"] = {k: paste(v, "nearest") for k, v in batch["valid"].items()}
        if "teacher" in batch:
            out["teacher"] = {name: {task: self._paste_teacher(task, raw, source, grid, mask, s)
                                     for task, raw in outputs.items()} for name, outputs in batch["teacher"].items()}
        return out

    def _paste_teacher(self, task: str, raw: torch.Tensor, source, grid, mask, s) -> torch.Tensor:
        warped = _warp(raw[source], grid, "bilinear")
        owner = self.tasks[task] if task in self.tasks else None
        key = getattr(owner, "target", None)
        if key in self.depth_keys | self.disparity_keys and hasattr(owner, "raw_from_prediction"):
            warped = owner.raw_from_prediction(self._rescale(key, owner.predict(warped), s)).to(raw.dtype)
        return torch.where(mask[:, None], warped, raw)
