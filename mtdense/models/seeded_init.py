"""Initialise every model part from its own random stream: a function of (seed, config path).

A module's initial weights then depend only on the run seed and where it sits in the config
(``model.backbone``, ``model.heads.depth``, ``model.interactions.0.stage2`` ...), not on which
other modules were built before it. Adding an interaction module to a variant therefore
leaves the backbone, decoders and heads exactly as in the baseline of the same seed, so
paired comparisons between variants (``mtdense.bench.statistics``) compare like with like.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator

import torch


def derived_seed(seed: int, path: str) -> int:
    """A 63-bit seed from the run seed and a config path (stable across Python runs)."""
    digest = hashlib.sha256(f"{int(seed)}/{path}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


@contextlib.contextmanager
def seeded(seed: int, path: str) -> Iterator[None]:
    """Run the body (a module's construction) with torch's CPU RNG seeded by ``derived_seed``;
    the global RNG state is restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(seed, path))
        yield
