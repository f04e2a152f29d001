"""Cost of a model: parameter count, FLOPs per image, CPU inference latency.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on one batch-1 forward at the
training resolution: it counts convolutions, matrix products and attention (a multiply-add
is 2 FLOPs) and ignores element-wise operations, normalisation and pooling. Latency is the
median time of ``runs`` batch-1 forwards on the CPU after ``warmup`` untimed ones, in eval
mode under ``torch.inference_mode`` with the thread count the bench set. With one torch
thread the forward runs on the calling thread, so its CPU time (``time.thread_time``) is the
latency on an idle core and does not grow when other jobs share the machine (a bench runs
two workers on two cores); with more threads only wall time means latency, so wall time is
used and the clock is returned with the value.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _example(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters())
    return torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device)


def flops_per_image(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward of a single ``input_shape`` (C, H, W) image."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(_example(model, input_shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def cpu_latency_ms(model: nn.Module, input_shape: tuple[int, ...], runs: int = 30,
                   warmup: int = 5) -> tuple[float, str]:
    """Median milliseconds of a batch-1 forward on the CPU (the model is moved there) and the
    clock used: ``"thread CPU"`` with one torch thread, else ``"wall"``."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"cpu_latency_ms: need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    model = model.cpu()
    was_training = model.training
    model.eval()
    x = _example(model, input_shape)
    single_thread = torch.get_num_threads() == 1
    clock = time.thread_time if single_thread else time.perf_counter
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + runs):
                tic = clock()
                model(x)
                if i >= warmup:
                    times.append(clock() - tic)
    finally:
        model.train(was_training)
    return statistics.median(times) * 1000.0, "thread CPU" if single_thread else "wall"
