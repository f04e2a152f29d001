"""Readers of Himawari HSD, JAXA P-Tree NetCDF and GPM IMERG HDF5, on files in the exact real layouts."""

import bz2
import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from mtdense.domains.precip.himawari_hsd import (HSDError, assemble_segments, latlon_to_lines_columns,
                                       lines_columns_to_latlon, read_hsd_segment)
from mtdense.domains.precip.imerg import IMERGError, read_imerg
from mtdense.domains.precip.writers import imerg_name, write_imerg, write_ptree
from mtdense.domains.precip.ptree import PTreeError, read_ptree

REAL_IMERG = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "imerg_real_cut"
C, H, K = 2.99792458e8, 6.62606957e-34, 1.3806488e-23
T0 = dt.datetime(2020, 7, 1, 3, 0)
C0, C1, C2 = 1.2, 0.995, -3.0e-6          # non-identity rad->Tb correction
GAIN, OFFSET = -0.0019, 16.5               # negative gain: higher count = colder


# ---------------------------------------------------------------- HSD test-file writer
def _hdr(number, *fields, u4_length=False):
    return np.dtype([("hblock_number", "u1"), ("blocklength", "<u4" if u4_length else "<u2"), *fields])


def _mjd(t):
    return (t - dt.datetime(1858, 11, 17)).total_seconds() / 86400


def _block(dtype, tail=b"", **values):
    rec = np.zeros(1, dtype)
    for k, v in values.items():
        rec[k] = v
    return rec, tail


def write_hsd(path, tb, band=13, cwl=10.4, seg=5, nseg=10, error=(), outside=(), coff=2750.5):
    """An HSD IR segment with non-trivial calibration and multi-entry blocks 8-10 plus 40-byte spares
    (``coff``: the full-disk column of the sub-satellite point; 2750.5 in real 2 km files)."""
    nl, nc = tb.shape
    te = tb.astype(np.float64).copy()
    for _ in range(20):                                   # invert Tb = c0 + c1 Te + c2 Te^2
        te -= (C0 + C1 * te + C2 * te**2 - tb) / (C1 + 2 * C2 * te)
    lam = cwl * 1e-6
    rad = 2 * H * C**2 / lam**5 / np.expm1(H * C / (K * lam * te)) / 1e6
    counts = np.round((rad - OFFSET) / GAIN).astype("<u2")
    for r, c in error:
        counts[r, c] = 65535
    for r, c in outside:
        counts[r, c] = 65534
    first = (seg - 1) * nl + 1
    blocks = [
        _block(_hdr(1, ("total_number_of_hblocks", "<u2"), ("byte_order", "u1"), ("satellite", "S16"),
                    ("proc_center_name", "S16"), ("observation_area", "S4"), ("other", "S2"),
                    ("observation_timeline", "<u2"), ("start", "<f8"), ("end", "<f8"), ("created", "<f8"),
                    ("total_header_length", "<u4"), ("total_data_length", "<u4"), ("q", "u1", (4,)),
                    ("ver", "S32"), ("file_name", "S128"), ("spare", "S40")),
               total_number_of_hblocks=11, satellite=b"Himawari-9", observation_area=b"FLDK",
               observation_timeline=300, start=_mjd(T0), end=_mjd(T0) + 10 / 1440, total_data_length=counts.nbytes),
        _block(_hdr(2, ("bits", "<u2"), ("cols", "<u2"), ("lines", "<u2"), ("compression", "u1"), ("spare", "S40")),
               bits=16, cols=nc, lines=nl),
        _block(_hdr(3, ("sub_lon", "<f8"), ("CFAC", "<u4"), ("LFAC", "<u4"), ("COFF", "<f4"), ("LOFF", "<f4"),
                    ("dist", "<f8"), ("req", "<f8"), ("rpol", "<f8"), ("k", "<f8", (4,)), ("res", "<i2", (2,)),
                    ("spare", "S40")),
               sub_lon=140.7, CFAC=20466275, LFAC=20466275, COFF=coff, LOFF=2750.5, dist=42164.0,
               req=6378.137, rpol=6356.7523),
        _block(_hdr(4, ("nav", "<f8", (12,)), ("spare", "S40"))),
        _block(_hdr(5, ("band", "<u2"), ("cwl", "<f8"), ("valid_bits", "<u2"), ("count_error", "<u2"),
                    ("count_outside", "<u2"), ("gain", "<f8"), ("offset", "<f8"), ("c_rad2tb", "<f8", (3,)),
                    ("c_tb2rad", "<f8", (3,)), ("c", "<f8"), ("h", "<f8"), ("k", "<f8"), ("spare", "S40")),
               band=band, cwl=cwl, valid_bits=12, count_error=65535, count_outside=65534, gain=GAIN, offset=OFFSET,
               c_rad2tb=(C0, C1, C2), c_tb2rad=(0.0, 1.0, 0.0), c=C, h=H, k=K),
        _block(_hdr(6, ("gsics", "<f8", (8,)), ("lim", "<f4", (2,)), ("file", "S128"), ("spare", "S56"))),
        _block(_hdr(7, ("n_segments", "u1"), ("segment", "u1"), ("first_line", "<u2"), ("spare", "S40")),
               n_segments=nseg, segment=seg, first_line=first),
        _block(_hdr(8, ("rot_col", "<f4"), ("rot_line", "<f4"), ("rot", "<f8"), ("n", "<u2")),
               np.zeros(3, [("line", "<u2"), ("dc", "<f4"), ("dl", "<f4")]).tobytes() + b"\0" * 40, n=3),
        _block(_hdr(9, ("n", "<u2")),
               np.array([(first, _mjd(T0) + i / 1440) for i in range(3)], [("line", "<u2"), ("mjd", "<f8")]).tobytes()
               + b"\0" * 40, n=3),
        _block(_hdr(10, ("n", "<u2"), u4_length=True),
               np.array([(first, 2), (first + 1, 1)], [("line", "<u2"), ("count", "<u2")]).tobytes() + b"\0" * 40, n=2),
        _block(_hdr(11, ("spare", "S256"))),
    ]
    parts = []
    for number, (rec, tail) in enumerate(blocks, start=1):
        rec["hblock_number"], rec["blocklength"] = number, rec.nbytes + len(tail)
        parts.append([rec, tail])
    header_length = sum(rec.nbytes + len(tail) for rec, tail in parts)
    parts[0][0]["total_header_length"] = header_length
    payload = b"".join(rec.tobytes() + tail for rec, tail in parts) + counts.tobytes()
    Path(path).write_bytes(bz2.compress(payload) if str(path).endswith(".bz2") else payload)
    return header_length


