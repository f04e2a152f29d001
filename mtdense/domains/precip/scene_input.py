"""One scene's model input with its geolocation, from any of the forms a user holds.

``read_scene_input(source, channel_names)`` accepts a JAXA P-Tree NetCDF file, a set of
Himawari Standard Data (HSD) segment files (native geostationary grid: 2-D latitude/longitude
from the reader's navigation, space pixels masked, plus the grid's 1-D projection coordinates
and CF ``geostationary`` grid mapping from the header's projection block), an
``xarray.DataArray`` (channel, y, x) or ``xarray.Dataset`` (one variable per channel, named by
channel or ``tbb_XX``), or a numpy C×H×W array (optional ``lat``/``lon``), and returns the
channels in the order the model wants, in raw units (kelvin), NaN = missing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from mtdense.errors import DataError

CHANNEL_DIMS = ("channel", "band", "variable")
HSD_TIME = re.compile(r"_(\d{8}_\d{4})_")
_HSD_BAND = re.compile(r"_B(\d\d)_")


@dataclass
class SceneInput:
    """Channels (C×H×W float32, raw units) with latitude/longitude: 1-D for a regular grid
    (``lat`` (H,), ``lon`` (W,)), 2-D (H×W, NaN off the earth disk) for the native
    geostationary grid, or None when unknown. A projected grid (HSD input) also has its 1-D
    projection coordinates ``x`` (W,), ``y`` (H,) and CF grid-mapping attributes
    ``grid_mapping`` (``domains/precip/grid_mapping.py``)."""

    data: np.ndarray
    channel_names: list[str]
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None
    time: dt.datetime | None = None
    sources: list[str] = field(default_factory=list)
    synthetic: bool = False
    wavelengths_um: dict[str, float] = field(default_factory=dict)
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    grid_mapping: dict | None = None

    @property
    def grid(self) -> str:
        if self.lat is None:
            return "none"
        return "regular" if self.lat.ndim == 1 else "geostationary"


def _band_of(channel: str) -> int | None:
    return int(channel[1:]) if len(channel) == 3 and channel[0] == "B" and channel[1:].isdigit() else None


def _from_ptree(path: Path, channel_names: Sequence[str]) -> SceneInput:
    from mtdense.domains.precip.ptree import read_ptree

    bands = [b for b in map(_band_of, channel_names) if b is not None]
    extra = [c for c in channel_names if _band_of(c) is None]
    scene = read_ptree(path, bands, extra)
    return SceneInput(scene.bt, list(channel_names), scene.lat, scene.lon, scene.start_time, [str(path)],
                      scene.synthetic)


def hsd_scan_name(path: Path) -> str | None:
    """``HS_H09_20200701_0300`` (satellite and observation time) of an HSD segment file name."""
    match = HSD_TIME.search(path.name)
    return f"{'_'.join(path.name.split('_')[:2])}_{match.group(1)}" if match else None


def group_scenes(files: Sequence[str | Path]) -> list[list[Path]]:
    """One list of files per scene: each NetCDF file alone; HSD segments grouped by observation
    time in their names (``HS_H09_YYYYMMDD_HHMM_B13_…``)."""
    scenes, hsd = [], {}
    for f in map(Path, files):
        match = HSD_TIME.search(f.name)
        if f.suffix == ".nc" or not match:
            scenes.append([f])
        else:
            hsd.setdefault(match.group(1), []).append(f)
    return scenes + [sorted(v) for _, v in sorted(hsd.items())]


def _lines_columns(image) -> tuple[np.ndarray, np.ndarray]:
    """Full-disk line and column numbers (1-based) of an assembled HSD image's rows and columns."""
    return (np.arange(image.first_line, image.first_line + image.bt.shape[0], dtype=np.float64),
            np.arange(1, image.bt.shape[1] + 1, dtype=np.float64))


def hsd_navigation(image) -> tuple[np.ndarray, np.ndarray]:
    """2-D latitude/longitude (float32 degrees, NaN off the earth disk) of an assembled HSD image."""
    from mtdense.domains.precip.himawari_hsd import lines_columns_to_latlon

    lines, columns = _lines_columns(image)
    lat, lon = lines_columns_to_latlon(lines[:, None], columns[None, :], image.projection)
    return lat.astype(np.float32), lon.astype(np.float32)


def hsd_grid(image) -> tuple[np.ndarray, np.ndarray, dict]:
    """1-D geostationary projection coordinates x (columns), y (rows) in metres and the CF grid
    mapping of an assembled HSD image."""
    from mtdense.domains.precip.grid_mapping import geostationary_grid_mapping, projection_coordinates

    lines, columns = _lines_columns(image)
    x, y = projection_coordinates(lines, columns, image.projection)
    return x, y, geostationary_grid_mapping(image.projection)


