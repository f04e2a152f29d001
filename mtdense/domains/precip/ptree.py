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
from typing import Iterable, Iterator

import numpy as np

from mtdense.domains.precip.cf_time import decode_cf_time
from mtdense.errors import DataError

AHI_IR_BANDS = tuple(range(7, 17))
# central wavelengths (µm) of the AHI infrared bands (JMA, Himawari-8/9 AHI band specification)
AHI_WAVELENGTH_UM = {7: 3.9, 8: 6.2, 9: 6.9, 10: 7.3, 11: 8.6, 12: 9.6, 13: 10.4, 14: 11.2, 15: 12.4, 16: 13.3}


class PTreeError(DataError):
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


def channel_info(channel: str) -> dict:
    """What a channel is: units and, for an AHI band ``Bnn``, its central wavelength."""
    if len(channel) == 3 and channel[0] == "B" and channel[1:].isdigit() and int(channel[1:]) in AHI_WAVELENGTH_UM:
        band = int(channel[1:])
        return {"units": "K", "wavelength_um": AHI_WAVELENGTH_UM[band],
                "description": f"AHI band {band} ({AHI_WAVELENGTH_UM[band]:g} µm) brightness temperature"}
    return {"units": "K", "description": f"extra input variable {channel}"}


def _plane(ds, name: str, path: Path) -> np.ndarray:
    da = ds[name]
    for dim in da.dims:
        if dim not in ("latitude", "longitude"):
            if da.sizes[dim] != 1:
                raise PTreeError(f"{path}: variable {name!r} has dimension {dim!r} of size {da.sizes[dim]}; "
                                 "expected a single (latitude, longitude) plane")
            da = da.isel({dim: 0})
    return da.transpose("latitude", "longitude").values.astype(np.float32)


def iter_ptree_channels(path: str | Path, bands: Iterable[int] = range(8, 17),
                        extra_variables: Iterable[str] = ()) -> Iterator[PTreeScene]:
    """Yield one single-channel ``PTreeScene`` per requested band, then per extra 2-D variable.

    The file is opened once; only one channel is decoded at a time (memory-bounded on 2 km grids).
    """
    import xarray as xr

    path = Path(path)
    bands, extra_variables = list(bands), list(extra_variables)
    if not bands and not extra_variables:
        raise PTreeError(f"{path}: no channels requested; give at least one band (7-16) or extra variable")
    try:
        ds = xr.open_dataset(path, mask_and_scale=True, decode_times=False)
    except (OSError, ValueError) as exc:
        raise PTreeError(f"{path}: cannot open as NetCDF ({exc}); is it a P-Tree gridded file?") from exc
    with ds:
        for needed in ("latitude", "longitude", "start_time"):
            if needed not in ds.variables:
                raise PTreeError(f"{path}: no {needed!r} variable; not a P-Tree gridded file")
        present = sorted(str(v) for v in ds.data_vars if str(v).startswith("tbb_"))
        for band in bands:
            if band not in AHI_IR_BANDS:
                raise PTreeError(f"{path}: band {band} is not an AHI infrared band; choose from 7-16")
            if f"tbb_{band:02d}" not in ds.data_vars:
                raise PTreeError(f"{path}: band {band} (variable 'tbb_{band:02d}') is missing; "
                                 f"present: {', '.join(present) or 'no tbb_* variables'}")
        for name in extra_variables:
            if name not in ds.data_vars:
                raise PTreeError(f"{path}: extra channel variable {name!r} is missing; "
                                 f"data variables: {', '.join(map(str, ds.data_vars))}")
        lat = ds["latitude"].values.astype(np.float64)
        lon = np.unwrap(ds["longitude"].values.astype(np.float64), period=360.0)
        flip_lat = lat.size > 1 and lat[0] < lat[-1]
        flip_lon = lon.size > 1 and lon[0] > lon[-1]
        lat, lon = (lat[::-1] if flip_lat else lat), (lon[::-1] if flip_lon else lon)
        start = decode_cf_time(float(np.ravel(ds["start_time"].values)[0]),
                               ds["start_time"].attrs.get("units", "days since 1858-11-17"), f"{path}:start_time")
        synthetic = bool(ds.attrs.get("synthetic", 0))
        channels = [(f"tbb_{b:02d}", band_channel_name(b)) for b in bands] + [(n, n) for n in extra_variables]
        for variable, channel in channels:
            plane = _plane(ds, variable, path)
            plane = plane[::-1] if flip_lat else plane
            plane = plane[:, ::-1] if flip_lon else plane
            yield PTreeScene(np.ascontiguousarray(plane[None]), [channel], lat, lon, start, str(path), synthetic)


def read_ptree(path: str | Path, bands: Iterable[int] = range(8, 17),
               extra_variables: Iterable[str] = ()) -> PTreeScene:
    """Read AHI bands (``tbb_XX``) and optional extra 2-D variables from a P-Tree NetCDF file, north-up."""
    planes = list(iter_ptree_channels(path, bands, extra_variables))
    first = planes[0]
    return PTreeScene(np.concatenate([p.bt for p in planes]), [p.channel_names[0] for p in planes],
                      first.lat, first.lon, first.start_time, first.path, first.synthetic)
