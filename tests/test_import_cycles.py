"""The modules of `pcn` import each other without cycles, so any module can be read (and
imported) after the ones it depends on. Imports inside functions count too: a cycle hidden
in a function still ties the two modules into one."""

import ast
from pathlib import Path

import pcn

SRC = Path(pcn.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, name: str, *, is_package: bool, modules: set[str]) -> set[str]:
    """The `modules` that module `name` (source text `source`) imports, anywhere in the
    file: top level or inside functions, relative or absolute."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from . import x` may name a submodule `x`; else the import is of `stem`
            targets = [f"{stem}.{a.name}" for a in node.names if f"{stem}.{a.name}" in modules]
            targets = targets or [stem]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `pcn.data.text.EOL_ID` -> module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the `pcn` modules it imports; a package's `__init__` counts as the
    package. (That importing `pcn.a.b` first runs `pcn.a` is not an edge: a package
    importing its own submodules is the ordinary layout, not a cycle.)"""
    paths = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}
    modules = set(paths)
    graph = {
        name: imports_of(
            path.read_text(), name, is_package=path.name == "__init__.py", modules=modules
        )
        for name, path in paths.items()
    }
    return graph


def find_cycles(graph: dict[str, set[str]], ignore: set[frozenset[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), as a sorted list,
    leaving out the edges of the `ignore` pairs."""
    edges = {m: {t for t in ts if frozenset({m, t}) not in ignore} for m, ts in graph.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def test_the_library_modules_import_each_other_without_cycles():
    graph = import_graph()
    assert {"pcn.training", "pcn.data.text", "pcn.zil.api"} <= set(graph)
    assert "pcn.inference" in graph["pcn.training"]
    cycles = find_cycles(graph, set())
    assert not cycles, f"import cycles in pcn (break each by moving the shared code): {cycles}"


def test_the_cycle_finder_sees_a_cycle_closed_by_an_import_inside_a_function():
    modules = {"pcn", "pcn.a", "pcn.b", "pcn.c", "pcn.sub", "pcn.sub.d"}
    source = "def f():\n    from .b import g\n    from .sub import d\n"
    assert imports_of(source, "pcn.a", is_package=False, modules=modules) == {"pcn.b", "pcn.sub.d"}
    source = "from ..a import x\nimport pcn.c\n"
    assert imports_of(source, "pcn.sub.d", is_package=False, modules=modules) == {"pcn.a", "pcn.c"}
    graph = {"pcn.a": {"pcn.b"}, "pcn.b": {"pcn.c"}, "pcn.c": {"pcn.a"}, "pcn.d": {"pcn.a"}}
    assert find_cycles(graph, set()) == [["pcn.a", "pcn.b", "pcn.c"]]
    assert find_cycles(graph, {frozenset({"pcn.c", "pcn.a"})}) == []
