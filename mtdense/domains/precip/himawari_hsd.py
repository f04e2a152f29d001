"""Himawari-8/9 AHI Himawari Standard Data (HSD) segment reader for the infrared bands.

Follows the JMA "Himawari Standard Data User's Guide" (v1.3): 11 header blocks, each
starting with its number (u1) and its own length (u2; u4 for block 10), followed by the
uint16 count image. The reader walks the blocks by their ``blocklength`` fields, never by
structure sizes, so spare bytes and the variable-length blocks 8-10 are skipped correctly.

Calibration (guide section 5, IR bands 7-16):
    L  = gain * count + offset                               [W m-2 sr-1 um-1]
    Te = (h c / k lambda) / ln(2 h c^2 / (L 1e6 lambda^5) + 1)  (Planck inverse, lambda in m)
    Tb = c0 + c1 Te + c2 Te^2
with gain, offset, c0..c2, c, h, k and the central wavelength all taken from the header
(the gain's sign is never assumed). Error and outside-scan counts become NaN.

Geolocation uses the geostationary line/column <-> lat/lon formulas of the same guide
(section 4.4.4, after CGMS LRIT/HRIT Global Specification 4.4) with the header's
CFAC/LFAC/COFF/LOFF, sub-satellite longitude, distance and earth radii.
"""

from __future__ import annotations

import bz2
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from mtdense.errors import DataError

MJD_EPOCH = dt.datetime(1858, 11, 17)
N_HEADER_BLOCKS = 11
_IR_BANDS = range(7, 17)


class HSDError(DataError):
    """An HSD file that is not readable as a Himawari Standard Data IR segment."""


def _fields(bo: str, *spec: tuple) -> np.dtype:
    return np.dtype([(name, bo + code if code[0] in "uif" else code, *rest) for name, code, *rest in spec])


def _block_dtypes(bo: str) -> dict[int, np.dtype]:
    """Fixed leading fields of each block (after number + length) that the reader uses."""
    return {
        1: _fields(bo, ("total_number_of_hblocks", "u2"), ("byte_order", "u1"), ("satellite", "S16"),
                   ("proc_center_name", "S16"), ("observation_area", "S4"), ("other_observation_info", "S2"),
                   ("observation_timeline", "u2"), ("observation_start_time", "f8"),
                   ("observation_end_time", "f8"), ("file_creation_time", "f8"),
                   ("total_header_length", "u4"), ("total_data_length", "u4")),
        2: _fields(bo, ("bits_per_pixel", "u2"), ("number_of_columns", "u2"), ("number_of_lines", "u2"),
                   ("compression", "u1")),
        3: _fields(bo, ("sub_lon", "f8"), ("CFAC", "u4"), ("LFAC", "u4"), ("COFF", "f4"), ("LOFF", "f4"),
                   ("distance_from_earth_center", "f8"), ("earth_equatorial_radius", "f8"),
                   ("earth_polar_radius", "f8")),
        5: _fields(bo, ("band_number", "u2"), ("central_wave_length", "f8"), ("valid_bits", "u2"),
                   ("count_error", "u2"), ("count_outside", "u2"), ("gain", "f8"), ("offset", "f8"),
                   ("c_rad2tb", "f8", (3,)), ("c_tb2rad", "f8", (3,)), ("c", "f8"), ("h", "f8"), ("k", "f8")),
        7: _fields(bo, ("n_segments", "u1"), ("segment", "u1"), ("first_line", "u2")),
        9: _fields(bo, ("n_times", "u2")),
    }


@dataclass
class HSDSegment:
    """Brightness temperatures (K, NaN = error/outside-scan) of one segment and its header."""

    bt: np.ndarray                      # (lines, columns) float32
    path: str
    satellite: str
    band: int
    wavelength_um: float
    start_time: dt.datetime
    end_time: dt.datetime
    segment: int
    n_segments: int
    first_line: int                     # 1-based full-disk line number of bt[0]
    projection: dict = field(default_factory=dict)   # sub_lon, CFAC, LFAC, COFF, LOFF, dist, req, rpol
    line_times: list = field(default_factory=list)   # (line, datetime) from block 9


def _mjd(value: float) -> dt.datetime:
    return MJD_EPOCH + dt.timedelta(days=float(value))


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return bz2.decompress(raw) if path.suffix == ".bz2" else raw
    except (OSError, EOFError, ValueError) as exc:  # bz2: a truncated stream is a ValueError
        raise HSDError(f"{path}: cannot read HSD file ({exc}); check the path and that the download is complete"
                       ) from exc


