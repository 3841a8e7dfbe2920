"""The docs site builds with no warning (mkdocs strict), every tutorial executing in the
build, and the results gallery shows every committed run with each paper number next to
the number in the run's results.json."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from browser import Chromium  # tests/docs/browser.py

from pcn_experiments.registry import load_all
from pcn_experiments.report import gallery_markdown

ROOT = Path(__file__).resolve().parents[2]
KATEX = Path("/usr/share/javascript/katex/katex.min.js")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, str]:
    """The site built once for this module: its folder and the build's log."""
    if not KATEX.exists():
        pytest.skip("KaTeX not installed: apt-get install -y libjs-katex")
    folder = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(folder)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return folder, done.stderr


def test_site_builds_strict_with_every_tutorial_executed(site):
    folder, log = site
    tutorials = sorted((ROOT / "docs" / "tutorials").glob("*.py"))
    assert len(tutorials) >= 6
    for script in tutorials:
        assert f"Converting notebook (execute=True): {script}" in log, script.name
        page = (folder / "tutorials" / script.stem / "index.html").read_text()
        assert "Traceback" not in page, script.name
    api = (folder / "api" / "parallel" / "index.html").read_text()
    assert "LayerParallel" in api and "data_parallel" in api
    for name in load_all():
        assert (folder / "experiments" / name / "index.html").exists(), name
    for diagram in ("pc_graph.png", "schedules.png"):  # drawn at build time
        assert (folder / "concepts" / diagram).stat().st_size > 5000, diagram


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="no browser: apt-get install -y chromium"
)
def test_site_renders_in_a_browser_with_no_console_error_and_search_works(site, tmp_path):
    folder, _ = site
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    browser = Chromium(str(shutil.which("chromium")), tmp_path / "profile")
    try:
        for page in ("", "api/parallel/", "tutorials/01_pc_vs_bp/", "concepts/graphs/"):
            browser.open(f"{root}/{page}")
            assert browser.evaluate("document.querySelector('h1') !== null"), page
        # the equations were typeset by KaTeX (offline), not left as TeX
        assert browser.wait_for("document.querySelectorAll('.katex').length")
        browser.screenshot(tmp_path / "concepts-graphs.png")
        browser.open(f"{root}/?q=relaxation")
        hits = browser.wait_for("document.querySelectorAll('.md-search-result__item').length")
        assert hits, "the site's search found nothing for 'relaxation'"
        browser.screenshot(tmp_path / "search.png")
        assert browser.errors() == []
    finally:
        browser.close()
        server.shutdown()
    assert (tmp_path / "search.png").stat().st_size > 1000
    print("screenshots in", tmp_path)


def _value(results: dict, key: str):
    for part in key.split("."):
        results = results[part]
    return results


def test_gallery_rows_are_the_numbers_in_each_runs_results(tmp_path):
    results_dir = ROOT / "results"
    page = gallery_markdown(results_dir, link=lambda folder: folder.name)
    experiments = load_all()
    runs = sorted(results_dir.glob("*/results.json"))
    checked = 0
    for path in runs:
        section = page.split(f"\n## {path.parent.name}\n", 1)[1].split("\n## ", 1)[0]
        results = json.loads(path.read_text())
        if "trials_requested" in results:  # a sweep: no paper rows
            assert "hyperparameter search" in section
            continue
        for number in experiments[results["experiment"]].paper:
            row = next(r for r in section.splitlines() if f"| {number.label} |" in r)
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert float(cells[2]) == pytest.approx(number.value, rel=1e-3)
            try:
                ours = _value(results, number.key)
            except KeyError:  # a run with other settings than the paper's
                assert cells[3] == "not in this run", (path, number.label)
                continue
            assert float(cells[3]) == pytest.approx(float(ours), rel=1e-3), (path, number.label)
            checked += 1
    assert len(runs) >= 20 and checked >= 20  # every committed run has its section


def test_gallery_refuses_nothing_and_marks_numbers_a_run_lacks(tmp_path):
    run = tmp_path / "memory-depth-other"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"experiment": "memory-depth", "retrieved": {}}))
    page = gallery_markdown(tmp_path, link=lambda folder: folder.name)
    assert page.count("not in this run") >= 4
    assert re.search(r"`pcn run memory-depth`", page)


def test_pcn_report_writes_the_gallery_and_its_json(tmp_path, capsys):
    from pcn_experiments.cli import main

    out = tmp_path / "gallery.md"
    assert main(["report", "--results", str(ROOT / "results"), "--out", str(out)]) == 0
    assert out.read_text().startswith("# Results against the papers")
    assert main(["report", "--results", str(ROOT / "results"), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert {run["experiment"] for run in runs} >= {"memory-linear", "faster-pc-table1"}


def test_every_experiment_sets_a_paper_number_or_says_what_the_paper_shows():
    for name, exp in load_all().items():
        assert exp.paper or exp.figure, f"{name}: declare paper=(...) or figure='...'"
