"""Where and how tensors run: device choice, autocast precision, memory format, batch movement.

One place for what the trainer, the evaluator, inference and analysis all need, so a new
precision mode or device rule is added once.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from mtdense.errors import ConfigError


def pick_device(choice: str) -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu`` or ``cuda`` (the local rank's GPU)."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("cuda requested but no CUDA device is available; use auto or cpu", key="trainer.device")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX). Without either, oneDNN
    emulates bf16 and a bf16-autocast step is ~10× slower than fp32 (benchmarks/results/precision.md)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → the fastest mode that keeps accuracy: on CUDA ``bf16`` where supported, else
    ``fp16`` (with a GradScaler); on CPU ``bf16`` only with native bf16 (``cpu_has_native_bf16``),
    else ``fp32``. ``fp32``, ``bf16`` and ``fp16`` stay as they are."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def resolve_channels_last(channels_last: bool | str, precision: str, device: torch.device) -> bool:
    """``auto`` → on for CPU (NHWC convolutions are as fast or faster in fp32 and bf16 there:
    benchmarks/results/precision.md) and for CUDA with autocast (tensor-core layouts); an
    explicit ``True``/``False`` stays."""
    if channels_last != "auto":
        return bool(channels_last)
    return device.type == "cpu" or precision != "fp32"


def precision_context(precision: str, device: torch.device):
    """The autocast context for a resolved precision (bf16 or fp16 autocast, nothing for fp32)."""
    if precision in ("bf16", "fp16"):
        return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


def move_batch(batch: Any, device: torch.device) -> Any:
    """``batch`` (nested dicts / lists of tensors) on ``device``; other values unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_batch(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in batch):
        return type(batch)(move_batch(v, device) for v in batch)
    return batch


class Runtime:
    """Device, precision and memory format of one run; ``forward`` runs a model on an image batch.

    ``precision="auto"`` (the default of ``trainer.precision``) picks the fastest mode that keeps
    accuracy (``resolve_precision``), ``channels_last="auto"`` the memory format that goes with it
    (``resolve_channels_last``). ``grad_scaler`` is a ``torch.amp.GradScaler`` for fp16 (whose
    gradients underflow without loss scaling), ``None`` otherwise.
    """

    def __init__(self, device: torch.device | str = "auto", precision: str = "fp32",
                 channels_last: bool | str = False):
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.channels_last = resolve_channels_last(channels_last, self.precision, self.device)
        self.grad_scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    @classmethod
    def from_trainer_config(cls, t: Any) -> "Runtime":
        return cls(pick_device(t.device), t.precision, t.channels_last)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def autocast(self):
        return precision_context(self.precision, self.device)

    def batch(self, batch: Any) -> Any:
        return move_batch(batch, self.device)

    def forward(self, net: torch.nn.Module, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``net(image)`` in this runtime's memory format and precision (outputs as produced)."""
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            return net(image)
