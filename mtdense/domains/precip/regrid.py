"""Regridding between regular lat/lon grids (AHI P-Tree 0.05/0.02 deg <-> IMERG 0.1 deg).

Both directions use the index of the target cell that contains each source pixel centre:
* area (block) mean, source -> coarser target: every finite source pixel whose centre lies in a
  target cell contributes equally to that cell's mean (cells with none are NaN);
* nearest, coarse -> finer target: each target pixel takes the value of the coarse cell that
  contains its centre (equivalent to nearest centre on a regular grid).
A centre exactly on a cell edge goes to the next cell in the grid's order (south / east); the
tolerance of 1e-3 cell absorbs float32 coordinate rounding. Longitudes are compared modulo 360,
so 0-360 (P-Tree) and -180..180 (IMERG) conventions mix freely.
"""

from __future__ import annotations

import numpy as np

_EDGE_TOL = 1e-3


def cell_index(coords: np.ndarray, centres: np.ndarray, periodic: bool = False) -> np.ndarray:
    """Index of the ``centres`` cell (regular grid) containing each coordinate; -1 outside.

    ``periodic``: longitudes; compared modulo 360 (the grid must then be ascending).
    """
    centres = np.asarray(centres, np.float64)
    step = (centres[-1] - centres[0]) / (centres.size - 1) if centres.size > 1 else 1.0
    edge0 = centres[0] - step / 2
    delta = np.asarray(coords, np.float64) - edge0
    if periodic:
        delta = delta % 360.0
    idx = np.floor(delta / step + _EDGE_TOL).astype(np.int64)
    idx[(idx < 0) | (idx >= centres.size)] = -1
    return idx


def block_mean(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Mean of finite ``image`` pixels (C, H, W) per target cell given per-row/column cell indices."""
    n_out = out_shape[0] * out_shape[1]
    target = rows[:, None] * out_shape[1] + cols[None, :]
    inside = (rows[:, None] >= 0) & (cols[None, :] >= 0)
    out = np.full((image.shape[0], n_out), np.nan, np.float32)
    for c, plane in enumerate(image):
        use = inside & np.isfinite(plane)
        sums = np.bincount(target[use], weights=plane[use], minlength=n_out)
        counts = np.bincount(target[use], minlength=n_out)
        np.divide(sums, counts, out=out[c], where=counts > 0, casting="unsafe")
    return out.reshape(image.shape[0], *out_shape)


def nearest(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``values`` (H, W) sampled at target rows/cols given as source cell indices; NaN where -1."""
    out = values[np.clip(rows, 0, None)][:, np.clip(cols, 0, None)].astype(np.float32)
    out[rows < 0] = np.nan
    out[:, cols < 0] = np.nan
    return out
