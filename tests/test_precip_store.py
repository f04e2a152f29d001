"""Pairing, regridding, the HDF5 tile store, the PrecipTiles dataset and the GPI baseline (synthetic data)."""

import datetime as dt
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mtdense.domains.precip.gpi_baseline import gpi_baseline_scores, gpi_rain_rate
from mtdense.domains.precip.imerg import read_imerg
from mtdense.domains.precip.prepare import assign_splits, half_hour_start, pair_scans, prepare_precip
from mtdense.domains.precip.regrid import block_mean, cell_index, nearest
from mtdense.domains.precip.tile_store import PrecipTiles
from mtdense.domains.precip.writers import imerg_name, write_imerg
from mtdense.domains.precip.synth import synth_precip
from mtdense.registry import DATASETS
from mtdense.errors import ConfigError, DataError

CHANNELS = [f"B{b:02d}" for b in range(8, 17)] + ["decoy_01"]


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synth_precip(out, n_scenes=6, height=32, width=32, seed=4, lat_north=5.0, lon_west=178.0)  # crosses 180
    return out


@pytest.fixture(scope="module")
def store(synth_dir):
    summary = prepare_precip(synth_dir / "ahi", synth_dir / "imerg", synth_dir / "store.h5", tile_size=16, scheduler="inline",
                             extra_channels=["decoy_01"], val_fraction=0.2, test_fraction=0.2, seed=0,
                             min_valid_fraction=0.5)
    return Path(summary["path"]), summary


def test_cell_index_block_mean_nearest():
    imerg_lat = np.array([0.95, 0.85])                        # descending 0.1 deg cells: (1.0, 0.9], (0.9, 0.8]
    ptree_lat = np.array([1.0, 0.95, 0.9, 0.85, 0.8])         # 0.05 deg centres; edges go south
    np.testing.assert_array_equal(cell_index(ptree_lat, imerg_lat), [0, 0, 1, 1, -1])
    imerg_lon = np.array([179.85, 179.95, -179.95])            # not monotonic in -180..180 ...
    np.testing.assert_array_equal(cell_index([179.8, 179.95, 180.0, 180.05, 180.1], np.unwrap(imerg_lon, period=360),
                                             periodic=True), [0, 1, 2, 2, -1])
    np.testing.assert_array_equal(cell_index([-179.95], [179.95, 180.05], periodic=True), [1])
    image = np.array([[[1.0, 2.0, 3.0], [4.0, np.nan, 6.0], [7.0, 8.0, 9.0]]])
    out = block_mean(image, np.array([0, 0, 1]), np.array([0, 0, -1]), (2, 1))
    np.testing.assert_allclose(out, [[[7.0 / 3], [7.5]]])      # NaN and out-of-grid pixels are skipped
    labels = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(nearest(labels, np.array([0, 1, -1]), np.array([1, 1, 0])),
                                  [[2.0, 2.0, 1.0], [4.0, 4.0, 3.0], [np.nan] * 3])


