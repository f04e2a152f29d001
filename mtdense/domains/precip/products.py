"""Precipitation products of a trained model as CF-1.8 NetCDF (written through xarray).

One file per scene: rain rate (``lwe_precipitation_rate``, mm h-1), probability of rain
(P(rain class ≥ 1), 1) and rain class (``flag_values``/``flag_meanings``) on the input's grid —
``lat``/``lon`` 1-D coordinates and a ``latitude_longitude`` grid mapping for a regular (P-Tree)
grid; on the native geostationary (HSD) grid, 1-D projection coordinates ``x``/``y`` (metres),
a ``geostationary`` grid mapping from the HSD navigation (``grid_mapping.py``) and 2-D
``latitude``/``longitude`` auxiliary coordinates (``coordinates`` attribute) — with a length-1
``time`` axis, ``grid_mapping`` and ``_FillValue`` on every data variable and provenance in the
global attributes (model config, checkpoint SHA-256, mtdense version, input files). CF
conventions 1.8, §4 (coordinates), §5.6 and Appendix F (grid mappings), §3.5 (flags), Appendix A
(attributes). The class products can also be written as GeoTIFF in the same CRS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mtdense.domains.precip.grid_mapping import crs_of, latitude_longitude_grid_mapping
from mtdense.domains.precip.scene_input import SceneInput, group_scenes, hsd_scan_name, read_scene_input

RATE_FILL = np.float32(-9999.0)
CLASS_FILL = np.int8(-1)
GRID_MAPPING = "crs"                      # name of the grid-mapping variable


def scene_grid(scene: SceneInput) -> tuple[dict, np.ndarray, np.ndarray] | None:
    """(CF grid mapping, 1-D x coordinates, 1-D y coordinates) of the scene's grid: longitude and
    latitude on WGS 84 for a regular grid, the projection coordinates of a projected grid (HSD);
    None when the grid has no known CRS (no or 2-D coordinates without a projection)."""
    if scene.grid == "regular":
        return latitude_longitude_grid_mapping(), scene.lon, scene.lat
    if scene.grid_mapping is not None:
        return scene.grid_mapping, scene.x, scene.y
    return None


def checkpoint_sha256(run: str | Path) -> str:
    """SHA-256 of the checkpoint's weights file (the checkpoint a run folder points to)."""
    from mtdense.engine.checkpoint import MODEL_FILE, resolve_checkpoint

    digest = hashlib.sha256()
    with open(resolve_checkpoint(run) / MODEL_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _variable_attrs(name: str, post: Mapping[str, Any]) -> tuple[dict, dict]:
    """CF attributes and encoding of a task's prediction (``post``: the task's post-processing spec)."""
    if post.get("type") == "regression":
        return ({"standard_name": "lwe_precipitation_rate", "long_name": f"{name}: rain rate estimated by the model",
                 "units": "mm h-1", "postprocessing": post.get("rule", "")},
                {"dtype": "float32", "_FillValue": RATE_FILL, "zlib": True})
    thresholds = post.get("thresholds") or []
    if thresholds:
        meanings = [f"below_{thresholds[0]:g}_mm_h-1"] + [f"at_or_above_{t:g}_mm_h-1" for t in thresholds]
        return ({"long_name": f"{name}: rain class by rain-rate thresholds {thresholds} mm h-1",
                 "flag_values": np.arange(len(meanings), dtype=np.int8), "flag_meanings": " ".join(meanings),
                 "units": "1"}, {"dtype": "int8", "_FillValue": CLASS_FILL, "zlib": True})
    return ({"long_name": f"{name}: class index", "units": "1"}, {"dtype": "int16", "_FillValue": np.int16(-1)})


def products_dataset(preds: Mapping[str, np.ndarray], scene: SceneInput, spec: Mapping[str, Any],
                     provenance: Mapping[str, str]):
    """``xarray.Dataset`` (CF-1.8) of the predictions ``{task or task_probability: H×W}``."""
    import xarray as xr

    post = spec.get("postprocessing", {})
    regular = scene.grid == "regular"
    dims = ("time", "lat", "lon") if regular else ("time", "y", "x")
    grid = scene_grid(scene)
    coords: dict[str, Any] = {}
    if scene.time is not None:
        coords["time"] = ("time", [np.datetime64(scene.time.replace(tzinfo=None), "ns")],
                          {"standard_name": "time", "axis": "T"})
    if regular:
        coords["lat"] = ("lat", scene.lat.astype(np.float64), {"standard_name": "latitude", "units": "degrees_north",
                                                              "axis": "Y", "long_name": "latitude"})
        coords["lon"] = ("lon", scene.lon.astype(np.float64), {"standard_name": "longitude", "units": "degrees_east",
                                                              "axis": "X", "long_name": "longitude"})
    elif scene.grid == "geostationary":
        for name, values, unit in (("latitude", scene.lat, "degrees_north"), ("longitude", scene.lon, "degrees_east")):
            coords[name] = (("y", "x"), values.astype(np.float32), {"standard_name": name, "units": unit,
                                                                    "long_name": f"{name} (NaN off the earth disk)"})
        if grid is not None:
            for axis, values in (("x", scene.x), ("y", scene.y)):
                coords[axis] = (axis, np.asarray(values, np.float64), {
                    "standard_name": f"projection_{axis}_coordinate", "units": "m", "axis": axis.upper(),
                    "long_name": f"{axis}: scan angle (rad) × perspective_point_height"})
    variables, encoding = {}, {}
    for name, value in preds.items():
        task = name[: -len("_probability")] if name.endswith("_probability") else name
        if name.endswith("_probability"):
            thresholds = post.get(task, {}).get("thresholds") or [0.0]
            attrs = {"long_name": f"probability of rain (rain rate >= {thresholds[0]:g} mm h-1) from {task}",
                     "units": "1", "valid_range": np.array([0.0, 1.0], np.float32)}
            enc = {"dtype": "float32", "_FillValue": RATE_FILL, "zlib": True}
        else:
            attrs, enc = _variable_attrs(name, post.get(name, {}))
        array = np.asarray(value)[None]
        if enc["dtype"].startswith("int"):
            array = array.astype(enc["dtype"])
        if grid is not None:
            attrs["grid_mapping"] = GRID_MAPPING
        variables[name] = (dims, array, attrs)
        encoding[name] = enc
    if grid is not None:
        variables[GRID_MAPPING] = ((), np.int32(0), grid[0])
    ds = xr.Dataset(variables, coords=coords)
    if "time" in ds.coords:
        encoding["time"] = {"units": "seconds since 1970-01-01 00:00:00", "calendar": "standard", "_FillValue": None,
                            "dtype": "float64"}   # CF-1.8 §2.2 has no 64-bit integers; double is exact to the second
    for name in ("lat", "lon", "latitude", "longitude"):
        if name in ds.coords:
            encoding[name] = {"_FillValue": None if regular else np.float32(np.nan)}
    for name in ("x", "y"):
        if name in ds.coords:
            encoding[name] = {"_FillValue": None}
    ds.attrs = {"Conventions": "CF-1.8",
                "title": "precipitation estimated from geostationary infrared brightness temperatures by mtdense"
                         + (" (SYNTHETIC input data)" if scene.synthetic else ""),
                "source": f"mtdense model {provenance.get('model', '')}",
                "history": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ} mtdense predict-scene",
                "input_channels": ", ".join(scene.channel_names),
                **{k: str(v) for k, v in provenance.items()}}
    if scene.wavelengths_um:
        ds.attrs["input_channel_wavelengths_um"] = ", ".join(f"{c}={w:.2f}" for c, w in scene.wavelengths_um.items())
    ds.encoding["unlimited_dims"] = set()
    return ds, encoding


