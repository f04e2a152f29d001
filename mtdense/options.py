"""Type and range checks for scalar config values, one line per problem.

Two users: the engine's fixed sections (``trainer:``, ``data:``, ``seed``) declare each key as an
``Option`` with its default, type and range; plugins are checked against their signature's
annotations by ``Registry.build`` (``lr: float`` rejects ``lr: fast``). YAML gives ``true`` for
``yes``/``true`` and numbers for numbers, so a boolean where a number belongs, text where a number
belongs and a fraction where an integer belongs are all user mistakes, reported with the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from omegaconf import ListConfig

from mtdense.errors import ConfigError

SCALAR_KINDS = ("int", "float", "bool", "str")


def type_problem(value: Any, kind: str, nullable: bool = False) -> str | None:
    """Why ``value`` is not of ``kind`` (``int``/``float``/``bool``/``str``), or ``None`` if it is."""
    if value is None:
        return None if nullable else f"must be {_NAMES[kind]}, got null"
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "list":
        ok = isinstance(value, (list, tuple, ListConfig))
    elif kind == "choice":  # one of ``choices``, of any type (checked with the range)
        ok = True
    else:
        ok = isinstance(value, str)
    return None if ok else f"must be {_NAMES[kind]}, got {value!r}"


_NAMES = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "text", "list": "a list", "choice": "one of the choices"}


def annotation_kind(annotation: Any) -> tuple[str, bool] | None:
    """``(kind, nullable)`` for a plain scalar annotation (``float``, ``"int | None"``,
    ``"Optional[str]"``); ``None`` for anything else (lists, mappings, unions of several types)."""
    if isinstance(annotation, type):
        return (annotation.__name__, False) if annotation.__name__ in SCALAR_KINDS else None
    if not isinstance(annotation, str):
        return None
    text = annotation.replace(" ", "")
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional["):-1] + "|None"
    parts = text.split("|")
    nullable = "None" in parts
    kinds = [p for p in parts if p != "None"]
    if len(kinds) == 1 and kinds[0] in SCALAR_KINDS:
        return kinds[0], nullable
    return None


@dataclass(frozen=True)
class Option:
    """One key of a fixed config section: default, type, and an optional range or set of choices."""

    default: Any
    kind: str
    minimum: float | None = None  # inclusive
    above: float | None = None  # exclusive lower bound
    maximum: float | None = None  # inclusive
    below: float | None = None  # exclusive upper bound
    choices: Sequence[Any] = ()
    nullable: bool = False
    hint: str = ""

    def check(self, value: Any, key: str) -> None:
        """Raise a one-line ``ConfigError`` keyed ``key`` unless ``value`` fits this option."""
        problem = type_problem(value, self.kind, self.nullable)
        if problem is None and value is not None:
            problem = self._range_problem(value)
        if problem:
            raise ConfigError(problem + (f"; {self.hint}" if self.hint else ""), key=key)

    def _range_problem(self, value: Any) -> str | None:
        if self.choices and value not in self.choices:
            return f"{value!r} is not one of {', '.join(map(str, self.choices))}"
        bounds = [(self.minimum, lambda v, b: v >= b, ">="), (self.above, lambda v, b: v > b, ">"),
                  (self.maximum, lambda v, b: v <= b, "<="), (self.below, lambda v, b: v < b, "<")]
        for bound, ok, sign in bounds:
            if bound is not None and not ok(value, bound):
                return f"must be {sign} {bound:g}, got {value!r}"
        return None
