"""The plugin conformance kit: the checks every registered plugin of every kind must pass.

For a plugin author::

    from mtdense.testing import check_plugin
    check_plugin("interaction", "my_gate", reduction=2)   # raises ConformanceError listing failures

or, for every plugin registered in the environment (yours included, through the entry point
group ``mtdense.plugins``)::

    pytest --pyargs mtdense.testing

Options come from the keyword arguments, else from the plugin's ``conformance_kwargs`` attribute
(a dict, or a function ``(workdir: Path) -> dict`` that may write tiny files, e.g. a dataset's
root), else the plugin's defaults. What each kind is checked for is in CONTRIBUTING.md and in
the modules of this package (one per family of kinds).
"""

from mtdense.testing.kit import ConformanceError, KINDS, check_plugin, plugin_options, registered_plugins

__all__ = ["ConformanceError", "KINDS", "check_plugin", "plugin_options", "registered_plugins"]
