"""No import cycles among the modules of ``src/automill``.

The walk reads every module's source with ``ast`` (nothing is imported) and follows the imports
that run: module-level ones and those inside functions, classes, ``try`` and ``if`` blocks. Imports
in the body of ``if TYPE_CHECKING:`` never run and are left out, so an annotation may name a module
above it; everything else counts. An edge goes to the module an import names: ``import a.b.c`` and
``from a.b import c`` (``c`` a module) -> ``a.b.c``; ``from a.b import name`` -> ``a.b`` (its
``__init__``). The parent packages Python runs first (``a``, ``a.b`` for ``a.b.c``) are not edges:
a package's ``__init__`` importing its own submodules is how packages work, not a cycle.
Imports by string (``importlib.import_module``, the problem registry's table) are not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def modules(src: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every module under ``src/package``."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements under ``node`` that can run (the body of ``if TYPE_CHECKING:`` cannot)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                if isinstance(other, ast.Import | ast.ImportFrom):
                    yield other
                yield from _runtime_imports(other)
        else:
            yield from _runtime_imports(child)


def _known(name: str, known: dict[str, tuple[Path, bool]]) -> str | None:
    """The longest prefix of ``name`` that is one of the walked modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """Module -> the walked modules its runtime imports name (itself excluded)."""
    known = modules(src, package)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in known.items():
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            targets.update(t for t in (_known(n, known) for n in names) if t is not None)
        targets.discard(name)
        graph[name] = targets
    return graph


def knots(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan): each module of a group
    reaches every other one through imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
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
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle (``[a, b, ..., a]``) through the first module of each knot."""
    return [_a_cycle(graph, group) for group in knots(graph)]


def _a_cycle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """The shortest path from the group's first module back to itself, inside the group."""
    members, start = set(group), group[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in came_from:
                    came_from[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{group} is not strongly connected")  # pragma: no cover - Tarjan's groups are


def describe(graph: dict[str, set[str]]) -> str:
    """Each knot: one cycle through it, then all its modules."""
    return "\n".join(
        f"{' -> '.join(_a_cycle(graph, group))}\n  (a knot of {len(group)} modules: {', '.join(group)})"
        for group in knots(graph)
    )


def test_automill_has_no_import_cycle() -> None:
    graph = import_graph(SRC, "automill")
    assert len(graph) > 100, "the walk found too few modules: is SRC right?"
    assert "automill.jobs.queue" in graph["automill.jobs.context"]  # a module-level import
    if knots(graph):
        pytest.fail("import cycles among the modules of src/automill:\n" + describe(graph), pytrace=False)


def test_a_problem_type_imports_no_sibling_type() -> None:
    """``problems/<type>/`` builds on the shared modules of ``problems/``, never on another type."""
    graph = import_graph(SRC, "automill")
    types = {p.name for p in (SRC / "automill" / "problems").iterdir() if (p / "__init__.py").is_file()}
    assert {"text_classification", "image_object_detection"} <= types
    crossings = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if (here := module.split(".")[2:3]) and here[0] in types
        if (there := target.split(".")[2:3]) and there[0] in types and there != here
        if module.startswith("automill.problems.") and target.startswith("automill.problems.")
    ]
    assert not crossings, "problem types importing each other:\n" + "\n".join(crossings)


# -- the walker itself, on a synthetic package ------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    """pkg.a -> pkg.b -> pkg.sub.c -> pkg.a, through the three spellings of an import; pkg.d and
    pkg.e import each other only under TYPE_CHECKING."""
    return write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from .sub.c import thing\n    return thing\n",
            "pkg/sub/__init__.py": "from pkg.sub import c\n",
            "pkg/sub/c.py": "import pkg.a\nthing = 1\n",
            "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n",
            "pkg/e.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.d\nelse:\n    import os\n",
        },
    )


def test_walker_finds_a_cycle_through_function_level_and_relative_imports(pkg: Path) -> None:
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub"] == {"pkg.sub.c"}
    assert graph["pkg.d"] == set() and graph["pkg.e"] == set()
    cycles = find_cycles(graph)
    assert cycles == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    assert describe(graph) == ("pkg.a -> pkg.b -> pkg.sub.c -> pkg.a\n  (a knot of 3 modules: pkg.a, pkg.b, pkg.sub.c)")


def test_walker_passes_once_the_cycle_is_broken(pkg: Path) -> None:
    write(pkg, {"pkg/sub/c.py": "thing = 1\n"})
    assert find_cycles(import_graph(pkg, "pkg")) == []


def test_an_import_of_a_name_points_at_the_package_init(pkg: Path) -> None:
    write(pkg, {"pkg/sub/c.py": "thing = 1\n", "pkg/f.py": "from pkg.sub import thing\n", "pkg/g.py": "import pkg.f\n"})
    write(pkg, {"pkg/sub/__init__.py": "from pkg.sub.c import thing\nimport pkg.g\n"})
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.f"] == {"pkg.sub"}
    assert find_cycles(graph) == [["pkg.f", "pkg.sub", "pkg.g", "pkg.f"]]
