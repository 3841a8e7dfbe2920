"""The suite's output files (results.json, report.md, PNGs) are readable by others as the
umask allows (0o644 under 022, not mkstemp's 0o600), and a failed figure leaves no trace."""

import json
import os
import stat

import matplotlib.pyplot as plt
import pytest

from pcn_experiments.output import save_figure, write_json, write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_results_report_and_figures_are_mode_0644_under_umask_022(tmp_path, umask_022):
    write_json(tmp_path / "results.json", {"accuracy": 0.5})
    write_text(tmp_path / "report.md", "# report\n")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "curve.png")
    assert json.loads((tmp_path / "results.json").read_text()) == {"accuracy": 0.5}
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    modes = {p.name: _mode(p) for p in tmp_path.iterdir()}
    assert modes == {"results.json": 0o644, "report.md": 0o644, "curve.png": 0o644}


def test_a_figure_that_fails_to_save_keeps_the_old_png_and_leaves_no_temp_file(tmp_path):
    fig, _ = plt.subplots()
    save_figure(fig, tmp_path / "curve.png")
    before = (tmp_path / "curve.png").read_bytes()
    fig, _ = plt.subplots()
    fig.savefig = lambda f, **kwargs: (f.write(b"\x89PNG half"), 1 / 0)
    with pytest.raises(ZeroDivisionError):
        save_figure(fig, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]
    assert not plt.fignum_exists(fig.number)  # closed even so