def iter_hsd_channels(paths: Sequence[Path], channel_names: Sequence[str]) -> Iterator[tuple[str, Any]]:
    """(channel, assembled ``HSDSegment``) in ``channel_names`` order, reading one band's
    segments at a time (bands from the ``_Bnn_`` of the file names, else from the headers)."""
    from mtdense.domains.precip.himawari_hsd import assemble_segments, read_hsd_segment

    by_band: dict[int, list[Path]] = {}
    for p in paths:
        match = _HSD_BAND.search(p.name)
        by_band.setdefault(int(match.group(1)) if match else read_hsd_segment(p).band, []).append(p)
    head = None
    for channel in channel_names:
        band = _band_of(channel)
        if band not in by_band:
            raise DataError(f"HSD input: the model needs channel {channel}, but the files hold bands "
                            f"{', '.join(f'B{b:02d}' for b in sorted(by_band))}; add the {channel} segments")
        image = assemble_segments([read_hsd_segment(p, band) for p in by_band[band]])
        head = head or image
        if (image.first_line, image.bt.shape) != (head.first_line, head.bt.shape):
            raise DataError(f"HSD input: bands cover different lines/sizes (B{head.band:02d}: line {head.first_line}, "
                            f"{head.bt.shape}; {channel}: line {image.first_line}, {image.bt.shape}); give the same "
                            "segments of every band at the same resolution")
        yield channel, image


def _from_hsd(paths: Sequence[Path], channel_names: Sequence[str], mask_space: bool = True) -> SceneInput:
    planes, wavelengths, lat, lon, head = [], {}, None, None, None
    for channel, image in iter_hsd_channels(paths, channel_names):
        if head is None:
            head, (lat, lon) = image, hsd_navigation(image)
        if mask_space:
            image.bt[~np.isfinite(lat)] = np.nan
        planes.append(image.bt)
        wavelengths[channel] = image.wavelength_um
    x, y, grid_mapping = hsd_grid(head)
    return SceneInput(np.stack(planes).astype(np.float32), list(channel_names), lat, lon, head.start_time,
                      [str(p) for p in paths], wavelengths_um=wavelengths, x=x, y=y, grid_mapping=grid_mapping)


def _spatial(obj) -> tuple[np.ndarray | None, np.ndarray | None]:
    for lat_name, lon_name in (("latitude", "longitude"), ("lat", "lon")):
        if lat_name in obj.coords and lon_name in obj.coords:
            return np.asarray(obj[lat_name].values), np.asarray(obj[lon_name].values)
    return None, None


def _time_of(obj) -> dt.datetime | None:
    if "time" not in obj.coords:
        return None
    value = np.ravel(obj["time"].values)[0]
    return dt.datetime.fromisoformat(str(np.datetime_as_string(np.datetime64(value, "s"))))


def _from_xarray(obj, channel_names: Sequence[str]) -> SceneInput:
    import xarray as xr

    if isinstance(obj, xr.Dataset):
        missing = [c for c in channel_names if c not in obj and f"tbb_{_band_of(c) or 0:02d}" not in obj]
        if missing:
            raise DataError(f"Dataset input: no variable for channel(s) {', '.join(missing)} (named by channel or "
                            f"tbb_XX); variables: {', '.join(map(str, obj.data_vars))}")
        arrays = [obj[c] if c in obj else obj[f"tbb_{_band_of(c):02d}"] for c in channel_names]
        arrays = [a.squeeze(drop=True) for a in arrays]
        data = np.stack([np.asarray(a.values, np.float32) for a in arrays])
        lat, lon = _spatial(obj)
    else:
        dims = [d for d in obj.dims if d in CHANNEL_DIMS]
        if obj.ndim != 3 or not dims:
            raise DataError(f"DataArray input: dims {obj.dims}; expected (channel, y, x) with a channel dimension "
                            f"named one of {', '.join(CHANNEL_DIMS)}")
        obj = obj.transpose(dims[0], ...)
        if dims[0] in obj.coords:
            names = [str(v) for v in obj[dims[0]].values]
            absent = [c for c in channel_names if c not in names]
            if absent:
                raise DataError(f"DataArray input: channel(s) {', '.join(absent)} missing; it holds {', '.join(names)}")
            obj = obj.sel({dims[0]: list(channel_names)})
        data = np.asarray(obj.values, np.float32)
        lat, lon = _spatial(obj)
    return SceneInput(data, list(channel_names), lat, lon, _time_of(obj), [])


def read_scene_input(source: Any, channel_names: Sequence[str], lat: np.ndarray | None = None,
                     lon: np.ndarray | None = None, time: dt.datetime | None = None,
                     mask_space: bool = True) -> SceneInput:
    """The model's channels from ``source`` (see the module docstring) as a ``SceneInput``."""
    if isinstance(source, (str, Path)):
        source = [source]
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, (str, Path)) for s in source):
        paths = [Path(s) for s in source]
        for p in paths:
            if not p.is_file():
                raise DataError(f"{p}: no such file")
        netcdf = [p for p in paths if p.suffix == ".nc"]
        if netcdf:
            if len(paths) != 1:
                raise DataError(f"give one P-Tree NetCDF file per scene, got {len(paths)} files ({paths[0]}, …)")
            return _from_ptree(paths[0], channel_names)
        return _from_hsd(paths, channel_names, mask_space)
    if type(source).__module__.startswith("xarray"):
        return _from_xarray(source, channel_names)
    data = np.asarray(source, dtype=np.float32)
    if data.ndim != 3 or data.shape[0] != len(channel_names):
        raise DataError(f"array input of shape {data.shape}: expected C×H×W with C = {len(channel_names)} "
                        f"({', '.join(channel_names)})")
    return SceneInput(data, list(channel_names), lat, lon, time, [])
