"""Idempotent generation of a synthetic data folder, recorded by a marker file of its options.

Used by the domains' ``mtdense data synth-*`` verbs and the bench's ``prepare:`` steps: the first
call generates and writes ``<folder>/<marker>`` (the options as JSON); a later call with the same
options does nothing; other options, or data in the folder without the marker (other data, or
an interrupted generation), are refused with a DataError, because a reader would mix both sets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from mtdense.errors import DataError


def generate_once(folder: str | Path, marker: str, params: dict[str, Any], occupied: Callable[[Path], bool],
                  generate: Callable[[], dict], what: str) -> dict:
    """``generate()`` unless ``folder`` already holds ``what`` made with ``params``.

    ``occupied(folder)`` says whether the folder holds data of this layout (checked when the
    marker is absent). Returns ``generate()``'s summary, or ``{"already_present": True, ...}``.
    """
    folder = Path(folder)
    path = folder / marker
    if path.is_file():
        found = json.loads(path.read_text())
        if found == params:
            return {"root": str(folder), "already_present": True, **params}
        raise DataError(f"{folder}: holds {what} made with {found}, not {params}; delete the folder or choose another root")
    if occupied(folder):
        raise DataError(f"{folder}: holds data without {marker} (other data, or an interrupted generation); "
                        "delete it or choose another root")
    summary = generate()
    path.write_text(json.dumps(params) + "\n")
    return summary
