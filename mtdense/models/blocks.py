"""Small building blocks shared by encoders, decoders and heads (not registered plugins)."""

from __future__ import annotations

from torch import nn

from mtdense.errors import ConfigError

NORMS = ("batch", "instance", "group", "none")
ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu")


def group_count(width: int, max_groups: int) -> int:
    """Largest divisor of ``width`` that is <= ``max_groups`` (GroupNorm uses 32 in Wu & He 2018)."""
    return max(g for g in range(1, min(width, max_groups) + 1) if width % g == 0)


def make_norm(kind: str, channels: int, max_groups: int = 8) -> nn.Module:
    """The one norm factory: ``batch``, ``instance`` (nnU-Net's choice), ``group`` (at most
    ``max_groups`` groups) or ``none``. Encoders, decoders and heads use 8 groups at most;
    interaction modules use 32, the GroupNorm paper's default."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(group_count(channels, max_groups), channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"{kind!r} is not one of {', '.join(NORMS)}", key="norm")


def make_activation(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leaky_relu":  # nnU-Net uses negative slope 0.01
        return nn.LeakyReLU(0.01, inplace=True)
    if kind == "gelu":
        return nn.GELU()
    if kind == "silu":
        return nn.SiLU(inplace=True)
    raise ConfigError(f"{kind!r} is not one of {', '.join(ACTIVATIONS)}", key="activation")


class ConvNormAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str = "batch", activation: str = "relu",
                 kernel_size: int = 3, stride: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=norm == "none"),
            make_norm(norm, cout),
            make_activation(activation),
        )


class ConvBlock(nn.Sequential):
    """Two conv–norm–activation layers: the U-Net / nnU-Net stage."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", activation: str = "relu", stride: int = 1):
        super().__init__(ConvNormAct(cin, cout, norm, activation, stride=stride), ConvNormAct(cout, cout, norm, activation))
