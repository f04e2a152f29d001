"""benchmarks/clouds_kd.py's training-cost comparison runs on a tiny teacher and cache (it read a
per-epoch CPU metric the trainer no longer logs and crashed the benchmark after the teacher)."""

from __future__ import annotations

import importlib.util

import torch
from conftest import ROOT

from mtdense.domains.clouds.cloud38 import Cloud38Dataset
from mtdense.domains.clouds.nnunet_like import NnUNetLikeTeacher
from mtdense.domains.clouds.soft_targets import cache_soft_targets

spec = importlib.util.spec_from_file_location("clouds_kd_benchmark", ROOT / "benchmarks" / "clouds_kd.py")
clouds_kd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clouds_kd)


def test_on_the_fly_vs_cached_gives_cpu_seconds_per_step(tiny_cloud_teacher, tmp_path):
    tmp, _, folder = tiny_cloud_teacher
    cache = tmp_path / "soft.h5"
    train = Cloud38Dataset(str(tmp / "s" / "38-Cloud_training"), part="train", val_fraction=0.25)  # as the benchmark
    cache_soft_targets(NnUNetLikeTeacher(str(folder), mirror=True), train, cache)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        timing = clouds_kd.on_the_fly_vs_cached(tmp / "s", cache, [f"teachers.big.path={folder}"],
                                               batch=2)
    finally:
        torch.set_num_threads(threads)
    assert set(timing) == {"on_the_fly", "cached", "cached_with_hints"}
    assert all(0 < v < 10 for v in timing.values())
    assert timing["on_the_fly"] > timing["cached"]  # the teacher's forward is the difference
