"""Data-preparation hooks a grid runs before training: ``prepare: [{type: ..., <options>}]``.

Each hook is idempotent: it does nothing when its output is already there, so a resumed
bench does not regenerate data. ``synth_street`` writes SYNTHETIC street scenes (a marker
file records the parameters; other parameters in the same folder are an error, since the
reader would mix both sets of images); ``mtdense`` runs an ``mtdense`` command in-process
(e.g. ``data synth-precip`` and ``prepare-precip``) unless the path in ``creates`` exists.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Callable

from mtdense.registry import ConfigError

MARKER = "mtdense_prepare.json"


def prepare_synth_street(root: str, n_train: int, n_val: int, height: int = 128, width: int = 256, seed: int = 0) -> str:
    from mtdense.data.synth_street import synth_street

    folder = Path(root)
    params = {"type": "synth_street", "n_train": n_train, "n_val": n_val, "height": height, "width": width, "seed": seed}
    marker = folder / MARKER
    if marker.is_file():
        found = json.loads(marker.read_text())
        if found == params:
            return f"{folder}: synthetic street scenes already present"
        raise ConfigError(
            f"{folder}: holds synthetic street scenes made with {found}, the grid asks for {params}; "
            "delete the folder or point the grid's prepare root (and the configs' data root) elsewhere"
        )
    if (folder / "leftImg8bit").exists():
        raise ConfigError(f"{folder}: holds Cityscapes-layout data without {MARKER} (other data, or an interrupted "
                          "generation); delete it or choose another root")
    summary = synth_street(folder, n_train, n_val, height, width, seed)
    marker.write_text(json.dumps(params) + "\n")
    return f"{folder}: wrote {n_train} + {n_val} synthetic street scenes in {summary['seconds']:.1f} s"


def prepare_mtdense(args: list[str], creates: str) -> str:
    from mtdense.cli import main

    if Path(creates).exists():
        return f"{creates}: already present"
    code = main([str(a) for a in args])
    if code != 0:
        raise ConfigError(f"prepare: `mtdense {' '.join(map(str, args))}` failed with exit code {code}")
    if not Path(creates).exists():
        raise ConfigError(f"prepare: `mtdense {' '.join(map(str, args))}` did not create {creates}; fix creates:")
    return f"{creates}: created by mtdense {' '.join(map(str, args))}"


PREPARE: dict[str, Callable[..., str]] = {"synth_street": prepare_synth_street, "mtdense": prepare_mtdense}


def run_prepare(steps: list[dict[str, Any]], where: str) -> list[str]:
    """Run each ``{type: name, **options}`` hook in order; returns one message per hook."""
    messages = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or "type" not in step:
            raise ConfigError(f"{where}.{i}: needs a type; one of {', '.join(PREPARE)}")
        options = dict(step)
        name = options.pop("type")
        if name not in PREPARE:
            raise ConfigError(f"{where}.{i}.type: {name!r} is not a prepare hook; choose one of {', '.join(PREPARE)}")
        fn = PREPARE[name]
        try:
            inspect.signature(fn).bind(**options)
        except TypeError as exc:
            accepted = ", ".join(inspect.signature(fn).parameters)
            raise ConfigError(f"{where}.{i} ({name}): {exc}; accepted options: {accepted}") from exc
        messages.append(fn(**options))
    return messages
