"""Paired statistics of the bench (issue 9 §3): hand-computed intervals, Holm, MDE, and verdicts
on planted effects. All numbers are synthetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtdense.bench.statistics import (bootstrap_interval, compare_variants, holm, minimum_detectable_effect,
                                      paired_differences, t_interval)


def test_t_interval_holm_and_mde_by_hand():
    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0) and (hi - lo) / 2 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    adjusted, rank = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06}) and rank == {"a": 1, "c": 2, "b": 3}
    # (t_{0.975,4} + t_{0.8,4}) * sd / sqrt(n) = (2.776445 + 0.940965) / sqrt(5)
    assert minimum_detectable_effect(1.0, 5) == pytest.approx(3.717410 / math.sqrt(5), rel=1e-5)
    assert minimum_detectable_effect(1.0, 5, comparisons=6) > minimum_detectable_effect(1.0, 5)
    assert paired_differences({0: 1.0, 1: 2.0, 2: None}, {0: 0.5, 1: 3.0, 2: 1.0, 3: 1.0}) == {0: 0.5, 1: -1.0}
    b_lo, b_hi = bootstrap_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert 1.0 <= b_lo < 3.0 < b_hi <= 5.0


def planted_grid(effect: float, seeds: int = 6, noise: float = 0.3, seed_spread: float = 3.0):
    """Per-seed Δm of a reference, an identical copy, and a variant shifted by ``effect`` pp.

    The seed effect (spread 3 pp) is shared by all variants of a seed, as in a real grid where
    variants share data order and initialisation; pairing removes it."""
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, seed_spread, seeds)
    return {
        "identity": {s: float(base[s]) for s in range(seeds)},
        "same": {s: float(base[s]) for s in range(seeds)},  # two identical variants
        "handicapped": {s: float(base[s] + effect + rng.normal(0, noise)) for s in range(seeds)},
        "noisy": {s: float(base[s] + rng.normal(0, noise)) for s in range(seeds)},
    }


def test_planted_effect_is_reported_as_hurts_with_ci_excluding_zero():
    result = compare_variants(planted_grid(effect=-2.0), reference="identity")
    hurt = result["comparisons"]["handicapped"]
    assert hurt["verdict"] == "hurts"
    assert hurt["ci_holm"][1] < 0 and hurt["ci_t"][1] < 0 and hurt["ci_bootstrap"][1] < 0
    assert hurt["mean"] == pytest.approx(-2.0, abs=0.4)
    assert result["m"] == 3 and result["mde"] is not None and result["mde"] < 2.0


def test_identical_variants_are_no_detectable_difference():
    result = compare_variants(planted_grid(effect=-2.0), reference="identity")
    same = result["comparisons"]["same"]
    assert same["verdict"].startswith("no detectable difference at ± 0.00")
    assert same["mean"] == 0.0 and same["p_holm"] == 1.0
    noisy = result["comparisons"]["noisy"]
    assert noisy["verdict"].startswith("no detectable difference at ±")
    assert noisy["ci_holm"][0] < 0 < noisy["ci_holm"][1]


def test_lower_is_better_flips_the_verdict():
    result = compare_variants(planted_grid(effect=-2.0), reference="identity", higher_is_better=False)
    assert result["comparisons"]["handicapped"]["verdict"] == "helps"
