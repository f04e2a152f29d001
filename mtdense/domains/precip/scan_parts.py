"""Finished scans of an interrupted ``prepare-precip``, kept so that a re-run skips them.

Beside the store ``OUT`` (written atomically only when every scan is done), the folder
``OUT.parts/`` holds one ``<scan name>.npz`` per finished scan (its ``ScanTiles`` and the IMERG
file it was paired with) and ``options.json`` (the per-scan options). Only the client process
writes here, each part atomically (``mtdense.atomic_write``), so a worker or client that dies
leaves complete parts or none. A re-run with the same options reuses the parts of scans paired
with the same granule; other options discard the folder. It is removed once the store exists.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from mtdense.atomic_write import atomic_path
from mtdense.domains.precip.scan_tiles import Scene, ScanOptions, ScanTiles


class ScanParts:
    def __init__(self, out_path: Path, options: ScanOptions, log=print):
        self.folder = Path(f"{out_path}.parts")
        fingerprint = json.dumps(dataclasses.asdict(options), sort_keys=True, default=str)
        stamp = self.folder / "options.json"
        if self.folder.is_dir() and (not stamp.is_file() or stamp.read_text() != fingerprint):
            log(f"prepare: {self.folder} was written with other options; starting over")
            shutil.rmtree(self.folder)
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True)
            with atomic_path(stamp) as tmp:
                tmp.write_text(fingerprint)

    def _path(self, scene: Scene) -> Path:
        return self.folder / f"{scene.name}.npz"

    def done(self, scene: Scene) -> bool:
        """A part exists for ``scene`` and was paired with the same IMERG file."""
        path = self._path(scene)
        if not path.is_file():
            return False
        with np.load(path) as part:
            return str(part["imerg"]) == scene.imerg.name

    def write(self, scene: Scene, tiles: ScanTiles) -> None:
        with atomic_path(self._path(scene)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, imerg=scene.imerg.name, **dataclasses.asdict(tiles))

    def read(self, scene: Scene) -> ScanTiles:
        with np.load(self._path(scene)) as part:
            return ScanTiles(**{f.name: part[f.name] if f.type != "bool" else bool(part[f.name])
                                for f in dataclasses.fields(ScanTiles)})

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
