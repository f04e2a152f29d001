"""Whole-array inference with overlapping windows and Gaussian blending (nnU-Net style).

Isensee et al. 2021 (nnU-Net, Nat. Methods 18:203): predict overlapping windows, weight each
window's output by a Gaussian centred on the window (σ = ``sigma_scale`` × window size, 1/8 in
nnU-Net) so that the less reliable window borders count less, and divide the weighted sum by the
summed weights; optionally average over mirrored inputs (test-time augmentation).

Generic: tensors only, no geography. ``forward`` maps a B×C×h×w batch of windows (on
``device``) to a tensor or ``{name: tensor B×K×h×w}`` of raw outputs; blending happens on the raw
outputs, so post-processing (argmax, activation, gating) is applied afterwards to the blended
result. Memory-bounded: the whole array stays where it is (normally CPU memory); only
``batch_size`` windows at a time go to ``device``, and the blended sums are kept next to the
input. Written here rather than taken from MONAI (``monai.inferers.sliding_window_inference``
does the same but takes ~30 s to import on the project machines) or nnU-Net (tied to its own
predictor class).
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Mapping

import torch

from mtdense.errors import ConfigError

Outputs = torch.Tensor | Mapping[str, torch.Tensor]
FLIPS = ((), (-1,), (-2,), (-2, -1))  # the mirror axes of nnU-Net's 2-D test-time augmentation


def gaussian_weights(size: tuple[int, int], sigma_scale: float = 0.125) -> torch.Tensor:
    """An h×w Gaussian with maximum 1 at the window centre, σ = ``sigma_scale`` × size per axis;
    values below the smallest positive float32 weight are raised to it (as nnU-Net does) so that
    no pixel ends with zero total weight."""
    axes = []
    for n in size:
        centre, sigma = (n - 1) / 2.0, max(n * sigma_scale, 1e-6)
        axes.append(torch.exp(-0.5 * ((torch.arange(n, dtype=torch.float64) - centre) / sigma) ** 2))
    w = (axes[0][:, None] * axes[1][None, :]).float()
    w = w / w.max()
    positive = w[w > 0]
    return w.clamp(min=float(positive.min()) if positive.numel() else 1.0)


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Evenly spaced window starts covering ``length`` with neighbours overlapping by at least
    ``overlap`` × ``window`` (nnU-Net's step computation); one start when the window covers it."""
    if length <= window:
        return [0]
    step = window * (1.0 - overlap)
    n = math.ceil((length - window) / step) + 1
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


def _as_dict(out: Outputs) -> dict[str, torch.Tensor]:
    return dict(out) if isinstance(out, Mapping) else {"": out}


def _forward_tta(forward: Callable[[torch.Tensor], Outputs], x: torch.Tensor, flip: bool) -> dict[str, torch.Tensor]:
    if not flip:
        return _as_dict(forward(x))
    total: dict[str, torch.Tensor] = {}
    for dims in FLIPS:
        out = _as_dict(forward(torch.flip(x, dims) if dims else x))
        for name, value in out.items():
            value = (torch.flip(value, dims) if dims else value).float()
            total[name] = total[name] + value if name in total else value
    return {name: value / len(FLIPS) for name, value in total.items()}


def _windows(batch: int, ys: list[int], xs: list[int]) -> Iterator[tuple[int, int, int]]:
    for b in range(batch):
        for y in ys:
            for x in xs:
                yield b, y, x


