"""Cloud readers: the real 38-Cloud patch, tiny files in both layouts, malformed inputs."""

from __future__ import annotations


import numpy as np
import pytest
import tifffile

from mtdense.domains.clouds.cloud38 import Cloud38Dataset, assemble_scene, parse_patch_name, read_patch, read_scene_gt
from mtdense.domains.clouds.oncloudn import OnCloudNDataset
from mtdense.domains.clouds.synth_writers import synth_clouds, write_38cloud_scene, write_oncloudn_chip
from mtdense.errors import DataError

REAL = "patch_192_10_by_12_LC08_L1TP_002053_20160520_20170324_01_T1"


def test_real_38cloud_patch_reads_like_tifffile(shared_data):
    root = shared_data / "38-Cloud_sample"
    patch = read_patch(root, REAL)
    assert patch["dn"].shape == (4, 384, 384) and patch["dn"].dtype == np.uint16
    for i, band in enumerate(("red", "green", "blue", "nir")):  # rasterio vs an independent decoder
        np.testing.assert_array_equal(patch["dn"][i], tifffile.imread(root / f"train_{band}" / f"{band}_{REAL}.TIF"))
    gt = tifffile.imread(root / "train_gt" / f"gt_{REAL}.TIF")
    np.testing.assert_array_equal(patch["mask"], (gt == 255).astype(np.uint8))
    assert 0.25 < patch["mask"].mean() < 0.37  # the README: about 31 % cloud
    ds = Cloud38Dataset(str(root))
    sample = ds[0]
    assert ds.names == [REAL] and sample["meta"]["scene"] == "LC08_L1TP_002053_20160520_20170324_01_T1"
    assert (sample["meta"]["row"], sample["meta"]["col"]) == (10, 12) and not sample["meta"]["empty"]
    red = patch["dn"][0].astype(np.float64)
    expected = np.where(patch["dn"].any(0), 2e-5 * red - 0.1, 0.0)  # Landsat-8 L1 reflectance rescaling
    np.testing.assert_allclose(sample["image"][0].numpy(), expected, atol=1e-6)
    assert sample["valid"]["cloud"].numpy().tolist() == patch["dn"].any(0).tolist()


def test_patch_name_parsing():
    assert parse_patch_name("patch_7_2_by_3_LC08_X") == {"n": 7, "row": 2, "col": 3, "scene": "LC08_X"}
    with pytest.raises(DataError, match="not a 38-Cloud patch name"):
        parse_patch_name("red_patch_7.TIF")


def _scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    refl = rng.uniform(0.05, 0.6, (4, h, w)).astype(np.float32)
    nodata = np.zeros((h, w), bool)
    nodata[:, :5] = True
    mask = (rng.random((h, w)) > 0.6).astype(np.uint8)
    mask[nodata] = 0
    return {"reflectance": refl, "mask": mask, "nodata": nodata}


def test_38cloud_test_layout_reassembles_the_scene(tmp_path):
    scene = _scene(50, 70)
    names = write_38cloud_scene(tmp_path, "LC08_TEST", scene, patch=32, labelled_patches=False)
    assert len(names) == 2 * 3 and all(full for _, full in names)  # 64×96 padded grid, margins 7 px / 13 px
    ds = Cloud38Dataset(str(tmp_path))
    assert len(ds) == 6 and not ds.labelled
    sample = ds[0]
    assert not sample["valid"]["cloud"].any()  # no per-patch labels in the test layout
    patches = {(s["meta"]["row"], s["meta"]["col"]): s["image"][2].numpy() for s in ds}
    full = read_scene_gt(tmp_path / "Entire_scene_gts", "LC08_TEST")
    np.testing.assert_array_equal(full, scene["mask"])
    blue = assemble_scene(patches, full.shape)  # channel 2 = blue = synth band 0
    valid = ~scene["nodata"]
    np.testing.assert_allclose(blue[valid], scene["reflectance"][0][valid], atol=2.5e-5)
    assert (blue[scene["nodata"]] == 0).all()


