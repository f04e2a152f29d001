"""Train/val/test assignment of IMERG half-hour granules in time BLOCKS (the default split).

Neighbouring half-hours of rain fields are strongly correlated: a random split per granule
(``prepare.assign_splits``, kept as ``--split random``) puts 12:00 in train and 12:30 in test,
so test scores measure interpolation in time, not generalisation. Here granules are grouped
into consecutive blocks of ``block_hours`` counted from the first granule, and whole blocks
are assigned to splits (seeded), so train and test share at most the boundary between two
adjacent blocks. Choose ``block_hours`` longer than the decorrelation time of the rain systems
(hours to a day). ``block_hours=None`` (default) picks the longest of 24, 12, 6, 3 and 1 hours
that gives at least ``MIN_BLOCKS`` blocks (day blocks for a month of data; 1 h for a few hours
of synthetic data); the length used is returned and recorded in the tile store.

Adjacent blocks of different splits still touch: rain at 11:30 in train and 12:00 in test is one
system. ``embargo`` (``prepare-precip --gap-hours``) removes that contact, as purging/embargo do in
time-series cross-validation (Roberts et al. 2017, Ecography 40:913, "Cross-validation strategies for
data with temporal, spatial, hierarchical, or phylogenetic structure"): a granule within ``gap_hours``
of a granule of a split that ranks above its own (test > val > train) is moved to ``GAP`` and
used by no split, so the test split keeps all its granules and train gives up the most.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import numpy as np

from mtdense.errors import ConfigError


MIN_BLOCKS = 10
CANDIDATE_HOURS = (24.0, 12.0, 6.0, 3.0, 1.0)
GAP = "gap"
_RANK = {"train": 0, "val": 1, "test": 2}


def _block_index(starts: list[dt.datetime], hours: float) -> dict[dt.datetime, int]:
    return {t: int((t - starts[0]).total_seconds() // (hours * 3600)) for t in starts}


def blocked_splits(granule_starts: Iterable[dt.datetime], val_fraction: float, test_fraction: float,
                   seed: int, block_hours: float | None = None) -> tuple[dict[dt.datetime, str], float]:
    """Seeded split per block (at least one block each for val/test when their fraction > 0);
    returns the split of every granule and the block length in hours."""
    starts = sorted(set(granule_starts))
    if block_hours is None:
        block_hours = next((h for h in CANDIDATE_HOURS if len(set(_block_index(starts, h).values())) >= MIN_BLOCKS),
                           CANDIDATE_HOURS[-1])
    if not block_hours > 0:
        raise ConfigError(f"{block_hours} must be > 0", key="block_hours")
    first = starts[0]
    block_of = _block_index(starts, block_hours)
    blocks = sorted(set(block_of.values()))
    n = len(blocks)
    counts = [max(1, round(f * n)) if f > 0 else 0 for f in (val_fraction, test_fraction)]
    if n - sum(counts) < 1:
        span = (starts[-1] - first).total_seconds() / 3600
        raise ConfigError(f"{len(starts)} half hours over {span:.1f} h make {n} block(s) of {block_hours:g} h, too "
                          f"few for train + val + test; use shorter --block-hours or add data", key="block_hours")
    order = np.random.default_rng(seed).permutation(n)
    names = ["val"] * counts[0] + ["test"] * counts[1] + ["train"] * (n - sum(counts))
    split_of_block = {blocks[i]: name for i, name in zip(order, names)}
    return {t: split_of_block[block_of[t]] for t in starts}, float(block_hours)


def embargo(split_of: dict[dt.datetime, str], gap_hours: float) -> dict[dt.datetime, str]:
    """``split_of`` with every granule within ``gap_hours`` (inclusive) of a granule of a higher-ranked
    split (test > val > train) moved to ``GAP`` (see the module docstring)."""
    if not gap_hours >= 0:
        raise ConfigError(f"{gap_hours} must be >= 0", key="gap_hours")
    if gap_hours == 0:
        return dict(split_of)
    times = sorted(split_of)
    seconds = np.array([(t - times[0]).total_seconds() for t in times])
    rank = np.array([_RANK[split_of[t]] for t in times])
    window = gap_hours * 3600
    out = dict(split_of)
    for i, t in enumerate(times):
        lo = np.searchsorted(seconds, seconds[i] - window, side="left")
        hi = np.searchsorted(seconds, seconds[i] + window, side="right")
        if (rank[lo:hi] > rank[i]).any():
            out[t] = GAP
    return out
