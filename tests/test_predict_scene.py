"""Whole scenes through a trained precipitation model: ``mtdense predict-scene`` → CF NetCDF."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
import xarray as xr
from pyproj import CRS, Transformer

import mtdense
from conftest import ROOT, tiny_data_overrides
from mtdense.cli import main
from mtdense.config import load_config
from mtdense.domains.precip.scene_input import read_scene_input
from mtdense.domains.precip.writers import ptree_name, write_ptree
from mtdense.engine.trainer import Trainer

START = dt.datetime(2020, 7, 1, 3, 0)


def _cf18_violations(path) -> dict[str, str]:
    """Variables whose netCDF type CF-1.8 §2.2 does not allow (char, byte, short, int, float, double),
    and coordinate variables with a ``_FillValue`` (§2.5.1)."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        found = {n: v.dtype.str[1:] for n, v in nc.variables.items() if v.dtype.str[1:] not in ("i1", "i2", "i4", "f4", "f8")}
        found.update({n: "_FillValue" for n in nc.dimensions if n in nc.variables and "_FillValue" in nc[n].ncattrs()})
    return found


def _scene_file(folder, height=80, width=100, seed=0, hole=True):
    """A P-Tree file larger than the 16×16 training tiles, with a block of missing pixels."""
    rng = np.random.default_rng(seed)
    lat = np.round(30.0 - 0.05 * np.arange(height), 4)
    lon = np.round(178.0 + 0.05 * np.arange(width), 4)              # crosses the dateline: values past 180
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    cold = 290.0 - 80.0 * np.exp(-((yy - 0.5) ** 2 + (xx - 0.4) ** 2) / 0.02)
    tbb = {b: (cold - 2.0 * (b - 8) + rng.normal(0, 0.3, cold.shape)).astype(np.float32) for b in range(8, 17)}
    if hole:
        for v in tbb.values():
            v[5:9, 10:14] = np.nan
    decoy = rng.normal(250, 20, cold.shape).astype(np.float32)
    return write_ptree(folder / ptree_name(START, shape=(height, width)), tbb, lat, lon, START,
                       extra={"decoy_01": decoy}, synthetic=True), lat, lon


def test_predict_scene_writes_cf_netcdf_on_the_scene_grid(precip_run, tmp_path):
    path, lat, lon = _scene_file(tmp_path)
    assert main(["predict-scene", str(precip_run), str(path), "--out", str(tmp_path / "out"), "--window", "32",
                 "--overlap", "0.5", "--geotiff"]) == 0
    written = tmp_path / "out" / (path.stem + "_mtdense.nc")
    with xr.open_dataset(written) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert "SYNTHETIC" in ds.attrs["title"] and "decoy_01" in ds.attrs["input_channels"]
        assert len(ds.attrs["checkpoint_sha256"]) == 64 and ds.attrs["input_files"] == path.name
        assert ds.attrs["mtdense_version"] == mtdense.__version__
        rate, prob, cls = ds["rain_rate"], ds["rain_class_probability"], ds["rain_class"]
        assert rate.dims == ("time", "lat", "lon") and rate.shape == (1, 80, 100)
        np.testing.assert_allclose(ds["lat"].values, lat, atol=1e-4)
        np.testing.assert_allclose(ds["lon"].values, lon, atol=1e-4)
        assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["units"] == "degrees_east"
        assert ds["time"].values[0] == np.datetime64(START)
        assert rate.attrs["standard_name"] == "lwe_precipitation_rate" and rate.attrs["units"] == "mm h-1"
        assert rate.encoding["_FillValue"] == -9999.0 and cls.encoding["_FillValue"] == -1
        assert list(cls.attrs["flag_values"]) == [0, 1]
        assert cls.attrs["flag_meanings"] == "below_0.1_mm_h-1 at_or_above_0.1_mm_h-1"
        # the missing input block is fill in every product, everything else is a valid value
        assert np.isnan(rate.values[0, 5:9, 10:14]).all() and np.isnan(prob.values[0, 5:9, 10:14]).all()
        assert np.isnan(cls.values[0, 5:9, 10:14]).all()
        valid = np.ones((80, 100), bool)
        valid[5:9, 10:14] = False
        assert np.isfinite(rate.values[0][valid]).all() and (rate.values[0][valid] >= 0).all()
        assert ((prob.values[0][valid] >= 0) & (prob.values[0][valid] <= 1)).all()
        # the hard gate: rain only where the class says rain
        assert np.all((rate.values[0][valid] > 0) <= (cls.values[0][valid] == 1))
        # CF grid mapping: latitude_longitude on WGS 84, named by every data variable
        assert all(ds[v].attrs["grid_mapping"] == "crs" for v in ("rain_rate", "rain_class_probability", "rain_class"))
        assert ds["crs"].attrs["grid_mapping_name"] == "latitude_longitude"
        assert CRS.from_cf(ds["crs"].attrs).to_epsg() == 4326
    assert _cf18_violations(written) == {}
    with xr.open_dataset(written, mask_and_scale=False) as raw:
        assert raw["rain_rate"].values[0, 6, 11] == -9999.0 and raw["rain_class"].dtype == np.int8
        classes = raw["rain_class"].values[0]
    import rasterio

    with rasterio.open(written.with_suffix(".tif")) as tif:
        assert tif.crs.to_epsg() == 4326 and tif.nodata == 255 and tif.descriptions == ("rain_class",)
        # pixel (0, 0) centre is (lon[0], lat[0]); pixels are 0.05° squares
        assert tif.transform.a == pytest.approx(0.05) and tif.transform.e == pytest.approx(-0.05)
        assert tif.xy(0, 0) == pytest.approx((lon[0], lat[0]), abs=1e-6)
        band = tif.read(1)
        assert (band[5:9, 10:14] == 255).all()
        np.testing.assert_array_equal(band[classes >= 0], classes[classes >= 0])


