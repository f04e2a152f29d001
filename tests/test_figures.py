"""Figures: masking of invalid pixels, the rain colour scale, fixed-size PNGs, score parsing."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from mtdense.analysis.figures import DPI, INVALID_COLOUR, class_maps, density_scatter, masked_field
from mtdense.domains.precip.figures import (
    rain_colour_scale, rain_rate_maps, scores_by_threshold, threshold_score_bars)

RNG = np.random.default_rng(0)
OBS = RNG.gamma(0.4, 4.0, (12, 16)).astype(np.float32)
PRED = (OBS * RNG.uniform(0.5, 1.5, OBS.shape)).astype(np.float32)
VALID = np.ones(OBS.shape, bool)
VALID[:2] = False


def png_size(path):
    assert path.stat().st_size > 1000
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_masked_field_hides_invalid_and_non_finite_pixels():
    values = np.array([[1.0, np.nan], [3.0, 4.0]])
    valid = np.array([[True, True], [False, True]])
    field = masked_field(values, valid)
    assert field.mask.tolist() == [[False, True], [True, False]]
    assert np.isnan(field.data[1, 0]) and np.isnan(field.data[0, 1])  # masked pixels carry NaN
    assert field.compressed().tolist() == [1.0, 4.0]
    with pytest.raises(ValueError, match="does not match"):
        masked_field(values, valid[:1])


def test_rain_colour_scale_bins_values_and_greys_out_invalid():
    scale, norm = rain_colour_scale()
    rates = masked_field(np.array([[0.0, 0.3, 3.0, 7.0, 80.0, 2.0]]), np.array([[1, 1, 1, 1, 1, 0]], bool))
    rgba = scale(norm(rates))[0]
    assert tuple(rgba[0]) == to_rgba("white")  # below 0.1 mm/h: no rain
    assert tuple(rgba[1]) == tuple(scale(0))  # [0.1, 0.5)
    assert tuple(rgba[2]) == tuple(scale(3))  # [2, 5): 4th interval
    assert tuple(rgba[3]) == tuple(scale(4))  # [5, 10)
    assert tuple(rgba[4]) == tuple(scale.get_over())  # above 50 mm/h
    assert tuple(rgba[5]) == to_rgba(INVALID_COLOUR)  # invalid pixel
    assert scale.N == 7  # 8 levels → 7 intervals
    with pytest.raises(ValueError, match="strictly increasing"):
        rain_colour_scale([1.0, 0.5])


def test_maps_and_scatter_are_fixed_size_pngs(tmp_path):
    assert png_size(rain_rate_maps(OBS, PRED, tmp_path / "maps.png", VALID)) == (10 * DPI, int(4.5 * DPI))
    classes = np.digitize(OBS, [0.5, 2.0])
    predicted = np.digitize(PRED, [0.5, 2.0])
    path = class_maps(classes, predicted, tmp_path / "sub" / "classes.png", VALID, ["dry", "light", "heavy"])
    assert png_size(path) == (10 * DPI, int(4.5 * DPI))
    obs = OBS.copy()
    obs[5, 5] = np.nan  # non-finite values are skipped like invalid ones
    assert png_size(density_scatter(obs, PRED, tmp_path / "scatter.png", VALID)) == (int(5.5 * DPI), int(4.5 * DPI))
    with pytest.raises(ValueError, match="same shape"):
        rain_rate_maps(OBS, PRED[:4], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="no valid pixels"):
        density_scatter(OBS, PRED, tmp_path / "empty.png", np.zeros(OBS.shape, bool))


def test_threshold_scores_are_parsed_and_plotted(tmp_path):
    mtcf = {"test/rain/f1@0.5": 0.62, "test/rain/f1@2": 0.41, "test/rain/csi@0.5": 0.45, "test/rain/rmse": 1.3,
            "test/rain/far@2": 0.3}
    assert scores_by_threshold(mtcf) == {"f1": {0.5: 0.62, 2.0: 0.41}, "csi": {0.5: 0.45}, "far": {2.0: 0.3}}
    with pytest.raises(ValueError, match="pass the metrics of one task"):
        scores_by_threshold({"a/f1@2": 0.1, "b/f1@2": 0.2})
    path = threshold_score_bars({"baseline": {"f1@0.5": 0.6, "f1@2": 0.38}, "mtcf": mtcf}, tmp_path / "scores.png")
    assert png_size(path) == (3 * 4 * DPI, 4 * DPI)  # three scores present: f1, csi, far
    with pytest.raises(ValueError, match="no f1/csi/pod/far scores"):
        threshold_score_bars({"m": {"rmse": 1.0}}, tmp_path / "none.png")
