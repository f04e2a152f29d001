"""SYNTHETIC precipitation scenes: real-format files, consistent times/grids, physically sensible signals."""

import datetime as dt

import h5py
import numpy as np
import pytest

from mtdense.domains.precip.imerg import read_imerg
from mtdense.domains.precip.prepare import granule_start_from_name, half_hour_start, scan_time_from_name
from mtdense.domains.precip.ptree import read_ptree
from mtdense.domains.precip.synth import powerlaw_field, synth_precip, synth_scene


@pytest.fixture(scope="module")
def scenes():
    """Fine-grid synthetic scenes (bands, decoys, rain) pooled for the physics checks."""
    rng = np.random.default_rng(3)
    parts = [synth_scene(rng, (96, 96), decoy_channels=1) for _ in range(8)]
    bands = {b: np.stack([p[0][b] for p in parts]) for b in parts[0][0]}
    decoy = np.stack([p[1]["decoy_01"] for p in parts])
    rain = np.stack([p[2] for p in parts])
    return bands, decoy, rain


def test_files_are_real_format_and_consistent(tmp_path):
    written = synth_precip(tmp_path, n_scenes=3, height=8, width=10, seed=1, decoy_channels=2,
                           lat_north=10.0, lon_west=175.0)
    assert [len(written[k]) for k in ("ahi", "imerg")] == [3, 3]
    for k, (ahi, imerg) in enumerate(zip(written["ahi"], written["imerg"])):
        scan, start = scan_time_from_name(ahi), granule_start_from_name(imerg)
        assert start == dt.datetime(2020, 7, 1) + dt.timedelta(minutes=30 * k)
        assert half_hour_start(scan) == start and scan.minute % 10 == 0
        scene = read_ptree(ahi, extra_variables=["decoy_01", "decoy_02"])
        assert scene.channel_names == [f"B{b:02d}" for b in range(8, 17)] + ["decoy_01", "decoy_02"]
        assert scene.bt.shape == (11, 16, 20) and scene.synthetic and scene.start_time == scan
        assert scene.lon[-1] == pytest.approx(175.0 + 0.05 * 19, abs=1e-4) and scene.lon[-1] > 175.9  # past 180 later
        label = read_imerg(imerg)
        assert label.synthetic and label.version == "V07" and label.start_time == start
        assert label.rain_rate.shape == (8, 10)
        np.testing.assert_allclose(label.lat, 10.0 - 0.05 - 0.1 * np.arange(8), atol=1e-5)   # IMERG-style .x5 centres
        np.testing.assert_allclose(label.lon, 175.05 + 0.1 * np.arange(10), atol=1e-4)
        assert np.nanmin(label.rain_rate) >= 0.0
        assert 170.0 < np.nanmin(scene.bt[:9]) and np.nanmax(scene.bt[:9]) < 320.0
        with h5py.File(imerg) as f:
            title = f.attrs["title"]
            assert "SYNTHETIC" in (title.decode() if isinstance(title, bytes) else title)


def test_same_seed_same_files(tmp_path):
    a = synth_precip(tmp_path / "a", n_scenes=2, height=8, width=8, seed=7)
    b = synth_precip(tmp_path / "b", n_scenes=2, height=8, width=8, seed=7)
    c = synth_precip(tmp_path / "c", n_scenes=2, height=8, width=8, seed=8)
    ra, rb, rc = (read_imerg(x["imerg"][1]).rain_rate for x in (a, b, c))
    np.testing.assert_array_equal(ra, rb)
    assert not np.array_equal(np.nan_to_num(ra), np.nan_to_num(rc))
    np.testing.assert_array_equal(read_ptree(a["ahi"][0]).bt, read_ptree(b["ahi"][0]).bt)


def test_powerlaw_field_spectrum():
    f = powerlaw_field(np.random.default_rng(0), (128, 128), beta=3.0)
    assert f.mean() == pytest.approx(0.0, abs=1e-5) and f.std() == pytest.approx(1.0, rel=1e-5)
    power = np.abs(np.fft.rfft2(f)) ** 2
    k = np.hypot(np.fft.fftfreq(128)[:, None], np.fft.rfftfreq(128)[None, :])
    low, high = power[(k > 0.02) & (k < 0.04)].mean(), power[(k > 0.2) & (k < 0.4)].mean()
    assert np.log10(low / high) == pytest.approx(3.0, abs=0.5)                # ~ k^-3 over a decade


