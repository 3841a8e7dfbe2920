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
    mse, retrieved = results["mean_mse"], results["retrieved_fraction"]
    few, many = str(min(sizes)), str(max(sizes))
    for n in map(str, sizes):
        # completing a stored image beats leaving its top half black
        assert mse[n]["half"]["condition"] < results["corrupted_mse"]["half"]
        # Fig. 5.4: conditioning on the known half completes better than starting from it
        # (quick run: 0.0008 and 0.003 against 0.064 and 0.074)
        assert mse[n]["half"]["condition"] < 0.5 * mse[n]["half"]["initialisation"]
        # either query removes most of the noise (quick run: 0.007-0.015 against 0.20)
        for q in ("condition", "initialisation"):
            assert mse[n]["noise"][q] < 0.25 * results["corrupted_mse"]["noise"], (n, q)
    # a memory is retrieved when its MSE is below the threshold, which the corrupted
    # images (mean MSE 0.07) are far above; yet most of the fewest stored images are
    # retrieved from their bottom half (quick run: 8 of 10) ...
    assert results["corrupted_mse"]["half"] > results["config"]["threshold"]
    assert retrieved[few]["half"]["condition"] >= 0.5
    # ... and, as in Fig. 5.4, a smaller fraction of the most stored (quick run: 5 of 20)
    assert retrieved[many]["half"]["condition"] < retrieved[few]["half"]["condition"]
