"""Reader of JAXA P-Tree "Himawari L1 gridded" NetCDF files (AHI brightness temperatures).

Layout (JAXA Himawari Monitor P-Tree README; mtdense docs/formats.md (a')): equirectangular
grid, ``latitude`` descending, ``longitude`` ascending with values past 180 east of the dateline,
``tbb_07`` ... ``tbb_16`` brightness temperatures [K] stored as packed integers decoded from
their ``scale_factor``/``add_offset`` attributes, ``start_time`` in days since 1858-11-17.
The grid size is taken from the file (5 km 2401x2401, 2 km 6001x6001, Japan area, cuts...).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from mtdense.data.cf_time import decode_cf_time

AHI_IR_BANDS = tuple(range(7, 17))


class PTreeError(ValueError):
    """A P-Tree file that lacks what was asked for or is not a P-Tree gridded file."""


@dataclass
class PTreeScene:
    """Selected channels of one scan on the file's lat/lon grid, north-up."""

    bt: np.ndarray                 # (channels, lat, lon) float32, NaN = missing
    channel_names: list[str]       # "B08" ... "B16", then extra variable names
    lat: np.ndarray                # (lat,) descending
    lon: np.ndarray                # (lon,) ascending, may exceed 180
    start_time: dt.datetime
    path: str
    synthetic: bool


def band_channel_name(band: int) -> str:
    return f"B{band:02d}"


def _plane(ds, name: str, path: Path) -> np.ndarray:
    da = ds[name]
    for dim in da.dims:
        if dim not in ("latitude", "longitude"):
            if da.sizes[dim] != 1:
                raise PTreeError(f"{path}: variable {name!r} has dimension {dim!r} of size {da.sizes[dim]}; "
                                 "expected a single (latitude, longitude) plane")
            da = da.isel({dim: 0})
    return da.transpose("latitude", "longitude").values.astype(np.float32)


def read_ptree(path: str | Path, bands: Iterable[int] = range(8, 17), extra_variables: Iterable[str] = ()) -> PTreeScene:
    """Read AHI bands (``tbb_XX``) and optional extra 2-D variables from a P-Tree NetCDF file."""
    import xarray as xr

    path = Path(path)
    bands, extra_variables = list(bands), list(extra_variables)
    try:
        ds = xr.open_dataset(path, mask_and_scale=True, decode_times=False)
    except (OSError, ValueError) as exc:
        raise PTreeError(f"{path}: cannot open as NetCDF ({exc}); is it a P-Tree gridded file?") from exc
    with ds:
        for needed in ("latitude", "longitude"):
            if needed not in ds.variables:
                raise PTreeError(f"{path}: no {needed!r} variable; not a P-Tree gridded file")
        present = sorted(v for v in ds.data_vars if str(v).startswith("tbb_"))
        names = []
        for band in bands:
            if band not in AHI_IR_BANDS:
                raise PTreeError(f"{path}: band {band} is not an AHI infrared band; choose from 7-16")
            if f"tbb_{band:02d}" not in ds.data_vars:
                raise PTreeError(f"{path}: band {band} (variable 'tbb_{band:02d}') is missing; "
                                 f"present: {', '.join(present) or 'no tbb_* variables'}")
            names.append(f"tbb_{band:02d}")
        for name in extra_variables:
            if name not in ds.data_vars:
                raise PTreeError(f"{path}: extra channel variable {name!r} is missing; "
                                 f"data variables: {', '.join(map(str, ds.data_vars))}")
        names += extra_variables
        if not names:
            raise PTreeError(f"{path}: no channels requested; give at least one band (7-16) or extra variable")
        bt = np.stack([_plane(ds, n, path) for n in names])
        lat = ds["latitude"].values.astype(np.float64)
        lon = np.unwrap(ds["longitude"].values.astype(np.float64), period=360.0)
        if "start_time" not in ds.variables:
            raise PTreeError(f"{path}: no 'start_time' variable; cannot time the scan")
        start = decode_cf_time(float(np.ravel(ds["start_time"].values)[0]),
                               ds["start_time"].attrs.get("units", "days since 1858-11-17"), f"{path}:start_time")
        synthetic = bool(ds.attrs.get("synthetic", 0))
    if lat.size > 1 and lat[0] < lat[-1]:
        lat, bt = lat[::-1], bt[:, ::-1]
    if lon.size > 1 and lon[0] > lon[-1]:
        lon, bt = lon[::-1], bt[:, :, ::-1]
    channel_names = [band_channel_name(b) for b in bands] + extra_variables
    return PTreeScene(np.ascontiguousarray(bt), channel_names, lat, lon, start, str(path), synthetic)
