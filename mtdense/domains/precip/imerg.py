"""Reader of GPM IMERG half-hourly HDF5 granules (V06 and V07), the rain-rate labels.

Structure (IMERG Technical Documentation, Huffman et al., V06/V07; verified on real V06B/V07A
files, mtdense docs/formats.md (b)): ``/Grid/{lat,lon,time}`` with data variables shaped
(time=1, lon, lat), latitude ascending; V07 ``/Grid/precipitation`` and
``/Grid/Intermediate/{precipitationUncal, MWprecipitation, IRprecipitation}``; V06 keeps
``precipitationCal``, ``precipitationUncal``, ``HQprecipitation``, ``IRprecipitation`` in ``/Grid``.
Missing values equal the variable's ``_FillValue`` (-9999.9). Time is read from the ``units``
attribute (V06 "seconds since 1970-01-01", V07 "seconds since 1980-01-06"); a value is the mean
rate over [start, start + 30 min).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtdense.domains.precip.cf_time import decode_cf_time
from mtdense.errors import DataError

HALF_HOUR = dt.timedelta(minutes=30)
# V07 name -> V06 name of the same quantity; lookups try both directions.
V06_NAMES = {"precipitation": "precipitationCal", "MWprecipitation": "HQprecipitation"}


class IMERGError(DataError):
    """An IMERG granule that lacks a variable or is not an IMERG half-hourly HDF5 file."""


@dataclass
class IMERGGranule:
    """One variable of one half-hourly granule, north-up (lat descending), NaN = missing."""

    rain_rate: np.ndarray      # (lat, lon) float32 mm/h
    lat: np.ndarray            # (lat,) descending
    lon: np.ndarray            # (lon,) ascending; unwrapped past 180 when a window crosses the dateline
    start_time: dt.datetime
    end_time: dt.datetime
    version: str               # "V06" or "V07"
    variable: str              # dataset path inside the file
    path: str
    synthetic: bool

    @property
    def all_missing(self) -> bool:
        """True when every pixel is fill (e.g. polar night cuts, missing input granules)."""
        return not np.isfinite(self.rain_rate).any()


def _find_variable(f, variable: str | None, path: Path) -> str:
    if variable is None:
        for candidate in ("Grid/precipitation", "Grid/precipitationCal"):
            if candidate in f:
                return candidate
        raise IMERGError(f"{path}: neither Grid/precipitation (V07) nor Grid/precipitationCal (V06) found; "
                         "not an IMERG half-hourly granule")
    aliases = {variable, V06_NAMES.get(variable, variable)} | {k for k, v in V06_NAMES.items() if v == variable}
    for name in sorted(aliases):
        for group in ("Grid", "Grid/Intermediate"):
            if f"{group}/{name}" in f:
                return f"{group}/{name}"
    available = []
    f.visititems(lambda n, o: available.append(n) if hasattr(o, "shape") and o.ndim == 3 else None)
    raise IMERGError(f"{path}: variable {variable!r} not found; available: {', '.join(sorted(available))}")


def _text(value) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _lon_window(lon: np.ndarray, lon_range: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Column indices (west -> east) inside ``lon_range`` and their unwrapped longitudes."""
    if lon_range is None:
        return np.arange(lon.size), lon.astype(np.float64)
    west, east = lon_range
    west = (west + 180.0) % 360.0 - 180.0
    span = (east - west) % 360.0 or 360.0
    offset = (lon.astype(np.float64) - west) % 360.0
    cols = np.flatnonzero(offset <= span + 1e-6)
    cols = cols[np.argsort(offset[cols], kind="stable")]
    return cols, west + offset[cols]


def read_imerg(path: str | Path, variable: str | None = None, lat_range: tuple[float, float] | None = None,
               lon_range: tuple[float, float] | None = None) -> IMERGGranule:
    """Read one IMERG variable (default: the calibrated precipitation of V07 or V06).

    ``variable``: any 3-D variable name in ``/Grid`` or ``/Grid/Intermediate``; V06/V07 aliases
    (``precipitation``/``precipitationCal``, ``MWprecipitation``/``HQprecipitation``) are resolved.
    ``lat_range=(south, north)`` and ``lon_range=(west, east)`` (degrees, windows may cross the
    dateline, e.g. ``(170, 190)``) read only that part of the globe.
    """
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise IMERGError(f"{path}: cannot open as HDF5 ({exc}); is it an IMERG .HDF5 granule?") from exc
    with f:
        for needed in ("Grid/lat", "Grid/lon", "Grid/time"):
            if needed not in f:
                raise IMERGError(f"{path}: no {needed}; not an IMERG half-hourly granule")
        name = _find_variable(f, variable, path)
        ds = f[name]
        dims = _text(ds.attrs.get("DimensionNames", b"time,lon,lat"))
        if dims != "time,lon,lat" or ds.ndim != 3:
            raise IMERGError(f"{path}: {name} has dimensions {dims!r} {ds.shape}; expected 'time,lon,lat'")
        lat, lon = f["Grid/lat"][:].astype(np.float64), f["Grid/lon"][:].astype(np.float64)
        rows = np.arange(lat.size)
        if lat_range is not None:
            rows = np.flatnonzero((lat >= lat_range[0] - 1e-6) & (lat <= lat_range[1] + 1e-6))
        cols, lon_out = _lon_window(lon, lon_range)
        if rows.size == 0 or cols.size == 0:
            raise IMERGError(f"{path}: window lat {lat_range} lon {lon_range} does not overlap the granule "
                             f"(lat {lat.min():.2f}..{lat.max():.2f}, lon {lon.min():.2f}..{lon.max():.2f})")
        block = ds[0, :, rows[0]:rows[-1] + 1][cols][:, rows - rows[0]]     # (lon, lat) window
        fill = ds.attrs.get("_FillValue", np.float32(-9999.9))
        rain = np.where(block == fill, np.nan, block).astype(np.float32).T  # (lat ascending, lon)
        time = f["Grid/time"]
        start = decode_cf_time(int(time[0]), time.attrs.get("units", b""), f"{path}:Grid/time")
        end = start + HALF_HOUR
        if "Grid/time_bnds" in f:
            end = decode_cf_time(int(f["Grid/time_bnds"][0, 1]), time.attrs.get("units", b""), f"{path}:Grid/time_bnds")
        version = "V07" if "Grid/precipitation" in f else "V06"
        synthetic = bool(f.attrs.get("synthetic", 0))
    lat_sel = lat[rows]
    order = np.argsort(-lat_sel, kind="stable")                              # north-up
    return IMERGGranule(np.ascontiguousarray(rain[order]), lat_sel[order], lon_out, start, end,
                        version, name, str(path), synthetic)
