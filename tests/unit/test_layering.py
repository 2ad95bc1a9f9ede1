"""Imports point down the data path: ``llm`` → ``checkpoint`` → ``model`` → ``api`` → export / CLI / serve.

Every module under ``omnibind/`` is parsed with ``ast`` (nothing is imported), and every import
counts, at module level or inside a function (a hidden function-level import is an arrow too),
absolute or relative. Only ``if TYPE_CHECKING:`` blocks are skipped: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import omnibind

PACKAGE_DIR = Path(omnibind.__file__).resolve().parent
ROOT = "omnibind"
# names of the root package that are plain constants: reading them runs none of its lazy imports
LEAF_NAMES = {"__version__"}

# layer of each module prefix (the longest matching prefix wins); an import may only point to a
# layer at or below its own
LAYERS = {
    "omnibind.llm": 0,
    "omnibind.checkpoint": 1,
    "omnibind.model": 2,
    "omnibind.loader": 3,
    "omnibind.importers": 3,
    "omnibind.importers.cli": 5,
    "omnibind.api": 4,
    "omnibind.export": 5,
    "omnibind.cli": 5,
    "omnibind.serve": 5,
}
# what the LLM layer may never import (the root package itself included: llm knows nothing above it)
LLM_FORBIDDEN = (
    "omnibind.model",
    "omnibind.api",
    "omnibind.checkpoint",
    "omnibind.export",
    "omnibind.loader",
    "omnibind.serve",
    "omnibind.cli",
    "omnibind.train",
    "omnibind.eval",
    "omnibind.data",
    "omnibind.bench",
)

# Import cycles that remain in code other parts of the reshape own, each as the set of modules of
# one strongly connected component. Clear an entry when its cycle is gone (the test says so).
KNOWN_CYCLES: list[set[str]] = []


def _module_names() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _module_names()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST):
    """All nodes below ``node`` except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _known(name: str) -> str | None:
    """The longest prefix of a dotted name that is a module of the package."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in MODULES:
            return cand
        parts.pop()
    return None


def imports_of(module: str) -> set[str]:
    """Package modules ``module`` imports anywhere in its code (``import_module`` with a literal too)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                    target = _known(alias.name)
                    if target:
                        found.add(target)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            target = _known(node.args[0].value)  # importlib.import_module("omnibind.x"): an arrow too
            if target:
                found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != ROOT and not base.startswith(ROOT + "."):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    found.add(sub)
                elif base == ROOT and alias.name in LEAF_NAMES:
                    continue
                else:
                    target = _known(base)
                    if target:
                        found.add(target)
    found.discard(module)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def _layer(module: str) -> int | None:
    best = None
    for prefix, rank in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return best[1] if best else None


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _a_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One concrete cycle through the first member of a component (for the failure message)."""
    inside = set(members)
    start = members[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & inside):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if nxt not in prev:
                    prev[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return members


def test_the_parser_sees_function_level_and_relative_imports():
    """The graph is built from every kind of import (a sanity check on the parser itself)."""
    assert "omnibind.llm.backends.llamacpp" in GRAPH["omnibind.llm.backends"]  # importlib.import_module("...")
    assert "omnibind.llm.backends.transformers" in GRAPH["omnibind.llm.backends"]  # from package import module
    assert "omnibind.api" in GRAPH[ROOT]  # function-level, inside omnibind.load
    assert "omnibind.llm.backends.base" in GRAPH["omnibind.llm.sampling"]


def test_llm_imports_nothing_above_it():
    bad = sorted(
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if m.startswith("omnibind.llm")
        for t in targets
        if t == ROOT or any(t == f or t.startswith(f + ".") for f in LLM_FORBIDDEN)
    )
    assert not bad, "the LLM layer must not import anything above it:\n" + "\n".join(bad)


def test_imports_point_down_the_layers():
    """llm → checkpoint → model → loader → api → export / CLI / serve, never back up."""
    bad = []
    for m, targets in GRAPH.items():
        lm = _layer(m)
        if lm is None:
            continue
        for t in targets:
            lt = _layer(t)
            if lt is not None and lt > lm:
                bad.append(f"{m} (layer {lm}) imports {t} (layer {lt})")
    assert not bad, "imports that point up the layers:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    """No cycle in the whole package's import graph, except the known ones listed above."""
    comps = _components(GRAPH)
    new = [c for c in comps if set(c) not in KNOWN_CYCLES]
    gone = [sorted(k) for k in KNOWN_CYCLES if all(set(c) != k for c in comps)]
    msg = [" -> ".join(_a_cycle(GRAPH, c)) + f"   (component: {', '.join(c)})" for c in new]
    assert not new, "import cycles:\n" + "\n".join(msg)
    assert not gone, f"these known cycles are gone: remove them from KNOWN_CYCLES: {gone}"
