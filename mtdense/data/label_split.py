"""Labelled subsets for semi-supervised training: a deterministic rule, split files, standard sizes.

Rule. The labelled subset of a pool of N samples with ids x_1 … x_N is the ``count`` samples
with the smallest SHA-256 of ``"<seed>:<id>"``. It depends only on the ids and the seed (not
on file order, library versions or the machine), and splits of one seed are nested: the 1/8
subset is inside the 1/4 subset.

Sizes. ``label_fraction`` f gives count = ceil(f·N). On the 2975 Cityscapes fine training
images this reproduces the sizes used throughout the semi-supervised segmentation
literature: 1/8 → 372, 1/4 → 744, 1/2 → 1488, 1 → 2975 (the fifth common size, 100 images,
is given as ``labelled_count: 100``). The published image *lists* of those works (e.g. the
CPS/U2PL split files) are not shipped; pass one as a split file to use it.

Files. One id per line; ``#`` starts a comment; blank lines are ignored. A file mtdense wrote
starts with ``# mtdense label split (<rule>): ...``; reading it for a config whose rule differs
is an error (a run folder or path reused with another fraction or seed would otherwise train
silently on the old subset). A line may also be
a path as the published lists write them (``leftImg8bit/train/aachen/aachen_000000_000019_
leftImg8bit.png gtFine/...``): its first token's file name without extension is matched
against the ids, then again with its last ``_suffix`` removed.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import Sequence

from mtdense.errors import ConfigError, DataError

CITYSCAPES_SPLIT_SIZES = {"100": 100, "1/8": 372, "1/4": 744, "1/2": 1488, "full": 2975}


def labelled_count(pool: int, label_fraction: float | None, count: int | None) -> int:
    """How many samples of a pool of ``pool`` are labelled (exactly one of the two options)."""
    if (label_fraction is None) == (count is None):
        raise ConfigError("give exactly one of label_fraction and labelled_count", key="label_fraction")
    if count is not None:
        if not 1 <= int(count) <= pool:
            raise ConfigError(f"{count} must be between 1 and the pool size {pool}", key="labelled_count")
        return int(count)
    if not 0 < float(label_fraction) <= 1:
        raise ConfigError(f"{label_fraction!r} must be a fraction in (0, 1]", key="label_fraction")
    return math.ceil(float(label_fraction) * pool)


def select_labelled(ids: Sequence[str], count: int, seed: int) -> list[str]:
    """The ``count`` ids with the smallest SHA-256 of ``"<seed>:<id>"``, in the order of ``ids``."""
    if len(set(ids)) != len(ids):
        raise DataError("sample ids of the labelled pool are not unique; the split needs one id per sample")
    key = {i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() for i in ids}
    chosen = set(sorted(ids, key=key.__getitem__)[:count])
    return [i for i in ids if i in chosen]


def _candidates(line: str) -> list[str]:
    token = line.split()[0]
    stem = Path(token).name.rsplit(".", 1)[0]
    return [token, stem, stem.rsplit("_", 1)[0]]


HEADER = re.compile(r"^# mtdense label split \((.*)\):")


def read_split(path: str | Path, ids: Sequence[str], rule: str | None = None) -> list[str]:
    """The labelled ids listed in ``path`` (see module docstring), in the pool's order; ``rule``
    (as given to ``write_split``) must match the rule recorded in a file mtdense wrote."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: split file not found") from None
    recorded = HEADER.match(lines[0]) if lines else None
    if rule is not None and recorded and recorded.group(1) != rule:
        raise DataError(f"{path}: this label split was made with {recorded.group(1)}, the config asks for {rule}; "
                        "delete the file or set split_file to another path")
    known, chosen, unknown = set(ids), set(), []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = next((c for c in _candidates(line) if c in known), None)
        if match is None:
            unknown.append(line.split()[0])
        else:
            chosen.add(match)
    if unknown:
        raise DataError(f"{path}: {len(unknown)} listed sample(s) are not in the labelled pool, e.g. "
                        f"{', '.join(unknown[:3])}; check the file belongs to this dataset and split")
    if not chosen:
        raise DataError(f"{path}: lists no samples")
    return [i for i in ids if i in chosen]


def write_split(path: str | Path, labelled: Sequence[str], pool: int, rule: str) -> None:
    """Write the labelled ids (atomically: concurrent DDP ranks write the same content)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"# mtdense label split ({rule}): {len(labelled)} of {pool} samples, "
                   "rule of mtdense.data.label_split\n" + "\n".join(labelled) + "\n")
    os.replace(tmp, path)
