"""No import cycles anywhere in the package (issue 24), module by module, subpackages included.

Every import in a file counts: top level, inside functions and under ``if TYPE_CHECKING:``. A cycle through a
type-only import loads today, but it is still two modules that each need the other (surrogate.fidelity and
surrogate.train were one, hidden that way), and the first runtime import added along it would break.
"""
from __future__ import annotations

import ast

from conftest import REPO

PACKAGE = REPO / "python" / "bayeslift"


def _module_name(path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def _target(name: str) -> str | None:
    """The package module ``name`` is, or the module that defines it (``pkg.mod.func`` -> ``pkg.mod``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Package modules that ``module`` imports anywhere in its file (functions and TYPE_CHECKING included)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]  # a submodule, or a name in base
        else:
            continue
        found |= {t for t in map(_target, names) if t and t != module}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_scanner_sees_type_checking_and_function_imports():
    graph = {m: imports_of(m) for m in MODULES}
    assert "bayeslift.surrogate.targets" in graph["bayeslift.surrogate.fidelity"]  # under TYPE_CHECKING
    assert "bayeslift.policy" in graph["bayeslift.surrogate.fidelity"]  # `from ..policy import`
    assert "bayeslift.surrogate.fidelity" in graph["bayeslift.surrogate.train"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_in_the_package():
    graph = {m: imports_of(m) for m in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
