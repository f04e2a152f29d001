"""The multi-task dense model: shared encoder, per-branch decoders run stage by stage,
interaction modules between stages, and one head per task (see docs in DESIGN.md).

Config (``model:`` section)::

    backbone: {type: timm, name: resnet18}          # any BACKBONES entry
    decoder: {type: unet}                            # default decoder of every branch
    branches:                                        # optional; default: one branch per task
      shared: {tasks: [semantic, depth], decoder: {type: unet, widths: [...]}}
    interactions:                                    # between decoder stages, in order
      - {type: cbim, stages: [1, 2], kernel_size: 7}
    head: {type: conv}                               # default head; per task: heads.<task>
    heads: {rain_rate: {type: linear}}

A branch may carry several tasks (hard parameter sharing); interactions see one entry per
branch, keyed by branch name (which is the task name when branches are not given).

Every part is initialised from its own stream, seeded by (``seed``, its config path), so a
variant that adds an interaction module keeps the other parts' initial weights
(``mtdense.models.seeded_init``). ``seed`` defaults to ``torch.initial_seed()`` (the run seed
once the trainer has called ``seed_everything``).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from mtdense.models.seeded_init import seeded
from mtdense.registry import BACKBONES, DECODERS, HEADS, INTERACTIONS
from mtdense.errors import ConfigError, check_keys

MODEL_KEYS = ("in_channels", "backbone", "decoder", "branches", "interactions", "head", "heads")


class MultiTaskModel(nn.Module):
    """Backbone → per-branch decoders, stage by stage, with interaction modules in between → heads.

    ``forward(image)`` returns ``{task: raw output B×C_t×H×W}`` at the input resolution (raw =
    before the task's activation; ``Task.predict`` turns it into class ids or values). Built from
    the ``model:`` section (see the module docstring), the tasks' output channels and the number
    of input channels. Which parameters are shared is read from the autograd graph
    (``mtdense.balancing.gradients.shared_parameters``), not from the module structure.
    """

    def __init__(self, cfg: Mapping[str, Any], task_channels: Mapping[str, int], in_channels: int,
                 seed: int | None = None):
        super().__init__()
        seed = torch.initial_seed() if seed is None else int(seed)
        cfg = dict(cfg)
        try:
            self._build(cfg, task_channels, in_channels, seed)
        except ConfigError as exc:  # keys relative to ``model:``; nested builds are already absolute
            raise exc.under("model") from None

    def _build(self, cfg: dict[str, Any], task_channels: Mapping[str, int], in_channels: int, seed: int) -> None:
        check_keys(cfg, MODEL_KEYS)
        self.task_names = list(task_channels)
        with seeded(seed, "model.backbone"):
            self.backbone = BACKBONES.build(cfg.get("backbone", {"type": "timm"}), "model.backbone", in_channels=in_channels)
        enc = dict(encoder_channels=self.backbone.channels, encoder_reductions=self.backbone.reductions)

        branches = cfg.get("branches") or {t: {"tasks": [t]} for t in self.task_names}
        self.branch_of: dict[str, str] = {}
        self.decoders = nn.ModuleDict()
        for bname, bcfg in branches.items():
            check_keys(bcfg, ("tasks", "decoder"), under=f"branches.{bname}")
            for t in bcfg.get("tasks", []):
                if t not in task_channels:
                    raise ConfigError(f"{t!r} is not a task; tasks: {', '.join(self.task_names)}",
                                      key=f"branches.{bname}.tasks")
                if t in self.branch_of:
                    raise ConfigError(f"{t!r} is already in branch {self.branch_of[t]!r}", key=f"branches.{bname}.tasks")
                self.branch_of[t] = bname
            own = bool(bcfg.get("decoder"))
            dcfg = bcfg.get("decoder") if own else cfg.get("decoder") or {"type": "unet"}
            where = f"model.branches.{bname}.decoder" if own else "model.decoder"
            with seeded(seed, f"model.branches.{bname}.decoder"):
                self.decoders[bname] = DECODERS.build(dcfg, where, **enc)
        missing = [t for t in self.task_names if t not in self.branch_of]
        if missing:
            raise ConfigError(f"task(s) {', '.join(missing)} belong to no branch", key="branches")
        stages = {d.num_stages for d in self.decoders.values()}
        if len(stages) != 1:
            raise ConfigError(f"all branch decoders need the same number of stages, got {sorted(stages)}", key="branches")
        self.num_stages = stages.pop()

        # interactions[s] is the list of modules applied after decoder stage s
        self.interactions = nn.ModuleList([nn.ModuleList() for _ in range(self.num_stages)])
        for i, icfg in enumerate(cfg.get("interactions") or []):
            icfg = dict(icfg)
            where = f"model.interactions.{i}"
            stage_list = icfg.pop("stages", "last")
            stage_list = self._resolve_stages(stage_list, where)
            for s in stage_list:
                channels = {b: d.stage_channels[s] for b, d in self.decoders.items()}
                with seeded(seed, f"{where}.stage{s}"):
                    self.interactions[s].append(INTERACTIONS.build(icfg, where, channels=channels))

        self.heads = nn.ModuleDict()
        head_cfgs = cfg.get("heads") or {}
        for t in head_cfgs:
            if t not in task_channels:
                raise ConfigError(f"not a task; tasks: {', '.join(self.task_names)}", key=f"heads.{t}")
        for t, out_ch in task_channels.items():
            hcfg = head_cfgs.get(t) or cfg.get("head") or {"type": "conv"}
            width = self.decoders[self.branch_of[t]].stage_channels[-1]
            where = f"model.heads.{t}" if head_cfgs.get(t) else "model.head"
            with seeded(seed, f"model.heads.{t}"):
                self.heads[t] = HEADS.build(hcfg, where, in_channels=width, out_channels=out_ch)

    def _resolve_stages(self, stages: Any, where: str) -> list[int]:
        if stages == "all":
            return list(range(self.num_stages))
        if stages == "last":
            return [self.num_stages - 1]
        if isinstance(stages, int):
            stages = [stages]
        out = []
        for s in stages:
            s = int(s)
            if not -self.num_stages <= s < self.num_stages:
                raise ConfigError(f"{s} is out of range; this decoder has stages 0..{self.num_stages - 1}",
                                  key=f"{where}.stages")
            out.append(s % self.num_stages)
        return out

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        skips = self.backbone(image)
        feats = {b: skips[-1] for b in self.decoders}
        for s in range(self.num_stages):
            feats = {b: dec.stage(s, feats[b], skips) for b, dec in self.decoders.items()}
            for module in self.interactions[s]:
                feats = module(feats)
        size = image.shape[-2:]
        return {t: self.heads[t](feats[self.branch_of[t]], size) for t in self.task_names}