def write_class_geotiff(path: str | Path, preds: Mapping[str, np.ndarray], scene: SceneInput,
                        spec: Mapping[str, Any], tags: Mapping[str, str]) -> Path:
    """The class products (rain class per classification task; uint8, nodata 255) as a GeoTIFF
    on the scene's grid: regular latitude/longitude (EPSG:4326), or the native geostationary grid
    of HSD input (its ``geos`` CRS, x/y in metres) — the CRS of the NetCDF's grid mapping."""
    from mtdense.errors import DataError
    from mtdense.inference.geotiff import transform_from_centres, write_geotiff

    grid = scene_grid(scene)
    if grid is None:
        raise DataError(f"{path}: GeoTIFF output needs a regular latitude/longitude grid or HSD input (native "
                        "geostationary grid); this scene's grid has no known CRS — use the NetCDF file")
    grid_mapping, x, y = grid
    post = spec.get("postprocessing", {})
    classes = {n: np.where(v < 0, 255, v).astype(np.uint8) for n, v in preds.items() if post.get(n, {}).get("thresholds")}
    return write_geotiff(path, classes, crs_of(grid_mapping).to_wkt(), transform_from_centres(x, y), nodata=255,
                         dtype="uint8", tags=tags)


def _out_name(files: list[Path]) -> str:
    if len(files) == 1 and files[0].suffix == ".nc":
        return files[0].stem + "_mtdense.nc"
    return f"{hsd_scan_name(files[0])}_mtdense.nc"


def predict_scenes(run: str | Path, files: Sequence[str | Path], out_dir: str | Path, window: int = 256,
                   overlap: float = 0.5, batch_size: int = 4, flip_tta: bool = False, device: str = "cpu",
                   mask_space: bool = True, geotiff: bool = False) -> list[Path]:
    """Write one CF NetCDF of products per scene in ``files`` to ``out_dir`` (and, with
    ``geotiff``, the rain classes as GeoTIFF beside it); returns the paths."""
    import mtdense
    from mtdense.atomic_write import atomic_path

    predictor = mtdense.load(run, device)
    provenance = {"model": str(run), "checkpoint_sha256": checkpoint_sha256(run),
                  "mtdense_version": mtdense.__version__,
                  "sliding_window": f"window={window}, overlap={overlap}, blend=gaussian, flip_tta={flip_tta}"}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for scene_files in group_scenes(files):
        scene = read_scene_input(scene_files, predictor.channel_names, mask_space=mask_space)
        preds = predictor.predict_scene(scene.data, window=window, overlap=overlap, batch_size=batch_size,
                                        flip_tta=flip_tta)
        ds, encoding = products_dataset(preds, scene, predictor.spec,
                                        {**provenance, "input_files": ", ".join(p.name for p in scene_files)})
        path = out_dir / _out_name(scene_files)
        with atomic_path(path) as tmp:
            ds.to_netcdf(tmp, encoding=encoding, engine="netcdf4")
        written.append(path)
        if geotiff:
            written.append(write_class_geotiff(path.with_suffix(".tif"), preds, scene, predictor.spec,
                                               {k: v for k, v in ds.attrs.items() if k != "history"}))
    return written
