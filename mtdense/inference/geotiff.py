"""GeoTIFF output of per-pixel products (masks, classes, probabilities) through rasterio.

Generic: any domain passes arrays with a CRS and an affine transform (GDAL convention: the
transform maps pixel corners, (col, row) → (x, y)); ``transform_from_centres`` derives it from
1-D coordinates of pixel centres of a regular grid (e.g. latitude descending, longitude
ascending). One band per array, band descriptions = array names, ``nodata`` recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from mtdense.errors import DataError


def transform_from_centres(x: np.ndarray, y: np.ndarray):
    """``rasterio`` affine transform of a regular grid given its pixel-centre coordinates."""
    from affine import Affine  # rasterio's transform type

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2 or y.size < 2:
        raise DataError(f"a GeoTIFF grid needs at least 2×2 pixels, got {y.size}×{x.size}")
    dx, dy = (x[-1] - x[0]) / (x.size - 1), (y[-1] - y[0]) / (y.size - 1)   # mean spacing: robust to float32 centres
    regular = np.allclose(np.diff(x), dx, atol=1e-3 * abs(dx)) and np.allclose(np.diff(y), dy, atol=1e-3 * abs(dy))
    if not regular or dx <= 0 or dy >= 0:
        raise DataError("GeoTIFF needs a regular grid with x ascending and y descending (north-up); "
                        "resample the product to a regular grid first")
    return Affine(dx, 0.0, x[0] - dx / 2, 0.0, dy, y[0] - dy / 2)


def write_geotiff(path: str | Path, bands: Mapping[str, np.ndarray], crs: str, transform, nodata: float | int | None = None,
                  dtype: str | None = None, tags: Mapping[str, str] | None = None) -> Path:
    """Write ``bands`` ({name: H×W}) as one multi-band, deflate-compressed GeoTIFF."""
    import rasterio

    from mtdense.atomic_write import atomic_path

    arrays = [np.asarray(a) for a in bands.values()]
    if not arrays or len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise DataError(f"{path}: GeoTIFF bands must be H×W arrays of one shape, got {[a.shape for a in arrays]}")
    dtype = dtype or np.result_type(*arrays).name
    path = Path(path)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", height=arrays[0].shape[0], width=arrays[0].shape[1],
                           count=len(arrays), dtype=dtype, crs=crs, transform=transform, nodata=nodata,
                           compress="deflate") as dst:
            for i, (name, array) in enumerate(zip(bands, arrays), start=1):
                dst.write(array.astype(dtype), i)
                dst.set_band_description(i, name)
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
    return path
