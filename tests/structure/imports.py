"""The import graph of both packages, read from their source (nothing is imported).

Every ``import`` and ``from ... import`` statement counts, including those inside
functions (a lazy import is still a dependency) but not those under
``if TYPE_CHECKING:`` (they never run). ``importlib.import_module("...")`` and
``__import__("...")`` with a literal module name count too; names computed at run time
(the client package's lazy attributes, the entry points the command loads) cannot be
read from the source and are not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = {
    "spikestream": ROOT / "service" / "spikestream",
    "spikestream_client": ROOT / "clients" / "spikestream_client",
}


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line``; ``lazy`` if inside a function."""

    source: str
    target: str
    line: int
    lazy: bool


def modules() -> dict[str, Path]:
    """Every module of both packages, by dotted name. A C extension counts by its typing
    stub (a ``.pyi`` with no ``.py`` beside it), which holds no imports."""
    found: dict[str, Path] = {}
    for root_name, root in PACKAGES.items():
        stubs = [p for p in root.rglob("*.pyi") if not p.with_suffix(".py").exists()]
        for path in sorted([*root.rglob("*.py"), *stubs]):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((root_name, *parts))] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, in_function: bool, type_checking: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if not type_checking and isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield other, in_function
                yield from _walk(other, in_function, type_checking)
            continue
        inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        yield child, inner
        yield from _walk(child, inner, type_checking)


@dataclass(frozen=True)
class Import:
    """One import statement (or ``import_module``/``__import__`` call with a literal).

    Attributes:
        module: The absolute name of the module named (relative imports resolved).
        names: For ``from module import a, b``: ``("a", "b")``; otherwise empty.
        line: Line number.
        lazy: Inside a function.
    """

    module: str
    names: tuple[str, ...]
    line: int
    lazy: bool


def imports(path: Path, module: str, *, type_checking: bool = False) -> list[Import]:
    """Every import in the source of ``module`` (at ``path``), of any package; those under
    ``if TYPE_CHECKING:`` only with ``type_checking``."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node, lazy in _walk(tree, False, type_checking):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [Import(alias.name, (), line, lazy) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            found.append(Import(base, tuple(a.name for a in node.names), line, lazy))
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(node.args[0].value, (), line, lazy))
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module of ours that ``name`` (a module, or a name inside one) refers to."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def edges() -> list[Edge]:
    """Every import between modules of the two packages."""
    known = modules()
    out: list[Edge] = []
    for source, path in known.items():
        for imp in imports(path, source):
            # `from pkg import sub` names the submodule when there is one.
            targets = [
                f"{imp.module}.{n}" if f"{imp.module}.{n}" in known else imp.module
                for n in imp.names
            ] or [imp.module]
            for target in targets:
                resolved = _resolve(target, known)
                if resolved is not None and resolved != source:
                    out.append(Edge(source, resolved, imp.line, imp.lazy))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found
