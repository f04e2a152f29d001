"""Plugin registries: one ``Registry`` class, one instance per kind of plugin.

Registration is by decorator (``@INTERACTIONS.register("cbim")``); building is uniform
(``INTERACTIONS.build({"type": "cbim", "kernel_size": 7}, path="model.interactions.0",
channels=...)``). Before calling the plugin, ``build`` checks every config key against the
callable's signature, so a typo is reported with its config path and the accepted options.

mtdense's own plugins are imported lazily: each registry knows the packages that hold its
plugins (the ``locations`` idea of mmengine) and imports them on the first lookup, so a name
is never "not registered" because of import order. Third-party packages register through the
entry-point group ``mtdense.plugins``; each entry point names a module to import. A plugin
that fails to import produces a warning naming it, never a crash of unrelated commands.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import warnings
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, Mapping

ENTRY_POINT_GROUP = "mtdense.plugins"


class ConfigError(ValueError):
    """A configuration problem, reported as one line naming the key path and what to do."""


class RegistryError(ConfigError):
    """An unknown plugin name or a bad plugin option."""


_plugins_loaded = False


def load_plugins() -> None:
    """Import every module named by an entry point of the group ``mtdense.plugins`` (once)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must not break mtdense
            warnings.warn(
                f"mtdense plugin {ep.name!r} ({ep.value}) failed to load and was skipped: "
                f"{type(exc).__name__}: {exc}",
                stacklevel=2,
            )


def _import_package_tree(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=package + "."):
        importlib.import_module(info.name)


def _accepted_options(fn: Callable) -> tuple[list[str], bool, list[str]]:
    """Keyword names ``fn`` accepts, whether it takes ``**kwargs``, and the required ones."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    sig = inspect.signature(target)
    names, required, var_kw = [], [], False
    for i, (name, p) in enumerate(sig.parameters.items()):
        if inspect.isclass(fn) and i == 0:  # self
            continue
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(name)
            if p.default is p.empty:
                required.append(name)
    return names, var_kw, required


class Registry:
    """A name → callable table for one kind of plugin (backbone, head, interaction, ...)."""

    def __init__(self, kind: str, locations: Iterable[str] = ()):
        self.kind = kind
        self.locations = tuple(locations)
        self._table: dict[str, Callable] = {}
        self._imported = False

    def register(self, name: str) -> Callable[[Callable], Callable]:
        """Decorator: register a class or factory function under ``name``."""

        def deco(obj: Callable) -> Callable:
            if name in self._table and self._table[name] is not obj:
                existing = self._table[name]
                raise RegistryError(
                    f"{self.kind} {name!r} is already registered by "
                    f"{existing.__module__}.{existing.__qualname__}; choose another name"
                )
            self._table[name] = obj
            obj.registry_name = name
            return obj

        return deco

    def _ensure_imported(self) -> None:
        if self._imported:
            return
        self._imported = True
        for package in self.locations:
            _import_package_tree(package)
        load_plugins()

    def names(self) -> list[str]:
        self._ensure_imported()
        return sorted(self._table)

    def __contains__(self, name: str) -> bool:
        self._ensure_imported()
        return name in self._table

    def get(self, name: str, path: str = "type") -> Callable:
        self._ensure_imported()
        if name in self._table:
            return self._table[name]
        close = difflib.get_close_matches(str(name), self._table, n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RegistryError(
            f"{path}: unknown {self.kind} {name!r}{hint} registered: {', '.join(sorted(self._table)) or '(none)'}"
        )

    def build(self, cfg: Mapping[str, Any] | str, path: str = "", **runtime: Any) -> Any:
        """Build from ``cfg`` (``{"type": name, **options}`` or just a name).

        ``runtime`` holds arguments mtdense supplies itself (channel counts, task lists);
        they are not config keys, so a config that sets one is rejected too.
        """
        if isinstance(cfg, str):
            cfg = {"type": cfg}
        options = dict(cfg)
        where = path or self.kind
        if "type" not in options:
            raise RegistryError(f"{where}: missing 'type'; choose one of: {', '.join(self.names())}")
        name = options.pop("type")
        fn = self.get(name, f"{where}.type")
        accepted, var_kw, required = _accepted_options(fn)
        for key in options:
            if key in runtime:
                raise RegistryError(
                    f"{where}.{key}: set by mtdense for {self.kind} {name!r}, not a config option; remove it"
                )
            if key not in accepted and not var_kw:
                configurable = [a for a in accepted if a not in runtime]
                close = difflib.get_close_matches(key, configurable, n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise RegistryError(
                    f"{where}.{key}: unknown option for {self.kind} {name!r}{hint}; "
                    f"accepted: {', '.join(configurable) or '(none)'}"
                )
        missing = [r for r in required if r not in options and r not in runtime]
        if missing:
            raise RegistryError(f"{where}: {self.kind} {name!r} needs option(s): {', '.join(missing)}")
        kwargs = {k: v for k, v in runtime.items() if k in accepted or var_kw}
        kwargs.update(options)
        return fn(**kwargs)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._table)} registered)"


BACKBONES = Registry("backbone", ["mtdense.models.backbones"])
DECODERS = Registry("decoder", ["mtdense.models.decoders"])
HEADS = Registry("head", ["mtdense.models.heads"])
INTERACTIONS = Registry("interaction", ["mtdense.models.interactions"])
TASKS = Registry("task", ["mtdense.tasks"])
LOSSES = Registry("loss", ["mtdense.losses"])
COUPLINGS = Registry("coupling", ["mtdense.losses"])
BALANCERS = Registry("balancer", ["mtdense.balancing"])
METRICS = Registry("metric", ["mtdense.metrics"])
DATASETS = Registry("dataset", ["mtdense.data"])
LOGGERS = Registry("logger", ["mtdense.engine.loggers"])

ALL_REGISTRIES: dict[str, Registry] = {
    r.kind: r
    for r in (BACKBONES, DECODERS, HEADS, INTERACTIONS, TASKS, LOSSES, COUPLINGS, BALANCERS, METRICS, DATASETS, LOGGERS)
}
