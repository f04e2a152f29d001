"""Write SYNTHETIC cloud scenes in the real layouts of 38-Cloud and On Cloud N.

- 38-Cloud (``<out>/38-Cloud_training``, ``<out>/38-Cloud_test``): each Landsat-8-like scene is
  converted to L1 DN (``landsat8_l1``), zero-padded (centred) to a multiple of ``patch``, cut into
  ``patch_<n>_<row>_by_<col>_<scene>`` band TIFFs (uint16, PackBits, written by Pillow as the
  formats note prescribes) plus ``train_gt`` 0/255 masks, the patch CSVs (all and ``_nonempty``);
  the test layout gets no per-patch gt but ``Entire_scene_gts/edited_corrected_gts_<scene>.TIF``.
- On Cloud N (``<out>/oncloudn``): chips of ``chip`` pixels as Sentinel-2 L2A DN (``sentinel2_l2a``),
  one deflate GeoTIFF per band with a UTM CRS, transform and nodata=0 (rasterio), uint8 labels,
  ``train_metadata.csv``.

Nodata pixels are DN 0 in every band. ``synth_clouds`` is idempotent: an existing output made
with the same options is kept (``synth.json`` records them).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from mtdense.domains.clouds.sensors import SENSORS
from mtdense.domains.clouds.synth_scene import render_scene
from mtdense.errors import DataError

L8_ORDER = (2, 1, 0, 3)  # synth bands are blue, green, red, nir → 38-Cloud order red, green, blue, nir
L8_NAMES = ("red", "green", "blue", "nir")
S2_NAMES = ("B02", "B03", "B04", "B08")


def _to_dn(scene: dict, sensor: str) -> np.ndarray:
    dn = SENSORS[sensor].digital_numbers(scene["reflectance"])
    dn[:, scene["nodata"]] = 0
    return dn


def _save_tiff(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compression="packbits")


def write_38cloud_scene(root: Path, scene_id: str, scene: dict, patch: int, labelled_patches: bool) -> list[tuple[str, bool]]:
    """Cut one scene into patches under ``root``; returns (patch name, non-empty) pairs."""
    prefix = "train" if labelled_patches else "test"
    dn = _to_dn(scene, "landsat8_l1")[list(L8_ORDER)]
    h, w = dn.shape[1:]
    rows, cols = -(-h // patch), -(-w // patch)
    top, left = (rows * patch - h) // 2, (cols * patch - w) // 2
    padded = np.zeros((4, rows * patch, cols * patch), np.uint16)
    padded[:, top:top + h, left:left + w] = dn
    mask = np.zeros(padded.shape[1:], np.uint8)
    mask[top:top + h, left:left + w] = scene["mask"]
    written, n = [], 0
    for r in range(rows):
        for c in range(cols):
            n += 1
            name = f"patch_{n}_{r + 1}_by_{c + 1}_{scene_id}"
            window = (slice(r * patch, (r + 1) * patch), slice(c * patch, (c + 1) * patch))
            for b, band in enumerate(L8_NAMES):
                _save_tiff(root / f"{prefix}_{band}" / f"{band}_{name}.TIF", padded[b][window])
            if labelled_patches:
                _save_tiff(root / f"{prefix}_gt" / f"gt_{name}.TIF", (mask[window] * 255).astype(np.uint8))
            written.append((name, bool(padded[(slice(None),) + window].any())))
    if not labelled_patches:
        _save_tiff(root / "Entire_scene_gts" / f"edited_corrected_gts_{scene_id}.TIF", scene["mask"] * 255)
    return written


def _write_list(path: Path, names: list[str]) -> None:
    with open(path, "w", newline="") as f:
        f.write("name\n" + "".join(f"{n}\n" for n in names))


def write_oncloudn_chip(root: Path, chip_id: str, scene: dict, seed: int) -> None:
    import rasterio
    from rasterio.transform import Affine

    dn = _to_dn(scene, "sentinel2_l2a")  # blue, green, red, nir = B02, B03, B04, B08
    h, w = dn.shape[1:]
    rng = np.random.default_rng(seed)
    profile = dict(driver="GTiff", height=h, width=w, count=1, crs=f"EPSG:{32700 + int(rng.integers(33, 56))}",
                   transform=Affine(10.0, 0.0, float(rng.integers(2, 8)) * 1e5, 0.0, -10.0, float(rng.integers(60, 80)) * 1e5),
                   compress="deflate")
    folder = root / "train_features" / chip_id
    folder.mkdir(parents=True, exist_ok=True)
    for b, band in enumerate(S2_NAMES):
        with rasterio.open(folder / f"{band}.tif", "w", dtype="uint16", nodata=0, **profile) as dst:
            dst.write(dn[b], 1)
    (root / "train_labels").mkdir(parents=True, exist_ok=True)
    with rasterio.open(root / "train_labels" / f"{chip_id}.tif", "w", dtype="uint8", **profile) as dst:
        dst.write(scene["mask"], 1)


def _chip_id(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        cid = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 4))
        if cid not in used:
            used.add(cid)
            return cid


def synth_clouds(out: str | Path, train_scenes: int = 8, test_scenes: int = 2, scene_size: int = 256, patch: int = 128,
                 chips: int = 16, chip: int = 128, seed: int = 0, confusers: float = 0.7) -> dict:
    """Write both layouts under ``out``; returns a summary (counts, paths). SYNTHETIC data."""
    out = Path(out)
    options = dict(train_scenes=train_scenes, test_scenes=test_scenes, scene_size=scene_size, patch=patch,
                   chips=chips, chip=chip, seed=seed, confusers=confusers)
    stamp = out / "synth.json"
    if stamp.is_file():
        previous = json.loads(stamp.read_text())
        if previous.get("options") == options:
            return previous
        raise DataError(f"{stamp}: {out} holds synthetic clouds made with other options; choose another --out")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: not empty and not a synth-clouds output; choose another --out")
    rng = np.random.default_rng(seed)
    summary: dict = {"options": options, "synthetic": True}
    for split, count, labelled in (("38-Cloud_training", train_scenes, True), ("38-Cloud_test", test_scenes, False)):
        root = out / split
        names = []
        for i in range(count):
            size = (int(scene_size * rng.uniform(0.8, 1.0)), int(scene_size * rng.uniform(0.8, 1.0)))
            scene = render_scene(np.random.default_rng((seed, split == "38-Cloud_test", i)), size, confusers)
            scene_id = f"LC08_L1TP_{int(rng.integers(1, 233)):03d}{int(rng.integers(1, 248)):03d}_2016{i % 12 + 1:02d}" \
                       f"{i % 28 + 1:02d}_20170324_01_T1"
            names += write_38cloud_scene(root, scene_id, scene, patch, labelled)
        kind = "training" if labelled else "test"
        _write_list(root / f"{kind}_patches_38-Cloud.csv", [n for n, _ in names])
        if labelled:
            _write_list(root / f"{kind}_patches_38-Cloud_nonempty.csv", [n for n, full in names if full])
        summary[split] = {"patches": len(names), "nonempty": sum(full for _, full in names)}
    root = out / "oncloudn"
    used: set[str] = set()
    rows = []
    for i in range(chips):
        cid = _chip_id(rng, used)
        write_oncloudn_chip(root, cid, render_scene(np.random.default_rng((seed, 7, i)), (chip, chip), confusers), seed + i)
        rows.append({"chip_id": cid, "location": "Synthetic", "datetime": f"2020-0{i % 9 + 1}-15T10:00:00Z",
                     "cloudpath": f"az://./train_features/{cid}"})
    with open(root / "train_metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["chip_id", "location", "datetime", "cloudpath"])
        writer.writeheader()
        writer.writerows(rows)
    summary["oncloudn"] = {"chips": chips}
    stamp.write_text(json.dumps(summary, indent=1))
    return summary


def write_tiny_cloud_data(out: str | Path) -> Path:
    """Both layouts at toy size (one 32×32 training scene in 16×16 patches, two 16×16 chips): the
    data the conformance kit builds the cloud readers on. Returns ``out``."""
    synth_clouds(out, train_scenes=1, test_scenes=1, scene_size=32, patch=16, chips=2, chip=16)
    return Path(out)