BT = np.array([[195.0, 210.0, 223.4, 235.0], [250.0, 262.7, 280.0, 301.0], [230.0, 240.0, 255.5, 290.0]])


@pytest.mark.parametrize("name", ["HS_H09_20200701_0300_B13_FLDK_R20_S0510.DAT",
                                  "HS_H09_20200701_0300_B13_FLDK_R20_S0510.DAT.bz2"])
def test_hsd_brightness_temperature_recovered(tmp_path, name):
    write_hsd(tmp_path / name, BT, error=[(0, 0)], outside=[(2, 3)])
    seg = read_hsd_segment(tmp_path / name, band=13)
    expected = BT.copy()
    expected[0, 0] = expected[2, 3] = np.nan
    np.testing.assert_allclose(seg.bt, expected, atol=0.05)
    assert np.isnan(seg.bt[0, 0]) and np.isnan(seg.bt[2, 3])
    assert (seg.band, seg.segment, seg.n_segments, seg.first_line) == (13, 5, 10, 13)
    assert seg.wavelength_um == pytest.approx(10.4)
    assert seg.satellite == "Himawari-9"
    assert abs(seg.start_time - T0) < dt.timedelta(milliseconds=1)
    assert abs(seg.end_time - (T0 + dt.timedelta(minutes=10))) < dt.timedelta(milliseconds=1)
    assert [line for line, _ in seg.line_times] == [13, 13, 13] and len(seg.line_times) == 3
    assert seg.projection["CFAC"] == 20466275 and seg.projection["sub_lon"] == pytest.approx(140.7)


def test_hsd_calibration_uses_c0_c1_c2(tmp_path):
    """Without the header's c0/c1/c2 the BT would be off by ~0.3 K at 250 K: the reader applies them."""
    write_hsd(tmp_path / "a.DAT", BT)
    te = (250.0 - C0 - C2 * 250.0**2) / C1
    assert abs(te - 250.0) > 0.2
    assert read_hsd_segment(tmp_path / "a.DAT").bt[1, 0] == pytest.approx(250.0, abs=0.05)


