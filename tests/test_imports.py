"""The package's layering, read from its source with ``ast``:

- no core package imports a domain (``mtdense.domains``), anywhere in a file;
- nothing below the CLI imports ``mtdense.cli`` (the CLI layer is ``mtdense.cli`` and each
  domain's ``cli`` module);
- module-level imports among mtdense modules form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mtdense

PACKAGE = Path(mtdense.__file__).resolve().parent
CORE = ("models", "tasks", "losses", "balancing", "metrics", "engine", "data", "inference", "bench", "analysis",
        "registry", "config", "errors")
# A bench grid's ``prepare:`` hook runs an mtdense command (e.g. a domain's ``data synth-street``) so that the
# bench knows no domain; it imports the CLI inside the function that runs the command, never at module level.
CLI_ALLOWED = {"mtdense.bench.prepare"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and isinstance(test, (ast.Name, ast.Attribute)) and \
        ast.unparse(test).endswith("TYPE_CHECKING")


def imports(module: str, module_level_only: bool) -> set[str]:
    """The mtdense modules ``module`` imports (a ``from a import b`` of a submodule counts as ``a.b``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    if module_level_only:  # statements run at import time: top level, try/if blocks, not functions
        nodes, stack = [], list(tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or _is_type_checking(node):
                continue
            nodes.append(node)
            for field in ("body", "orelse", "finalbody", "handlers"):
                stack.extend(getattr(node, field, []) or [])
    else:
        nodes = list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, path)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found |= {n for n in names if n == "mtdense" or n.startswith("mtdense.")}
    return found


def test_the_scan_sees_the_package():
    assert {"mtdense.cli", "mtdense.registry", "mtdense.engine.trainer", "mtdense.domains.precip.plugin"} <= set(MODULES)
    assert "mtdense.errors" in imports("mtdense.registry", module_level_only=True)
    assert "mtdense.cli" in imports("mtdense.bench.prepare", module_level_only=False)
    assert "mtdense.cli" not in imports("mtdense.bench.prepare", module_level_only=True)


def test_no_core_package_imports_a_domain():
    offenders = {m: sorted(i for i in imports(m, module_level_only=False) if i.startswith("mtdense.domains"))
                 for m in MODULES if m.split(".")[1:2] and m.split(".")[1] in CORE}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_nothing_below_the_cli_imports_it():
    cli_layer = {m for m in MODULES if m == "mtdense.cli" or (m.startswith("mtdense.domains.") and m.endswith(".cli"))}
    offenders = {m for m in MODULES if m not in cli_layer | CLI_ALLOWED
                 and "mtdense.cli" in imports(m, module_level_only=False)}
    assert offenders == set()
    assert all("mtdense.cli" not in imports(m, module_level_only=True) for m in CLI_ALLOWED)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a self-import."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_mtdense_modules():
    graph = {}
    for m in MODULES:
        targets = {t for t in imports(m, module_level_only=True) if t in MODULES and t != m}
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        targets |= {".".join(t.split(".")[:k]) for t in targets for k in range(1, t.count(".") + 1)} & set(MODULES)
        graph[m] = targets - {m}
    assert _cycles(graph) == []
