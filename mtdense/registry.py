"""Plugin registries: one ``Registry`` class, one instance per kind of plugin.

Registration is by decorator (``@INTERACTIONS.register("cbim")``); building is uniform
(``INTERACTIONS.build({"type": "cbim", "kernel_size": 7}, path="model.interactions.0",
channels=...)``). Before calling the plugin, ``build`` checks every config key against the
callable's signature; a ``ConfigError`` the plugin raises with a key relative to itself is
re-raised with ``path`` in front, so errors always name the full config key.

Where plugins come from (mmengine's ``locations`` idea, made explicit):

- each registry has the core modules that hold its kind (``locations``), imported on its first
  lookup and marked imported only after success;
- packages — mtdense's own domains (``mtdense.domains.*``) and third-party ones alike — name a
  *plugin module* in the entry-point group ``mtdense.plugins``. A plugin module may declare
  ``LOCATIONS = {kind: [module, ...]}`` (imported lazily when that kind is first looked up) and
  ``CLI = "module"`` (verbs for the ``mtdense`` command); it may also simply register on import.

A module that fails to import produces a warning naming it; the failure is remembered and
shown again when a name of that kind is asked for and not found. Unrelated lookups still work.

Listing (``mtdense registry list``) reads the ``@REGISTRY.register("name")`` decorators from a
location's source (``ast``) instead of importing it, so it starts without importing torch; a
module whose registrations are not literal names (or constants of the module) is imported.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import warnings
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping

from mtdense.errors import ConfigError, RegistryError, closest
from mtdense.options import annotation_kind, type_problem

ENTRY_POINT_GROUP = "mtdense.plugins"


class PluginModules:
    """The plugin modules named by entry points of ``mtdense.plugins`` (imported once)."""

    def __init__(self) -> None:
        self._modules: dict[str, ModuleType] | None = None
        self.failures: dict[str, str] = {}  # module → "Type: message"
        self.failed_plugins: set[str] = set()  # plugin modules (entry points) that failed

    def modules(self) -> dict[str, ModuleType]:
        if self._modules is None:
            self._modules = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                module = self.try_import(ep.value, f"mtdense plugin {ep.name!r}")
                if module is None:
                    self.failed_plugins.add(ep.value)
                else:
                    self._modules[ep.name] = module
        return self._modules

    def try_import(self, module: str, label: str) -> ModuleType | None:
        """Import ``module``; on failure warn once, remember why, return ``None``."""
        try:
            return importlib.import_module(module)
        except Exception as exc:  # a broken plugin must not break unrelated commands
            reason = f"{type(exc).__name__}: {exc}"
            if module not in self.failures:
                warnings.warn(f"{label} ({module}) failed to load and was skipped: {reason}", stacklevel=3)
            self.failures[module] = reason
            return None

    def locations(self, kind: str) -> list[str]:
        return [loc for m in self.modules().values() for loc in getattr(m, "LOCATIONS", {}).get(kind, ())]

    def cli_modules(self) -> list[str]:
        return [m.CLI for m in self.modules().values() if getattr(m, "CLI", None)]

    def reset(self) -> None:
        """Forget what was loaded (tests that put a new plugin on ``sys.path``)."""
        self._modules = None
        self.failures = {}
        self.failed_plugins = set()


PLUGINS = PluginModules()


def load_plugins() -> None:
    """Import every plugin module of the entry-point group ``mtdense.plugins`` (once)."""
    PLUGINS.modules()


def static_registrations(module: str) -> dict[str, list[str]] | None:
    """``{registry variable: [names]}`` that ``module`` registers by decorator, read from its source
    without importing it; ``None`` when the source is unavailable or a name is not a literal (or a
    module-level string constant)."""
    try:
        spec = importlib.util.find_spec(module)
        source = open(spec.origin, encoding="utf-8").read() if spec and spec.origin else None
        tree = ast.parse(source) if source is not None else None
    except (ImportError, OSError, SyntaxError, ValueError):
        return None
    if tree is None:
        return None
    constants = {node.targets[0].id: node.value.value for node in tree.body
                 if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
    found: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register"):
            continue
        arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            name = arg.value
        elif isinstance(arg, ast.Name) and arg.id in constants:
            name = constants[arg.id]
        else:
            return None
        if not isinstance(node.func.value, ast.Name):
            return None
        found.setdefault(node.func.value.id, []).append(name)
    return found


def _accepted_options(fn: Callable) -> tuple[list[str], bool, list[str]]:
    """Keyword names ``fn`` accepts, whether it takes ``**kwargs``, and the required ones.

    A class without its own ``__init__`` is checked against the ``__init__`` it inherits
    (``object.__init__`` accepts nothing), so unknown options are never silently accepted.
    """
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # object.__init__ of a class without one: no options
        return [], False, []
    names, required, var_kw = [], [], False
    params = list(sig.parameters.items())
    if inspect.isclass(fn) and params and params[0][0] == "self":
        params = params[1:]
    for name, p in params:
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(name)
            if p.default is p.empty:
                required.append(name)
    if inspect.isclass(fn) and _inherits_generic_init(fn):
        return [], False, []
    return names, var_kw, required


def _inherits_generic_init(cls: type) -> bool:
    """Whether ``cls`` takes its ``__init__`` from ``object`` or ``torch.nn.Module`` (whose
    ``*args, **kwargs`` would accept any option and fail later with a TypeError)."""
    definer = next(k for k in cls.__mro__ if "__init__" in vars(k))
    return definer is object or (definer.__module__, definer.__qualname__) == ("torch.nn.modules.module", "Module")


def _check_scalar_types(fn: Callable, options: Mapping[str, Any], where: str) -> None:
    """Reject a value whose type contradicts a plain scalar annotation (``lr: float`` given ``fast``)."""
    try:
        params = inspect.signature(fn.__init__ if inspect.isclass(fn) else fn).parameters
    except (TypeError, ValueError):
        return
    for key, value in options.items():
        param = params.get(key)
        kind = annotation_kind(param.annotation) if param is not None else None
        if kind is not None:
            problem = type_problem(value, kind[0], nullable=kind[1] or param.default is None)
            if problem:
                raise RegistryError(problem, key=f"{where}.{key}")


class Registry:
    """A name → callable table for one kind of plugin (backbone, head, interaction, ...)."""

    def __init__(self, kind: str, locations: Iterable[str] = ()):
        self.kind = kind
        self.locations = tuple(locations)
        self._table: dict[str, Callable] = {}
        self._imported: set[str] = set()

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
            return obj

        return deco

    def name_of(self, obj: Callable) -> str | None:
        """The name ``obj`` is registered under (``None`` if it is not)."""
        return next((n for n, o in self._table.items() if o is obj), None)

    def _ensure_imported(self) -> None:
        for module in (*self.locations, *PLUGINS.locations(self.kind)):
            if module in self._imported:
                continue
            if PLUGINS.try_import(module, f"{self.kind} plugins") is not None:
                self._imported.add(module)

    def _failures(self) -> list[str]:
        mine = set(self.locations) | set(PLUGINS.locations(self.kind)) | PLUGINS.failed_plugins
        return [f"{m} ({why})" for m, why in PLUGINS.failures.items() if m in mine]

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, optionally filtered by a shell pattern (``"mit_*"``)."""
        self._ensure_imported()
        return self._filter(sorted(self._table), pattern)

    def listed_names(self, pattern: str | None = None) -> list[str]:
        """``names(pattern)`` read from the locations' sources where possible (no import: fast
        start-up for listing); modules whose registrations cannot be read statically are imported."""
        variables = {var: reg for var, reg in globals().items() if isinstance(reg, Registry)}
        names = set(self._table)
        for module in (*self.locations, *PLUGINS.locations(self.kind)):
            found = None if module in self._imported else static_registrations(module)
            if found is None or any(var not in variables for var in found):
                if module not in self._imported and PLUGINS.try_import(module, f"{self.kind} plugins") is not None:
                    self._imported.add(module)
                names |= set(self._table)
            else:
                names |= {n for var, ns in found.items() if variables[var] is self for n in ns}
        return self._filter(sorted(names), pattern)

    @staticmethod
    def _filter(names: list[str], pattern: str | None) -> list[str]:
        if pattern:
            import fnmatch

            names = [n for n in names if fnmatch.fnmatch(n, pattern)]
        return names

    def __contains__(self, name: str) -> bool:
        self._ensure_imported()
        return name in self._table

    def get(self, name: str, path: str = "type") -> Callable:
        self._ensure_imported()
        if name in self._table:
            return self._table[name]
        failed = self._failures()
        note = f"; plugin modules that failed to load: {'; '.join(failed)}" if failed else ""
        raise RegistryError(
            f"unknown {self.kind} {name!r}{closest(name, self._table, 0.4)}; "
            f"registered: {', '.join(sorted(self._table)) or '(none)'}{note}",
            key=path,
        )

    def options(self, name: str, runtime: Iterable[str] = ()) -> dict[str, Any]:
        """The config options of ``name`` with their defaults (``inspect.Parameter.empty`` if required)."""
        fn = self.get(name)
        target = fn.__init__ if inspect.isclass(fn) else fn
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return {}
        skip = set(runtime) | {"self"}
        return {k: p.default for k, p in params.items()
                if k not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def build(self, cfg: Mapping[str, Any] | str, path: str = "", **runtime: Any) -> Any:
        """Build from ``cfg`` (``{"type": name, **options}`` or just a name).

        ``runtime`` holds arguments mtdense supplies itself (channel counts, task lists);
        they are not config keys, so a config that sets one is rejected too. A ``ConfigError``
        raised while building gets ``path`` in front of its (relative) key.
        """
        if isinstance(cfg, str):
            cfg = {"type": cfg}
        options = dict(cfg)
        where = path or self.kind
        if "type" not in options:
            raise RegistryError(f"missing 'type'; choose one of: {', '.join(self.names())}", key=where)
        name = options.pop("type")
        fn = self.get(name, f"{where}.type")
        accepted, var_kw, required = _accepted_options(fn)
        for key in options:
            if key in runtime:
                raise RegistryError(f"set by mtdense for {self.kind} {name!r}, not a config option; remove it",
                                    key=f"{where}.{key}")
            if key not in accepted and not var_kw:
                configurable = [a for a in accepted if a not in runtime]
                raise RegistryError(
                    f"unknown option for {self.kind} {name!r}{closest(key, configurable)}; "
                    f"accepted: {', '.join(configurable) or '(none)'}",
                    key=f"{where}.{key}",
                )
        missing = [r for r in required if r not in options and r not in runtime]
        if missing:
            raise RegistryError(f"{self.kind} {name!r} needs option(s): {', '.join(missing)}", key=where)
        _check_scalar_types(fn, options, where)
        kwargs = {k: v for k, v in runtime.items() if k in accepted or var_kw}
        kwargs.update(options)
        try:
            return fn(**kwargs)
        except ConfigError as exc:  # keys relative to the plugin; a nested build may already be absolute
            raise exc.under(where) from None

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._table)} registered)"