def test_hsd_errors_name_the_file(tmp_path):
    path = tmp_path / "HS_H09_20200701_0300_B13_FLDK_R20_S0510.DAT"
    write_hsd(path, BT)
    with pytest.raises(HSDError, match="B13_FLDK.*band 14|requested band 14"):
        read_hsd_segment(path, band=14)
    cut = tmp_path / "cut.DAT"
    cut.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(HSDError, match=r"cut\.DAT: truncated"):
        read_hsd_segment(cut)
    head_only = tmp_path / "head.DAT"
    head_only.write_bytes(path.read_bytes()[:600])
    with pytest.raises(HSDError, match=r"head\.DAT: truncated HSD header"):
        read_hsd_segment(head_only)
    junk = tmp_path / "junk.DAT"
    junk.write_bytes(b"\x89HDF\r\n" + bytes(200))
    with pytest.raises(HSDError, match=r"junk\.DAT: not a Himawari Standard Data file"):
        read_hsd_segment(junk)


def test_hsd_assemble_segments(tmp_path):
    write_hsd(tmp_path / "s5.DAT", BT, seg=5)
    write_hsd(tmp_path / "s6.DAT", BT + 1.0, seg=6)
    write_hsd(tmp_path / "s8.DAT", BT, seg=8)
    s5, s6, s8 = (read_hsd_segment(tmp_path / f"s{i}.DAT") for i in (5, 6, 8))
    whole = assemble_segments([s6, s5])
    assert whole.bt.shape == (6, 4) and whole.first_line == 13
    np.testing.assert_allclose(whole.bt[3:], BT + 1.0, atol=0.05)
    with pytest.raises(HSDError, match="s8.DAT.*segment is missing"):
        assemble_segments([s5, s8])


def test_geostationary_projection():
    proj = dict(sub_lon=140.7, CFAC=20466275, LFAC=20466275, COFF=2750.5, LOFF=2750.5,
                dist=42164.0, req=6378.137, rpol=6356.7523)
    lat, lon = lines_columns_to_latlon(2750.5, 2750.5, proj)
    assert lat == pytest.approx(0.0, abs=1e-9) and lon == pytest.approx(140.7)
    # equator, 30 deg east of the sub-satellite point: plain triangle geometry
    req, dlam = 6378.137, np.deg2rad(30.0)
    x_deg = np.rad2deg(np.arctan(req * np.sin(dlam) / (42164.0 - req * np.cos(dlam))))
    line, col = latlon_to_lines_columns(0.0, 170.7, proj)
    assert col == pytest.approx(2750.5 + x_deg * 20466275 / 2**16, abs=1e-6) and line == pytest.approx(2750.5)
    lats, lons = np.array([35.0, -20.0, 60.0]), np.array([135.0, 110.0, 170.0])
    back = lines_columns_to_latlon(*latlon_to_lines_columns(lats, lons, proj), proj)
    np.testing.assert_allclose(back, (lats, lons), atol=1e-6)
    assert np.isnan(lines_columns_to_latlon(1.0, 1.0, proj)[0])          # corner of the image: space
    assert np.isnan(latlon_to_lines_columns(0.0, 140.7 + 120.0, proj)[1])  # far side of the earth


# ---------------------------------------------------------------- P-Tree
def test_ptree_packed_values_decoded(tmp_path):
    lat = 30.0 - 0.05 * np.arange(4)
    lon = 179.9 + 0.05 * np.arange(5)                                   # crosses the dateline: 180.05...
    rng = np.random.default_rng(0)
    tbb = {b: 200.0 + 100.0 * rng.random((4, 5)) for b in (8, 13, 15)}
    tbb[13][1, 2] = np.nan
    path = write_ptree(tmp_path / "NC_H09_20200701_0300_R21_FLDK.02401_02401.nc", tbb, lat, lon, T0)
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        raw = ds["tbb_13"][:]
        assert raw.dtype == np.int16 and raw[0, 0] == np.round((tbb[13][0, 0] - 273.15) / 0.01)
    scene = read_ptree(path, bands=(13, 8))
    assert scene.channel_names == ["B13", "B08"] and scene.bt.shape == (2, 4, 5)
    np.testing.assert_allclose(scene.bt[1], tbb[8], atol=0.006)
    assert np.isnan(scene.bt[0, 1, 2]) and np.nanmax(np.abs(scene.bt[0] - tbb[13])) < 0.006
    assert scene.lat[0] > scene.lat[-1] and scene.lon[-1] == pytest.approx(180.1, abs=1e-4)
    assert abs(scene.start_time - T0) < dt.timedelta(milliseconds=1)
    with pytest.raises(PTreeError,
                       match=r"NC_H09.*band 10 \(variable 'tbb_10'\) is missing; present: tbb_08, tbb_13, tbb_15"):
        read_ptree(path, bands=(8, 10))


