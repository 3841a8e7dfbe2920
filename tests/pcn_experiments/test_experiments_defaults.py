"""Each experiment's default settings (no `--set`) are those of its committed headline
result: `pcn run NAME` reproduces `results/NAME/`."""

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

from pcn_experiments.registry import load_all

RESULTS = Path(__file__).resolve().parents[2] / "results"
COMMITTED = sorted(name for name in load_all() if (RESULTS / name / "results.json").exists())


def test_the_committed_headlines_cover_the_long_experiments():
    long = {"nongauss-transformer", "pcgraph-fully-connected", "fashion-mnist-mlp"}
    assert long | {"table-2-1", "faster-pc-table1", "faster-pc-generative"} <= set(COMMITTED)


@pytest.mark.parametrize("name", COMMITTED)
def test_the_default_config_is_the_committed_headline_config(name):
    module = importlib.import_module(f"pcn_experiments.{name.replace('-', '_')}")
    committed = json.loads((RESULTS / name / "results.json").read_text())["config"]
    default = json.loads(json.dumps(dataclasses.asdict(module.FULL)))
    assert default == committed