BACKBONES = Registry("backbone", ["mtdense.models.backbones", "mtdense.models.mit"])
DECODERS = Registry("decoder", ["mtdense.models.decoders", "mtdense.models.all_mlp_decoder"])
HEADS = Registry("head", ["mtdense.models.heads"])
INTERACTIONS = Registry("interaction", [f"mtdense.models.interactions.{m}" for m in (
    "identity", "cbim", "ccam", "cross_stitch", "mtan", "mtlsegformer", "padnet")])
TASKS = Registry("task", [f"mtdense.tasks.{m}" for m in ("segmentation", "regression", "threshold_classification")])
LOSSES = Registry("loss", ["mtdense.losses.pixel_losses", "mtdense.losses.thin_structures"])
COUPLINGS = Registry("coupling", ["mtdense.losses.consistency", "mtdense.losses.teacher_losses"])
BALANCERS = Registry("balancer", [f"mtdense.balancing.{m}" for m in (
    "fixed", "uncertainty", "dwa", "gradnorm", "rlw", "famo", "pcgrad", "cagrad", "imtl", "aligned_mtl")])
METRICS = Registry("metric", [f"mtdense.metrics.{m}" for m in ("segmentation", "depth", "precipitation", "line_detection")])
DATASETS = Registry("dataset", ["mtdense.data.synth_shapes", "mtdense.data.semisup"])
LOGGERS = Registry("logger", ["mtdense.engine.loggers", "mtdense.engine.console"])
TEACHERS = Registry("teacher", ["mtdense.engine.teachers"])
HOOKS = Registry("hook")
TRANSFORMS = Registry("transform", ["mtdense.data.joint_transforms"])
BATCH_TRANSFORMS = Registry("batch_transform")
RULES = Registry("rule")  # non-learned baselines scored by `mtdense bench` (mtdense.bench.rules)

ALL_REGISTRIES: dict[str, Registry] = {
    r.kind: r
    for r in (BACKBONES, DECODERS, HEADS, INTERACTIONS, TASKS, LOSSES, COUPLINGS, BALANCERS, METRICS, DATASETS, LOGGERS,
              TEACHERS, HOOKS, TRANSFORMS, BATCH_TRANSFORMS, RULES)
}


def registry_of(kind: str) -> Registry:
    """The registry of ``kind``, singular or plural ("loss", "losses"); a RegistryError with a
    did-you-mean hint for an unknown kind."""
    plural = {k + ("es" if k.endswith("s") else "s"): k for k in ALL_REGISTRIES}
    singular = plural.get(kind, kind)
    if singular not in ALL_REGISTRIES:
        raise RegistryError(f"unknown plugin kind {kind!r}{closest(kind, [*ALL_REGISTRIES, *plural])}; "
                            f"kinds: {', '.join(ALL_REGISTRIES)}")
    return ALL_REGISTRIES[singular]