def test_ptree_time_dimension_and_ascending_latitude(tmp_path):
    path = tmp_path / "asc.nc"
    with netCDF4.Dataset(path, "w") as ds:
        for name, n in (("time", 1), ("latitude", 3), ("longitude", 2)):
            ds.createDimension(name, n)
        ds.createVariable("latitude", "f4", ("latitude",))[:] = [10.0, 10.05, 10.1]     # ascending here
        ds.createVariable("longitude", "f4", ("longitude",))[:] = [120.0, 120.05]
        t = ds.createVariable("start_time", "f8", ("time",))
        t.units, t[:] = "days since 1858-11-17 0:0:0", _mjd(T0)
        v = ds.createVariable("tbb_13", "i2", ("time", "latitude", "longitude"))
        v.scale_factor, v.add_offset = np.float32(0.02), np.float32(250.0)
        v[:] = np.array([[[200.0, 202.0], [220.0, 222.0], [240.0, 242.0]]])
    scene = read_ptree(path, bands=[13])
    np.testing.assert_allclose(scene.lat, [10.1, 10.05, 10.0], atol=1e-5)
    np.testing.assert_allclose(scene.bt[0], [[240.0, 242.0], [220.0, 222.0], [200.0, 202.0]], atol=0.011)


# ---------------------------------------------------------------- IMERG
@pytest.mark.parametrize("version, variable", [("V07", "Grid/precipitation"), ("V06", "Grid/precipitationCal")])
def test_imerg_orientation_epoch_fill(tmp_path, version, variable):
    lat = np.array([20.05, 20.15, 20.25])                               # ascending, as in IMERG
    lon = np.array([130.05, 130.15])
    rr = np.array([[0.0, 1.5], [np.nan, 3.0], [7.25, 0.0]])               # row 0 = south
    start = dt.datetime(2020, 7, 1, 3, 30)
    path = write_imerg(tmp_path / imerg_name(start, version + "B"), rr, lat, lon, start, version)
    g = read_imerg(path)
    assert (g.version, g.variable) == (version, variable)
    np.testing.assert_allclose(g.lat, lat[::-1], atol=1e-5)
    np.testing.assert_array_equal(g.rain_rate, rr[::-1])                 # north-up, NaN where fill
    assert g.start_time == start and g.end_time == start + dt.timedelta(minutes=30)
    assert not g.all_missing
    assert read_imerg(path, "precipitation").variable == variable        # V06/V07 alias
    assert read_imerg(path, "IRprecipitation").variable.endswith("IRprecipitation")
    with pytest.raises(IMERGError, match=r"3B-HHR.*HDF5: variable 'snowfall' not found; available: .*IRprecipitation"):
        read_imerg(path, "snowfall")
    write_imerg(tmp_path / "empty.HDF5", np.full((3, 2), np.nan), lat, lon, start, version)
    assert read_imerg(tmp_path / "empty.HDF5").all_missing


def test_imerg_window_across_dateline(tmp_path):
    lat = np.array([-0.5, 0.5])
    lon = np.arange(-179.5, 180.0, 1.0)
    rr = np.tile(lon, (2, 1)).astype(np.float32)
    path = write_imerg(tmp_path / "g.HDF5", rr, lat, lon, T0)
    g = read_imerg(path, lat_range=(0.0, 1.0), lon_range=(178.0, 182.0))
    np.testing.assert_allclose(g.lon, [178.5, 179.5, 180.5, 181.5])
    np.testing.assert_allclose(g.rain_rate, [[178.5, 179.5, -179.5, -178.5]])
    assert g.lat.tolist() == [0.5]


@pytest.mark.skipif(not REAL_IMERG.is_dir(), reason="real IMERG samples not present")
def test_real_imerg_granules():
    v07 = read_imerg(next(REAL_IMERG.glob("*V07A.HDF5")))
    v06 = read_imerg(next(REAL_IMERG.glob("*V06B.HDF5")))
    start = dt.datetime(2000, 6, 1, 0, 0)
    assert v07.start_time == start and v06.start_time == start             # 1980 vs 1970 epochs
    assert v07.end_time == v06.end_time == start + dt.timedelta(minutes=30)
    assert (v07.version, v06.version) == ("V07", "V06")
    assert v07.rain_rate.shape == (10, 10)
    np.testing.assert_allclose(v07.lat, -89.05 - 0.1 * np.arange(10), atol=1e-4)   # north-up
    np.testing.assert_allclose(v07.lon, -179.95 + 0.1 * np.arange(10), atol=1e-4)
    assert np.isnan(v07.rain_rate[-3:]).all()                             # the 3 southernmost rows are fill
    assert (v07.rain_rate[:-3] == 0).all()
    assert v06.all_missing and not v07.all_missing
