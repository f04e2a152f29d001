"""Single-band GeoTIFF/TIFF reading with rasterio (GDAL), errors that name the file.

Both cloud datasets store one band per file; rasterio reads PackBits (38-Cloud), deflate/LZW
(On Cloud N) and keeps CRS and affine transform. Truncated or non-TIFF files, multi-band files
and wrong shapes become one-line ``DataError`` s naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtdense.errors import DataError


def read_band(path: str | Path, expect_shape: tuple[int, int] | None = None, what: str = "band") -> tuple[np.ndarray, dict]:
    """(array H×W, {"crs", "transform", "nodata"}) of a single-band raster file."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing {what} file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # 38-Cloud patches carry no georeference
            src = rasterio.open(path)
        with src:
            if src.count != 1:
                raise DataError(f"{path}: {what} must be a single-band raster, found {src.count} bands")
            array = src.read(1)
            geo = {"crs": src.crs.to_string() if src.crs else None, "transform": tuple(src.transform)[:6],
                   "nodata": src.nodata}
    except RasterioError as exc:
        raise DataError(f"{path}: unreadable or truncated {what} TIFF ({exc})") from None
    if expect_shape is not None and array.shape != tuple(expect_shape):
        raise DataError(f"{path}: {what} is {array.shape[0]}×{array.shape[1]}, the other files of this sample "
                        f"are {expect_shape[0]}×{expect_shape[1]}")
    return array, geo


def binary_mask(array: np.ndarray, path: str | Path) -> np.ndarray:
    """0/255 or 0/1 label → uint8 0/1; any other value is a ``DataError``."""
    values = np.unique(array)
    if np.isin(values, (0, 1)).all():
        return array.astype(np.uint8)
    if np.isin(values, (0, 255)).all():
        return (array == 255).astype(np.uint8)
    bad = [int(v) for v in values if v not in (0, 1, 255)][:5]
    raise DataError(f"{path}: cloud mask must hold only 0/255 or 0/1, found values {bad or [int(v) for v in values[:5]]}")
