"""Paired statistics of benchmarks/semisup.py on hand-computed values."""

import importlib.util
import math

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


def test_holm_is_step_down_and_monotone():
    adjusted = report.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06, "d": None})
