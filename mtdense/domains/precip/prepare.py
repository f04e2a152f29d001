"""Build the precipitation tile store: pair AHI scans with IMERG half hours, regrid, tile, write HDF5.

Inputs: JAXA P-Tree gridded NetCDF scans (``NC_Hnn_YYYYMMDD_hhmm_*.nc``) and IMERG half-hourly
HDF5 granules (V06 or V07, Final/Early/Late names ``...YYYYMMDD-SHHMMSS-EHHMMSS...``). HSD
segments are readable with ``mtdense.domains.precip.himawari_hsd`` but are not accepted here yet: regrid
them to a lat/lon grid first (the geostationary navigation is in that module).

Pairing rule: an IMERG value is the mean rate over [start, start + 30 min). A scan with nominal
time t (from its file name, checked against its ``start_time``) is paired with the granule whose
interval contains t: scans at hh:00/10/20 -> granule hh:00, hh:30/40/50 -> hh:30. Several scans
in one half hour each become a scene with the same label. Scans without a granule and granules
whose precipitation is all fill are skipped and listed in the provenance.

Regridding (``precip_regrid``): ``"ahi_to_label"`` block-means AHI onto the 0.1 deg label grid;
``"label_to_ahi"`` copies labels to the AHI grid by nearest cell. Tiles of ``tile_size`` (on the
output grid, step ``stride``) are kept when at least ``min_valid_fraction`` of their pixels have a
finite label and finite values in every channel; other pixels get label NaN (invalid).

Splits are drawn per IMERG granule (scans sharing a label never straddle splits; neighbouring
and overlapping tiles of one scene stay together), seeded. Normalisation statistics (per channel
mean/std over valid pixels) use the TRAIN split only, accumulated in float64 as shifted sums
and sums of squares while streaming; remaining NaN image pixels are then set to the train mean.

Why HDF5 (h5py) rather than zarr: h5py is already a dependency (IMERG), the store is a single
file that is easy to move and checksum, and chunked (one tile per chunk) reads are fast and
random-access from several DataLoader workers when each worker opens its own handle. Memory is
bounded by one scan: scans are processed one at a time, channel by channel for the regridding.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from mtdense.domains.precip.imerg import read_imerg
from mtdense.domains.precip.regrid import block_mean, cell_index, nearest
from mtdense.domains.precip.ptree import band_channel_name, iter_ptree_channels
from mtdense.atomic_write import atomic_path
from mtdense.config import SPLITS
from mtdense.errors import ConfigError, DataError

REGRID_MODES = ("ahi_to_label", "label_to_ahi")
_PTREE_NAME = re.compile(r"NC_H\d\d_(\d{8})_(\d{4})_")
_IMERG_NAME = re.compile(r"\.(\d{8})-S(\d{6})-E\d{6}\.")
PAIRING_RULE = "scan time t paired with the IMERG granule whose [start, start+30min) contains t"


@dataclass
class Scene:
    ahi: Path
    imerg: Path
    scan_time: dt.datetime
    granule_start: dt.datetime


def scan_time_from_name(path: Path) -> dt.datetime:
    m = _PTREE_NAME.search(path.name)
    if m is None:
        raise DataError(f"{path}: not a P-Tree file name (expected NC_Hnn_YYYYMMDD_hhmm_...nc); rename or remove it")
    return dt.datetime.strptime("".join(m.groups()), "%Y%m%d%H%M")


def granule_start_from_name(path: Path) -> dt.datetime:
    m = _IMERG_NAME.search(path.name)
    if m is None:
        raise DataError(f"{path}: not an IMERG half-hourly file name (expected ...YYYYMMDD-SHHMMSS-EHHMMSS...)")
    return dt.datetime.strptime("".join(m.groups()), "%Y%m%d%H%M%S")


def half_hour_start(t: dt.datetime) -> dt.datetime:
    return t.replace(minute=30 * (t.minute // 30), second=0, microsecond=0)


def _list_files(paths_or_dir, pattern: str, what: str) -> list[Path]:
    if isinstance(paths_or_dir, (str, Path)) and Path(paths_or_dir).is_dir():
        files = sorted(Path(paths_or_dir).glob(pattern))
    elif isinstance(paths_or_dir, (str, Path)):
        raise ConfigError(f"{what}: {paths_or_dir} is not a directory; give a directory or a list of files")
    else:
        files = [Path(p) for p in paths_or_dir]
    if not files:
        raise ConfigError(f"{what}: no files matching {pattern!r} in {paths_or_dir}")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise ConfigError(f"{what}: file(s) not found: {', '.join(missing)}")
    return files


def pair_scans(ahi_files: Sequence[Path], imerg_files: Sequence[Path]) -> tuple[list[Scene], list[str]]:
    """Scenes (scan + containing IMERG granule) in time order, and names of unpaired scans."""
    granules: dict[dt.datetime, Path] = {}
    for path in imerg_files:
        start = granule_start_from_name(path)
        if start in granules:
            raise ConfigError(f"two IMERG granules start at {start:%Y-%m-%d %H:%M}: {granules[start].name} and "
                              f"{path.name}; keep one product/version per half hour")
        granules[start] = path
    scenes, unpaired = [], []
    for path in ahi_files:
        t = scan_time_from_name(path)
        start = half_hour_start(t)
        if start in granules:
            scenes.append(Scene(path, granules[start], t, start))
        else:
            unpaired.append(path.name)
    scenes.sort(key=lambda s: (s.scan_time, s.ahi.name))
    return scenes, unpaired


def assign_splits(granule_starts: Iterable[dt.datetime], val_fraction: float, test_fraction: float,
                  seed: int) -> dict[dt.datetime, str]:
    """Seeded split per granule; at least one granule each for val/test when their fraction > 0."""
    starts = sorted(set(granule_starts))
    n = len(starts)
    counts = [max(1, round(f * n)) if f > 0 else 0 for f in (val_fraction, test_fraction)]
    if n - sum(counts) < 1:
        raise ConfigError(f"prepare: {n} paired half hour(s) cannot fill train + val ({val_fraction}) + test "
                          f"({test_fraction}); add data or lower the fractions")
    order = np.random.default_rng(seed).permutation(n)
    names = ["val"] * counts[0] + ["test"] * counts[1] + ["train"] * (n - sum(counts))
    return {starts[i]: name for i, name in zip(order, names)}


class _TrainStats:
    """Per-channel mean/std from shifted float64 sums (shift = first batch mean, avoids cancellation)."""

    def __init__(self, n_channels: int):
        self.shift = None
        self.n = np.zeros(n_channels)
        self.s1 = np.zeros(n_channels)
        self.s2 = np.zeros(n_channels)

    def add(self, tiles: np.ndarray) -> None:                   # (N, C, T, T), NaN ignored
        x = np.moveaxis(tiles, 1, 0).reshape(tiles.shape[1], -1).astype(np.float64)
        if self.shift is None:
            self.shift = np.nan_to_num(np.nanmean(x, axis=1))
        d = x - self.shift[:, None]
        self.n += np.isfinite(d).sum(axis=1)
        self.s1 += np.nansum(d, axis=1)
        self.s2 += np.nansum(d * d, axis=1)

    def mean_std(self, channel_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        empty = [c for c, n in zip(channel_names, self.n) if n < 2]
        if empty:
            raise ConfigError(f"prepare: no valid train pixels for channel(s) {', '.join(empty)}; check the inputs")
        m = self.s1 / self.n
        var = np.maximum(self.s2 / self.n - m * m, 0.0)
        return self.shift + m, np.sqrt(var)


def _scene_arrays(scene: Scene, channels: list, regrid: str, label_variable: str | None):
    """Image (C, H, W) and label (H, W) of one scene on the output grid, read one channel at a time.

    ``channels``: band numbers first, then names of extra variables (the order of ``channel_names``).

    Returns image, label, output-grid lat and lon, whether an input was synthetic, and whether
    the granule is all fill.
    """
    planes = []
    bands = [c for c in channels if isinstance(c, int)]
    for scan in iter_ptree_channels(scene.ahi, bands, [c for c in channels if not isinstance(c, int)]):
        if not planes:
            if abs(scan.start_time - scene.scan_time) >= dt.timedelta(minutes=10):
                raise DataError(f"{scene.ahi}: start_time {scan.start_time} does not match the file name's "
                                  f"{scene.scan_time}")
            lat, lon = scan.lat, scan.lon
            pad_lat, pad_lon = abs(lat[1] - lat[0]) / 2 + 0.1, abs(lon[1] - lon[0]) / 2 + 0.1
            granule = read_imerg(scene.imerg, label_variable, lat_range=(lat.min() - pad_lat, lat.max() + pad_lat),
                                 lon_range=(lon.min() - pad_lon, lon.max() + pad_lon))
            if granule.start_time != scene.granule_start:
                raise DataError(f"{scene.imerg}: time {granule.start_time} in the file differs from its name "
                                  f"({scene.granule_start})")
            rows, cols = cell_index(lat, granule.lat), cell_index(lon, granule.lon, periodic=True)
            if (rows < 0).all() or (cols < 0).all():
                raise DataError(f"{scene.imerg}: does not cover the area of {scene.ahi.name}")
            if regrid == "ahi_to_label":                     # label cells that contain AHI pixels
                r0, r1 = rows[rows >= 0].min(), rows.max() + 1
                c0, c1 = cols[cols >= 0].min(), cols.max() + 1
                out_lat, out_lon, label = granule.lat[r0:r1], granule.lon[c0:c1], granule.rain_rate[r0:r1, c0:c1]
                rows, cols = np.where(rows >= 0, rows - r0, -1), np.where(cols >= 0, cols - c0, -1)
            else:
                out_lat, out_lon, label = lat, lon, nearest(granule.rain_rate, rows, cols)
        planes.append(block_mean(scan.bt, rows, cols, label.shape)[0] if regrid == "ahi_to_label" else scan.bt[0])
    return (np.stack(planes), label, out_lat, out_lon, scan.synthetic or granule.synthetic, granule.all_missing)


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


def _check_options(regrid, tile_size, stride, min_valid_fraction, bands, extra_channels):
    if regrid not in REGRID_MODES:
        raise ConfigError(f"prepare: regrid={regrid!r}; choose one of {', '.join(REGRID_MODES)}")
    if tile_size < 1 or stride < 1:
        raise ConfigError(f"prepare: tile_size={tile_size}, stride={stride}; both must be positive")
    if not 0.0 <= min_valid_fraction <= 1.0:
        raise ConfigError(f"prepare: min_valid_fraction={min_valid_fraction}; must be within [0, 1]")
    if not bands and not extra_channels:
        raise ConfigError("prepare: no channels; give bands (7-16) and/or extra_channels")


def prepare_precip(ahi_paths_or_dir, imerg_dir, out_path, tile_size: int = 64, stride: int | None = None,
                   regrid: str = "ahi_to_label", min_valid_fraction: float = 0.5,
                   bands: Sequence[int] = tuple(range(8, 17)), extra_channels: Sequence[str] = (),
                   val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                   label_variable: str | None = None) -> dict:
    """Write the HDF5 tile store ``out_path`` from P-Tree scans and IMERG granules; returns a summary."""
    import h5py

    from mtdense import __version__

    stride = stride or tile_size
    bands, extra_channels = [int(b) for b in bands], [str(c) for c in extra_channels]
    _check_options(regrid, tile_size, stride, min_valid_fraction, bands, extra_channels)
    ahi_files = _list_files(ahi_paths_or_dir, "NC_H*.nc", "AHI input")
    imerg_files = _list_files(imerg_dir, "3B-HHR*", "IMERG input")
    scenes, unpaired = pair_scans(ahi_files, imerg_files)
    if not scenes:
        raise ConfigError(f"prepare: none of the {len(ahi_files)} AHI scans falls in a half hour of the "
                          f"{len(imerg_files)} IMERG granules; check dates and folders")
    split_of = assign_splits([s.granule_start for s in scenes], val_fraction, test_fraction, seed)
    channel_names = [band_channel_name(b) for b in bands] + extra_channels
    n_ch, t = len(channel_names), tile_size
    stats, nan_tiles, all_missing, synthetic = _TrainStats(n_ch), [], [], False
    split_indices = {s: [] for s in SPLITS}
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp_path, h5py.File(tmp_path, "w") as f:
        image = f.create_dataset("image", (0, n_ch, t, t), "f4", maxshape=(None, n_ch, t, t),
                                 chunks=(1, n_ch, t, t), compression="gzip", compression_opts=1, shuffle=True)
        rain = f.create_dataset("rain_rate", (0, t, t), "f4", maxshape=(None, t, t), chunks=(1, t, t),
                                compression="gzip", compression_opts=1, shuffle=True)
        tile_scene = f.create_dataset("tile_scene", (0,), "i4", maxshape=(None,), chunks=(1024,))
        tile_origin = f.create_dataset("tile_origin", (0, 2), "i4", maxshape=(None, 2), chunks=(1024, 2))
        tile_latlon = f.create_dataset("tile_latlon", (0, 2), "f8", maxshape=(None, 2), chunks=(1024, 2))
        scene_tiles = []
        for k, scene in enumerate(scenes):
            img, lab, lat, lon, syn, empty = _scene_arrays(scene, bands + extra_channels, regrid, label_variable)
            synthetic |= syn
            if empty:
                all_missing.append(scene.imerg.name)
            kept = [] if empty else list(_tiles(img, lab, t, stride, min_valid_fraction))
            scene_tiles.append(len(kept))
            if not kept:
                continue
            n0, n1 = image.shape[0], image.shape[0] + len(kept)
            imgs = np.stack([x[0] for x in kept])
            for ds, n in ((image, n1), (rain, n1), (tile_scene, n1), (tile_origin, n1), (tile_latlon, n1)):
                ds.resize(n, axis=0)
            image[n0:n1] = imgs
            rain[n0:n1] = np.stack([x[1] for x in kept])
            tile_scene[n0:n1] = k
            tile_origin[n0:n1] = [x[2] for x in kept]
            tile_latlon[n0:n1] = [(lat[r], lon[c]) for _, _, (r, c) in kept]
            split = split_of[scene.granule_start]
            split_indices[split].extend(range(n0, n1))
            if split == "train":
                stats.add(imgs)
            nan_tiles.extend(n0 + i for i, x in enumerate(kept) if not np.isfinite(x[0]).all())
        if image.shape[0] == 0:
            raise ConfigError(f"prepare: no tile of {t}x{t} reached min_valid_fraction={min_valid_fraction}; "
                              "lower it or use smaller tiles")
        if not split_indices["train"]:
            raise ConfigError("prepare: the train split received no tiles; change seed or fractions")
        mean, std = stats.mean_std(channel_names)
        for i in nan_tiles:                                      # remaining NaN image pixels -> train mean
            x = image[i]
            image[i] = np.where(np.isfinite(x), x, mean[:, None, None].astype(np.float32))
        for s in SPLITS:
            f.create_dataset(f"split/{s}", data=np.asarray(split_indices[s], np.int64))
        f.create_dataset("stats/mean", data=mean)
        f.create_dataset("stats/std", data=std)
        f.create_dataset("stats/count", data=stats.n)
        text = h5py.string_dtype()
        f.create_dataset("scenes/ahi_file", data=[s.ahi.name for s in scenes], dtype=text)
        f.create_dataset("scenes/imerg_file", data=[s.imerg.name for s in scenes], dtype=text)
        f.create_dataset("scenes/scan_time", data=[s.scan_time.isoformat() for s in scenes], dtype=text)
        f.create_dataset("scenes/imerg_start", data=[s.granule_start.isoformat() for s in scenes], dtype=text)
        f.create_dataset("scenes/split", data=[split_of[s.granule_start] for s in scenes], dtype=text)
        f.create_dataset("scenes/n_tiles", data=np.asarray(scene_tiles, np.int32))
        parameters = dict(tile_size=tile_size, stride=stride, regrid=regrid, min_valid_fraction=min_valid_fraction,
                          bands=bands, extra_channels=extra_channels, val_fraction=val_fraction,
                          test_fraction=test_fraction, seed=seed, label_variable=label_variable)
        f.attrs.update(channel_names=channel_names, tile_size=tile_size, regrid=regrid, synthetic=synthetic,
                       mtdense_version=__version__, created_utc=dt.datetime.now(dt.timezone.utc).isoformat(),
                       parameters=json.dumps(parameters), pairing_rule=PAIRING_RULE,
                       source_format="jaxa-ptree+gpm-imerg",
                       unpaired_ahi=json.dumps(unpaired), all_missing_imerg=json.dumps(all_missing),
                       stats_split="train")
        summary = {"path": str(out_path), "tiles": {s: len(v) for s, v in split_indices.items()},
                   "scenes": len(scenes), "unpaired_ahi": unpaired, "all_missing_imerg": all_missing,
                   "channel_names": channel_names, "synthetic": synthetic}
    return summary
