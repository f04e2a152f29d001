"""nnU-Net v2's 2D experiment planning, for the built-in cloud teacher.

Follows ``ExperimentPlanner.get_plans_for_configuration`` and ``get_pool_and_conv_props`` of
nnU-Net v2 (Isensee et al., Nature Methods 2021; MIC-DKFZ/nnUNet ``nnunetv2/experiment_planning``)
for 2D images with isotropic pixel spacing (satellite chips):

1. initial patch = median image shape (nnU-Net's 2048² start, clipped to the median shape);
2. pool each axis while its feature map stays ≥ 2 × 4 px (a lone axis needs ≥ 3 × 4), halving
   with ceil; the patch is padded up to a multiple of 2^pools (``pad_shape``);
3. memory: the estimate is ``PlainConvUNet.compute_conv_feature_map_size(patch)`` (the same call
   nnU-Net makes); the reference is 85 000 000 × budget_GB / 8 for batch size 12; while
   estimate / 12 × 2 exceeds it, the axis largest relative to the median shape shrinks by one
   divisibility step and the topology is recomputed;
4. batch size = round(reference / estimate × 12), capped so one batch covers ≤ 5 % of the
   dataset's pixels, at least 2;
5. features per stage = min(``max_features``, ``base_features`` × 2^stage) — nnU-Net: 32 and 512.
   ``base_features``/``max_features`` may be lowered to fit a CPU budget (the plan says so).

The fingerprint is what nnU-Net's fingerprint extractor records that matters here: median
shape, number of images, channels, per-channel mean/std of the foreground-agnostic intensities
(for z-score normalisation, nnU-Net's default for non-CT images), and the class count.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

MIN_EDGE = 4  # UNet_featuremap_min_edge_length
REFERENCE_2D = 85_000_000  # UNet_reference_val_2d
REFERENCE_GB = 8  # UNet_reference_val_corresp_GB
REFERENCE_BATCH = 12  # UNet_reference_val_corresp_bs_2d
MIN_BATCH = 2  # UNet_min_batch_size
MAX_COVERED = 0.05  # max_dataset_covered


@dataclass
class Fingerprint:
    median_shape: tuple[int, int]
    n_images: int
    channels: int
    mean: list[float]
    std: list[float]
    num_classes: int = 2


@dataclass
class Plan:
    patch_size: tuple[int, int]
    batch_size: int
    n_stages: int
    features_per_stage: tuple[int, ...]
    strides: tuple[tuple[int, int], ...]
    kernel_sizes: tuple[tuple[int, int], ...]
    n_conv_per_stage: tuple[int, ...]
    n_conv_per_stage_decoder: tuple[int, ...]
    memory_gb: float
    estimate: float
    fingerprint: dict

    def to_dict(self) -> dict:
        return asdict(self)


def pool_topology(patch: tuple[int, int]) -> tuple[list[int], list[list[int]], tuple[int, int]]:
    """(pools per axis, strides per stage, padded patch) — ``get_pool_and_conv_props`` for equal spacing."""
    size = [float(s) for s in patch]
    pools = [0, 0]
    strides = [[1, 1]]
    while True:
        axes = [i for i in range(2) if size[i] >= 2 * MIN_EDGE]
        if not axes or (len(axes) == 1 and size[axes[0]] < 3 * MIN_EDGE):
            break
        stride = [1, 1]
        for i in axes:
            stride[i] = 2
            pools[i] += 1
            size[i] = math.ceil(size[i] / 2)
        strides.append(stride)
    divisible = [2**p for p in pools]
    padded = tuple(int(s + d - s % d - (d if s % d == 0 else 0)) for s, d in zip(patch, divisible))
    return pools, strides, padded


def _network_kwargs(strides: list[list[int]], base: int, max_features: int) -> dict:
    n = len(strides)
    return dict(n_stages=n, features_per_stage=tuple(min(max_features, base * 2**i) for i in range(n)),
                strides=tuple(tuple(s) for s in strides), kernel_sizes=tuple((3, 3) for _ in range(n)),
                n_conv_per_stage=(2,) * n, n_conv_per_stage_decoder=(2,) * (n - 1))


def estimate_memory(patch: tuple[int, int], kwargs: dict, channels: int, classes: int) -> float:
    import torch

    from mtdense.domains.clouds.teacher_network import build_plain_unet

    with torch.device("meta"):  # nnU-Net builds it with allow_init=False: only the shapes matter
        net = build_plain_unet(kwargs, channels, classes)
    return float(net.compute_conv_feature_map_size(tuple(patch)))


def plan_2d(fp: Fingerprint, memory_gb: float = 8.0, base_features: int = 32, max_features: int = 512) -> Plan:
    """The 2D plan for ``fp`` under a memory budget (nnU-Net's GPU target, in GB)."""
    median = tuple(int(s) for s in fp.median_shape)
    patch = tuple(min(2048, s) for s in median)
    pools, strides, patch = pool_topology(patch)
    kwargs = _network_kwargs(strides, base_features, max_features)
    estimate = estimate_memory(patch, kwargs, fp.channels, fp.num_classes)
    reference = REFERENCE_2D * memory_gb / REFERENCE_GB
    while estimate / REFERENCE_BATCH * 2 > reference:
        axis = int(np.argsort([p / m for p, m in zip(patch, median)])[-1])
        trial = list(patch)
        trial[axis] -= 2 ** pools[axis]
        step = 2 ** pool_topology(tuple(trial))[0][axis]
        shrunk = list(patch)
        shrunk[axis] -= step
        if shrunk[axis] < MIN_EDGE:
            break
        pools, strides, patch = pool_topology(tuple(shrunk))
        kwargs = _network_kwargs(strides, base_features, max_features)
        estimate = estimate_memory(patch, kwargs, fp.channels, fp.num_classes)
    batch = round(reference / estimate * REFERENCE_BATCH)
    covered = round(fp.n_images * float(np.prod(median)) * MAX_COVERED / float(np.prod(patch)))
    batch = max(min(batch, covered), MIN_BATCH)
    return Plan(patch_size=tuple(patch), batch_size=int(batch), memory_gb=memory_gb, estimate=estimate,
                fingerprint=asdict(fp), **kwargs)
