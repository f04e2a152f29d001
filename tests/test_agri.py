"""SYNTHETIC crop fields: rows consistent with plants but not equal to them; the folder reader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mtdense.domains.agri.field import plant_masks, random_field, row_mask
from mtdense.domains.agri.render import render_field
from mtdense.domains.agri.synth import synth_agri, synth_agri_once
from mtdense.errors import DataError
from mtdense.registry import DATASETS

SEEDS = range(8)


def fields(size=(64, 80)):
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        yield random_field(rng, *size)


def test_every_row_pixel_lies_on_a_line_fitted_to_its_plants():
    """Fit a cubic v(u) to the plant centres of each row and check that every pixel of that row's
    line, within the span of its plants, lies within 1.5 px of the fit (rows with fewer than
    6 plants, at image corners, are skipped)."""
    checked = total = 0
    for f in fields():
        ys, xs = np.nonzero(row_mask(f))
        u, v = f.coords(xs.astype(float), ys.astype(float))
        _, row_of_pixel = f.row_distance(xs.astype(float), ys.astype(float))
        total += len(u)
        for k in set(row_of_pixel.tolist()):
            px = np.array([(p.x, p.y) for p in f.plants if p.row == k])
            if len(px) < 6:
                continue
            pu, pv = f.coords(px[:, 0], px[:, 1])
            fit = np.polynomial.Polynomial.fit(pu, pv, 3)
            mine = (row_of_pixel == k) & (u >= pu.min()) & (u <= pu.max())
            assert np.abs(v[mine] - fit(u[mine])).max() <= 1.5
            checked += mine.sum()
    assert checked > 0.8 * total


def test_plants_sit_on_rows_but_rows_are_not_the_plant_mask():
    ious, uncovered = [], []
    for f in fields():
        rows = row_mask(f)
        plants, _ = plant_masks(f, f.plants)
        dist = ndimage.distance_transform_edt(~rows)
        centres = [(int(round(p.y)), int(round(p.x))) for p in f.plants
                   if 0 <= round(p.y) < f.height and 0 <= round(p.x) < f.width]
        assert max(dist[c] for c in centres) <= 1.5  # every plant is on a row line
        ious.append((rows & plants).sum() / (rows | plants).sum())
        uncovered.append((rows & ~plants).sum() / rows.sum())  # rows continue through gaps
    assert max(ious) < 0.6 and np.mean(uncovered) > 0.1


def test_weeds_grow_between_rows():
    for f in fields():
        spacing = np.diff(f.offsets).mean()
        if f.weeds:
            d, _ = f.row_distance(np.array([w.x for w in f.weeds]), np.array([w.y for w in f.weeds]))
            assert d.min() > 0.25 * spacing


def test_rendering_is_deterministic_and_nir_separates_vegetation():
    a = render_field(random_field(np.random.default_rng(3), 48, 64), np.random.default_rng(4), nir=True)
    b = render_field(random_field(np.random.default_rng(3), 48, 64), np.random.default_rng(4), nir=True)
    assert np.array_equal(a[0], b[0]) and a[0].shape == (48, 64, 4)
    image, targets = a
    plants = targets["plants"].astype(bool)
    assert image[plants, 3].mean() > image[~plants, 3].mean() + 40  # red edge: vegetation bright in NIR
    assert targets["centres"].max() == pytest.approx(1.0, abs=0.05) and set(np.unique(targets["rows"])) == {0, 1}


def test_reader_round_trip_channels_and_ignore(tmp_path):
    synth_agri(tmp_path, {"train": 2}, height=32, width=40, nir=True, seed=1)
    ds = DATASETS.build({"type": "agri_fields", "root": str(tmp_path), "split": "train"}, "data.train")
    assert ds.channel_names == ["red", "green", "blue", "nir"] and ds.target_keys == ["plants", "rows", "centres"]
    rng = np.random.default_rng([1, 0, 1])
    image, targets = render_field(random_field(rng, 32, 40), rng, nir=True)
    sample = ds[1]
    assert np.allclose(sample["image"].numpy().transpose(1, 2, 0), image / 255.0)
    assert np.array_equal(sample["targets"]["rows"].numpy(), targets["rows"])
    rgb = DATASETS.build({"type": "agri_fields", "root": str(tmp_path), "channels": [0, 1, 2], "targets": ["rows"]}, "d")
    assert rgb[0]["image"].shape == (3, 32, 40) and list(rgb[0]["targets"]) == ["rows"]
    mask = np.array(Image.open(tmp_path / "train" / "rows" / "field_000000.png"))
    mask[0, :5] = 255
    Image.fromarray(mask).save(tmp_path / "train" / "rows" / "field_000000.png")
    assert not ds[0]["valid"]["rows"][0, :5].any() and ds[0]["valid"]["rows"][1:].all()
    mask[0, 0] = 7
    Image.fromarray(mask).save(tmp_path / "train" / "rows" / "field_000000.png")
    with pytest.raises(DataError, match="field_000000.png"):
        ds[0]
    (tmp_path / "train" / "plants" / "field_000001.png").unlink()
    with pytest.raises(DataError, match="missing plants mask"):
        ds[1]


def test_synth_once_is_idempotent_and_refuses_other_options(tmp_path):
    first = synth_agri_once(tmp_path, {"train": 1, "val": 1}, height=32, width=32)
    assert first["train"] == 1 and (tmp_path / "val" / "rows" / "field_000000.png").is_file()
    assert synth_agri_once(tmp_path, {"train": 1, "val": 1}, height=32, width=32)["already_present"]
    with pytest.raises(DataError, match="delete the folder"):
        synth_agri_once(tmp_path, {"train": 2, "val": 1}, height=32, width=32)


def test_synth_once_refuses_a_folder_holding_other_images(tmp_path):
    (tmp_path / "train" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="without mtdense_synth_agri.json"):
        synth_agri_once(tmp_path, {"train": 1}, height=32, width=32)
