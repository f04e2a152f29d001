"""Paired statistics of benchmarks/semisup.py on hand-computed values."""

import importlib.util
import math
import statistics

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("semisup_report", ROOT / "benchmarks" / "semisup.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def test_paired_interval_and_mde():
    s = report.paired([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3: t(0.975, 2) = 4.3027, t(0.80, 2) = 1.0607
    assert s["mean"] == 2.0 and s["sd"] == 1.0
    assert s["ci"] == pytest.approx([2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)], rel=1e-5)
    assert s["mde"] == pytest.approx((4.302653 + 1.060660) / math.sqrt(3), rel=1e-5)
    assert s["p"] == pytest.approx(0.0742, abs=1e-3)  # t = 2 / (1 / sqrt 3) = 3.46, 2 df
    assert report.paired([0.5])["ci"] is None


def test_holm_skips_variants_without_a_p_value():
    adjusted = report.holm_or_none({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06, "d": None})


def test_variants_and_contrasts_are_paired_by_seed_from_the_variant_label():
    def record(variant, seed, miou):
        metrics = {"semantic": {"miou": miou}, "depth": {"abs_rel": 0.4, "rmse": 10.0, "delta1": 0.5}}
        return {"pair": "f8", "variant": variant, "seed": seed, "kind": "multitask", "metrics": metrics}

    records = {}
    for seed, (sup, mt, mix) in enumerate([(0.50, 0.52, 0.55), (0.60, 0.61, 0.60), (0.40, 0.43, 0.44)]):
        for variant, miou in (("supervised+none+noccam", sup), ("meanteacher+none+noccam", mt),
                              ("meanteacher+affinemix+noccam", mix)):
            records[f"f8/{variant}/seed{seed}"] = record(variant, seed, miou)
    records["f8/baseline:semantic/seed0"] = {**record("baseline:semantic", 0, 0.9), "kind": "baseline"}
    f8 = report.analyse(records)["f8"]
    assert f8["reference_seeds"] == [0, 1, 2] and set(f8["rows"]) == {"meanteacher+none+noccam",
                                                                        "meanteacher+affinemix+noccam"}
    assert f8["rows"]["meanteacher+none+noccam"]["diff"]["semantic/miou"]["mean"] == pytest.approx(0.02)
    mix = next(c for c in f8["contrasts"] if c["isolates"].startswith("AffineMix"))
    assert mix["against"] == "meanteacher+none+noccam"
    assert mix["diff"]["semantic/miou"]["mean"] == pytest.approx((0.03 - 0.01 + 0.01) / 3)
    # Δm per-metric: only mIoU changed, by +x/ref; 4 metrics -> mean 100·x/ref/4 per seed
    expected = statistics.fmean(100 * (b - a) / a / 4 for a, b in [(0.52, 0.55), (0.61, 0.60), (0.43, 0.44)])
    assert mix["delta_m"]["per_metric"]["mean"] == pytest.approx(expected)
