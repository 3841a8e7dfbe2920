"""`pcgraph-memory --quick`: fractions of training images retrieved, every query."""

import pytest

from pcn_experiments import run_experiment


@pytest.mark.usefixtures("fashion_mnist_available")
def test_pcgraph_memory_quick_run_retrieves_stored_images(tmp_path, check_outputs):
    results = run_experiment("pcgraph-memory", out=tmp_path, quick=True, progress=False)
    sizes = results["config"]["memories"]
    keys = [
        f"retrieved_fraction.{n}.{c}.{q}"
        for n in sizes
        for c in ("half", "noise")
        for q in ("condition", "initialisation")
    ]
    check_outputs(tmp_path, results, keys)
    mse = results["mean_mse"]
    for n in sizes:
        # completing a stored image beats leaving its top half black
        assert mse[str(n)]["half"]["condition"] < results["corrupted_mse"]["half"]
        for c in ("half", "noise"):
            for q in ("condition", "initialisation"):
                assert 0.0 <= results["retrieved_fraction"][str(n)][c][q] <= 1.0
