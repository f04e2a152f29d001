"""ScanNet reader on tiny frames in the exact exported layout (SensReader + 2d-label-filt)."""

import numpy as np
import pytest
import torch

from mtdense.domains.street.scannet import ScanNet
from mtdense.domains.street.scannet_tiny import DEPTH_MM, write_tiny_scannet
from mtdense.errors import DataError
from mtdense.registry import DATASETS

def write_scene(root, scene="scene0000_00", frames=(0, 1, 2, 10), labels=True):
    write_tiny_scannet(root, scene, frames, labels)


@pytest.fixture
def root(tmp_path):
    write_scene(tmp_path)
    (tmp_path / "scannetv2_val.txt").write_text("scene0000_00\n")
    return tmp_path


def test_labels_map_to_benchmark_and_nyu40_classes(root):
    ds = ScanNet(root, split="val")
    assert ds.sample_ids() == ["scene0000_00/0", "scene0000_00/1", "scene0000_00/2", "scene0000_00/10"]
    s = ds[0]
    sem, valid = s["targets"]["semantic"].numpy(), s["valid"]["semantic"].numpy()
    # benchmark order: wall 0, floor 1, chair 4, desk 12; books (nyu40 23), unannotated 0, unknown id 57 ignored
    expected = np.array([[0] * 6, [4, 4, 1, 1, -1, -1], [12, 12, -1, -1, -1, -1], [1] * 6])
    np.testing.assert_array_equal(valid, expected >= 0)
    np.testing.assert_array_equal(np.where(valid, sem, -1), expected)
    s40 = ScanNet(root, split="val", classes=40)[0]
    assert s40["targets"]["semantic"][1, 4] == 22 and s40["valid"]["semantic"][1, 4]  # books: nyu40 23 -> 22


def test_depth_in_metres_with_invalid_zero_and_range(root):
    s = ScanNet(root, split="val", max_depth=10.0)[0]
    assert s["targets"]["depth"].shape == (4, 6) and s["image"].shape == (3, 4, 6)  # default: depth resolution
    np.testing.assert_allclose(s["targets"]["depth"][0].numpy(), [1.0, 1.2, 0.0, 2.5, 0.0, 0.8], rtol=1e-6)
    assert s["valid"]["depth"][0].tolist() == [True, True, False, True, False, True]  # 0 mm and 12 m > 10 m


def test_resize_to_colour_size_and_scaled_intrinsics(root):
    s = ScanNet(root, split="val", size=(8, 12))[0]
    np.testing.assert_array_equal(s["targets"]["depth"].numpy(), np.repeat(np.repeat(
        np.where(DEPTH_MM <= 10000, DEPTH_MM / 1000, 0), 2, 0), 2, 1).astype(np.float32))
    assert (s["meta"]["fx"], s["meta"]["cx"]) == (100.0, 6.0)  # colour size: unchanged
    half = ScanNet(root, split="val")[0]["meta"]
    assert (half["fx"], half["fy"], half["cx"], half["cy"]) == (50.0, 50.0, 3.0, 2.0)
    img = s["image"]
    expected = (np.array([200, 100, 50]) / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(img[:, 4, 6].numpy(), expected, atol=0.05)  # JPEG: close, not exact


def test_frame_step_split_and_errors(root):
    assert len(ScanNet(root, split="val", frame_step=2)) == 2
    with pytest.raises(DataError, match="scannetv2_train.txt"):
        ScanNet(root, split="train")
    (root / "scene0000_00" / "label-filt" / "10.png").unlink()
    with pytest.raises(DataError, match="label-filt/10.png"):
        ScanNet(root, split="val")
    unlabelled = ScanNet(root, split="val", unlabelled=True)
    assert not unlabelled[3]["valid"]["semantic"].any() and unlabelled[3]["valid"]["depth"].any()
    (root / "scannetv2-labels.combined.tsv").unlink()
    with pytest.raises(DataError, match="scannetv2-labels.combined.tsv"):
        ScanNet(root, split="val")


def test_registered_and_batched(root):
    ds = DATASETS.build({"type": "scannet", "root": str(root), "split": "val"})
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 4, 6) and list(batch["meta"]["id"]) == ["scene0000_00/0", "scene0000_00/1"]
