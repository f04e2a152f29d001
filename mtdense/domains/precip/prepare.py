"""Build the precipitation tile store: pair AHI scans with IMERG half hours, regrid, tile, write HDF5.

Inputs: AHI scans as JAXA P-Tree gridded NetCDF (``NC_Hnn_YYYYMMDD_hhmm_*.nc``) or as Himawari
Standard Data segments (``HS_Hnn_YYYYMMDD_hhmm_Bbb_FLDK_Rrr_Sssmm.DAT[.bz2]``, grouped into one
scan per observation time; full disk or any consecutive segments), and IMERG half-hourly HDF5
granules (V06 or V07, Final/Early/Late names ``...YYYYMMDD-SHHMMSS-EHHMMSS...``).

Pairing rule: an IMERG value is the mean rate over [start, start + 30 min). A scan with nominal
time t (from its file name, checked against the file's start time) is paired with the granule
whose interval contains t: scans at hh:00/10/20 -> granule hh:00, hh:30/40/50 -> hh:30. Several
scans in one half hour each become a scene with the same label. Scans without a granule and
granules whose precipitation is all fill are skipped and listed in the provenance.

The per-scan work (reading, navigation, regridding, quality filter, tiles; ``scan_tiles``)
runs on ``dask.distributed`` workers: a ``LocalCluster`` of single-thread workers by default
(``workers``), a user's cluster (``scheduler="tcp://..."``) or in this process
(``scheduler="inline"``); see ``mtdense.dask_client``. At most two scans per worker are in
flight and the results come back in scan order, so memory per worker is that of one scan and
the store is identical whatever the number of workers. Only this (client) process writes:
each finished scan to ``OUT.parts/`` (``scan_parts``; a re-run after an interruption skips
those scans), then the store ``OUT`` atomically in one pass over the parts.

Splits are assigned (default) to whole blocks of ``block_hours`` consecutive hours of IMERG
granules (``split_by="blocked"``, ``splits.blocked_splits``), or per granule at random
(``split_by="random"``); either way scans sharing a label never straddle splits and the tiles
of one scene stay together. Seeded. ``gap_hours`` > 0 leaves out the half hours that touch a
higher-ranked split (``splits.embargo``; recorded as split "gap", no tiles). Normalisation statistics (per channel mean/std over valid
pixels) use the TRAIN split only, accumulated in float64 as shifted sums and sums of squares
while streaming; remaining NaN image pixels are then set to the train mean.

Why HDF5 (h5py) rather than zarr: h5py is already a dependency (IMERG), the store is a single
file that is easy to move and checksum, and chunked (one tile per chunk) reads are fast and
random-access from several DataLoader workers when each worker opens its own handle.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from mtdense.atomic_write import atomic_path
from mtdense.config import SPLITS
from mtdense.dask_client import map_in_order
from mtdense.domains.precip.ptree import band_channel_name
from mtdense.domains.precip.scan_tiles import Scene, ScanOptions, scan_tiles
from mtdense.domains.precip.scene_input import group_scenes, hsd_scan_name
from mtdense.domains.precip.splits import GAP, blocked_splits, embargo
from mtdense.errors import ConfigError, DataError

REGRID_MODES = ("ahi_to_label", "label_to_ahi")
AHI_PATTERNS = ("NC_H*.nc", "HS_H*_B*.DAT", "HS_H*_B*.DAT.bz2")
_AHI_NAME = re.compile(r"(?:NC|HS)_H\d\d_(\d{8})_(\d{4})_")
_IMERG_NAME = re.compile(r"\.(\d{8})-S(\d{6})-E\d{6}\.")
PAIRING_RULE = "scan time t paired with the IMERG granule whose [start, start+30min) contains t"


def scan_time_from_name(path: Path) -> dt.datetime:
    m = _AHI_NAME.search(path.name)
    if m is None:
        raise DataError(f"{path}: not a P-Tree or HSD file name (expected NC_Hnn_YYYYMMDD_hhmm_...nc or "
                        "HS_Hnn_YYYYMMDD_hhmm_Bbb_...DAT); rename or remove it")
    return dt.datetime.strptime("".join(m.groups()), "%Y%m%d%H%M")


def granule_start_from_name(path: Path) -> dt.datetime:
    m = _IMERG_NAME.search(path.name)
    if m is None:
        raise DataError(f"{path}: not an IMERG half-hourly file name (expected ...YYYYMMDD-SHHMMSS-EHHMMSS...)")
    return dt.datetime.strptime("".join(m.groups()), "%Y%m%d%H%M%S")


def half_hour_start(t: dt.datetime) -> dt.datetime:
    return t.replace(minute=30 * (t.minute // 30), second=0, microsecond=0)


def _list_files(paths_or_dir, patterns: tuple[str, ...], what: str) -> list[Path]:
    if isinstance(paths_or_dir, (str, Path)) and Path(paths_or_dir).is_dir():
        files = sorted(p for pattern in patterns for p in Path(paths_or_dir).glob(pattern))
    elif isinstance(paths_or_dir, (str, Path)):
        raise ConfigError(f"{what}: {paths_or_dir} is not a directory; give a directory or a list of files")
    else:
        files = [Path(p) for p in paths_or_dir]
    if not files:
        raise ConfigError(f"{what}: no files matching {' or '.join(map(repr, patterns))} in {paths_or_dir}")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise ConfigError(f"{what}: file(s) not found: {', '.join(missing)}")
    return files


def pair_scans(ahi_files: Sequence[Path], imerg_files: Sequence[Path]) -> tuple[list[Scene], list[str]]:
    """Scenes (scan + containing IMERG granule) in time order, and names of unpaired scans.

    ``ahi_files``: P-Tree files (one scan each) and/or HSD segments (one scan per time)."""
    granules: dict[dt.datetime, Path] = {}
    for path in imerg_files:
        start = granule_start_from_name(path)
        if start in granules:
            raise ConfigError(f"two IMERG granules start at {start:%Y-%m-%d %H:%M}: {granules[start].name} and "
                              f"{path.name}; keep one product/version per half hour")
        granules[start] = path
    scenes, unpaired = [], []
    for files in group_scenes(ahi_files):
        path = files[0]
        t = scan_time_from_name(path)
        start = half_hour_start(t)
        segments = tuple(files) if path.suffix != ".nc" else ()
        if start in granules:
            scenes.append(Scene(path, granules[start], t, start, segments))
        else:
            unpaired.append(hsd_scan_name(path) if segments else path.name)
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


def _check_options(regrid, tile_size, stride, min_valid_fraction, bands, extra_channels, min_quality):
    if regrid not in REGRID_MODES:
        raise ConfigError(f"prepare: regrid={regrid!r}; choose one of {', '.join(REGRID_MODES)}")
    if tile_size < 1 or stride < 1:
        raise ConfigError(f"prepare: tile_size={tile_size}, stride={stride}; both must be positive")
    if not 0.0 <= min_valid_fraction <= 1.0:
        raise ConfigError(f"prepare: min_valid_fraction={min_valid_fraction}; must be within [0, 1]")
    if not bands and not extra_channels:
        raise ConfigError("prepare: no channels; give bands (7-16) and/or extra_channels")
    if min_quality is not None and not 0.0 <= min_quality <= 1.0:
        raise ConfigError(f"prepare: min_quality={min_quality}; IMERG's quality index is within [0, 1]")


def _require_pyresample() -> None:
    try:
        import pyresample  # noqa: F401
    except ImportError as exc:
        raise ConfigError("prepare: HSD scans are resampled to the label grid with pyresample, which is not "
                          "installed; pip install 'mtdense[geo]' (or use --regrid label_to_ahi)") from exc


def prepare_precip(ahi_paths_or_dir, imerg_dir, out_path, tile_size: int = 64, stride: int | None = None,
                   regrid: str = "ahi_to_label", min_valid_fraction: float = 0.5,
                   bands: Sequence[int] = tuple(range(8, 17)), extra_channels: Sequence[str] = (),
                   val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                   label_variable: str | None = None, split_by: str = "blocked", block_hours: float | None = None,
                   gap_hours: float = 0.0, min_quality: float | None = None, mask_space: bool = True, scheduler: str | None = None,
                   workers: int | None = None, processes: bool = True, log=print) -> dict:
    """Write the HDF5 tile store ``out_path`` from AHI scans (P-Tree or HSD) and IMERG granules;
    returns a summary. ``scheduler``: None/"local" (a LocalCluster of ``workers`` single-thread
    processes), "tcp://host:port", or "inline" (this process)."""
    from mtdense.domains.precip.scan_parts import ScanParts

    stride = stride or tile_size
    bands, extra_channels = [int(b) for b in bands], [str(c) for c in extra_channels]
    _check_options(regrid, tile_size, stride, min_valid_fraction, bands, extra_channels, min_quality)
    ahi_files = [p.resolve() for p in _list_files(ahi_paths_or_dir, AHI_PATTERNS, "AHI input")]
    imerg_files = [p.resolve() for p in _list_files(imerg_dir, ("3B-HHR*",), "IMERG input")]
    scenes, unpaired = pair_scans(ahi_files, imerg_files)
    if not scenes:
        raise ConfigError(f"prepare: none of the {len(unpaired)} AHI scans falls in a half hour of the "
                          f"{len(imerg_files)} IMERG granules; check dates and folders")
    if split_by not in ("blocked", "random"):
        raise ConfigError(f"prepare: split_by {split_by!r} is not one of blocked, random")
    granules = [s.granule_start for s in scenes]
    if split_by == "blocked":
        split_of, block_hours = blocked_splits(granules, val_fraction, test_fraction, seed, block_hours)
    else:
        split_of, block_hours = assign_splits(granules, val_fraction, test_fraction, seed), None
    split_of = embargo(split_of, gap_hours)
    if regrid == "ahi_to_label" and any(s.segments for s in scenes):
        _require_pyresample()
    channel_names = [band_channel_name(b) for b in bands] + extra_channels
    options = ScanOptions(tuple(bands + extra_channels), regrid, tile_size, stride, min_valid_fraction,
                          label_variable, min_quality, mask_space)
    out_path = Path(out_path)
    parts = ScanParts(out_path, options, log)
    todo = [s for s in scenes if not parts.done(s)]
    if len(todo) < len(scenes):
        log(f"prepare: {len(scenes) - len(todo)} of {len(scenes)} scans already done in {parts.folder}")
    for scene, tiles in zip(todo, map_in_order(functools.partial(scan_tiles, options=options), todo, scheduler,
                                               workers, processes, log=log)):
        parts.write(scene, tiles)
    parameters = dict(tile_size=tile_size, stride=stride, regrid=regrid, min_valid_fraction=min_valid_fraction,
                      bands=bands, extra_channels=extra_channels, val_fraction=val_fraction,
                      test_fraction=test_fraction, seed=seed, label_variable=label_variable, split_by=split_by,
                      block_hours=block_hours, gap_hours=gap_hours, min_quality=min_quality, mask_space=mask_space)
    summary = _write_store(out_path, scenes, parts, split_of, channel_names, tile_size, parameters, unpaired)
    parts.remove()
    return {**summary, "resumed_scans": len(scenes) - len(todo)}


def _write_store(out_path: Path, scenes: list[Scene], parts, split_of: dict, channel_names: list[str], t: int,
                 parameters: dict, unpaired: list[str]) -> dict:
    """One pass over the finished scans (in scan order) -> the HDF5 store, written atomically."""
    import h5py

    from mtdense import __version__

    n_ch = len(channel_names)
    stats, nan_tiles, all_missing, synthetic = _TrainStats(n_ch), [], [], False
    split_indices = {s: [] for s in SPLITS}
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
            tiles = parts.read(scene)
            synthetic |= tiles.synthetic
            if tiles.all_missing:
                all_missing.append(scene.imerg.name)
            split = split_of[scene.granule_start]
            n = 0 if split == GAP else len(tiles.image)  # embargoed: in no split
            scene_tiles.append(n)
            if not n:
                continue
            n0, n1 = image.shape[0], image.shape[0] + n
            for ds in (image, rain, tile_scene, tile_origin, tile_latlon):
                ds.resize(n1, axis=0)
            image[n0:n1] = tiles.image
            rain[n0:n1] = tiles.rain
            tile_scene[n0:n1] = k
            tile_origin[n0:n1] = tiles.origin
            tile_latlon[n0:n1] = tiles.latlon
            split_indices[split].extend(range(n0, n1))
            if split == "train":
                stats.add(tiles.image)
            nan_tiles.extend(n0 + i for i, x in enumerate(tiles.image) if not np.isfinite(x).all())
        if image.shape[0] == 0:
            raise ConfigError(f"prepare: no tile of {t}x{t} reached min_valid_fraction="
                              f"{parameters['min_valid_fraction']}; lower it or use smaller tiles")
        if not split_indices["train"]:
            raise ConfigError("prepare: the train split received no tiles; change seed or fractions"
                              + (" or lower --gap-hours" if parameters.get("gap_hours") else ""))
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
        f.create_dataset("scenes/ahi_file", data=[s.name for s in scenes], dtype=text)
        f.create_dataset("scenes/imerg_file", data=[s.imerg.name for s in scenes], dtype=text)
        f.create_dataset("scenes/scan_time", data=[s.scan_time.isoformat() for s in scenes], dtype=text)
        f.create_dataset("scenes/imerg_start", data=[s.granule_start.isoformat() for s in scenes], dtype=text)
        f.create_dataset("scenes/split", data=[split_of[s.granule_start] for s in scenes], dtype=text)
        f.create_dataset("scenes/n_tiles", data=np.asarray(scene_tiles, np.int32))
        source = "+".join(name for name, used in (("himawari-hsd", any(s.segments for s in scenes)),
                                                   ("jaxa-ptree", any(not s.segments for s in scenes))) if used)
        f.attrs.update(channel_names=channel_names, tile_size=t, regrid=parameters["regrid"], synthetic=synthetic,
                       mtdense_version=__version__, created_utc=dt.datetime.now(dt.timezone.utc).isoformat(),
                       parameters=json.dumps(parameters), pairing_rule=PAIRING_RULE,
                       source_format=f"{source}+gpm-imerg",
                       unpaired_ahi=json.dumps(unpaired), all_missing_imerg=json.dumps(all_missing),
                       stats_split="train")
    return {"path": str(out_path), "tiles": {s: len(v) for s, v in split_indices.items()},
            "scenes": len(scenes), "unpaired_ahi": unpaired, "all_missing_imerg": all_missing,
            "channel_names": channel_names, "synthetic": synthetic}
