"""The package's module graph: no import cycle (a lazy import inside a function counts too), no module over
MAX_LINES lines. Parsed from the sources with `ast`, so nothing but the packages themselves is imported."""
from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import oecl_core

MAX_LINES = 400


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of oecl_core: name -> (source file, whether it is a package)."""
    found = {"oecl_core": (Path(oecl_core.__file__), True)}
    for info in pkgutil.walk_packages(oecl_core.__path__, "oecl_core."):
        spec = importlib.util.find_spec(info.name)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            found[info.name] = (Path(spec.origin), info.ispkg)
    return found


def _known(name: str, modules) -> str | None:
    """The module `name` loads: itself, or (an attribute of a module) its longest prefix that is a module."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path, is_package: bool, modules) -> set[str]:
    """The oecl_core modules that module `name` imports anywhere in its source, relative imports resolved."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = (name if is_package else name.rpartition(".")[0]).split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # `from pkg import sub` loads the submodule pkg.sub; `from mod import attr` loads mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        out |= {m for m in (_known(t, modules) for t in targets if t.startswith("oecl_core")) if m and m != name}
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, pkg, modules) for name, (path, pkg) in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) through each strongly connected component of more than one module."""
    return [_cycle_in(graph, component) for component in components_of(graph)]


def components_of(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds at least one cycle."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def _cycle_in(graph, component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, by breadth-first search within the component."""
    start = min(component)
    parent, queue = {start: None}, [start]
    for v in queue:
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle in component {sorted(component)}")


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "oecl_core.data.registry" in graph["oecl_core.data"]  # from .registry import ...
    assert "oecl_core.data.benchmarks" in graph["oecl_core.data.registry"]  # from .benchmarks import ...
    assert "oecl_core.data" in graph["oecl_core.experiments"]  # from .data import get_dataset (an attribute)
    assert "oecl_core.reference" in graph["oecl_core.experiments"]  # a lazy import inside table_runs
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycle():
    graph = import_graph()
    cycles = find_cycles(graph)
    for cycle, component in zip(cycles, components_of(graph)):
        print("import cycle: " + " -> ".join(cycle))
        print("  the imports among its strongly connected modules (cut one edge of every cycle):")
        print("\n".join(f"    {v} -> {', '.join(sorted(graph[v] & component))}" for v in sorted(component)))
    assert not cycles, "import cycles (lazy imports included):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_is_longer_than_max_lines():
    long = {name: n for name, (path, _) in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): " + ", ".join(f"{k} ({v})" for k, v in long.items())
