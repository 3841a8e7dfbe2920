"""A griffe extension for the API reference: docstring examples written as doctests
(`>>> ...` and the output under it) become Python code blocks, so that Markdown shows
them as code rather than as nested quotes or links."""

from __future__ import annotations

import griffe


def fence_doctests(text: str) -> str:
    """Wrap each run of `>>>` / `...` lines and the output lines under them in a fence."""
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        stripped = line.lstrip()
        starts = stripped.startswith((">>>", "... ")) or stripped == "..."
        if starts and not inside:
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            inside = True
        elif inside and not stripped:
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


class Doctests(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
