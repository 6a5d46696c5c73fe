"""No import loops inside aioedge, and every exception drawn where the tree is described."""

from __future__ import annotations

import ast
import importlib
import pathlib
import re

import pytest

import aioedge
import aioedge._errors

PACKAGE = pathlib.Path(aioedge.__file__).parent
DOCS = PACKAGE.parent / "docs" / "concepts" / "errors.md"


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports at run time, at any depth of the file
    (imports inside functions count: they run too); ``if TYPE_CHECKING:`` blocks do not."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, set(paths)) for name, path in paths.items()}


def _loop_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_the_import_graph_finds_a_loop_when_there_is_one() -> None:
    assert _loop_from({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a") == ["a", "b", "c", "a"]
    assert _loop_from({"a": {"b"}, "b": set()}, "a") is None


def test_no_module_imports_itself_back() -> None:
    graph = _graph()
    assert "aioedge._cli" in graph and "aioedge._demo" in graph["aioedge._cli"]
    loops = [loop for name in sorted(graph) if (loop := _loop_from(graph, name))]
    assert loops == []


def _public_exceptions() -> list[str]:
    """Every EdgeError subclass of the package that is not private, each module imported."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__main__.py":  # that one runs the command line
            continue
        try:
            importlib.import_module(_module_name(path))
        except ModuleNotFoundError as exc:  # an optional extra (otel, prometheus) not installed
            if (exc.name or "").startswith("aioedge"):
                raise
    found: list[str] = []
    todo = [aioedge.EdgeError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("aioedge") and not cls.__name__.startswith("_"):
            found.append(cls.__name__)
        todo.extend(cls.__subclasses__())
    return sorted(found)


def _drawn(names: list[str], text: str) -> list[str]:
    """The names missing from the tree drawing in ``text`` (a line ``├── Name`` or ``Name``)."""
    return [n for n in names if not re.search(rf"^\s*(?:[│ ]*[├└]── )?{n}\b", text, re.M)]


def test_every_exception_is_drawn_in_the_errors_docstring() -> None:
    names = _public_exceptions()
    assert {"EdgeError", "PartialBatchError", "RedisUnavailableError"} <= set(names)
    assert names == sorted(n for n in aioedge.__all__ if n in names)  # all exported
    assert _drawn(names, aioedge._errors.__doc__ or "") == []
    assert _drawn(["NoSuchError"], aioedge._errors.__doc__ or "") == ["NoSuchError"]


def test_every_exception_is_drawn_in_the_errors_page() -> None:
    if not DOCS.exists():
        pytest.skip("an installed package without its docs/")
    assert _drawn(_public_exceptions(), DOCS.read_text(encoding="utf-8")) == []