def _walk_blocks(buf: bytes, path: Path) -> tuple[dict[int, int], str, int]:
    """Start offset of each header block (by its own blocklength), byte order and header end."""
    if len(buf) < 6 or buf[0] != 1:
        raise HSDError(f"{path}: not a Himawari Standard Data file (first header block number is not 1)")
    bo = "<" if buf[5] == 0 else ">"
    starts, pos = {}, 0
    for number in range(1, N_HEADER_BLOCKS + 1):
        if pos + 5 > len(buf):
            raise HSDError(f"{path}: truncated HSD header (ends inside block {number}); re-download the file")
        if buf[pos] != number:
            raise HSDError(f"{path}: not a valid HSD file (expected header block {number} at byte {pos}, "
                           f"found {buf[pos]})")
        length_type = bo + ("u4" if number == 10 else "u2")
        length = int(np.frombuffer(buf, length_type, 1, pos + 1)[0])
        if length < 3:
            raise HSDError(f"{path}: corrupt HSD header (block {number} has length {length})")
        starts[number] = pos
        pos += length
    return starts, bo, pos


def _block(buf: bytes, starts: dict, number: int, dtypes: dict, path: Path) -> np.void:
    offset = starts[number] + 3
    dtype = dtypes[number]
    if offset + dtype.itemsize > len(buf):
        raise HSDError(f"{path}: truncated HSD header in block {number}; re-download the file")
    return np.frombuffer(buf, dtype, 1, offset)[0]


def _brightness_temperature(counts: np.ndarray, cal: np.void) -> np.ndarray:
    radiance = cal["gain"] * counts.astype(np.float64) + cal["offset"]
    lam = cal["central_wave_length"] * 1e-6
    c, h, k = cal["c"], cal["h"], cal["k"]
    with np.errstate(invalid="ignore", divide="ignore"):
        te = (h * c / (k * lam)) / np.log1p(2 * h * c**2 / (radiance * 1e6 * lam**5))
    te[radiance <= 0] = np.nan
    c0, c1, c2 = cal["c_rad2tb"]
    bt = c0 + c1 * te + c2 * te**2
    bt[(counts == cal["count_error"]) | (counts == cal["count_outside"])] = np.nan
    return bt.astype(np.float32)


def read_hsd_segment(path: str | Path, band: int | None = None) -> HSDSegment:
    """Read one HSD IR segment (``.DAT`` or ``.DAT.bz2``) to brightness temperature.

    ``band``: if given, the header's band number must match (else ``HSDError``).
    """
    path = Path(path)
    buf = _read_bytes(path)
    starts, bo, header_end = _walk_blocks(buf, path)
    dtypes = _block_dtypes(bo)
    basic, data, proj, cal, seg = (_block(buf, starts, n, dtypes, path) for n in (1, 2, 3, 5, 7))
    file_band = int(cal["band_number"])
    if band is not None and file_band != band:
        raise HSDError(f"{path}: holds AHI band {file_band}, not the requested band {band}; pick the B{band:02d} file")
    if file_band not in _IR_BANDS:
        raise HSDError(f"{path}: band {file_band} is a visible/near-IR band; this reader handles IR bands 7-16")
    if int(data["compression"]) != 0:
        raise HSDError(f"{path}: compressed HSD image (flag {int(data['compression'])}) is not supported")
    if int(data["bits_per_pixel"]) != 16:
        raise HSDError(f"{path}: {int(data['bits_per_pixel'])} bits per pixel; HSD IR images are 16-bit")
    declared_end = int(basic["total_header_length"])
    if declared_end != header_end:
        raise HSDError(f"{path}: header blocks end at byte {header_end} but block 1 says {declared_end}; corrupt file")
    nl, nc = int(data["number_of_lines"]), int(data["number_of_columns"])
    if len(buf) < header_end + 2 * nl * nc:
        raise HSDError(
            f"{path}: truncated HSD file: image needs {2 * nl * nc} bytes after the {header_end}-byte header, "
            f"found {len(buf) - header_end}; re-download the file"
        )
    counts = np.frombuffer(buf, bo + "u2", nl * nc, header_end).reshape(nl, nc)
    n_times = int(_block(buf, starts, 9, dtypes, path)["n_times"])
    if 5 + 10 * n_times > starts[10] - starts[9]:
        raise HSDError(f"{path}: corrupt HSD block 9 ({n_times} observation times do not fit its length)")
    entries = np.frombuffer(buf, np.dtype([("line", bo + "u2"), ("mjd", bo + "f8")]), n_times, starts[9] + 5)
    projection = {
        "sub_lon": float(proj["sub_lon"]), "CFAC": int(proj["CFAC"]), "LFAC": int(proj["LFAC"]),
        "COFF": float(proj["COFF"]), "LOFF": float(proj["LOFF"]),
        "dist": float(proj["distance_from_earth_center"]),
        "req": float(proj["earth_equatorial_radius"]), "rpol": float(proj["earth_polar_radius"]),
    }
    return HSDSegment(
        bt=_brightness_temperature(counts, cal),
        path=str(path),
        satellite=basic["satellite"].split(b"\0")[0].decode("ascii", "replace"),
        band=file_band,
        wavelength_um=float(cal["central_wave_length"]),
        start_time=_mjd(basic["observation_start_time"]),
        end_time=_mjd(basic["observation_end_time"]),
        segment=int(seg["segment"]),
        n_segments=int(seg["n_segments"]),
        first_line=int(seg["first_line"]),
        projection=projection,
        line_times=[(int(e["line"]), _mjd(e["mjd"])) for e in entries],
    )


