"""SatRain gridded reader and dataset on tiny files written in the exact layout."""

import datetime as dt

import numpy as np
import pytest

from mtdense.domains.precip.satrain import SATRAIN_THRESHOLDS, SatRainScenes, read_satrain_scene, satrain_pairs
from mtdense.domains.precip.writers import write_satrain_pair
from mtdense.errors import ConfigError


def test_default_masks_and_channel_selection(tmp_path):
    obs = np.arange(4 * 3 * 16, dtype=np.float32).reshape(4, 3, 16)
    rain = np.array([[0.0, 1.0, 12.0]] * 4, np.float32)
    rqi = np.array([[1.0, 0.4, 0.9]] * 4, np.float32)
    frac = np.array([[1.0, 1.0, 0.5]] * 4, np.float32)
    frac[0, 0] = 0.49
    geo, target = write_satrain_pair(tmp_path / "gmi" / "training" / "xs" / "gridded", dt.datetime(2021, 5, 2, 3, 4, 5),
                                     obs, rain, 40 - 0.036 * np.arange(4), 120 + 0.036 * np.arange(3), rqi, frac)
    assert geo.relative_to(tmp_path).as_posix() == "gmi/training/xs/gridded/2021/05/02/geo_20210502030405.nc"
    image, label, valid = read_satrain_scene(geo, target, channels=[12, 6])
    np.testing.assert_array_equal(image[0], obs[..., 12]) and np.testing.assert_array_equal(image[1], obs[..., 6])
    expected = np.array([[True, False, True]] * 4)
    expected[0, 0] = False                                     # valid fraction 0.49 < 0.5
    np.testing.assert_array_equal(valid, expected)             # RQI 0.4 < 0.5 masked
    assert label[1, 2] == 12.0 and label[1, 1] == 0.0
    assert SATRAIN_THRESHOLDS == (0.1, 10.0)


def test_dataset_over_the_layout(tiny_domain_data):
    root = tiny_domain_data["satrain_root"]
    train = SatRainScenes(root, split="training", subset="xs")
    korea = SatRainScenes(root, split="testing", subset="korea")
    assert len(train) == 3 and len(korea) == 2
    assert train.channel_names[0] == "geo_07" and len(train.channel_names) == 10
    pairs = satrain_pairs(root / "gmi" / "training" / "xs" / "gridded")
    stack = np.stack([read_satrain_scene(g, t)[0] for g, t in pairs])
    np.testing.assert_allclose(train.normalization["mean"], stack.mean(axis=(0, 2, 3)), rtol=1e-5)
    sample = train[0]
    assert sample["image"].shape == (10, 16, 16) and abs(float(sample["image"].mean())) < 1.0
    assert sample["valid"]["rain_rate"].all()
    with pytest.raises(ConfigError, match="austria"):
        SatRainScenes(root, split="testing", subset="austria")
