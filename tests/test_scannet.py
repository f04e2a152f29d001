"""ScanNet reader on tiny frames in the exact exported layout (SensReader + 2d-label-filt)."""

import numpy as np
import pytest
import torch
from PIL import Image

from mtdense.domains.street.scannet import ScanNet
from mtdense.errors import DataError
from mtdense.registry import DATASETS

HEADER = ("id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\teigen13class\t"
          "ModelNet40\tModelNet10\tShapeNetCore55\tsynsetoffset\twnsynsetid\twnsynsetkey\tmpcat40\tmpcat40index")
ROWS = [  # ScanNet id, raw category, nyu40id: wall 1, chair 5, floor 2, books 23 (not a benchmark class), desk 14
    "1\twall\twall\t8277\t1\t12\twall\twall\twall\t\t\t\t\tn04546855\twall.n.01\twall\t1",
    "2\tchair\tchair\t4646\t5\t4\tchair\tchair\tchair\tchair\tchair\tchair\t03001627\tn03001627\tchair.n.01\tchair\t3",
    "3\tfloor\tfloor\t2754\t2\t5\tfloor\tfloor\tfloor\t\t\t\t\tn03365592\tfloor.n.01\tfloor\t2",
    "22\tbook\tbooks\t1678\t23\t2\tbook\tbooks\tbooks\t\t\t\t\tn02870526\tbook.n.11\tobjects\t39",
    "9\tdesk\tdesk\t680\t14\t10\tdesk\tdesk\ttable\tdesk\tdesk\ttable\t04379243\tn03179701\tdesk.n.01\ttable\t5",
]
# colour 8x12, depth and labels at 4x6 (depth at half the colour resolution, as in ScanNet)
LABELS = np.array([[1, 1, 1, 1, 1, 1], [2, 2, 3, 3, 22, 22], [9, 9, 0, 0, 57, 57], [3, 3, 3, 3, 3, 3]], np.uint16)
DEPTH_MM = np.array([[1000, 1200, 0, 2500, 12000, 800]] * 4, np.uint16)
K = "100.0 0 6.0 0\n0 100.0 4.0 0\n0 0 1 0\n0 0 0 1\n"


def write_scene(root, scene="scene0000_00", frames=(0, 1, 2, 10), labels=True):
    for d in ("color", "depth", "label-filt", "intrinsic"):
        (root / scene / d).mkdir(parents=True, exist_ok=True)
    for f in frames:
        rgb = np.full((8, 12, 3), (200, 100, 50), np.uint8)
        Image.fromarray(rgb).save(root / scene / "color" / f"{f}.jpg", quality=100)
        Image.fromarray(DEPTH_MM).save(root / scene / "depth" / f"{f}.png")
        if labels:
            Image.fromarray(LABELS).save(root / scene / "label-filt" / f"{f}.png")
    (root / scene / "intrinsic" / "intrinsic_color.txt").write_text(K)
    (root / scene / "intrinsic" / "intrinsic_depth.txt").write_text(K.replace("100.0", "50.0"))
    (root / "scannetv2-labels.combined.tsv").write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")


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