def assemble_segments(segments: Sequence[HSDSegment]) -> HSDSegment:
    """Stack consecutive segments of one band and time into one image (ordered by first line)."""
    if not segments:
        raise HSDError("assemble_segments: no segments given")
    ordered = sorted(segments, key=lambda s: s.first_line)
    head = ordered[0]
    for prev, cur in zip(ordered, ordered[1:]):
        if (cur.band, cur.start_time) != (head.band, head.start_time):
            raise HSDError(f"{cur.path}: band {cur.band} at {cur.start_time} does not match {head.path} "
                           f"(band {head.band} at {head.start_time}); assemble one band and one time only")
        if cur.first_line != prev.first_line + prev.bt.shape[0]:
            raise HSDError(f"{cur.path}: segment starts at line {cur.first_line}, expected "
                           f"{prev.first_line + prev.bt.shape[0]} after {prev.path}; a segment is missing")
    return HSDSegment(
        bt=np.concatenate([s.bt for s in ordered]), path=head.path, satellite=head.satellite, band=head.band,
        wavelength_um=head.wavelength_um, start_time=head.start_time, end_time=ordered[-1].end_time,
        segment=head.segment, n_segments=head.n_segments, first_line=head.first_line,
        projection=head.projection, line_times=[t for s in ordered for t in s.line_times],
    )


def scan_angles(lines, columns, projection: dict) -> tuple[np.ndarray, np.ndarray]:
    """CGMS intermediate coordinates (x, y) in radians of full-disk line/column numbers (1-based):
    x = (column - COFF) / (CFAC 2^-16) deg, eastward; y = (line - LOFF) / (LFAC 2^-16) deg, southward."""
    p = projection
    x = np.deg2rad((np.asarray(columns, np.float64) - p["COFF"]) / (p["CFAC"] * 2.0**-16))
    y = np.deg2rad((np.asarray(lines, np.float64) - p["LOFF"]) / (p["LFAC"] * 2.0**-16))
    return x, y


def lines_columns_to_latlon(lines, columns, projection: dict) -> tuple[np.ndarray, np.ndarray]:
    """Geodetic lat/lon (deg) of full-disk line/column numbers (1-based); NaN off the earth disk."""
    p = projection
    x, y = scan_angles(lines, columns, p)
    ratio = (p["req"] / p["rpol"]) ** 2
    h = p["dist"]
    cos_x, cos_y, sin_y = np.cos(x), np.cos(y), np.sin(y)
    disc = (h * cos_x * cos_y) ** 2 - (cos_y**2 + ratio * sin_y**2) * (h**2 - p["req"] ** 2)
    with np.errstate(invalid="ignore"):
        sd = np.sqrt(disc)
    sn = (h * cos_x * cos_y - sd) / (cos_y**2 + ratio * sin_y**2)
    s1 = h - sn * cos_x * cos_y
    s2 = sn * np.sin(x) * cos_y
    s3 = -sn * sin_y
    lat = np.rad2deg(np.arctan(ratio * s3 / np.hypot(s1, s2)))
    lon = (np.rad2deg(np.arctan(s2 / s1)) + p["sub_lon"] + 180.0) % 360.0 - 180.0
    off_disk = ~(disc >= 0)
    return np.where(off_disk, np.nan, lat), np.where(off_disk, np.nan, lon)


def latlon_to_lines_columns(lat, lon, projection: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fractional full-disk line/column of geodetic lat/lon (deg); NaN where not seen by the satellite."""
    p = projection
    e2 = 1.0 - (p["rpol"] / p["req"]) ** 2
    phi = np.arctan((1.0 - e2) * np.tan(np.deg2rad(np.asarray(lat, np.float64))))
    dlon = np.deg2rad(np.asarray(lon, np.float64) - p["sub_lon"])
    re = p["rpol"] / np.sqrt(1.0 - e2 * np.cos(phi) ** 2)
    r1 = p["dist"] - re * np.cos(phi) * np.cos(dlon)
    r2 = -re * np.cos(phi) * np.sin(dlon)
    r3 = re * np.sin(phi)
    x = np.rad2deg(np.arctan(-r2 / r1))
    y = np.rad2deg(np.arcsin(-r3 / np.sqrt(r1**2 + r2**2 + r3**2)))
    visible = r1 * (r1 - p["dist"]) + r2**2 + r3**2 * (p["req"] / p["rpol"]) ** 2 <= 0  # in front of the limb
    columns = p["COFF"] + x * p["CFAC"] * 2.0**-16
    lines = p["LOFF"] + y * p["LFAC"] * 2.0**-16
    return np.where(visible, lines, np.nan), np.where(visible, columns, np.nan)
