"""`prepare-precip` on a Dask LocalCluster: the same store as in-process, a worker that dies
mid-scan corrupts nothing, and an interrupted run resumes without redoing finished scans."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

import mtdense.domains.precip.prepare as prepare_mod
from mtdense.domains.precip.prepare import prepare_precip
from mtdense.domains.precip.scan_tiles import scan_tiles
from mtdense.domains.precip.synth import synth_precip

pytest.importorskip("dask.distributed")
OPTIONS = dict(tile_size=16, extra_channels=["decoy_01"], split_by="random", val_fraction=0.2, test_fraction=0.2)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare_dask")
    synth_precip(root, n_scenes=6, height=32, width=32, seed=4)
    reference = prepare_precip(root / "ahi", root / "imerg", root / "inline.h5", scheduler="inline", **OPTIONS)
    return root, Path(reference["path"])


def contents(path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_store(a, b):
    x, y = contents(a), contents(b)
    assert x.keys() == y.keys()
    for key in x:
        np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def die_once(scene, options, victim: str, marker: str):
    """Kill the worker process the first time it meets the scan ``victim``."""
    if scene.name == victim and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return scan_tiles(scene, options)


@pytest.mark.slow
def test_worker_processes_give_the_inline_store_even_when_a_worker_dies(raw, tmp_path, monkeypatch):
    root, reference = raw
    victim = sorted(p.name for p in (root / "ahi").iterdir())[2]
    # the workers are new processes: they import this module to run die_once
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    marker = tmp_path / "died"
    monkeypatch.setattr(prepare_mod, "scan_tiles", lambda scene, options: die_once(scene, options, victim, str(marker)))
    messages = []
    prepare_precip(root / "ahi", root / "imerg", tmp_path / "dask.h5", workers=2, log=messages.append, **OPTIONS)
    assert marker.exists()                                       # a worker did die mid-scan
    assert "dask: LocalCluster with 2 single-thread worker(s)" in messages
    assert_same_store(tmp_path / "dask.h5", reference)
    assert not (tmp_path / "dask.h5.parts").exists()


def test_an_interrupted_run_resumes_and_skips_finished_scans(raw, tmp_path, monkeypatch):
    root, reference = raw
    log = tmp_path / "calls"                  # tasks are pickled (copied) on submission: count in files
    log.mkdir()

    def flaky(scene, options):
        (log / scene.name).touch()
        if len(list(log.iterdir())) == 4:
            raise OSError("disk unplugged")
        return scan_tiles(scene, options)

    monkeypatch.setattr(prepare_mod, "scan_tiles", flaky)
    out = tmp_path / "s.h5"
    with pytest.raises(OSError, match="disk unplugged"):
        prepare_precip(root / "ahi", root / "imerg", out, workers=1, processes=False, log=lambda m: None, **OPTIONS)
    assert not out.exists()                                      # the store appears only when complete
    done = sorted(p.name for p in (tmp_path / "s.h5.parts").glob("*.npz"))
    assert len(done) == 3
    for f in log.iterdir():
        f.unlink()
    messages = []
    summary = prepare_precip(root / "ahi", root / "imerg", out, workers=1, processes=False, log=messages.append,
                             **OPTIONS)
    calls = [f.name for f in log.iterdir()]
    assert len(calls) == 3 and not {f"{c}.npz" for c in calls} & set(done)
    assert summary["resumed_scans"] == 3 and any("3 of 6 scans already done" in m for m in messages)
    assert_same_store(out, reference)
    assert not (tmp_path / "s.h5.parts").exists()


def test_parts_of_other_options_are_discarded(raw, tmp_path, monkeypatch):
    root, _ = raw
    parts = tmp_path / "s.h5.parts"
    monkeypatch.setattr(prepare_mod, "scan_tiles", lambda scene, options: (_ for _ in ()).throw(OSError("stop")))
    with pytest.raises(OSError):
        prepare_precip(root / "ahi", root / "imerg", tmp_path / "s.h5", scheduler="inline", **OPTIONS)
    (parts / f"{sorted(p.name for p in (root / 'ahi').iterdir())[0]}.npz").write_bytes(b"stale")
    monkeypatch.undo()
    messages = []
    summary = prepare_precip(root / "ahi", root / "imerg", tmp_path / "s.h5", scheduler="inline", log=messages.append,
                             **{**OPTIONS, "tile_size": 8})
    assert summary["resumed_scans"] == 0 and any("other options; starting over" in m for m in messages)
