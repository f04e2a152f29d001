"""``mtdense.dask_client.map_in_order``: results in item order whatever finishes first, and never
more than ``ahead`` tasks per worker in flight (what bounds the memory of workers and writer)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mtdense.dask_client import dask_client, map_in_order

pytest.importorskip("dask.distributed")


def slow_square(item: tuple[int, str]) -> int:
    """Record the start of ``item`` in the shared log; later items finish sooner."""
    k, log = item
    with open(log, "a") as f:
        f.write(f"start {k}\n")
    time.sleep(0.05 * (5 - k % 5))
    return k * k


def test_results_in_order_with_a_bounded_window(tmp_path):
    log = tmp_path / "log"
    items = [(k, str(log)) for k in range(10)]
    results = []
    for value in map_in_order(slow_square, items, workers=2, processes=False, ahead=2, log=lambda m: None):
        results.append(value)
        with open(log, "a") as f:
            f.write(f"consumed {len(results) - 1}\n")
    assert results == [k * k for k in range(10)]
    consumed = 0
    for line in Path(log).read_text().splitlines():
        event, k = line.split()
        if event == "consumed":
            consumed += 1
        else:                                   # item k starts only once k - 4 results were taken
            assert int(k) - consumed < 2 * 2, Path(log).read_text()


def test_inline_runs_in_this_process():
    assert list(map_in_order(lambda x: x + 1, [1, 2, 3], scheduler="inline")) == [2, 3, 4]
    assert list(map_in_order(lambda x: x, [], scheduler=None)) == []


def _page_faults_of_tensor_churn() -> int:
    """Minor page faults of this thread while 200 tensors of 4 MiB are made and freed."""
    import resource

    import torch

    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(200):
        torch.ones(2**20).sum()
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


@pytest.mark.slow
def test_local_workers_reuse_freed_memory_instead_of_faulting_it_in_again():
    # before: Dask's nanny default MALLOC_TRIM_THRESHOLD_=65536 disabled glibc's dynamic mmap
    # threshold, so every tensor > 128 KiB was a fresh mmap: ~1000 faults per 4 MiB tensor here,
    # and bench training steps took twice their time (40 % of it system time)
    with dask_client(workers=1, processes=True, log=lambda m: None) as client:
        faults = client.submit(_page_faults_of_tensor_churn, pure=False).result()
    assert faults < 20_000
