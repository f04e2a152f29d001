"""The bench's results file: JSON lines, one finished run per line, keyed by ``key``
(``<pair>/<variant>/seed<k>``).

A line is added by writing the whole file to a temporary name and renaming it over the old
one, so an interruption leaves either the old file or the new one, never half a line; a
restarted bench reads the keys and skips those runs. Non-finite numbers are stored as
``null`` so every line is strict JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mtdense.atomic_write import write_text
from mtdense.errors import DataError
from mtdense.strict_json import dumps


class ResultsFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]]:
        """Finished runs by key (in file order)."""
        if not self.path.is_file():
            return {}
        records: dict[str, dict[str, Any]] = {}
        for n, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = record["key"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{self.path}:{n}: not a bench result line ({exc}); remove that line to rerun the run") from exc
            if key in records:
                raise DataError(f"{self.path}:{n}: run {key!r} is recorded twice; remove one of the lines")
            records[key] = record
        return records

    def append(self, record: dict[str, Any]) -> None:
        line = dumps(record, sort_keys=True)
        old = self.path.read_text() if self.path.is_file() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        write_text(self.path, old + line + "\n")
