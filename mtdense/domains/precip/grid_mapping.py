"""CF grid mappings (CF-1.8 §5.6, Appendix F) of the grids products are written on, through pyproj.

* ``geostationary``: the native AHI grid of HSD input, from the header's projection block —
  perspective point height h = distance from the earth centre − equatorial radius, the header's
  ellipsoid (equatorial and polar radii), ``longitude_of_projection_origin`` = sub-satellite
  longitude, and ``sweep_angle_axis = "y"``: the HSD navigation follows the CGMS LRIT/HRIT
  scanning geometry (Meteosat's; GOES-R ABI is ``"x"``). Projection coordinates are PROJ
  ``geos`` metres, scan angle (rad) × h, x eastward and y northward (``projection_coordinates``),
  the form pyproj, cartopy's ``Geostationary``, GDAL and pyresample (satpy's areas) use.
* ``latitude_longitude``: regular latitude/longitude grids (P-Tree), WGS 84 (EPSG:4326).

The attributes are pyproj's ``CRS.to_cf()`` (including ``crs_wkt``, which GDAL reads); ``crs_of`` turns them back into a CRS (``pyproj.CRS.from_cf``), e.g. for GeoTIFF.
"""

from __future__ import annotations

import numpy as np

from mtdense.domains.precip.himawari_hsd import scan_angles

NAMES = ("reference_ellipsoid_name", "prime_meridian_name", "horizontal_datum_name")


def _cf(crs) -> dict:
    """CF grid-mapping attributes of a pyproj CRS; names pyproj reports as "unknown" are left out,
    and the ellipsoid, prime meridian and datum names come all three or not at all (CF §5.6)."""
    attrs = {k: v for k, v in crs.to_cf().items() if v != "unknown"}
    if not all(k in attrs for k in NAMES):
        attrs = {k: v for k, v in attrs.items() if k not in NAMES}
    return attrs


def perspective_point_height(projection: dict) -> float:
    """Height of the satellite above the equator (m) from an HSD projection block (km)."""
    return (projection["dist"] - projection["req"]) * 1e3


def geostationary_grid_mapping(projection: dict) -> dict:
    """CF ``geostationary`` grid mapping of an HSD projection block (``HSDSegment.projection``)."""
    from pyproj import CRS

    return _cf(CRS.from_dict({"proj": "geos", "h": perspective_point_height(projection),
                              "a": projection["req"] * 1e3, "b": projection["rpol"] * 1e3,
                              "lon_0": projection["sub_lon"], "sweep": "y", "units": "m"}))


def projection_coordinates(lines: np.ndarray, columns: np.ndarray, projection: dict) -> tuple[np.ndarray, np.ndarray]:
    """Geostationary projection coordinates (m) of full-disk line/column numbers: x of the columns
    (eastward), y of the lines (northward, so descending down the image)."""
    h = perspective_point_height(projection)
    x = scan_angles(0.0, columns, projection)[0]
    y = scan_angles(lines, 0.0, projection)[1]
    return x * h, -y * h


def latitude_longitude_grid_mapping() -> dict:
    """CF ``latitude_longitude`` grid mapping on WGS 84 (EPSG:4326)."""
    from pyproj import CRS

    return _cf(CRS.from_epsg(4326))


def crs_of(grid_mapping: dict):
    """The ``pyproj.CRS`` of CF grid-mapping attributes."""
    from pyproj import CRS

    return CRS.from_cf(dict(grid_mapping))