@torch.no_grad()
def sliding_window(forward: Callable[[torch.Tensor], Outputs], image: torch.Tensor, window: int | tuple[int, int],
                   overlap: float = 0.5, batch_size: int = 4, device: str | torch.device | None = None,
                   blend: str = "gaussian", sigma_scale: float = 0.125, flip_tta: bool = False,
                   pad_value: float | torch.Tensor = 0.0) -> Outputs:
    """Blended outputs of ``forward`` over a C×H×W or B×C×H×W ``image``.

    ``window``: window size (int or (h, w)); ``overlap`` ∈ [0, 1): minimum overlap fraction of
    neighbouring windows; ``blend``: ``"gaussian"`` or ``"constant"`` (plain averaging);
    ``device``: where ``forward`` runs (default: the image's device); ``pad_value``: a scalar or
    one value per channel, used to pad an image smaller than the window (then cropped again).
    Returns float32 outputs like ``forward``'s (B×K×H×W, no batch axis for a C×H×W image) on the
    image's device.
    """
    wh, ww = (window, window) if isinstance(window, int) else tuple(window)
    if wh < 1 or ww < 1:
        raise ConfigError(f"window must be positive, got {wh}×{ww}", key="window")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}", key="overlap")
    if blend not in ("gaussian", "constant"):
        raise ConfigError(f"blend {blend!r} is not one of gaussian, constant", key="blend")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}", key="batch_size")
    single = image.ndim == 3
    image = image[None] if single else image
    if image.ndim != 4:
        raise ConfigError(f"image must be C×H×W or B×C×H×W, got shape {tuple(image.shape)}", key="image")
    device = torch.device(device) if device is not None else image.device
    B, C, H, W = image.shape
    ph, pw = max(wh - H, 0), max(ww - W, 0)
    if ph or pw:
        fill = torch.as_tensor(pad_value, dtype=image.dtype).reshape(-1)
        padded = torch.empty(B, C, H + ph, W + pw, dtype=image.dtype, device=image.device)
        padded[:] = fill.to(image.device).view(1, -1, 1, 1) if fill.numel() > 1 else fill.to(image.device)
        padded[:, :, :H, :W] = image
        image = padded
    Hp, Wp = image.shape[-2:]
    weight = (gaussian_weights((wh, ww), sigma_scale) if blend == "gaussian" else torch.ones(wh, ww))
    weight_dev = weight.to(device)
    total_weight = torch.zeros(Hp, Wp, dtype=torch.float32, device=image.device)
    ys, xs = window_starts(Hp, wh, overlap), window_starts(Wp, ww, overlap)
    for y in ys:
        for x in xs:
            total_weight[y:y + wh, x:x + ww] += weight.to(image.device)
    sums: dict[str, torch.Tensor] = {}
    positions = list(_windows(B, ys, xs))
    for start in range(0, len(positions), batch_size):
        chunk = positions[start:start + batch_size]
        crops = torch.stack([image[b, :, y:y + wh, x:x + ww] for b, y, x in chunk]).to(device, torch.float32)
        out = _forward_tta(forward, crops, flip_tta)
        for name, value in out.items():
            if value.ndim != 4 or value.shape[-2:] != (wh, ww):
                raise ConfigError(f"forward output {name or 'tensor'} has shape {tuple(value.shape)}; expected "
                                  f"B×K×{wh}×{ww} at the window size", key="forward")
            if name not in sums:
                sums[name] = torch.zeros(B, value.shape[1], Hp, Wp, dtype=torch.float32, device=image.device)
            weighted = (value.float() * weight_dev).to(image.device)
            for i, (b, y, x) in enumerate(chunk):
                sums[name][b, :, y:y + wh, x:x + ww] += weighted[i]
    result = {name: (s / total_weight)[:, :, :H, :W] for name, s in sums.items()}
    if single:
        result = {name: value[0] for name, value in result.items()}
    return result[""] if set(result) == {""} else result


def pad_value_for(normalization: Mapping[str, list[float]] | None, channels: int) -> torch.Tensor:
    """Per-channel raw padding that becomes 0 after ``(raw - mean) / std`` (nnU-Net pads with 0 in
    normalised space); zeros when there is no normalisation."""
    if normalization is None:
        return torch.zeros(channels)
    return torch.tensor(normalization["mean"], dtype=torch.float32)


def blending_overhead(image_shape: tuple[int, int], window: tuple[int, int], overlap: float) -> float:
    """Number of window forwards with ``overlap`` divided by plain tiling (``overlap = 0``)."""
    count = lambda ov: len(window_starts(max(image_shape[0], window[0]), window[0], ov)) * len(
        window_starts(max(image_shape[1], window[1]), window[1], ov))
    return count(overlap) / count(0.0)


__all__ = ["FLIPS", "blending_overhead", "gaussian_weights", "pad_value_for", "sliding_window", "window_starts"]