def test_rain_is_intermittent_and_heavy_tailed(scenes):
    _, _, rain = scenes
    wet = rain > 0.1
    assert 0.05 < wet.mean() < 0.6
    assert (rain >= 10).mean() > 0.002 and rain.max() > 30
    assert np.median(rain[wet]) < 3.0                                          # most rain is light


def test_cloud_tops_and_band_physics(scenes):
    bands, decoy, rain = scenes
    b13 = bands[13]
    # cold tops rain, colder tops rain harder; rank correlations, as the rain is heavy-tailed like real rain
    from scipy.stats import spearmanr

    assert spearmanr(b13.ravel(), rain.ravel())[0] < -0.4
    wet = rain > 0.1
    assert spearmanr(b13[wet], rain[wet])[0] < -0.4
    heavy = rain >= 10
    assert np.median(b13[heavy]) < 215 and np.median(b13[rain == 0]) > 260
    split_window = bands[14] - bands[15]
    cold = b13 < 250
    wet_opaque = (rain[cold & (split_window < 1)] > 0.1).mean()
    wet_thin = (rain[cold & (split_window > 3)] > 0.1).mean()
    assert wet_thin < 0.5 * wet_opaque                                                  # thin cirrus shows
    assert np.median(bands[8]) < np.median(bands[10]) < np.median(bands[13])           # WV bands colder
    assert np.median(bands[16]) < np.median(bands[13]) - 10                            # CO2 band colder
    wv_minus_window = bands[8] - b13
    assert (wv_minus_window[b13 < 200] > 0).mean() > 0.9                                # overshooting tops
    assert (wv_minus_window[b13 > 240] < 0).all()
    warm_rain = (rain > 0.1) & (b13 > 255)
    assert warm_rain.sum() > 0                                                         # rain IR barely sees
    assert abs(np.corrcoef(decoy.ravel(), rain.ravel())[0, 1]) < 0.1                    # decoy carries nothing


def test_rain_statistics_on_hand_made_fields():
    from mtdense.domains.precip.rain_stats import correlation_length, rain_area_sizes, rain_statistics, spectrum_slope

    field = np.zeros((20, 20), np.float32)
    field[2:4, 2:5] = 1.0          # 6-pixel area
    field[10, 10] = 20.0           # 1 pixel
    field[15:17, 15] = 0.05        # dry (below 0.1 mm/h)
    assert sorted(rain_area_sizes(field).tolist()) == [1, 6]
    stats = rain_statistics([field])
    assert stats["wet_fraction"] == pytest.approx(7 / 400)
    assert stats["exceed_0.5"] == 1.0 and stats["exceed_10"] == pytest.approx(1 / 7)
    rng = np.random.default_rng(0)
    for beta in (2.0, 3.0):   # the slope of a k^-beta Gaussian field is recovered
        assert spectrum_slope(powerlaw_field(rng, (256, 256), beta)) == pytest.approx(beta, abs=0.3)
    white = rng.standard_normal((128, 128))
    assert correlation_length(white) < 1.0                      # uncorrelated: below one pixel
    assert correlation_length(powerlaw_field(rng, (128, 128), 3.5)) > 5.0


def test_synthetic_labels_have_realistic_intensities():
    """Calibrated against real radar rain (benchmarks/results/synth_realism.md): light rain dominates."""
    from mtdense.domains.precip.rain_stats import rain_statistics
    from mtdense.domains.precip.synth import _label_from_fine, synth_scene

    rng = np.random.default_rng(1)
    labels = [_label_from_fine(rng, synth_scene(rng, (128, 128), 0)[2], 0, False) for _ in range(6)]
    stats = rain_statistics(labels)
    assert 0.3 < stats["wet_q50"] < 1.2 and 0.03 < stats["wet_fraction"] < 0.35
    assert 0.01 < stats["exceed_5"] < 0.15 and stats["exceed_10"] < 0.06
