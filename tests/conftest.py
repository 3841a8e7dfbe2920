import json
import math

import jax
import pytest

import pcn.data

# Every test runs with implicit rank promotion an error: the library broadcasts
# explicitly (`x[:, None]`), so a shape bug cannot hide behind numpy's broadcasting.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="session")
def fashion_mnist_available() -> None:
    """Skip (with the fix in the reason) where Fashion-MNIST is not installed."""
    try:
        pcn.data.load("fashion-mnist", download=False)
    except pcn.data.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST not found: apt-get install -y dataset-fashion-mnist")


@pytest.fixture(scope="session")
def tiny_shakespeare_available() -> None:
    """Skip (with the fix in the reason) where tiny-shakespeare is neither in a data
    folder nor in the cache (CI has no internet to download it)."""
    try:
        pcn.data.read_text_corpus("tiny-shakespeare", download=False)
    except pcn.data.DatasetNotFoundError:
        pytest.skip("tiny-shakespeare not found: set PCN_DATA to a folder holding it")


def _get(results: dict, dotted: str):
    value = results
    for part in dotted.split("."):
        value = value[part]
    return value


def _check_outputs(folder, results, keys, *, conditional=()):
    on_disk = json.loads((folder / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    # every setting the experiment lists is one it uses (a change to it reaches the code),
    # but for `conditional` ones, read only when another setting enables them
    assert set(on_disk["unread_settings"]) <= set(conditional), on_disk["unread_settings"]
    for key in keys:
        value = _get(on_disk, key)
        assert isinstance(value, int | float) and math.isfinite(value), key
    report = (folder / "report.md").read_text()
    assert report.startswith("# ")
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs, "no figure written"
    for name in pngs:
        assert f"({name})" in report, f"{name} is not shown in report.md"
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temp file left"


@pytest.fixture
def check_outputs():
    """`check(folder, results, keys, conditional=())`: results.json on disk equals
    `results`, each dotted key is a finite number, every setting was read (bar the
    `conditional` ones), report.md shows every PNG written, no temp file is left."""
    return _check_outputs
