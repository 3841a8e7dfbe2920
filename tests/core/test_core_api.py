"""The public API is documented, and the README's layout table names what exists."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pcn

README = Path(__file__).resolve().parents[2] / "README.md"


def public_names() -> list[str]:
    """`pcn.__all__`, or else every name in the package's namespace without a leading _."""
    if hasattr(pcn, "__all__"):
        return list(pcn.__all__)
    return sorted(name for name in vars(pcn) if not name.startswith("_"))


def _is_undocumented(obj, name: str) -> bool:
    doc = inspect.getdoc(obj) if not inspect.ismodule(obj) else obj.__doc__
    doc = doc or ""
    # dataclasses (equinox modules) invent "Name(field, ...)" when the docstring is missing
    generated = doc.startswith(f"{getattr(obj, '__name__', name)}(")
    return not doc.strip() or generated


def test_every_public_module_function_and_class_has_a_docstring():
    names = public_names()
    assert {"PCGraph", "infer", "IL", "BP", "make_train_step", "mlp", "zil"} <= set(names)
    undocumented = [
        name
        for name in names
        if (inspect.ismodule(getattr(pcn, name)) or callable(getattr(pcn, name)))
        and _is_undocumented(getattr(pcn, name), name)
    ]
    assert undocumented == []


def _layout_table() -> dict[str, list[str]]:
    """README's "Layout" table: module name -> the names in backticks it says it holds."""
    section = README.read_text().split("## Layout", 1)[1]
    rows = re.findall(r"^\| `(pcn(?:\.\w+)*)` \| (.*) \|$", section, flags=re.M)
    return {module: re.findall(r"`([^`]+)`", holds) for module, holds in rows}


def test_every_module_of_the_readme_layout_table_holds_the_names_it_lists():
    table = _layout_table()
    assert {"pcn.graph", "pcn.energies", "pcn.inference", "pcn.zil"} <= set(table)
    missing = []
    for module_name, names in table.items():
        module = importlib.import_module(module_name)
        for name in names:
            name = name.split("(")[0]  # `pcn.zil.grad(fn)` names pcn.zil.grad
            if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
                continue  # a command line such as `pcn bench train-step`
            if "." in name and not name.startswith("pcn."):
                continue  # another library's name, such as `lax.scan`
            owner, attr = (pcn, name[len("pcn.") :]) if name.startswith("pcn.") else (module, name)
            target = owner
            for part in attr.split("."):
                target = getattr(target, part, None)
            if target is None:
                missing.append(f"{module_name}: {name}")
    assert missing == []
