"""The bench on a Dask LocalCluster (threads, so the test can inject failures): same results
store as inline, a failing run is reported and retried once, a twice-failing run never
corrupts the store."""

from __future__ import annotations

import json

import pytest

import mtdense.bench.runner as runner_mod
from mtdense.bench.executor import BenchFailures
from mtdense.bench.grid import load_grid
from mtdense.bench.runner import run_bench
from test_bench import write_grid

pytest.importorskip("dask.distributed")


@pytest.mark.slow
def test_local_cluster_runs_the_grid_and_retries_a_failed_run_once(tmp_path, monkeypatch):
    grid = load_grid(write_grid(tmp_path), seeds=1)
    original, calls, messages = runner_mod.execute, {}, []

    def flaky(run, profile):
        calls[run.key] = calls.get(run.key, 0) + 1
        if run.key == "shapes/equal/seed0" and calls[run.key] == 1:
            raise RuntimeError("worker lost")
        return original(run, profile)

    monkeypatch.setattr(runner_mod, "execute", flaky)
    store = run_bench(grid, tmp_path / "out", log=messages.append, workers=2, processes=False)
    records = store.read()
    assert sorted(records) == sorted(r.key for r in grid.runs(tmp_path / "out"))
    assert calls["shapes/equal/seed0"] == 2 and all(n == 1 for k, n in calls.items() if k != "shapes/equal/seed0")
    assert any("shapes/equal/seed0 failed (RuntimeError: worker lost); retrying once" in m for m in messages)
    assert any("LocalCluster with 2 single-thread worker(s)" in m for m in messages)
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["fingerprint"] for line in lines)


@pytest.mark.slow
def test_a_run_failing_twice_is_reported_and_leaves_the_store_intact(tmp_path, monkeypatch):
    grid = load_grid(write_grid(tmp_path), seeds=1)
    original, messages = runner_mod.execute, []

    def broken(run, profile):
        if run.key == "shapes/height_x3/seed0":
            raise RuntimeError("out of memory")
        return original(run, profile)

    monkeypatch.setattr(runner_mod, "execute", broken)
    with pytest.raises(BenchFailures, match="shapes/height_x3/seed0"):
        run_bench(grid, tmp_path / "out", log=messages.append, workers=1, processes=False)
    records = json.loads("[" + ",".join((tmp_path / "out" / "results.jsonl").read_text().splitlines()) + "]")
    assert sorted(r["key"] for r in records) == ["shapes/baseline:height/seed0", "shapes/baseline:semantic/seed0",
                                                 "shapes/equal/seed0"]
    assert sum("height_x3/seed0 failed" in m for m in messages) == 2
    monkeypatch.setattr(runner_mod, "execute", original)  # fixed: --resume runs only the missing one
    assert len(run_bench(grid, tmp_path / "out", resume=True, log=messages.append, workers=1,
                         processes=False).read()) == 4


def test_runs_start_in_grid_order_so_an_interrupted_bench_leaves_whole_seeds(monkeypatch):
    # before: every run was submitted at once and Dask started them in its own order (a real grid
    # ran seed 1 of two variants before seed 0 of seven), so a bench stopped at a session's end
    # left variants with different seeds and the paired tables had little to pair
    import random
    import threading
    import time as time_mod

    from mtdense.bench.executor import execute_runs

    started, lock, running, most = [], threading.Lock(), [0], [0]
    durations = random.Random(0).choices([0.05, 0.4], k=12)

    def fake(run, profile):
        with lock:
            started.append(run.key)
            running[0] += 1
            most[0] = max(most[0], running[0])
        time_mod.sleep(durations[int(run.key)])
        with lock:
            running[0] -= 1
        return {}

    monkeypatch.setattr(runner_mod, "execute", fake)
    runs = [type("R", (), {"key": str(i)})() for i in range(12)]
    done = []
    execute_runs(runs, {}, lambda run, rec: done.append(run.key), print, workers=2, processes=False)
    assert started == [str(i) for i in range(12)] and sorted(done, key=int) == started and most[0] <= 2