def test_blended_scene_equals_one_forward_pass_when_it_fits_one_window(precip_run, tmp_path):
    path, _, _ = _scene_file(tmp_path, height=48, width=48, seed=1, hole=False)
    predictor = mtdense.load(precip_run)
    scene = read_scene_input(path, predictor.channel_names)
    blended = predictor.predict_scene(scene.data, window=48, overlap=0.5)
    single = predictor.predict(scene.data)
    np.testing.assert_allclose(blended["rain_rate"], single["rain_rate"], atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(blended["rain_class"], single["rain_class"])


def test_array_and_xarray_inputs_give_the_ptree_result(precip_run, tmp_path):
    path, lat, lon = _scene_file(tmp_path, height=40, width=56, seed=2, hole=False)
    predictor = mtdense.load(precip_run)
    names = predictor.channel_names
    from_file = read_scene_input(path, names)
    da = xr.DataArray(from_file.data, dims=("channel", "lat", "lon"),
                      coords={"channel": names, "lat": lat, "lon": lon})
    from_da = read_scene_input(da.isel(channel=slice(None, None, -1)), names)      # channel order restored
    np.testing.assert_array_equal(from_da.data, from_file.data)
    np.testing.assert_allclose(from_da.lat, lat)
    from_ds = read_scene_input(da.to_dataset(dim="channel"), names)
    np.testing.assert_array_equal(from_ds.data, from_file.data)
    a = predictor.predict_scene(from_file.data, window=32, overlap=0.25)
    b = predictor.predict_scene(np.asarray(from_da.data), window=32, overlap=0.25)
    np.testing.assert_array_equal(a["rain_rate"], b["rain_rate"])


def test_missing_channel_is_a_one_line_error(precip_run, tmp_path, capsys):
    da = xr.DataArray(np.zeros((2, 8, 8), np.float32), dims=("channel", "y", "x"), coords={"channel": ["B08", "B09"]})
    with pytest.raises(mtdense.errors.DataError, match="B10"):
        read_scene_input(da, mtdense.load(precip_run).channel_names)
    assert main(["predict-scene", str(precip_run), str(tmp_path / "nope.nc"), "--out", str(tmp_path)]) != 0
    assert "nope.nc: no such file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_band_run(tiny_domain_data, tmp_path_factory):
    """MTCF on B13 + B15 only (channels an HSD user has), one tiny epoch."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("two_band_run")
    path = ROOT / "configs" / "precip" / "mtcf.yaml"
    cfg = load_config(path, tiny_data_overrides(load_config(path), tiny_domain_data)
                      + [f"data.{s}.bands=[B13,B15]" for s in ("train", "val", "test")]
                      + ["trainer.max_epochs=1", "trainer.warmup_steps=0", "data.batch_size=4",
                         "logging.loggers=[]", f"trainer.out_dir={out}"])
    Trainer(cfg).fit()
    return out


def test_hsd_segments_give_2d_coordinates_and_space_is_fill(two_band_run, tmp_path):
    from test_precip_readers import write_hsd

    # segment 86 of 32 lines × 40 columns: full-disk lines 2721-2752 (the equator), columns 1-40
    # (the western limb, ≈ column 33): deep space on the left, earth on the right
    rng = np.random.default_rng(0)
    files = []
    for band, cwl in ((13, 10.4), (15, 12.4)):
        f = tmp_path / f"HS_H09_20200701_0300_B{band}_FLDK_R20_S8610.DAT"
        write_hsd(f, rng.uniform(220, 290, (32, 40)), band=band, cwl=cwl, seg=86, nseg=10)
        files.append(str(f))
    assert main(["predict-scene", str(two_band_run), *files, "--out", str(tmp_path / "out"),
                 "--window", "32"]) == 0
    with xr.open_dataset(tmp_path / "out" / "HS_H09_20200701_0300_mtdense.nc") as ds:
        rate = ds["rain_rate"]
        assert rate.dims == ("time", "y", "x") and rate.shape == (1, 32, 40)
        assert ds["latitude"].dims == ("y", "x") and ds["longitude"].attrs["units"] == "degrees_east"
        assert "latitude longitude" in rate.encoding.get("coordinates", "") or set(rate.coords) >= {"latitude", "longitude"}
        space = ~np.isfinite(ds["latitude"].values)
        assert space[:, 0].all() and not space[:, -1].any()           # limb between column 1 and 40
        assert abs(float(np.nanmean(ds["latitude"].values))) < 1.0      # the segment sits on the equator
        assert np.isnan(rate.values[0][space]).all() and np.isfinite(rate.values[0][~space]).all()
        assert "B13=10.40" in ds.attrs["input_channel_wavelengths_um"]
        assert ds["time"].values[0] == np.datetime64(START)



def test_hsd_products_carry_the_geostationary_grid_mapping(two_band_run, tmp_path):
    import rasterio
    from pyresample.utils.cf import load_cf_area
    from test_precip_readers import write_hsd

    from mtdense.domains.precip.himawari_hsd import lines_columns_to_latlon, read_hsd_segment

    # segment 30 of 32 lines × 40 columns: full-disk lines 929-960, columns 3501-3540 (COFF shifted
    # by 3500), about 36-37°N, 158-160°E: far enough from the equator and the sub-satellite point
    # that the sweep axis matters (sweep "x" would misplace these pixels by hundredths of a degree)
    rng = np.random.default_rng(1)
    files = []
    for band, cwl in ((13, 10.4), (15, 12.4)):
        f = tmp_path / f"HS_H09_20200701_0300_B{band}_FLDK_R20_S3010.DAT"
        write_hsd(f, rng.uniform(200, 290, (32, 40)), band=band, cwl=cwl, seg=30, nseg=10, coff=2750.5 - 3500)
        files.append(str(f))
    assert main(["predict-scene", str(two_band_run), *files, "--out", str(tmp_path / "out"), "--window", "32",
                 "--geotiff"]) == 0
    path = tmp_path / "out" / "HS_H09_20200701_0300_mtdense.nc"
    with xr.open_dataset(path) as ds:
        for name in ("rain_rate", "rain_class_probability", "rain_class"):
            assert ds[name].attrs["grid_mapping"] == "crs"
            assert set(ds[name].encoding["coordinates"].split()) == {"latitude", "longitude"}
        attrs = ds["crs"].attrs
        assert (attrs["grid_mapping_name"], attrs["sweep_angle_axis"]) == ("geostationary", "y")
        assert attrs["perspective_point_height"] == pytest.approx(35785863.0)
        assert attrs["longitude_of_projection_origin"] == 140.7 and attrs["semi_minor_axis"] == 6356752.3
        names = ("reference_ellipsoid_name", "prime_meridian_name", "horizontal_datum_name")
        assert len({n in attrs for n in names}) == 1                 # CF §5.6: all three names or none
        assert ds["x"].attrs["standard_name"] == "projection_x_coordinate" and ds["y"].attrs["units"] == "m"
        x, y, lat, lon = (ds[v].values for v in ("x", "y", "latitude", "longitude"))
        classes = ds["rain_class"].values[0]
    assert _cf18_violations(path) == {}
    # the CRS from the CF parameters alone and from crs_wkt, applied to x/y, gives the file's 2-D
    # lat/lon and the HSD reader's navigation of the same full-disk lines/columns
    proj = read_hsd_segment(files[0]).projection
    rows, cols = np.array([0, 5, 17, 31, 31]), np.array([0, 39, 20, 3, 39])
    nav_lat, nav_lon = lines_columns_to_latlon(929 + rows, 1 + cols, proj)
    crs = CRS.from_cf(attrs)
    for c in (crs, CRS.from_cf({k: v for k, v in attrs.items() if k != "crs_wkt"})):
        lon_p, lat_p = Transformer.from_crs(c, c.geodetic_crs, always_xy=True).transform(x[cols], y[rows])
        np.testing.assert_allclose(lat_p, lat[rows, cols], atol=2e-5)
        np.testing.assert_allclose(lon_p, lon[rows, cols], atol=2e-5)
        np.testing.assert_allclose(lat_p, nav_lat, atol=1e-7)
        np.testing.assert_allclose(lon_p, nav_lon, atol=1e-7)
    # cartopy's Geostationary built from the attributes (as a cartopy user would) agrees
    import cartopy.crs as ccrs

    geos = ccrs.Geostationary(central_longitude=attrs["longitude_of_projection_origin"],
                              satellite_height=attrs["perspective_point_height"], sweep_axis=attrs["sweep_angle_axis"],
                              globe=ccrs.Globe(semimajor_axis=attrs["semi_major_axis"],
                                               semiminor_axis=attrs["semi_minor_axis"], ellipse=None))
    points = ccrs.Geodetic().transform_points(geos, x[cols], y[rows])
    np.testing.assert_allclose(points[:, 1], nav_lat, atol=1e-7)
    np.testing.assert_allclose(points[:, 0], nav_lon, atol=1e-7)
    # pyresample (satpy's area) reads the grid: its pixel centres are the file's lat/lon
    area, _ = load_cf_area(str(path), variable="rain_rate")
    assert area.shape == (32, 40) and area.crs.equals(crs)
    area_lon, area_lat = area.get_lonlats()
    np.testing.assert_allclose(area_lat, lat, atol=2e-5)
    np.testing.assert_allclose(area_lon, lon, atol=2e-5)
    # GeoTIFF in the same CRS; GDAL reads the NetCDF's grid the same way
    with rasterio.open(path.with_suffix(".tif")) as tif, rasterio.open(f"netcdf:{path}:rain_rate") as nc:
        assert CRS.from_wkt(tif.crs.to_wkt()).equals(crs) and CRS.from_wkt(nc.crs.to_wkt()).equals(crs)
        assert tif.xy(31, 39) == pytest.approx((x[39], y[31]), abs=1e-3)
        assert tif.transform.almost_equals(nc.transform)
        band = tif.read(1)
    np.testing.assert_array_equal(band, np.where(np.isnan(classes), 255, classes))


def test_geotiff_refuses_a_grid_without_crs(tmp_path):
    from mtdense.domains.precip.products import write_class_geotiff
    from mtdense.domains.precip.scene_input import SceneInput

    lat2d = np.zeros((4, 5), np.float32)                  # 2-D lat/lon from an xarray input: no projection known
    scene = SceneInput(np.zeros((1, 4, 5), np.float32), ["B13"], lat2d, lat2d)
    with pytest.raises(mtdense.errors.DataError, match="no known CRS"):
        write_class_geotiff(tmp_path / "a.tif", {"rain_class": np.zeros((4, 5))}, scene,
                            {"postprocessing": {"rain_class": {"thresholds": [0.1]}}}, {})