def test_pairing_rule_and_splits(tmp_path):
    for minute, start in ((0, 0), (10, 0), (20, 0), (30, 30), (40, 30), (50, 30)):
        assert half_hour_start(dt.datetime(2020, 7, 1, 3, minute)) == dt.datetime(2020, 7, 1, 3, start)
    ahi = [Path(f"NC_H09_20200701_{hhmm}_R21_FLDK.02401_02401.nc") for hhmm in ("0300", "0320", "0340", "0410")]
    imerg = [Path("3B-HHR.MS.MRG.3IMERG.20200701-S030000-E032959.0180.V07B.HDF5"),
             Path("3B-HHR.MS.MRG.3IMERG.20200701-S033000-E035959.0210.V07B.HDF5")]
    scenes, unpaired = pair_scans(ahi, imerg)
    t = lambda hh, mm: dt.datetime(2020, 7, 1, hh, mm)                       # noqa: E731
    assert [(s.scan_time, s.granule_start) for s in scenes] == [(t(3, 0), t(3, 0)), (t(3, 20), t(3, 0)),
                                                                 (t(3, 40), t(3, 30))]
    assert scenes[2].imerg == imerg[1]
    assert unpaired == ["NC_H09_20200701_0410_R21_FLDK.02401_02401.nc"]
    with pytest.raises(ConfigError, match="two IMERG granules start at 2020-07-01 03:00"):
        pair_scans(ahi, imerg + [Path("3B-HHR.MS.MRG.3IMERG.20200701-S030000-E032959.0180.V06B.HDF5")])
    starts = [dt.datetime(2020, 1, 1) + dt.timedelta(minutes=30 * i) for i in range(10)]
    split = assign_splits(starts, 0.1, 0.2, seed=3)
    assert sorted(split.values()).count("test") == 2 and list(split.values()).count("val") == 1
    assert split == assign_splits(starts, 0.1, 0.2, seed=3)
    with pytest.raises(ConfigError, match="cannot fill train"):
        assign_splits(starts[:2], 0.5, 0.5, seed=0)


def test_store_layout_counts_and_provenance(store, synth_dir):
    path, summary = store
    with h5py.File(path) as f:
        n = f["image"].shape[0]
        assert f["image"].shape[1:] == (10, 16, 16) and f["image"].chunks == (1, 10, 16, 16)
        assert f["rain_rate"].shape == (n, 16, 16)
        splits = {s: f[f"split/{s}"][:] for s in ("train", "val", "test")}
        assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(n))
        assert {s: len(v) for s, v in splits.items()} == summary["tiles"]
        n_tiles = f["scenes/n_tiles"][:]
        assert n_tiles.sum() == n and n_tiles.max() <= 4 and n >= 16          # 2x2 tiles per 32x32 scene
        scene_split = [s.decode() for s in f["scenes/split"][:]]
        assert [scene_split[k] for k in f["tile_scene"][:]] == [
            next(s for s, idx in splits.items() if i in idx) for i in range(n)]
        assert scene_split.count("val") == 2 and scene_split.count("test") == 2  # one 1-hour block each (blocked split)
        image, rain = f["image"][:], f["rain_rate"][:]
        assert np.isfinite(image).all()                                        # NaN filled after stats
        assert 0.0 < np.isnan(rain).mean() < 0.5                               # invalid labels kept as NaN
        assert (np.isfinite(rain).reshape(n, -1).mean(1) >= 0.5).all()          # min_valid_fraction
        train = image[np.sort(splits["train"])]
        np.testing.assert_allclose(f["stats/mean"][:], train.mean(axis=(0, 2, 3)), rtol=1e-5)
        np.testing.assert_allclose(f["stats/std"][:], train.std(axis=(0, 2, 3)), rtol=0.02)
        assert not np.allclose(f["stats/mean"][:], image.mean(axis=(0, 2, 3)), rtol=1e-6)   # train only
        scan_times = [dt.datetime.fromisoformat(s.decode()) for s in f["scenes/scan_time"][:]]
        starts = [dt.datetime.fromisoformat(s.decode()) for s in f["scenes/imerg_start"][:]]
        assert all(half_hour_start(t) == s for t, s in zip(scan_times, starts))
        stored_names = sorted(s.decode() for s in f["scenes/ahi_file"][:])
        assert stored_names == sorted(p.name for p in (synth_dir / "ahi").iterdir())
        attrs = f.attrs
        assert bool(attrs["synthetic"]) and attrs["mtdense_version"] and attrs["stats_split"] == "train"
        assert list(attrs["channel_names"]) == CHANNELS and attrs["regrid"] == "ahi_to_label"
        assert json.loads(attrs["parameters"])["tile_size"] == 16 and "30min" in attrs["pairing_rule"]
        lon = f["tile_latlon"][:, 1]
        assert lon.min() == pytest.approx(178.05, abs=1e-4) and lon.max() > 179.5      # unwrapped past 180
        b13 = image[:, CHANNELS.index("B13")]
        ok = np.isfinite(rain)
        assert np.corrcoef(b13[ok], rain[ok])[0, 1] < -0.2                        # AHI and labels co-located


