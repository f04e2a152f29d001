"""The per-scan work of ``prepare-precip``: one AHI scan + its IMERG half hour -> tiles.

Runs on a Dask worker (``scan_tiles(scene, options)``, picklable arguments and result), so its
peak memory is that of ONE scan, whatever the number of scans. Two AHI inputs:

* JAXA P-Tree NetCDF (regular lat/lon grid): read one channel at a time; ``ahi_to_label``
  block-means AHI onto the IMERG cells (``regrid.block_mean``), ``label_to_ahi`` copies each
  label cell to the AHI pixels it contains (``regrid.nearest``);
* Himawari Standard Data segments of one observation time (native geostationary grid, full
  disk or any consecutive segments; every band must cover the same lines): navigated with the
  HSD header's projection, read one band at a time, and regridded with pyresample
  (``geostationary_regrid``: bucket averaging onto the IMERG cells, or the containing cell's
  label for each pixel). ``mask_space`` (default on) sets pixels off the earth disk to NaN
  (the reader returns them as brightness temperatures), so they never enter tiles or statistics.

Labels: the IMERG variable ``label_variable`` (default: the calibrated precipitation), with
label pixels whose ``precipitationQualityIndex`` is below ``min_quality`` (if given) set to
NaN (invalid). Tiles of ``tile_size`` (step ``stride``) are kept when at least
``min_valid_fraction`` of their pixels have a finite label and finite values in every channel;
other pixels of a kept tile get label NaN.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtdense.domains.precip.imerg import read_imerg
from mtdense.domains.precip.ptree import band_channel_name, iter_ptree_channels
from mtdense.domains.precip.regrid import block_mean, cell_index, nearest
from mtdense.errors import DataError

QUALITY_VARIABLE = "precipitationQualityIndex"


@dataclass(frozen=True)
class Scene:
    """One AHI scan (a P-Tree file, or the HSD ``segments`` of one time) and its IMERG granule."""

    ahi: Path                                   # the P-Tree file, or the first HSD segment
    imerg: Path
    scan_time: dt.datetime
    granule_start: dt.datetime
    segments: tuple[Path, ...] = ()             # every HSD segment file of the scan (empty for P-Tree)

    @property
    def name(self) -> str:
        """The P-Tree file name, or ``HS_H09_YYYYMMDD_hhmm`` for an HSD scan."""
        from mtdense.domains.precip.scene_input import hsd_scan_name

        return hsd_scan_name(self.ahi) if self.segments else self.ahi.name


@dataclass(frozen=True)
class ScanOptions:
    channels: tuple                             # band numbers, then names of extra P-Tree variables
    regrid: str = "ahi_to_label"
    tile_size: int = 64
    stride: int = 64
    min_valid_fraction: float = 0.5
    label_variable: str | None = None
    min_quality: float | None = None
    mask_space: bool = True


@dataclass
class ScanTiles:
    """The kept tiles of one scan (N may be 0)."""

    image: np.ndarray                           # (N, C, T, T) float32, NaN = missing
    rain: np.ndarray                            # (N, T, T) float32, NaN = invalid
    origin: np.ndarray                          # (N, 2) int32 row, column on the output grid
    latlon: np.ndarray                          # (N, 2) float64 of the origin pixel
    synthetic: bool = False
    all_missing: bool = False                   # the granule is all fill


def _label(scene: Scene, options: ScanOptions, lat_range, lon_range):
    granule = read_imerg(scene.imerg, options.label_variable, lat_range=lat_range, lon_range=lon_range)
    if granule.start_time != scene.granule_start:
        raise DataError(f"{scene.imerg}: time {granule.start_time} in the file differs from its name "
                        f"({scene.granule_start})")
    if options.min_quality is not None:
        quality = read_imerg(scene.imerg, QUALITY_VARIABLE, lat_range=lat_range, lon_range=lon_range).rain_rate
        granule.rain_rate[~(quality >= options.min_quality)] = np.nan
    return granule


def _check_time(scene: Scene, start: dt.datetime, path) -> None:
    if abs(start - scene.scan_time) >= dt.timedelta(minutes=10):
        raise DataError(f"{path}: start_time {start} does not match the file name's {scene.scan_time}")


def _ptree_arrays(scene: Scene, options: ScanOptions):
    """Image (C, H, W), label, output lat/lon (1-D) of a P-Tree scan, one channel at a time."""
    planes, channels = [], options.channels
    bands = [c for c in channels if isinstance(c, int)]
    for scan in iter_ptree_channels(scene.ahi, bands, [c for c in channels if not isinstance(c, int)]):
        if not planes:
            _check_time(scene, scan.start_time, scene.ahi)
            lat, lon = scan.lat, scan.lon
            pad_lat, pad_lon = abs(lat[1] - lat[0]) / 2 + 0.1, abs(lon[1] - lon[0]) / 2 + 0.1
            granule = _label(scene, options, (lat.min() - pad_lat, lat.max() + pad_lat),
                             (lon.min() - pad_lon, lon.max() + pad_lon))
            rows, cols = cell_index(lat, granule.lat), cell_index(lon, granule.lon, periodic=True)
            if (rows < 0).all() or (cols < 0).all():
                raise DataError(f"{scene.imerg}: does not cover the area of {scene.ahi.name}")
            if options.regrid == "ahi_to_label":             # label cells that contain AHI pixels
                r0, r1 = rows[rows >= 0].min(), rows.max() + 1
                c0, c1 = cols[cols >= 0].min(), cols.max() + 1
                out_lat, out_lon, label = granule.lat[r0:r1], granule.lon[c0:c1], granule.rain_rate[r0:r1, c0:c1]
                rows, cols = np.where(rows >= 0, rows - r0, -1), np.where(cols >= 0, cols - c0, -1)
            else:
                out_lat, out_lon, label = lat, lon, nearest(granule.rain_rate, rows, cols)
        planes.append(block_mean(scan.bt, rows, cols, label.shape)[0] if options.regrid == "ahi_to_label"
                      else scan.bt[0])
    return np.stack(planes), label, out_lat, out_lon, scan.synthetic or granule.synthetic, granule.all_missing


def _hsd_arrays(scene: Scene, options: ScanOptions):
    """Image (C, H, W), label, output lat/lon of an HSD scan (1-D on the label grid, 2-D native)."""
    from mtdense.domains.precip.geostationary_regrid import BucketAverage, label_window, nearest_label
    from mtdense.domains.precip.scene_input import hsd_navigation, iter_hsd_channels

    extra = [c for c in options.channels if not isinstance(c, int)]
    if extra:
        raise DataError(f"{scene.ahi}: HSD scans hold AHI bands only, not {', '.join(extra)}; drop the extra channels")
    planes = []
    for _, image in iter_hsd_channels(scene.segments, [band_channel_name(b) for b in options.channels]):
        if not planes:
            _check_time(scene, image.start_time, scene.ahi)
            lat, lon = hsd_navigation(image)
            if not np.isfinite(lat).any():
                raise DataError(f"{scene.ahi}: no pixel of the scan is on the earth disk; nothing to pair with IMERG")
            sub_lon = image.projection["sub_lon"]
            granule = _label(scene, options, *label_window(lat, lon, sub_lon))
            if options.regrid == "ahi_to_label":
                average = BucketAverage(lat, lon, granule.lat, granule.lon, sub_lon)
                covered = np.isfinite(average(np.ones(lat.shape, np.float32)))
                rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
                window = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
                out_lat, out_lon, label = granule.lat[window[0]], granule.lon[window[1]], granule.rain_rate[window]
            else:
                out_lat, out_lon = lat, lon
                label = nearest_label(granule.rain_rate, granule.lat, granule.lon, lat, lon)
        bt = image.bt
        if options.mask_space:
            bt[~np.isfinite(lat)] = np.nan
        planes.append(average(bt)[window] if options.regrid == "ahi_to_label" else bt)
    return np.stack(planes), label, out_lat, out_lon, granule.synthetic, granule.all_missing


def _tiles(image, label, tile, stride, min_valid_fraction):
    """Tiles (image, label with NaN where invalid, origin) meeting the valid fraction."""
    h, w = label.shape
    for r in range(0, h - tile + 1, stride):
        for c in range(0, w - tile + 1, stride):
            img = image[:, r:r + tile, c:c + tile]
            lab = label[r:r + tile, c:c + tile].copy()
            valid = np.isfinite(lab) & np.isfinite(img).all(axis=0)
            if valid.mean() >= min_valid_fraction:
                lab[~valid] = np.nan
                yield img, lab, (r, c)


def scan_tiles(scene: Scene, options: ScanOptions) -> ScanTiles:
    """The kept tiles of one scan (see the module docstring)."""
    arrays = _hsd_arrays if scene.segments else _ptree_arrays
    image, label, lat, lon, synthetic, empty = arrays(scene, options)
    t, n_ch = options.tile_size, image.shape[0]
    kept = [] if empty else list(_tiles(image, label, t, options.stride, options.min_valid_fraction))
    if lat.ndim == 1:
        latlon = [(lat[r], lon[c]) for _, _, (r, c) in kept]
    else:
        latlon = [(lat[r, c], lon[r, c]) for _, _, (r, c) in kept]
    return ScanTiles(np.stack([x[0] for x in kept]) if kept else np.zeros((0, n_ch, t, t), np.float32),
                     np.stack([x[1] for x in kept]) if kept else np.zeros((0, t, t), np.float32),
                     np.asarray([x[2] for x in kept], np.int32).reshape(-1, 2),
                     np.asarray(latlon, np.float64).reshape(-1, 2), bool(synthetic), bool(empty))
