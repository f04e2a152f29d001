"""`prepare-precip` on Himawari Standard Data segments (tiny files in the exact HSD layout):
navigation, bucket averaging onto the IMERG cells (checked against an independent per-cell
mean), the antimeridian, masking of deep space, and the IMERG quality-index filter."""

from __future__ import annotations

import datetime as dt
import json

import h5py
import numpy as np
import pytest

from mtdense.domains.precip.himawari_hsd import latlon_to_lines_columns, lines_columns_to_latlon
from mtdense.domains.precip.prepare import prepare_precip
from mtdense.domains.precip.writers import imerg_name, write_imerg
from test_precip_readers import write_hsd

pytest.importorskip("pyresample")

T0 = dt.datetime(2020, 7, 1, 3, 0)                  # the time write_hsd puts in block 1
PROJ = dict(sub_lon=140.7, CFAC=20466275, LFAC=20466275, LOFF=2750.5, dist=42164.0, req=6378.137, rpol=6356.7523)
SEG, LINES, COLS = 86, 32, 80                       # segment 86 of 32 lines: full-disk lines 2721-2752 (equator)


def write_scan(folder, coff, space_bt=None, seed=0):
    """B13 and B15 segments of one scan; returns their brightness temperatures (K)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bts = {}
    for band, cwl in ((13, 10.4), (15, 12.4)):
        bt = rng.uniform(220.0, 290.0, (LINES, COLS))
        if space_bt is not None:                     # what a real file holds off the disk: a finite value
            lat, _ = navigation(coff)
            bt[~np.isfinite(lat)] = space_bt
        write_hsd(folder / f"HS_H09_{T0:%Y%m%d_%H%M}_B{band}_FLDK_R20_S{SEG}10.DAT", bt, band=band, cwl=cwl,
                  seg=SEG, nseg=10, coff=coff)
        bts[band] = bt
    return bts


def navigation(coff):
    lines = np.arange((SEG - 1) * LINES + 1, SEG * LINES + 1, dtype=np.float64)
    cols = np.arange(1, COLS + 1, dtype=np.float64)
    return lines_columns_to_latlon(lines[:, None], cols[None, :], {**PROJ, "COFF": coff})


def write_granule(folder, lon, quality=None, seed=1):
    """A global-longitude IMERG band of 0.1 deg cells over lat -1.5..1.5; returns (rain, lat, lon)."""
    lat = np.round(np.arange(-1.45, 1.5, 0.1), 2)
    rain = np.random.default_rng(seed).gamma(0.5, 2.0, (lat.size, lon.size)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    write_imerg(folder / imerg_name(T0), rain, lat, lon, T0, quality_index=quality)
    return rain, lat, lon


def expected_cells(bt, coff, cell_lat, cell_lon):
    """Independent per-cell mean: each pixel centre falls in the 0.1 deg cell whose edges contain it."""
    lat, lon = navigation(coff)
    lon = PROJ["sub_lon"] + (lon - PROJ["sub_lon"] + 180.0) % 360.0 - 180.0
    out = np.full(cell_lat.shape, np.nan)
    for k, (a, b) in enumerate(zip(cell_lat.ravel(), cell_lon.ravel())):
        inside = (np.abs(lat - a) < 0.05) & (np.abs(lon - b) < 0.05)
        if inside.any():
            out.flat[k] = bt[inside].mean()
    return out


def prepare(tmp_path, **kwargs):
    options = dict(bands=(13, 15), tile_size=4, min_valid_fraction=0.0, val_fraction=0.0, test_fraction=0.0,
                   scheduler="inline")
    summary = prepare_precip(tmp_path / "ahi", tmp_path / "imerg", tmp_path / "s.h5", **{**options, **kwargs})
    with h5py.File(summary["path"]) as f:
        return summary, {k: f[k][()] for k in ("image", "rain_rate", "tile_latlon", "stats/mean")}, dict(f.attrs), \
            [s.decode() for s in f["scenes/ahi_file"][()]]


def test_hsd_scan_is_bucket_averaged_onto_the_imerg_cells(tmp_path):
    coff = 40.5                                                  # the sub-satellite point in column 40
    bts = write_scan(tmp_path / "ahi", coff)
    imerg_lon = np.round(np.arange(-179.95, 180.0, 0.1), 2)
    rain, imerg_lat, _ = write_granule(tmp_path / "imerg", imerg_lon)
    summary, store, attrs, names = prepare(tmp_path)
    assert names == ["HS_H09_20200701_0300"] and attrs["source_format"] == "himawari-hsd+gpm-imerg"
    assert summary["tiles"]["train"] == len(store["image"]) > 0
    offsets = 0.1 * np.arange(4)
    for image, label, (lat0, lon0) in zip(store["image"], store["rain_rate"], store["tile_latlon"]):
        cell_lat, cell_lon = np.meshgrid(lat0 - offsets, lon0 + offsets, indexing="ij")
        for channel, band in enumerate((13, 15)):
            want = expected_cells(bts[band], coff, cell_lat, cell_lon)
            covered = np.isfinite(want)
            np.testing.assert_allclose(image[channel][covered], want[covered], atol=0.05)   # HSD counts: ~0.02 K
        rows = np.rint((cell_lat - imerg_lat[0]) / 0.1).astype(int)
        cols = np.rint((cell_lon - imerg_lon[0]) / 0.1).astype(int)
        np.testing.assert_array_equal(label[covered], rain[rows, cols][covered])
    assert json.loads(attrs["parameters"])["mask_space"] is True


def test_a_scan_across_the_antimeridian_stays_one_grid(tmp_path):
    _, col_180 = latlon_to_lines_columns(0.0, 180.0, {**PROJ, "COFF": 2750.5})
    coff = 2750.5 - (float(col_180) - 40.0)                      # column 40 looks at (0 N, 180 E)
    bts = write_scan(tmp_path / "ahi", coff)
    write_granule(tmp_path / "imerg", np.round(np.arange(-179.95, 180.0, 0.1), 2))
    _, store, _, _ = prepare(tmp_path)
    lons = store["tile_latlon"][:, 1]
    assert lons.min() < 180.0 < lons.max() < 181.0                          # unwrapped: 179.x ... 180.x
    lat0, lon0 = store["tile_latlon"][np.argmax(lons)]
    cell_lat, cell_lon = np.meshgrid(lat0 - 0.1 * np.arange(4), lon0 + 0.1 * np.arange(4), indexing="ij")
    want = expected_cells(bts[13], coff, cell_lat, cell_lon)
    image = store["image"][np.argmax(lons), 0]
    assert np.isfinite(want).sum() >= 4
    np.testing.assert_allclose(image[np.isfinite(want)], want[np.isfinite(want)], atol=0.05)


def test_space_pixels_are_masked_by_navigation(tmp_path):
    """Real HSD files hold finite values off the disk; on the native grid (label_to_ahi) they
    would enter tiles and the normalisation statistics unless masked (the default)."""
    coff = 2750.5                                                # columns 1-80: the western limb at ~33
    write_scan(tmp_path / "ahi", coff, space_bt=150.0)
    write_granule(tmp_path / "imerg", np.round(np.arange(-179.95, 180.0, 0.1), 2))
    space = ~np.isfinite(navigation(coff)[0])
    assert space[:, :30].all() and not space[:, 40:].any()
    _, masked, _, _ = prepare(tmp_path, regrid="label_to_ahi", tile_size=16)
    (tmp_path / "s.h5").unlink()
    _, kept, _, _ = prepare(tmp_path, regrid="label_to_ahi", tile_size=16, mask_space=False)
    assert (np.abs(kept["image"] - 150.0) < 0.5).any()                  # finite space values leak in
    assert not (np.abs(masked["image"] - 150.0) < 1.0).any()              # masked, then filled with the mean
    assert masked["stats/mean"].min() > 220.0 and kept["stats/mean"].max() < 220.0
    assert np.isnan(masked["rain_rate"][0][space[:16, :16]]).all()


def test_imerg_quality_index_filter(tmp_path):
    write_scan(tmp_path / "ahi", 40.5)
    imerg_lon = np.round(np.arange(-179.95, 180.0, 0.1), 2)
    lat = np.round(np.arange(-1.45, 1.5, 0.1), 2)
    quality = np.where(np.arange(imerg_lon.size)[None, :] % 2 == 0, 0.2, 0.9) * np.ones((lat.size, 1))
    write_granule(tmp_path / "imerg", imerg_lon, quality=quality)
    _, plain, _, _ = prepare(tmp_path)
    (tmp_path / "s.h5").unlink()
    _, filtered, _, _ = prepare(tmp_path, min_quality=0.5)
    poor = (np.rint((plain["tile_latlon"][:, 1] + 179.95) / 0.1).astype(int) % 2 == 0)   # first column's parity
    column_poor = poor[:, None] ^ (np.arange(4)[None, :] % 2 == 1)                        # (tile, column)
    finite = np.isfinite(plain["rain_rate"])
    assert np.isnan(filtered["rain_rate"][np.broadcast_to(column_poor[:, None, :], finite.shape)]).all()
    good = np.broadcast_to(~column_poor[:, None, :], finite.shape) & finite
    np.testing.assert_array_equal(filtered["rain_rate"][good], plain["rain_rate"][good])