def test_label_to_ahi_and_valid_fraction(synth_dir, tmp_path):
    summary = prepare_precip(synth_dir / "ahi", synth_dir / "imerg", tmp_path / "fine.h5", tile_size=32, scheduler="inline",
                             regrid="label_to_ahi", bands=(13, 15), min_valid_fraction=0.9, seed=1)
    with h5py.File(tmp_path / "fine.h5") as f:
        assert f["image"].shape[1:] == (2, 32, 32) and list(f.attrs["channel_names"]) == ["B13", "B15"]
        rain, image, mean = f["rain_rate"][:], f["image"][:], f["stats/mean"][:]
        assert (np.isfinite(rain).reshape(len(rain), -1).mean(1) >= 0.9).all()
        full = np.isfinite(rain).all(axis=(1, 2))
        np.testing.assert_array_equal(rain[full][:, ::2, ::2], rain[full][:, 1::2, 1::2])   # 0.1 deg label on 0.05 deg
        lost_line = np.isnan(rain).all(axis=2)                                 # synthetic scene 2 lacks one AHI line
        tile, row = np.argwhere(lost_line)[0]
        assert np.isfinite(image).all()
        np.testing.assert_allclose(image[tile, :, row], np.repeat(mean[:, None], 32, 1), rtol=1e-6)  # train mean
    assert sum(summary["tiles"].values()) <= 6 * 4
    with pytest.raises(ConfigError, match="regrid='bilinear'; choose one of ahi_to_label, label_to_ahi"):
        prepare_precip(synth_dir / "ahi", synth_dir / "imerg", tmp_path / "x.h5", regrid="bilinear", scheduler="inline")
    with pytest.raises(ConfigError, match=r"IMERG input: no files matching '3B-HHR\*'"):
        prepare_precip(synth_dir / "ahi", tmp_path, tmp_path / "y.h5", scheduler="inline")
    other_day = dt.datetime(2021, 1, 1)
    centres = np.array([0.05, 0.15])
    write_imerg(tmp_path / imerg_name(other_day), np.zeros((2, 2)), centres, centres, other_day)
    with pytest.raises(ConfigError, match="none of the 6 AHI scans falls in a half hour of the 1 IMERG granules"):
        prepare_precip(synth_dir / "ahi", tmp_path, tmp_path / "y.h5", scheduler="inline")


def test_dataset_samples_and_normalisation(store):
    path, _ = store
    ds = DATASETS.build({"type": "precip_tiles", "path": str(path), "split": "train"})
    assert isinstance(ds, PrecipTiles) and ds.channel_names == CHANNELS and ds.target_keys == ["rain_rate"]
    assert ds._file is None                                                    # lazily opened
    sample = ds[0]
    assert sample["image"].shape == (10, 16, 16) and sample["image"].dtype == torch.float32
    rain, valid = sample["targets"]["rain_rate"], sample["valid"]["rain_rate"]
    assert rain.dtype == torch.float32 and valid.dtype == torch.bool and rain.shape == valid.shape == (16, 16)
    assert (rain[~valid] == 0).all() and (rain >= 0).all()
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    assert images.mean(dim=(0, 2, 3)).abs().max() < 1e-3                       # train stats -> z-scores
    assert (images.std(dim=(0, 2, 3)) - 1).abs().max() < 0.03
    raw_train = PrecipTiles(path, split="train", normalize=False)               # normalization = train stats, kelvin
    mean, std = (np.array(ds.normalization[k])[:, None, None] for k in ("mean", "std"))
    np.testing.assert_allclose((raw_train[0]["image"].numpy() - mean) / std, sample["image"].numpy(), rtol=1e-4, atol=1e-4)
    assert 180.0 < ds.normalization["mean"][ds.channel_names.index("B13")] < 320.0 and raw_train.normalization is None
    raw = PrecipTiles(path, split="test", bands=["B13", "decoy_01"], normalize=False)
    assert raw.channel_names == ["B13", "decoy_01"] and raw[0]["image"].shape == (2, 16, 16)
    assert 180.0 < raw[0]["image"][0].min() and raw[0]["image"][0].max() < 320.0


