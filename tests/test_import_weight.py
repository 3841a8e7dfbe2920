"""`import pcn` (and every module of the library) loads none of the experiment suite's
dependencies: the library needs only jax, equinox, optax and numpy."""

import json
import subprocess
import sys

import pytest

from pcn._optional import optional_import

SUITE_ONLY = ("tqdm", "matplotlib", "sentencepiece", "sklearn")

# Imports every module of `pcn` in a fresh interpreter, then prints which of the suite's
# top-level packages ended up in sys.modules.
_PROBE = """
import importlib, json, pkgutil, sys
import pcn, pcn.data
names = sorted(m.name for m in pkgutil.walk_packages(pcn.__path__, "pcn."))
for name in names:
    importlib.import_module(name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"modules": names, "loaded": loaded}))
"""


def test_importing_the_library_loads_no_suite_dependency():
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(SUITE_ONLY)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "pcn.data.text" in report["modules"] and "pcn.training" in report["modules"]
    assert report["loaded"] == [], (
        f"importing pcn loaded {report['loaded']}: import them inside the function that "
        "needs them (they are the `experiments` extra, not library dependencies)"
    )


def test_the_library_does_not_import_the_suite():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, pcn; print('pcn_experiments' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "False"


def test_a_missing_optional_dependency_names_what_needs_it_and_the_install():
    assert optional_import("json", "Reading JSON") is json
    with pytest.raises(ImportError, match=r"The digits dataset needs .*pip install scikit-learn"):
        optional_import("no_such_module_xyz", "The digits dataset", package="scikit-learn")
