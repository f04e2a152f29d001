"""Shared building blocks for interaction modules (dict of task features in, same dict out).

Every interaction module validates its runtime ``channels`` the same way, checks the
feature dict it receives, and builds norms / width projections with the same helpers, so
the error messages and conventions are identical across modules:

- ``channels`` maps task (branch) name -> channel count at that decoder stage. Task names
  become ``nn.ModuleDict`` keys, so they must be non-empty and contain no ``.``.
- With a single key there is nothing to interact with: every module is then an exact no-op
  with no parameters (hard parameter sharing, one branch for all tasks).
- Residual updates are added in the dtype of the input feature, so outputs keep the input
  dtype under autocast.
- Residual modules take ``identity_init`` (default True): the update is multiplied by a
  per-channel learnable scale initialised to 0 (``ResidualScale``; ReZero, Bachlechner et al.
  2021; DANet's γ), so "+module" starts as exactly the model without it and only departs from
  it as the scale learns. ``identity_init=False`` gives the unscaled update of the source paper.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn

from mtdense.errors import ConfigError
from mtdense.models.blocks import make_norm


def check_channels(channels: Mapping[str, int], module: str) -> dict[str, int]:
    """Validate runtime ``channels`` ({task: width}) and return a plain dict (order kept)."""
    if not isinstance(channels, Mapping) or not channels:
        raise ConfigError(f"{module}: channels must be a non-empty mapping task -> width, got {channels!r}")
    out: dict[str, int] = {}
    for name, width in channels.items():
        if not isinstance(name, str) or not name or "." in name:
            raise ConfigError(f"{module}: task name {name!r} must be a non-empty string without '.'; rename the task")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ConfigError(f"{module}: channels[{name!r}] = {width!r} must be a positive int")
        out[name] = width
    return out


def check_choice(value: object, allowed: Iterable[object], key: str, module: str) -> None:
    """Raise ConfigError if ``value`` is not one of ``allowed`` (names the option)."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{value!r} is not supported by {module}; choose one of {', '.join(map(repr, allowed))}", key=key)


def check_positive_int(value: object, key: str, module: str) -> None:
    """Raise ConfigError unless ``value`` is an int >= 1 (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{value!r} must be a positive int", key=key)


def check_feats(feats: Mapping[str, torch.Tensor], channels: Mapping[str, int], module: str) -> None:
    """Check the forward input: same task keys as at construction, B×C_t×H×W, one B/H/W.

    Shapes are symbolic while tracing for ONNX export, so only the keys are checked then.
    """
    if set(feats) != set(channels):
        raise ValueError(
            f"{module}: got feature keys {sorted(feats)} but the module was built for {sorted(channels)}; "
            "build it with the channels of this decoder stage"
        )
    if torch.jit.is_tracing():
        return
    ref_name = next(iter(feats))
    ref = feats[ref_name]
    for name, x in feats.items():
        if x.dim() != 4 or x.shape[1] != channels[name]:
            raise ValueError(
                f"{module}: feats[{name!r}] has shape {tuple(x.shape)}; expected B×{channels[name]}×H×W"
            )
        if x.shape[0] != ref.shape[0] or x.shape[2:] != ref.shape[2:]:
            raise ValueError(
                f"{module}: feats[{name!r}] has shape {tuple(x.shape)} but feats[{ref_name!r}] has "
                f"{tuple(ref.shape)}; all branches must share batch and spatial size (resize before the interaction)"
            )


def norm_layer(kind: str, width: int) -> nn.Module:
    """An interaction module's norm layer: ``make_norm`` with up to 32 groups (Wu & He 2018)."""
    return make_norm(kind, width, max_groups=32)


def projection(in_width: int, out_width: int) -> nn.Module:
    """1×1 convolution (no bias) mapping ``in_width`` to ``out_width``; Identity if they match."""
    if in_width == out_width:
        return nn.Identity()
    return nn.Conv2d(in_width, out_width, kernel_size=1, bias=False)


def pair_modules(tasks: list[str], make) -> nn.ModuleDict:
    """``modules[target][source] = make(target, source)`` for every ordered pair target != source."""
    return nn.ModuleDict(
        {t: nn.ModuleDict({s: make(t, s) for s in tasks if s != t}) for t in tasks}
    )


class ResidualScale(nn.Module):
    """Per-channel scale γ_t (1×C_t×1×1) of each branch's residual update, initialised to 0.

    ``ResidualScale(channels, enabled=False)`` has no parameters and returns updates unchanged.
    """

    def __init__(self, channels: Mapping[str, int], enabled: bool = True):
        super().__init__()
        self.enabled = bool(enabled)
        if self.enabled:
            self.gammas = nn.ParameterDict({t: nn.Parameter(torch.zeros(1, c, 1, 1)) for t, c in channels.items()})

    def forward(self, task: str, update: torch.Tensor) -> torch.Tensor:
        return self.gammas[task].to(update.dtype) * update if self.enabled else update
