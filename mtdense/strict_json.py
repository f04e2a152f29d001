"""Standard JSON for metrics: NaN and ±Inf (undefined scores, e.g. F1 with no events) become
``null``. Python's ``json`` writes them as bare ``NaN``/``Infinity``, which RFC 8259 forbids and
strict readers (jq, JavaScript, many JSON libraries) reject."""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """``value`` with NaN/Inf floats (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``value`` with non-finite floats written as ``null``."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)
