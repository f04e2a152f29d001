"""Run the conformance checks of one plugin and report every failure at once."""

from __future__ import annotations

import importlib
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

from mtdense.registry import ALL_REGISTRIES, registry_of

Check = tuple[str, Callable[[], None]]

KINDS: dict[str, str] = {
    "backbone": "mtdense.testing.models:backbone_checks",
    "decoder": "mtdense.testing.models:decoder_checks",
    "head": "mtdense.testing.models:head_checks",
    "interaction": "mtdense.testing.interactions:interaction_checks",
    "task": "mtdense.testing.objectives:task_checks",
    "loss": "mtdense.testing.objectives:loss_checks",
    "coupling": "mtdense.testing.objectives:coupling_checks",
    "metric": "mtdense.testing.metrics:metric_checks",
    "balancer": "mtdense.testing.balancers:balancer_checks",
    "dataset": "mtdense.testing.data:dataset_checks",
    "transform": "mtdense.testing.data:transform_checks",
    "batch_transform": "mtdense.testing.data:batch_transform_checks",
    "logger": "mtdense.testing.engine:logger_checks",
    "teacher": "mtdense.testing.engine:teacher_checks",
    "hook": "mtdense.testing.engine:hook_checks",
    "rule": "mtdense.testing.rules:rule_checks",
}
"""Kind → ``module:function`` returning the named checks of one plugin."""


class ConformanceError(AssertionError):
    """A plugin failed one or more conformance checks (all listed, one per line)."""

    def __init__(self, kind: str, name: str, failures: list[str]):
        self.kind, self.name, self.failures = kind, name, failures
        super().__init__(f"{kind} {name!r} failed {len(failures)} conformance check(s):\n  " + "\n  ".join(failures))


def registered_plugins() -> list[tuple[str, str]]:
    """Every (kind, name) registered in this environment, entry-point plugins included."""
    return [(kind, name) for kind, reg in ALL_REGISTRIES.items() for name in reg.names()]


def plugin_options(kind: str, name: str, workdir: Path) -> dict[str, Any]:
    """The plugin's ``conformance_kwargs`` (called with ``workdir`` if it is a function), or {}."""
    options = getattr(ALL_REGISTRIES[kind].get(name), "conformance_kwargs", {})
    return dict(options(Path(workdir)) if callable(options) else options)


def _checks_for(kind: str) -> Callable[[str, dict], list[Check]]:
    if kind not in KINDS:
        raise ConformanceError(kind, "*", [f"the kit has no checks for kind {kind!r}; add them to mtdense.testing.KINDS"])
    module, function = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), function)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AssertionError) and str(exc):
        return " ".join(str(exc).split())
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {' '.join(str(exc).split())} (at {Path(frame.filename).name}:{frame.lineno})"


def check_plugin(kind: str, name: str, **build_kwargs: Any) -> list[str]:
    """Run every check of ``kind`` on plugin ``name`` built with ``build_kwargs`` (else its
    ``conformance_kwargs``). Returns the names of the checks that passed; raises
    ``ConformanceError`` naming each failed check and why."""
    kind = registry_of(kind).kind  # an unknown kind or name is a RegistryError, not a conformance failure
    registry_of(kind).get(name)
    make_checks = _checks_for(kind)
    with tempfile.TemporaryDirectory(prefix="mtdense-conformance-") as tmp:
        workdir = Path(tmp)
        try:
            options = build_kwargs or plugin_options(kind, name, workdir / "data")
            checks = make_checks(name, options, workdir)
        except Exception as exc:  # building the checks builds the plugin
            raise ConformanceError(kind, name, [f"build: {_describe(exc)}"]) from exc
        passed, failures = [], []
        for check_name, check in checks:
            try:
                check()
                passed.append(check_name)
            except Exception as exc:  # report every failed check, not just the first
                failures.append(f"{check_name}: {_describe(exc)}")
    if failures:
        raise ConformanceError(kind, name, failures)
    return passed
