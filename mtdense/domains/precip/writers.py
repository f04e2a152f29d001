"""Writers of the real on-disk formats of precipitation inputs and labels (for synthetic data and tests).

* JAXA P-Tree "Himawari L1 gridded" NetCDF-4: ``tbb_XX`` packed int16 with ``scale_factor``/
  ``add_offset``, descending ``latitude``, 0-360 ``longitude``, ``start_time``/``end_time`` in
  days since 1858-11-17 (layout: JAXA P-Tree README; mtdense docs/formats.md (a')).
* GPM IMERG half-hourly HDF5, V07 (``/Grid/precipitation`` + ``/Grid/Intermediate``) and V06
  (``/Grid/precipitationCal``...), data (time, lon, lat), ``_FillValue`` -9999.9, time epoch in
  the ``units`` attribute (attribute set copied from real V06B/V07A granules; formats.md (b)).

Files written for synthetic data carry a ``synthetic`` attribute so downstream provenance says so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

PTREE_TIME_UNITS = "days since 1858-11-17 0:0:0"
IMERG_EPOCHS = {"V06": dt.datetime(1970, 1, 1), "V07": dt.datetime(1980, 1, 6)}
_FILL_F4 = np.float32(-9999.9)
_FILL_I2 = np.int16(-9999)


def ptree_name(start: dt.datetime, satellite: int = 9, shape: tuple[int, int] = (2401, 2401)) -> str:
    """P-Tree file name, e.g. ``NC_H09_20200701_0300_R21_FLDK.02401_02401.nc``."""
    return f"NC_H{satellite:02d}_{start:%Y%m%d_%H%M}_R21_FLDK.{shape[1]:05d}_{shape[0]:05d}.nc"


def imerg_name(start: dt.datetime, version: str = "V07B") -> str:
    """IMERG Final half-hourly name, e.g. ``3B-HHR.MS.MRG.3IMERG.20200701-S030000-E032959.0180.V07B.HDF5``."""
    end = start + dt.timedelta(minutes=29, seconds=59)
    minute = start.hour * 60 + start.minute
    return f"3B-HHR.MS.MRG.3IMERG.{start:%Y%m%d}-S{start:%H%M%S}-E{end:%H%M%S}.{minute:04d}.{version}.HDF5"


def write_ptree(path, tbb: dict[int, np.ndarray], lat: np.ndarray, lon: np.ndarray, start: dt.datetime,
                extra: dict[str, np.ndarray] | None = None, scale: float = 0.01, offset: float = 273.15,
                synthetic: bool = False) -> Path:
    """Write brightness temperatures (K, NaN = missing) per band as a P-Tree NetCDF file.

    ``lat`` must be descending; ``lon`` ascending (values past 180 allowed). ``extra`` holds
    further 2-D variables (same packing), e.g. decoy channels of synthetic data.
    """
    import netCDF4

    start_mjd = (start - dt.datetime(1858, 11, 17)).total_seconds() / 86400.0
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("latitude", lat.size)
        ds.createDimension("longitude", lon.size)
        ds.createDimension("time", 1)
        ds.createVariable("latitude", "f4", ("latitude",))[:] = lat
        ds.createVariable("longitude", "f4", ("longitude",))[:] = lon
        for name, value in (("start_time", start_mjd), ("end_time", start_mjd + 10 / 1440)):
            v = ds.createVariable(name, "f8", ("time",))
            v.units = PTREE_TIME_UNITS
            v[:] = value
        variables = {f"tbb_{band:02d}": a for band, a in tbb.items()} | dict(extra or {})
        for name, values in variables.items():
            v = ds.createVariable(name, "i2", ("latitude", "longitude"), fill_value=np.int16(-32768))
            v.scale_factor, v.add_offset, v.units = scale, offset, "K"
            v[:] = np.ma.masked_array(np.nan_to_num(values, nan=offset), mask=~np.isfinite(values))
        if synthetic:
            ds.synthetic = 1
            ds.title = "mtdense SYNTHETIC Himawari-like gridded brightness temperatures (not real data)"
    return Path(path)


def write_imerg(path, rain_rate: np.ndarray, lat: np.ndarray, lon: np.ndarray, start: dt.datetime,
                version: str = "V07", synthetic: bool = False, quality_index: np.ndarray | None = None) -> Path:
    """Write a half-hourly IMERG granule (possibly a regional cut) in the real V07 or V06 layout.

    ``rain_rate``: (lat, lon) mm/h with ``lat`` ascending (south -> north) as in IMERG; NaN = missing.
    ``quality_index``: ``precipitationQualityIndex`` on the same grid (default 1 where the rate is finite).
    """
    import h5py

    if version not in IMERG_EPOCHS:
        raise ValueError(f"write_imerg: version {version!r}; choose one of {', '.join(IMERG_EPOCHS)}")
    epoch = IMERG_EPOCHS[version]
    time_units = f"seconds since {epoch:%Y-%m-%d %H:%M:%S} UTC"
    seconds = int((start - epoch).total_seconds())
    data = np.where(np.isfinite(rain_rate), rain_rate, _FILL_F4).astype("f4").T[None]   # (time, lon, lat)
    with h5py.File(path, "w") as f:
        f.attrs["FileHeader"] = (f"DOI=10.5067/GPM/IMERG/3B-HH/{version[1:]};\n"
                                 f"StartGranuleDateTime={start:%Y-%m-%dT%H:%M:%S}.000Z;\n"
                                 f"TimeInterval=HALF_HOUR;\nProductVersion={version}B;\n").encode()
        if synthetic:
            f.attrs["synthetic"] = np.int8(1)
            f.attrs["title"] = b"mtdense SYNTHETIC IMERG-like rain rates (not real data)"
        grid = f.create_group("Grid")

        def coord(name, values, units, **attrs):
            d = grid.create_dataset(name, data=values)
            d.make_scale(name)
            d.attrs.update(units=units, Units=units, DimensionNames=name, **attrs)
            return d

        scales = (coord("time", np.array([seconds], "i4"), time_units, calendar="julian"),
                  coord("lon", lon.astype("f4"), "degrees_east"),
                  coord("lat", lat.astype("f4"), "degrees_north"))
        bounds = grid.create_dataset("time_bnds", data=np.array([[seconds, seconds + 1800]], "i4"))
        bounds.attrs.update(units=time_units)

        def var(group, name, values, units="mm/hr", fill=_FILL_F4, code="-9999.9"):
            d = group.create_dataset(name, data=values, fillvalue=fill)
            d.attrs.update(_FillValue=fill, CodeMissingValue=code, DimensionNames="time,lon,lat",
                           coordinates="time lon lat")
            if units:                                   # the quality index has no units attribute
                d.attrs.update(units=units, Units=units)
            for i, s in enumerate(scales):
                d.dims[i].attach_scale(s)

        liquid = np.where(data == _FILL_F4, _FILL_I2, 100).astype("i2")
        quality = np.isfinite(rain_rate).astype("f4") if quality_index is None else quality_index
        quality = np.where(np.isfinite(quality) & (data[0].T != _FILL_F4), quality, _FILL_F4).astype("f4").T[None]
        if version == "V07":
            var(grid, "precipitation", data)
            var(grid, "randomError", data)
            var(grid, "precipitationQualityIndex", quality, units=None)
            var(grid, "probabilityLiquidPrecipitation", liquid, "percent", _FILL_I2, "-9999")
            inter = grid.create_group("Intermediate")
            for name in ("precipitationUncal", "MWprecipitation", "IRprecipitation"):
                var(inter, name, data)
        else:
            for name in ("precipitationCal", "precipitationUncal", "HQprecipitation", "IRprecipitation", "randomError"):
                var(grid, name, data)
            var(grid, "precipitationQualityIndex", quality, units=None)
            var(grid, "probabilityLiquidPrecipitation", liquid, "percent", _FILL_I2, "-9999")
    return Path(path)


def write_satrain_pair(folder, time: dt.datetime, observations: np.ndarray, surface_precip: np.ndarray,
                       lat: np.ndarray, lon: np.ndarray, radar_quality_index: np.ndarray | None = None,
                       valid_fraction: np.ndarray | None = None) -> tuple[Path, Path]:
    """A SatRain gridded ``geo_<time>.nc`` (``observations(latitude, longitude, channel)``) and
    ``target_<time>.nc`` (``surface_precip`` mm/h, ``radar_quality_index``, ``valid_fraction``)
    under ``folder/YYYY/MM/DD`` (layout: mtdense docs/formats.md (b'))."""
    import xarray as xr

    day = Path(folder) / f"{time:%Y/%m/%d}"
    day.mkdir(parents=True, exist_ok=True)
    coords = {"latitude": lat, "longitude": lon}
    stamp = np.datetime64(time, "ns")
    geo = xr.Dataset({"observations": (("latitude", "longitude", "channel"), observations.astype(np.float32)),
                      "time": (("latitude", "longitude"), np.full(surface_precip.shape, stamp))}, coords=coords)
    ones = np.ones(surface_precip.shape, np.float32)
    target = xr.Dataset({"surface_precip": (("latitude", "longitude"), surface_precip.astype(np.float32)),
                         "radar_quality_index": (("latitude", "longitude"),
                                                 ones if radar_quality_index is None else radar_quality_index),
                         "valid_fraction": (("latitude", "longitude"), ones if valid_fraction is None else valid_fraction),
                         "time": (("latitude", "longitude"), np.full(surface_precip.shape, stamp))}, coords=coords)
    paths = day / f"geo_{time:%Y%m%d%H%M%S}.nc", day / f"target_{time:%Y%m%d%H%M%S}.nc"
    geo.to_netcdf(paths[0])
    target.to_netcdf(paths[1])
    return paths
