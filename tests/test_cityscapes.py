"""Cityscapes reader on a tiny hand-made sample in the exact real layout (formats.md writer)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mtdense.domains.street.cityscapes import IMAGENET_MEAN, IMAGENET_STD, Cityscapes
from mtdense.registry import DATASETS
from mtdense.errors import ConfigError

CITY = "testcity"
STEMS = ["testcity_000000_000001", "testcity_000000_000002"]
BASELINE, FX = 0.25, 400.0  # baseline * fx = 100 m px (real Cityscapes: 0.209313 m, 2262.52 px)

# Label ids (8 x 16): road 7, car 26, sky 23, unlabeled 0, ego vehicle 1, parking 9, person 24, building 11.
LABEL_IDS = np.zeros((8, 16), np.uint8)
LABEL_IDS[:2] = 23
LABEL_IDS[2:4] = 11
LABEL_IDS[4:6, :8] = 26
LABEL_IDS[4:6, 8:] = 24
LABEL_IDS[6, :8] = 7
LABEL_IDS[6, 8:] = 9
LABEL_IDS[7, :8] = 1
LABEL_IDS[7, 8:] = 0
TRAIN_IDS = {23: 10, 11: 2, 26: 13, 24: 11, 7: 0}
CATEGORIES = {23: 4, 11: 1, 26: 6, 24: 5, 7: 0}

# Disparity PNG values p: 0 invalid, 1 -> d = 0 (invalid), 2561 -> d = 10 px -> 10 m,
# 1025 -> 4 px -> 25 m, 513 -> 2 px -> 50 m, 257 -> 1 px -> 100 m (> 80 m: invalid).
RAW = np.zeros((8, 16), np.uint16)
RAW[2:4] = 513
RAW[2, :4] = 257
RAW[4:6] = 1025
RAW[6:] = 2561
RAW[6, 0] = 1
RAW[5, 5] = 0
DEPTH = np.zeros((8, 16), np.float32)
DEPTH[2:4], DEPTH[4:6], DEPTH[6:] = 50.0, 25.0, 10.0
DEPTH[2, :4] = DEPTH[6, 0] = DEPTH[5, 5] = 0.0
DEPTH_VALID = DEPTH > 0


def write_sample(root, split="val", stems=STEMS):
    for i, stem in enumerate(stems):
        parts = {k: root / k / split / CITY for k in ("leftImg8bit", "gtFine", "disparity", "camera")}
        for p in parts.values():
            p.mkdir(parents=True, exist_ok=True)
        rgb = np.full((8, 16, 3), 40 * i, np.uint8)
        rgb[..., 0] = 255
        Image.fromarray(rgb).save(parts["leftImg8bit"] / f"{stem}_leftImg8bit.png")
        Image.fromarray(LABEL_IDS).save(parts["gtFine"] / f"{stem}_gtFine_labelIds.png")
        Image.fromarray(RAW).save(parts["disparity"] / f"{stem}_disparity.png")
        cam = {"extrinsic": {"baseline": BASELINE, "pitch": 0.0, "roll": 0.0, "x": 1.7, "y": 0.1, "yaw": 0.0, "z": 1.2},
               "intrinsic": {"fx": FX, "fy": FX, "u0": 8.0, "v0": 4.0}}
        (parts["camera"] / f"{stem}_camera.json").write_text(json.dumps(cam))


@pytest.fixture
def root(tmp_path):
    write_sample(tmp_path)
    return tmp_path


def test_depth_semantics_and_masks_exact(root):
    ds = Cityscapes(root, split="val")
    assert len(ds) == 2 and ds.target_keys == ["semantic", "depth"] and ds.channel_names == ["red", "green", "blue"]
    s = ds[1]
    assert s["meta"] == {"id": STEMS[1], "city": CITY}
    depth, valid = s["targets"]["depth"], s["valid"]["depth"]
    assert depth.dtype == torch.float32 and valid.dtype == torch.bool
    np.testing.assert_array_equal(valid.numpy(), DEPTH_VALID)
    np.testing.assert_allclose(depth.numpy(), DEPTH, rtol=1e-6)
    sem, sem_valid = s["targets"]["semantic"], s["valid"]["semantic"]
    assert sem.dtype == torch.int64
    expected = np.vectorize(lambda i: TRAIN_IDS.get(i, 0))(LABEL_IDS)
    np.testing.assert_array_equal(sem_valid.numpy(), np.isin(LABEL_IDS, list(TRAIN_IDS)))
    np.testing.assert_array_equal(sem.numpy(), expected)
    assert not sem_valid[6, 8:].any()  # parking (9) is ignored in evaluation


def test_seven_categories(root):
    s = Cityscapes(root, split="val", classes=7)[0]
    expected = np.vectorize(lambda i: CATEGORIES.get(i, 0))(LABEL_IDS)
    np.testing.assert_array_equal(s["targets"]["semantic"].numpy(), expected)
    np.testing.assert_array_equal(s["valid"]["semantic"].numpy(), np.isin(LABEL_IDS, list(CATEGORIES)))


def test_image_normalisation(root):
    img = Cityscapes(root, split="val")[1]["image"]
    assert img.shape == (3, 8, 16) and img.dtype == torch.float32
    expected = (np.array([255, 40, 40]) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(img[:, 3, 7].numpy(), expected, rtol=1e-5)
    norm = Cityscapes.normalization  # the same rule in raw 0-255 units, carried by checkpoints
    np.testing.assert_allclose((np.array([255, 40, 40]) - norm["mean"]) / norm["std"], expected, rtol=1e-5)
    np.testing.assert_allclose(norm["mean"], [123.675, 116.28, 103.53], rtol=1e-6)


def test_max_depth_and_crop_bottom(root):
    s = Cityscapes(root, split="val", max_depth=30.0, crop_bottom=0.25)[0]
    valid = s["valid"]["depth"].numpy()
    assert not valid[2:4].any()  # 50 m > 30 m
    assert not valid[6:].any()  # bottom 2 of 8 rows
    np.testing.assert_array_equal(valid[4:6], DEPTH_VALID[4:6])
    assert s["valid"]["semantic"][6, 0]  # crop_bottom leaves semantics alone


def test_nearest_resize_keeps_depth_values(root):
    s = Cityscapes(root, split="val", size=(4, 8))[0]
    # nearest at pixel centres: output i samples input floor((i + 0.5) * 2) = 1, 3, 5, 7, ...
    np.testing.assert_array_equal(s["targets"]["depth"].numpy(), DEPTH[1::2, 1::2])
    np.testing.assert_array_equal(s["valid"]["depth"].numpy(), DEPTH_VALID[1::2, 1::2])
    assert set(np.unique(s["targets"]["depth"].numpy())) <= {0.0, 10.0, 25.0, 50.0}
    assert s["image"].shape == (3, 4, 8)
    up = Cityscapes(root, split="val", size=(16, 32))[0]
    np.testing.assert_array_equal(up["targets"]["depth"].numpy(), np.repeat(np.repeat(DEPTH, 2, 0), 2, 1))


def test_disparity_target_scales_with_width(root):
    full = Cityscapes(root, split="val", target="disparity")[0]
    assert full["targets"]["disparity"][4, 0] == 4.0 and full["targets"]["disparity"][6, 3] == 10.0
    half = Cityscapes(root, split="val", target="disparity", size=(4, 8))[0]
    assert half["targets"]["disparity"][2, 0] == 2.0  # 4 px at full width -> 2 px at half width
    # depth from the resized disparity with the resized focal length is unchanged: 100 * 0.5 / 2 = 25 m
    assert BASELINE * FX * 0.5 / half["targets"]["disparity"][2, 0] == 25.0
    np.testing.assert_array_equal(half["valid"]["disparity"].numpy(), DEPTH_VALID[1::2, 1::2])


def test_registry_and_collate(root):
    ds = DATASETS.build({"type": "cityscapes", "root": str(root), "split": "val", "size": [4, 8]})
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 4, 8) and batch["targets"]["depth"].shape == (2, 4, 8)
    assert list(batch["meta"]["id"]) == STEMS


def test_missing_label_names_path(root):
    missing = root / "gtFine" / "val" / CITY / f"{STEMS[0]}_gtFine_labelIds.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="gtFine_labelIds.png"):
        Cityscapes(root, split="val")


def test_missing_split_lists_available(root):
    with pytest.raises(FileNotFoundError, match=r"splits found: \['val'\]"):
        Cityscapes(root, split="train")


def test_corrupt_png_and_8bit_disparity(root):
    path = root / "disparity" / "val" / CITY / f"{STEMS[0]}_disparity.png"
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(OSError, match="16-bit disparity map"):
        Cityscapes(root, split="val")[0]
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(path)
    with pytest.raises(ValueError, match="mode I;16"):
        Cityscapes(root, split="val")[0]


def test_bad_camera_json(root):
    path = root / "camera" / "val" / CITY / f"{STEMS[1]}_camera.json"
    path.write_text(json.dumps({"extrinsic": {"baseline": 0.2}, "intrinsic": {}}))
    with pytest.raises(ValueError, match="intrinsic.fx"):
        Cityscapes(root, split="val")[1]


@pytest.mark.parametrize("opts", [{"classes": 20}, {"target": "height"}, {"size": [4]}, {"crop_bottom": 1.0}])
def test_bad_options(root, opts):
    with pytest.raises(ConfigError):
        Cityscapes(root, split="val", **opts)
