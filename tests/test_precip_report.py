"""``mtdense report RUN`` on any precipitation run, and the GPI rule from the CLI."""

import csv
import json


from mtdense.cli import main


def test_report_on_a_precip_run(precip_run, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(precip_run), "--split", "test", "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "SYNTHETIC" in text and "hss@0.5" in text and "ets@0.5" in text and "roc_auc" in text
    scores = json.loads((out / "scores.json").read_text())
    model = scores["model"]
    assert 0.0 <= model["brier"] <= 1.0 and model["n"] > 0 and -1 / 3 <= model["hss@0.5"] <= 1.0
    assert any(name.startswith("GPI") for name in scores)
    for fig in ("maps", "scatter", "performance", "reliability"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000
    rows = list(csv.DictReader(open(out / "per_scene.csv")))
    assert rows and {"scan_time", "csi@0.5", "hss@0.5", "brier"} <= set(rows[0])
    assert sum(int(float(r["n"])) for r in rows) == model["n"]


def test_gpi_from_the_cli(tiny_domain_data, capsys):
    assert main(["gpi", str(tiny_domain_data["precip_store"]), "--split", "train"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0.0 <= scores["csi@0.5"] <= 1.0
