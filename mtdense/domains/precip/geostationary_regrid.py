"""AHI pixels on the native geostationary grid (HSD) <-> the IMERG 0.1 deg label grid.

* AHI -> labels (``prepare-precip --regrid ahi_to_label``, the default): pyresample's bucket
  resampler (``pyresample.bucket.BucketResampler.get_average``, satpy's ``bucket_avg``). Every
  finite pixel whose navigated centre falls in a label cell counts once in that cell's mean;
  cells without a pixel are NaN. At 2 km -> 0.1 deg (about 5 x 5 pixels per cell near the
  sub-satellite point, fewer towards the limb) the pixels of one cell have nearly equal
  footprints, so this equal-weight bucket mean approximates the area-weighted mean; it is not
  an exact polygon-overlap weighting. The target is a pyresample ``AreaDefinition`` of the
  label cells in a longitude/latitude CRS centred on the satellite's sub-longitude
  (``+proj=longlat +lon_0=sub_lon``), so a window across the antimeridian (Himawari's disk
  reaches 140.7 +- 80 deg) stays one contiguous grid.
* labels -> AHI (``--regrid label_to_ahi``): each pixel takes the label cell containing its
  centre (``regrid.cell_index`` on the 2-D coordinates); pixels off the disk get NaN.

Pixels off the earth disk have no navigation and therefore never reach a label cell.
"""

from __future__ import annotations

import numpy as np

from mtdense.domains.precip.regrid import cell_index


def unwrap_lon(lon: np.ndarray, sub_lon: float) -> np.ndarray:
    """Longitudes within +-180 deg of ``sub_lon`` (contiguous over the visible disk)."""
    return sub_lon + (np.asarray(lon, np.float64) - sub_lon + 180.0) % 360.0 - 180.0


def label_window(lat: np.ndarray, lon: np.ndarray, sub_lon: float, pad: float = 0.2
                 ) -> tuple[tuple[float, float], tuple[float, float]]:
    """(south, north) and (west, east) of the navigated pixels, padded by ``pad`` degrees,
    for ``read_imerg``'s window (east may exceed 180 across the antimeridian)."""
    seen = np.isfinite(lat)
    lon_u = unwrap_lon(lon[seen], sub_lon)
    return ((float(lat[seen].min()) - pad, float(lat[seen].max()) + pad),
            (float(lon_u.min()) - pad, float(lon_u.max()) + pad))


class BucketAverage:
    """Bucket (drop-in-the-box) mean of AHI planes on the label cells ``out_lat`` (descending,
    north-up) x ``out_lon`` (ascending, possibly unwrapped past 180), with pyresample."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, out_lat: np.ndarray, out_lon: np.ndarray, sub_lon: float):
        import dask.array as da
        from pyresample.bucket import BucketResampler
        from pyresample.geometry import AreaDefinition

        self.seen = np.isfinite(lat) & np.isfinite(lon)
        d_lat, d_lon = abs(out_lat[0] - out_lat[1]), abs(out_lon[1] - out_lon[0])
        x = np.asarray(out_lon, np.float64) - sub_lon
        extent = (x[0] - d_lon / 2, out_lat[-1] - d_lat / 2, x[-1] + d_lon / 2, out_lat[0] + d_lat / 2)
        area = AreaDefinition("imerg_window", "IMERG 0.1 deg cells", "imerg_window",
                              {"proj": "longlat", "datum": "WGS84", "lon_0": float(sub_lon), "no_defs": None},
                              out_lon.size, out_lat.size, extent)
        self.shape = (out_lat.size, out_lon.size)
        with _synchronous():
            self.resampler = BucketResampler(area, da.from_array(lon[self.seen].astype(np.float64)),
                                             da.from_array(lat[self.seen].astype(np.float64)))
            self.resampler.idxs = self.resampler.idxs.persist()     # project once, not twice per band

    def __call__(self, plane: np.ndarray) -> np.ndarray:
        """Mean of the finite pixels of ``plane`` (the navigation's shape) per label cell; NaN if none."""
        import dask.array as da

        with _synchronous():
            out = self.resampler.get_average(da.from_array(plane[self.seen].astype(np.float64))).compute()
        return np.asarray(out, np.float32).reshape(self.shape)


def nearest_label(label: np.ndarray, label_lat: np.ndarray, label_lon: np.ndarray, lat: np.ndarray,
                  lon: np.ndarray) -> np.ndarray:
    """The value of the label cell containing each pixel centre (NaN off the disk / outside)."""
    seen = np.isfinite(lat) & np.isfinite(lon)
    rows = np.full(lat.shape, -1, np.int64)
    cols = np.full(lat.shape, -1, np.int64)
    rows[seen] = cell_index(lat[seen], label_lat)
    cols[seen] = cell_index(lon[seen], label_lon, periodic=True)
    inside = (rows >= 0) & (cols >= 0)
    return np.where(inside, label[rows.clip(0), cols.clip(0)], np.nan).astype(np.float32)


def _synchronous():
    """Compute pyresample's dask graphs in this thread (one scan per single-thread Dask worker)."""
    import dask

    return dask.config.set(scheduler="synchronous")
