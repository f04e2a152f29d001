"""Every plugin registered in this environment through the conformance kit.

Run with ``pytest --pyargs mtdense.testing`` (your own plugins are included once your package
names its plugin module in the entry-point group ``mtdense.plugins``); mtdense's test suite
imports these tests, so a newly registered plugin is covered without editing a test.
"""

from __future__ import annotations

import pytest

from mtdense.registry import ALL_REGISTRIES
from mtdense.testing import KINDS, check_plugin, registered_plugins


def test_every_kind_has_checks():
    missing = sorted(set(ALL_REGISTRIES) - set(KINDS))
    assert not missing, f"plugin kinds without conformance checks: {missing}"


@pytest.mark.parametrize("kind,name", registered_plugins(), ids=lambda value: str(value))
def test_plugin_conforms(kind, name):
    reason = getattr(ALL_REGISTRIES[kind].get(name), "conformance_skip", None)
    if reason:  # a plugin that needs a trained artifact says so, and which test covers it
        pytest.skip(f"{kind} {name!r}: {reason}")
    check_plugin(kind, name)
