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


def test_pcgraph_memory_stores_cifar10_images_in_a_graph_wider_than_their_pixels(tmp_path):
    # the thesis's own setting (Fig. 5.4) at a quick size: 3072 pixels and 128 hidden,
    # with a value step that keeps training's relaxation stable at this width (0.5, the
    # Fashion-MNIST default, makes its energy rise)
    results = run_experiment(
        "pcgraph-memory", out=tmp_path, quick=True, progress=False,
        overrides={"dataset": "cifar10-png", "neurons": "3200", "memories": "5",
                   "gamma": "0.02", "query_max_steps": "400"},
    )  # fmt: skip
    assert results["dataset"] == "cifar10-png"
    mse, corrupted = results["mean_mse"]["5"], results["corrupted_mse"]
    # (when written: 0.049 from the bottom half after 400 query steps, 0.011 after 1000;
    # 0.0015 from noise; against 0.16 and 0.20 for the corrupted images)
    assert mse["half"]["condition"] < 0.5 * corrupted["half"]
    assert mse["noise"]["condition"] < 0.05 * corrupted["noise"]


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("dataset", "svhn", "`dataset` must be one of fashion-mnist, cifar10-png"),
        ("neurons", "784", "`neurons` must exceed the 784 pixels of fashion-mnist"),
    ],
)
@pytest.mark.usefixtures("fashion_mnist_available")
def test_bad_settings_are_refused_naming_the_setting(tmp_path, setting, value, message):
    with pytest.raises(ValueError, match=message):
        run_experiment("pcgraph-memory", out=tmp_path, quick=True, progress=False,
                       overrides={setting: value})  # fmt: skip
