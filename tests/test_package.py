"""The release: `python -m build` makes an sdist and a wheel that `twine check` passes,
the wheel installs into a fresh virtual environment (from the package index, not from
this repository) and runs the README's quick start from outside the repository, and the
version lives in one place."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pcn

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str, cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_installs_in_a_fresh_venv_and_runs_the_quick_start(tmp_path):
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT), cwd=tmp_path)
    wheel, sdist = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheel) == 1 and len(sdist) == 1
    _run(sys.executable, "-m", "twine", "check", "--strict", str(wheel[0]), str(sdist[0]),
         cwd=tmp_path)  # fmt: skip
    assert wheel[0].name == f"pcn-{pcn.__version__}-py3-none-any.whl"
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(str(python), "-m", "pip", "install", "--quiet", f"{wheel[0]}[experiments]", cwd=tmp_path)
    readme = (ROOT / "README.md").read_text()
    quick_start = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    script = tmp_path / "quick_start.py"
    script.write_text(quick_start)
    out = _run(str(python), str(script), cwd=tmp_path)
    assert float(out.rsplit(":", 1)[1]) > 0.8
    where = _run(str(python), "-c", "import pcn; print(pcn.__file__)", cwd=tmp_path)
    assert str(venv) in where  # the installed copy, not the repository's
    assert "digits-mlp" in _run(str(venv / "bin" / "pcn"), "list", cwd=tmp_path)


def test_the_version_lives_in_one_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert f'version: "{pcn.__version__}"' in (ROOT / "CITATION.cff").read_text()
    assert f"## {pcn.__version__}" in (ROOT / "CHANGELOG.md").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