def test_dataset_with_two_workers_matches_single_process(store):
    path, _ = store
    ds = PrecipTiles(path, split="train")
    ds[0]                                                                      # parent opened a handle before fork
    single = [b["image"] for b in DataLoader(ds, batch_size=4)]
    multi = [b["image"] for b in DataLoader(ds, batch_size=4, num_workers=2)]
    assert len(single) == len(multi)
    for a, b in zip(single, multi):
        torch.testing.assert_close(a, b)
    batch = next(iter(DataLoader(ds, batch_size=3, num_workers=2)))
    assert batch["valid"]["rain_rate"].shape == (3, 16, 16) and len(batch["meta"]["id"]) == 3


def test_dataset_errors(store, tmp_path):
    path, _ = store
    with pytest.raises(ConfigError, match=r"^path: tile store .*missing\.h5 not found"):
        PrecipTiles(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match=r"junk\.h5: not a readable HDF5 tile store"):
        PrecipTiles(tmp_path / "junk.h5")
    with pytest.raises(ConfigError, match="'training' is not a split; choose one of train, val, test"):
        PrecipTiles(path, split="training")
    with pytest.raises(ConfigError, match=r"'B07' not in .*store\.h5; stored channels: B08, B09"):
        PrecipTiles(path, bands=["B07", "B13"])


def test_gpi_baseline(store):
    assert gpi_rain_rate(torch.tensor([230.0, 235.0, 250.0])).tolist() == [3.0, 0.0, 0.0]
    path, _ = store
    scores = gpi_baseline_scores(path, split="test")
    assert 0.0 < scores["csi@0.5"] < 1.0 and 0.0 < scores["csi@2"] < 1.0
    assert scores["pod@5"] == 0.0                                              # 3 mm/h never reaches 5 mm/h
    assert scores["cc"] > 0.1 and scores["rmse"] > 0


def test_label_grid_cropped_to_ahi_coverage(tmp_path):
    """A granule larger than the AHI box (like a global IMERG file) yields exactly the covered cells."""
    written = synth_precip(tmp_path, n_scenes=1, height=16, width=16, seed=2, lat_north=-10.0, lon_west=179.2)
    original = read_imerg(written["imerg"][0])
    pad = 0.1 * np.arange(1, 4)
    lat = np.concatenate([original.lat[-1] - pad[::-1], original.lat[::-1], original.lat[0] + pad])   # ascending
    lon = np.concatenate([original.lon[0] - pad[::-1], original.lon, original.lon[-1] + pad])
    lon = (lon + 180.0) % 360.0 - 180.0                                        # IMERG convention, wraps at 180
    padded = np.zeros((22, 22), np.float32)
    padded[3:-3, 3:-3] = original.rain_rate[::-1]
    write_imerg(written["imerg"][0], padded, lat, lon, original.start_time, synthetic=True)
    summary = prepare_precip(tmp_path / "ahi", tmp_path / "imerg", tmp_path / "s.h5", tile_size=16,
                             val_fraction=0.0, test_fraction=0.0, scheduler="inline")
    assert summary["tiles"] == {"train": 1, "val": 0, "test": 0}
    with h5py.File(tmp_path / "s.h5") as f:
        np.testing.assert_array_equal(f["rain_rate"][0], original.rain_rate)
        np.testing.assert_allclose(f["tile_latlon"][0], (original.lat[0], 179.25), atol=1e-4)


