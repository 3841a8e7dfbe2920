"""Pages generated at build time (mkdocs-gen-files): one per experiment (its docstring,
its command and default settings, and the committed runs' reports with their figures)
and the results gallery of `pcn report`. Generated, so they can never disagree with the
registry or with `results/`."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import json
import os
from pathlib import Path

import mkdocs_gen_files

from pcn_experiments import registry
from pcn_experiments.report import gallery_markdown

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("diagrams", Path(__file__).with_name("diagrams.py"))
assert _spec is not None and _spec.loader is not None
diagrams = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diagrams)
RESULTS = ROOT / "results"
KATEX = Path("/usr/share/javascript/katex")


def _vendor_katex() -> None:
    """Copy Debian's KaTeX (libjs-katex) into the site: the math renders offline."""
    if not (KATEX / "katex.min.js").exists():
        raise SystemExit(
            "KaTeX not found in /usr/share/javascript/katex: `apt-get install -y "
            "libjs-katex` (the docs render their equations offline)."
        )
    # (Debian links the fonts folder to the fonts package: walk through links)
    for folder, _, names in sorted(os.walk(KATEX, followlinks=True)):
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not name.endswith(".mjs"):
                with mkdocs_gen_files.open(f"vendor/katex/{path.relative_to(KATEX)}", "wb") as out:
                    out.write(path.read_bytes())


def _committed_runs() -> dict[str, list[Path]]:
    """Result folders by the experiment they ran."""
    runs: dict[str, list[Path]] = {}
    for results in sorted(RESULTS.glob("*/results.json")):
        name = json.loads(results.read_text()).get("experiment")
        if isinstance(name, str):
            runs.setdefault(name, []).append(results.parent)
    return runs


def _copy_run(folder: Path) -> str:
    """The run's report as a page of its own, with its figures beside it; its URL."""
    page = f"results/{folder.name}/index.md"
    report = folder / "report.md"
    text = report.read_text() if report.exists() else f"# {folder.name}\n\n(no report.md)\n"
    with mkdocs_gen_files.open(page, "w") as out:
        out.write(text)
    for figure in sorted(folder.glob("*.png")):
        with mkdocs_gen_files.open(f"results/{folder.name}/{figure.name}", "wb") as out:
            out.write(figure.read_bytes())
    return f"../results/{folder.name}/index.md"


def _settings_table(module) -> str:
    full = getattr(module, "FULL", None)
    if full is None or not dataclasses.is_dataclass(full):
        return ""
    rows = ["| setting | default |", "|---|---|"]
    for field in dataclasses.fields(full):
        value = getattr(full, field.name)
        rows.append(f"| `{field.name}` | `{value!r}` |".replace("|`", "| `"))
    return "\n".join(rows)


def _experiment_pages() -> None:
    experiments = registry.load_all()
    runs = _committed_runs()
    index = [
        "# Experiments",
        "",
        "One command per reproduced table or figure: `pcn run NAME` (the committed "
        "headline settings), `pcn run NAME --quick` (under two minutes on 2 CPU cores), "
        "`--set SETTING=VALUE` to change one. Each writes `results.json`, `report.md` and "
        "PNG figures.",
        "",
        "| experiment | what it reproduces | committed runs |",
        "|---|---|---|",
    ]
    for name in sorted(experiments):
        exp = experiments[name]
        module = importlib.import_module(exp.run.__module__)
        doc = inspect.cleandoc(module.__doc__ or exp.summary)
        links = []
        for folder in runs.get(name, []):
            links.append(f"[{folder.name}]({_copy_run(folder)})")
        page = [
            f"# `{name}`",
            "",
            exp.summary,
            "",
            "```sh",
            f"pcn run {name}            # the committed headline settings",
            f"pcn run {name} --quick    # a smoke run, under two minutes",
            "```",
            "",
            "## What it does",
            "",
            doc,
            "",
        ]
        table = _settings_table(module)
        if table:
            page += ["## Settings", "", table, ""]
        if exp.search is not None:
            page += [
                "## Search",
                "",
                f"`pcn sweep {name} --trials N` searches its settings on a validation split"
                + (f": {exp.search.note}" if exp.search.note else "."),
                "",
            ]
        page += ["## Committed runs", ""]
        page += [f"- {link}" for link in links] or ["None yet."]
        with mkdocs_gen_files.open(f"experiments/{name}.md", "w") as out:
            out.write("\n".join(page) + "\n")
        index.append(f"| [`{name}`]({name}.md) | {exp.summary} | {', '.join(links) or '-'} |")
    with mkdocs_gen_files.open("experiments/index.md", "w") as out:
        out.write("\n".join(index) + "\n")


def _gallery() -> None:
    with mkdocs_gen_files.open("results/index.md", "w") as out:
        out.write(gallery_markdown(RESULTS, link=lambda folder: f"{folder.name}/index.md"))


def _diagrams() -> None:
    for page, draw in (("concepts/pc_graph.png", diagrams.pc_graph),
                       ("concepts/schedules.png", diagrams.schedules)):  # fmt: skip
        with mkdocs_gen_files.open(page, "wb") as out:
            out.write(draw())


_vendor_katex()
_diagrams()
_experiment_pages()
_gallery()