def test_synth_both_layouts_patch_lists_border_flags_and_geo(tmp_path):
    summary = synth_clouds(tmp_path / "s", train_scenes=2, test_scenes=1, scene_size=80, patch=32, chips=2, chip=32)
    train = tmp_path / "s" / "38-Cloud_training"
    full = Cloud38Dataset(str(train))
    nonempty = Cloud38Dataset(str(train), nonempty_only=True)
    assert len(full) == summary["38-Cloud_training"]["patches"] and len(nonempty) == summary["38-Cloud_training"]["nonempty"]
    flags = [s["meta"]["empty"] for s in full]
    assert sum(not f for f in flags) == len(nonempty)
    for s in full:
        assert s["valid"]["cloud"].any() != s["meta"]["empty"]
    assert synth_clouds(tmp_path / "s", train_scenes=2, test_scenes=1, scene_size=80, patch=32, chips=2,
                        chip=32) == summary  # idempotent
    with pytest.raises(DataError, match="other options"):
        synth_clouds(tmp_path / "s", train_scenes=3)
    chips = OnCloudNDataset(str(tmp_path / "s" / "oncloudn"))
    assert len(chips) == 2 and chips.channel_names == ["B02", "B03", "B04", "B08"]
    assert chips[0]["meta"]["crs"].startswith("EPSG:327")


def test_oncloudn_nodata_masked_and_geo_kept(tmp_path):
    import rasterio

    scene = _scene(16, 16, seed=1)
    write_oncloudn_chip(tmp_path, "abcd", scene, seed=3)
    (tmp_path / "train_metadata.csv").write_text("chip_id,location,datetime,cloudpath\nabcd,X,2020-01-01,az://x\n")
    sample = OnCloudNDataset(str(tmp_path))[0]
    assert sample["valid"]["cloud"].numpy().tolist() == (~scene["nodata"]).tolist()
    assert (sample["image"][:, :, :5] == 0).all()
    np.testing.assert_allclose(sample["image"][3, :, 5:].numpy(), scene["reflectance"][3][:, 5:], atol=6e-5)  # DN/1e4
    with rasterio.open(tmp_path / "train_features" / "abcd" / "B02.tif") as src:
        assert src.nodata == 0
        assert sample["meta"]["crs"] == src.crs.to_string()
        assert tuple(sample["meta"]["transform"].tolist()) == tuple(src.transform)[:6]
    assert sample["targets"]["cloud"].numpy().tolist() == scene["mask"].tolist()


def _one_line(exc: pytest.ExceptionInfo, name: str) -> None:
    assert "\n" not in str(exc.value) and name in str(exc.value)


@pytest.fixture
def tiny_38(tmp_path):
    write_38cloud_scene(tmp_path, "LC08_BAD", _scene(32, 32), patch=32, labelled_patches=True)
    return tmp_path, "patch_1_1_by_1_LC08_BAD"


def test_missing_band_file(tiny_38):
    root, name = tiny_38
    (root / "train_nir" / f"nir_{name}.TIF").unlink()
    with pytest.raises(DataError, match="missing nir band") as exc:
        read_patch(root, name)
    _one_line(exc, f"nir_{name}.TIF")


def test_band_size_mismatch(tiny_38):
    from PIL import Image

    root, name = tiny_38
    Image.fromarray(np.ones((16, 32), np.uint16)).save(root / "train_green" / f"green_{name}.TIF")
    with pytest.raises(DataError, match="16×32") as exc:
        read_patch(root, name)
    _one_line(exc, f"green_{name}.TIF")


def test_label_with_other_values(tiny_38):
    from PIL import Image

    root, name = tiny_38
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(root / "train_gt" / f"gt_{name}.TIF")
    with pytest.raises(DataError, match=r"only 0/255 or 0/1, found values \[7\]") as exc:
        read_patch(root, name)
    _one_line(exc, f"gt_{name}.TIF")


def test_truncated_tiff(tiny_38, shared_data):
    root, name = tiny_38
    target = root / "train_blue" / f"blue_{name}.TIF"
    real = shared_data / "38-Cloud_sample" / "train_blue" / f"blue_{REAL}.TIF"
    target.write_bytes(real.read_bytes()[:5000])
    with pytest.raises(DataError, match="unreadable or truncated") as exc:
        read_patch(root, name)
    _one_line(exc, f"blue_{name}.TIF")


def test_oncloudn_missing_metadata(tmp_path):
    with pytest.raises(DataError, match="train_metadata.csv"):
        OnCloudNDataset(str(tmp_path))
