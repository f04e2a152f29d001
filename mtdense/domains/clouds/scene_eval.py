"""Evaluate cloud-mask predictors the 38-Cloud way, and measure exported ONNX models.

``scene_scores``: every scene of a 38-Cloud *test layout* is predicted patch by patch, the
patches are reassembled (``cloud38.assemble_scene``) and scored against ``Entire_scene_gts``
with ``CloudMetrics`` (one "chip" = one scene; nodata pixels excluded). A predictor maps raw DN
(1×4×h×w uint16, the dataset's band order) to a uint8 mask (0 clear, 1 cloud, 255 nodata) —
the contract of the on-board ONNX graph, so PyTorch modules, onnxruntime sessions (fp32 or
int8) and the threshold rule are scored identically.

``session_cost`` runs in a fresh subprocess (``python -m mtdense.domains.clouds.scene_eval``):
onnxruntime with 1 intra-op thread, median latency of a 1×4×S×S chip, and the session's peak
memory = the process's resident high-water mark after loading and running minus the resident size
before creating the session (``VmHWM`` / ``VmRSS`` of ``/proc/self/status``). Not
``getrusage().ru_maxrss``: Linux carries it across ``fork`` + ``exec``, so a child of a large
process reports its parent's resident size. With one intra-op thread
onnxruntime runs the graph on the calling thread, so the latency is that thread's CPU time
(``time.thread_time``): the time on an idle core, unchanged when other jobs share the machine.
The process CPU time and the wall time of the same runs are returned too; process ≈ thread CPU
shows that no other thread worked, and on an idle machine wall ≈ thread CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mtdense.domains.clouds.cloud38 import Cloud38Dataset, assemble_scene, read_patch, read_scene_gt
from mtdense.domains.clouds.metrics import CloudMetrics
from mtdense.domains.clouds.sensors import sensor as find_sensor
from mtdense.domains.clouds.threshold_baseline import threshold_mask
from mtdense.errors import DataError

Predictor = Callable[[np.ndarray], np.ndarray]


def scene_scores(predict: Predictor, test_root: str | Path) -> dict[str, float]:
    ds = Cloud38Dataset(str(test_root))
    by_scene: dict[str, dict] = defaultdict(dict)
    for name in ds.names:
        info = ds.parsed[name]
        dn = read_patch(ds.root, name, ds.prefix)["dn"]
        by_scene[info["scene"]][(info["row"], info["col"])] = predict(dn[None])[0]
    metric = CloudMetrics()
    for scene, patches in sorted(by_scene.items()):
        gt = read_scene_gt(ds.root / "Entire_scene_gts", scene)
        mask = assemble_scene(patches, gt.shape)
        valid = mask != 255
        metric.update(torch.from_numpy(np.where(valid, mask, 0))[None], torch.from_numpy(gt)[None],
                      torch.from_numpy(valid)[None])
    return {k: float(v) for k, v in metric.compute().items()}


def torch_predictor(module: torch.nn.Module) -> Predictor:
    def run(dn: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(dn.astype(np.float32))).numpy()
    return run


def onnx_predictor(path: str | Path) -> Predictor:
    from mtdense.domains.clouds.onboard_export import run_mask, session

    sess = session(path)
    return lambda dn: run_mask(sess, dn)


def threshold_predictor(sensor: str, channel_names: list[str]) -> Predictor:
    s = find_sensor(sensor)

    def run(dn: np.ndarray) -> np.ndarray:
        nodata = (dn == 0).all(1)
        mask = threshold_mask(torch.from_numpy(s.reflectance(dn)), channel_names).numpy().astype(np.uint8)
        return np.where(nodata, 255, mask).astype(np.uint8)
    return run


def _status_kb(field: str) -> int:
    """``field`` (VmRSS, VmHWM) of this process's /proc/self/status in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise DataError(f"/proc/self/status has no {field}: session memory needs Linux procfs")


def _measure(path: str, size: int, runs: int) -> dict:
    import time

    import onnxruntime  # noqa: F401 — imported before the baseline, so only the session is counted

    from mtdense.domains.clouds.onboard_export import run_mask, session

    rng = np.random.default_rng(0)
    dn = rng.integers(1, 20000, (1, 4, size, size)).astype(np.uint16)
    before = _status_kb("VmRSS")
    sess = session(path, threads=1)
    run_mask(sess, dn)  # warm-up (allocations, kernels)
    clocks = {"thread": time.thread_time, "process": time.process_time, "wall": time.perf_counter}
    times: dict[str, list[float]] = {k: [] for k in clocks}
    for _ in range(runs):
        tic = {k: c() for k, c in clocks.items()}
        run_mask(sess, dn)
        for k, c in clocks.items():
            times[k].append(c() - tic[k])
    peak = _status_kb("VmHWM")
    median = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    return {"latency_ms": median["thread"], "clock": "thread CPU", "process_cpu_ms": median["process"],
            "wall_ms": median["wall"], "peak_mb": (peak - before) / 1024}


def session_cost(path: str | Path, size: int = 512, runs: int = 5) -> dict:
    """Latency (ms of thread CPU time, median; also process CPU and wall) and session peak memory
    (MB) of ``path`` on a size×size chip, 1 thread."""
    out = subprocess.run([sys.executable, "-m", "mtdense.domains.clouds.scene_eval", str(path), str(size), str(runs)],
                         capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
