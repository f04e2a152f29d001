"""Synthetic street scenes: Cityscapes-layout output, ground-plane geometry, occlusion, determinism."""

import json

import numpy as np
import pytest
from PIL import Image

from mtdense.domains.street.cityscapes import Cityscapes
from mtdense.domains.street.render import render_street
from mtdense.domains.street.scene import CAR, PERSON, ROAD, SIDEWALK, SKY, TERRAIN, Box, random_street_scene
from mtdense.domains.street.synth import synth_street

H, W = 64, 128


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_street")
    summary = synth_street(root, n_train=3, n_val=2, height=H, width=W, seed=5)
    return root, summary


def _files(root, split, stem):
    sub = f"{split}/synthetic/{stem}"
    return (np.array(Image.open(root / f"gtFine/{sub}_gtFine_labelIds.png")),
            np.array(Image.open(root / f"disparity/{sub}_disparity.png")),
            json.loads((root / f"camera/{sub}_camera.json").read_text()))


def test_summary_and_reader(root):
    root, summary = root
    assert (summary["n_train"], summary["n_val"]) == (3, 2)
    assert sum(summary["class_fraction"].values()) == pytest.approx(1.0)
    assert min(summary["class_fraction"][k] for k in ("road", "sidewalk", "building", "sky")) > 0.01
    assert "SYNTHETIC" in (root / "SYNTHETIC.txt").read_text()
    ds = Cityscapes(root, split="val")
    assert len(ds) == 2 and len(Cityscapes(root, split="train")) == 3
    s = ds[0]
    assert s["image"].shape == (3, H, W)
    # train ids present: road 0, sidewalk 1, building 2, vegetation 8, terrain 9, sky 10, person 11, car 13
    assert set(s["targets"]["semantic"][s["valid"]["semantic"]].unique().tolist()) <= {0, 1, 2, 8, 9, 10, 11, 13}
    assert s["valid"]["semantic"].all()  # every synthetic pixel has a Cityscapes evaluation class
    sky = s["targets"]["semantic"] == 10
    assert not s["valid"]["depth"][sky].any()
    assert (s["targets"]["depth"][s["valid"]["depth"]] <= 80).all()


def test_sky_has_invalid_disparity(root):
    root, _ = root
    labels, raw, _ = _files(root, "train", "synthetic_000001_000019")
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw == 0, labels == SKY)


@pytest.mark.parametrize("split,stem", [("train", "synthetic_000000_000019"), ("val", "synthetic_000001_000019")])
def test_ground_plane_geometry(root, split, stem):
    """Road depth = h / ((v - v0)/fx cos(pitch) + sin(pitch)); everything else on a ground row is nearer."""
    root, _ = root
    labels, _, cam = _files(root, split, stem)
    depth = Cityscapes(root, split=split, max_depth=1e9)[int(stem[10:16])]["targets"]["depth"].numpy()
    fx, v0 = cam["intrinsic"]["fx"], cam["intrinsic"]["v0"]
    h, pitch = cam["extrinsic"]["z"], cam["extrinsic"]["pitch"]
    v = np.arange(H, dtype=np.float64)[:, None].repeat(W, 1)
    denominator = (v - v0) / fx * np.cos(pitch) + np.sin(pitch)
    with np.errstate(divide="ignore"):
        ground = np.where(denominator > 0, h / denominator, np.inf)
    road = (labels == ROAD) & (ground < 80)
    assert road.sum() > 200
    # disparity is quantised to 1/256 px: relative depth error <= 0.5 / (256 d) < 1% below 80 m
    np.testing.assert_allclose(depth[road], ground[road], rtol=0.01)
    objects = (labels != ROAD) & (labels != SKY) & (labels != SIDEWALK) & (labels != TERRAIN) & np.isfinite(ground)
    assert (depth[objects] <= ground[objects] * 1.01).all()  # objects stand in front of the ground behind them
    assert (labels[~np.isfinite(ground)] != ROAD).all()  # no road above the horizon


def test_nearer_object_occludes():
    scene = random_street_scene(np.random.default_rng(0), H, W)
    scene.camera.pitch, scene.far_wall = 0.0, None
    h = scene.camera.height
    car = Box(np.array([-1.0, h - 1.5, 20.0]), np.array([1.0, h, 24.0]), CAR, np.array([0.8, 0.1, 0.1]), "car")
    person = Box(np.array([-0.25, h - 1.8, 10.0]), np.array([0.25, h, 10.4]), PERSON, np.array([0.1, 0.1, 0.8]), "person")
    scene.boxes = [car, person]
    _, labels, depth = render_street(scene, H, W, np.random.default_rng(0))
    row = int(round(scene.camera.v0 + scene.camera.fx * (h - 0.9) / 10.2))  # person's mid height
    centre, beside = int(round(scene.camera.u0)), int(round(scene.camera.u0 + scene.camera.fx * 0.8 / 20))
    assert labels[row, centre] == PERSON and depth[row, centre] == pytest.approx(10.0)
    car_row = int(round(scene.camera.v0 + scene.camera.fx * (h - 0.75) / 20))
    assert labels[car_row, beside] == CAR and depth[car_row, beside] == pytest.approx(20.0)
    assert labels[car_row, centre] == PERSON  # the person hides the car behind it


def test_deterministic_and_prefix_stable(tmp_path):
    a, b, c = (tmp_path / k for k in "abc")
    synth_street(a, 2, 0, height=32, width=64, seed=1)
    synth_street(b, 3, 0, height=32, width=64, seed=1)
    synth_street(c, 2, 0, height=32, width=64, seed=2)
    for kind, suffix in (("leftImg8bit", "leftImg8bit.png"), ("disparity", "disparity.png")):
        for i in range(2):
            name = f"{kind}/train/synthetic/synthetic_{i:06d}_000019_{suffix}"
            assert (a / name).read_bytes() == (b / name).read_bytes()
            assert (a / name).read_bytes() != (c / name).read_bytes()
