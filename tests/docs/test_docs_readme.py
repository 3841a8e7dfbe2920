"""The README's quick start runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_quick_start_runs_and_learns(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    printed = capsys.readouterr().out
    accuracy = float(printed.rsplit(":", 1)[1])
    assert accuracy > 0.8  # ten epochs on digits; chance is 0.1


def test_readme_zil_example_matches_backprop(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    zil_blocks = [b for b in blocks if "pcn.zil.grad" in b]
    assert zil_blocks, "README has no Z-IL example"
    exec(compile(zil_blocks[0], "README.md", "exec"), {})
    assert float(capsys.readouterr().out) < 1e-4  # float32 rounding
