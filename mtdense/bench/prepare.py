"""Data-preparation hooks a grid runs before training: ``prepare: [{type: mtdense, args: [...]}]``.

A hook runs an ``mtdense`` command in-process — any verb, including those a domain contributes
(``data synth-street``, ``data synth-precip``, ``data prepare-precip``) — so the bench harness
knows no domain. With ``creates: PATH`` the command is skipped when PATH exists; without it the
command itself must be idempotent (``data synth-street`` is: it does nothing when the folder
already holds scenes made with the same options). A resumed bench therefore never regenerates data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtdense.errors import ConfigError, check_keys


def prepare_mtdense(args: list[str], creates: str | None = None) -> str:
    from mtdense.cli import main

    command = "mtdense " + " ".join(map(str, args))
    if creates is not None and Path(creates).exists():
        return f"{creates}: already present"
    code = main([str(a) for a in args])
    if code != 0:
        raise ConfigError(f"`{command}` failed with exit code {code}")
    if creates is not None and not Path(creates).exists():
        raise ConfigError(f"`{command}` did not create {creates}; fix creates:")
    return f"{creates or 'data'}: prepared by {command}"


def run_prepare(steps: list[dict[str, Any]], where: str) -> list[str]:
    """Run each ``{type: mtdense, args: [...], creates: ...}`` hook in order; one message per hook."""
    messages = []
    for i, step in enumerate(steps):
        try:
            if not isinstance(step, dict) or step.get("type") != "mtdense":
                raise ConfigError("needs type: mtdense (run an mtdense command), with args: [...]")
            check_keys(step, ("type", "args", "creates"), "option")
            if not isinstance(step.get("args"), list):
                raise ConfigError("must be a list of command-line words, e.g. [data, synth-street, --root, DIR]",
                                  key="args")
            messages.append(prepare_mtdense(step["args"], step.get("creates")))
        except ConfigError as exc:
            raise exc.under(f"{where}.{i}") from None
    return messages