def test_blocked_splits_keep_neighbouring_half_hours_together():
    """Issue 9 §2: the default split assigns whole blocks of consecutive hours, never single half hours."""
    from mtdense.domains.precip.splits import blocked_splits

    starts = [dt.datetime(2020, 7, 1) + dt.timedelta(minutes=30 * k) for k in range(96)]  # 48 h
    split_of, hours = blocked_splits(starts, 0.1, 0.2, seed=0, block_hours=4)
    assert hours == 4.0
    for k in range(0, 96, 8):  # each 4-hour block (8 half hours) lies in one split
        assert len({split_of[t] for t in starts[k:k + 8]}) == 1
    assert set(split_of.values()) == {"train", "val", "test"}
    changes = sum(split_of[a] != split_of[b] for a, b in zip(starts, starts[1:]))
    assert changes <= 11  # only at block boundaries (12 blocks)
    auto, auto_hours = blocked_splits(starts, 0.1, 0.2, seed=0)
    assert auto_hours == 3.0  # the longest of 24/12/6/3/1 h giving >= 10 blocks over 48 h


def test_prepare_precip_defaults_to_blocked_splits(synth_dir, tmp_path):
    prepare_precip(synth_dir / "ahi", synth_dir / "imerg", tmp_path / "b.h5", tile_size=16, scheduler="inline")
    with h5py.File(tmp_path / "b.h5") as f:
        params = json.loads(f.attrs["parameters"])
    assert params["split_by"] == "blocked" and params["block_hours"] == 1.0  # 6 half hours: 1-hour blocks


def test_embargo_leaves_no_train_or_val_half_hour_near_a_higher_split():
    """Issue 9 §2: adjacent blocks of different splits share a rain system; --gap-hours removes the contact."""
    from mtdense.domains.precip.splits import GAP, blocked_splits, embargo

    starts = [dt.datetime(2020, 7, 1) + dt.timedelta(minutes=30 * k) for k in range(96)]
    split_of, _ = blocked_splits(starts, 0.1, 0.2, seed=0, block_hours=4)
    gapped = embargo(split_of, 1.0)
    assert all(gapped[t] == "test" for t in starts if split_of[t] == "test")  # test keeps every half hour
    rank = {"train": 0, "val": 1, "test": 2}
    kept = [t for t in starts if gapped[t] != GAP]
    for a in kept:
        for b in kept:
            if rank[gapped[b]] > rank[gapped[a]]:
                assert abs((b - a).total_seconds()) > 3600, (a, b)
    dropped = [t for t in starts if gapped[t] == GAP]
    assert dropped and all(split_of[t] != "test" for t in dropped)
    # exactly the half hours within 1 h of a higher split go: 2 per side of every such boundary
    boundaries = sum(rank[split_of[b]] != rank[split_of[a]] for a, b in zip(starts, starts[1:]))
    assert len(dropped) == 2 * boundaries
    assert embargo(split_of, 0) == split_of
    with pytest.raises(ConfigError, match="gap_hours"):
        embargo(split_of, -1)


def test_prepare_precip_records_embargoed_scenes_without_tiles(synth_dir, tmp_path):
    prepare_precip(synth_dir / "ahi", synth_dir / "imerg", tmp_path / "g.h5", tile_size=16, scheduler="inline",
                   block_hours=0.5, gap_hours=0.5)
    with h5py.File(tmp_path / "g.h5") as f:
        params = json.loads(f.attrs["parameters"])
        splits = [s.decode() if isinstance(s, bytes) else s for s in f["scenes/split"][:]]
        n_tiles = f["scenes/n_tiles"][:]
        indexed = sum(len(f[f"split/{s}"]) for s in ("train", "val", "test"))
    assert params["gap_hours"] == 0.5 and "gap" in splits
    assert all(n == 0 for s, n in zip(splits, n_tiles) if s == "gap")
    assert indexed == int(n_tiles.sum())
