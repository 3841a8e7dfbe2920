"""The public API is documented."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pcn


def public_names() -> list[str]:
    """`pcn.__all__`, or else every public name `src/pcn/__init__.py` imports."""
    if hasattr(pcn, "__all__"):
        return list(pcn.__all__)
    tree = ast.parse(Path(pcn.__file__).read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                if not name.startswith("_"):
                    names.append(name)
    return names


def test_every_public_function_and_class_has_a_docstring():
    names = public_names()
    assert {"PCGraph", "infer", "IL", "BP", "make_train_step", "mlp"} <= set(names)
    undocumented = []
    for name in names:
        obj = getattr(pcn, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        doc = obj.__doc__ or ""
        # dataclasses (equinox modules) invent "Name(field, ...)" when the docstring is missing
        generated = doc.startswith(f"{getattr(obj, '__name__', name)}(")
        if not doc.strip() or generated:
            undocumented.append(name)
    assert undocumented == []


def test_every_public_name_resolves():
    missing = [name for name in public_names() if not hasattr(pcn, name)]
    assert missing == []
