"""`make jax-range`: the wheel against the oldest and the newest jax that pyproject.toml
allows, each in a fresh virtual environment running the README's quick start. Prints
the versions each got, so a widened range is tested at both ends."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str | Path) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    jax = next(d for d in project["dependencies"] if re.match(r"jax[><=]", d))
    oldest = re.search(r">=([\d.]+)", jax)
    assert oldest, f"no lower bound in {jax!r}"
    readme = (ROOT / "README.md").read_text()
    quick_start = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _run(sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", ROOT)
        (wheel,) = (work / "dist").glob("*.whl")
        (work / "quick_start.py").write_text(quick_start)
        pins = {
            "oldest": [f"jax=={oldest.group(1)}", f"jaxlib=={oldest.group(1)}"],
            "newest": [],
        }
        for end, pin in pins.items():
            venv = work / f"venv-{end}"
            _run(sys.executable, "-m", "venv", venv)
            _run(venv / "bin" / "pip", "install", "--quiet", f"{wheel}[experiments]", *pin)
            version = _run(venv / "bin" / "python", "-c", "import jax; print(jax.__version__)")
            out = _run(venv / "bin" / "python", work / "quick_start.py")
            print(f"{end}: jax {version.strip()}: {out.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
