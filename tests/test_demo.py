"""The flagship demo end to end at toy size: synthetic files → store → MTCF → report."""

from __future__ import annotations

import json

import pytest

from mtdense.cli import main


@pytest.mark.slow
def test_demo_writes_an_honest_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--scenes", "8", "--epochs", "1", "--size", "64", "--tile", "32",
                 "data.batch_size=8"]) == 0
    report = (out / "report.md").read_text()
    assert "**All data in this report are SYNTHETIC**" in report
    assert "| GPI rule (B13 < 235 K → 3 mm/h) |" in report and "| MTCF (mtdense) |" in report
    for fig in ("rain_maps", "class_maps", "scatter", "scores"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    assert (out / "bands" / "importance.csv").is_file()
    metrics = json.loads((out / "test_metrics.json").read_text())
    f1 = metrics["mtcf"]["test/rain_rate/f1@0.5"]
    assert 0.0 <= f1 <= 1.0
    assert 0.0 < metrics["gpi"]["csi@0.5"] < 1.0
