"""`pcgraph-topologies --quick`: Table 5.2 accuracies and every image panel's MSE."""

import pytest

from pcn_experiments import run_experiment


@pytest.mark.usefixtures("fashion_mnist_available")
def test_pcgraph_topologies_quick_run_classifies_and_reconstructs(tmp_path, check_outputs):
    results = run_experiment("pcgraph-topologies", out=tmp_path, quick=True, progress=False)
    models = ("pc_2", "pc_3", "bp_2", "bp_3", "rbm")
    keys = [f"fashion-mnist.test_accuracy.{m}" for m in models]
    tasks = {
        "denoise": ("generative", "lateral", "assemblies", "autoencoder", "rbm"),
        "complete": ("generative", "lateral", "assemblies", "autoencoder", "rbm"),
        "complete_label": ("generative", "lateral", "assemblies", "rbm"),
        "generate": ("generative", "lateral", "assemblies"),
    }
    keys += [f"mse.{task}.{m}" for task, ms in tasks.items() for m in ms]
    check_outputs(tmp_path, results, keys)
    for task in tasks:
        assert (tmp_path / f"{task}.png").exists()
    accuracy = results["fashion-mnist"]["test_accuracy"]
    # two epochs on 2000 images: every classifier far above chance (10%); the RBM,
    # trained generatively (plain CD), learns its label units slowest
    for model in models:
        assert accuracy[model] > (0.2 if model == "rbm" else 0.4), model
    assert abs(accuracy["pc_2"] - accuracy["bp_2"]) < 0.1
    mse = results["mse"]
    # the PC graphs' completions beat leaving the missing half black
    for model in ("generative", "lateral"):
        assert mse["complete"][model] < mse["complete"]["zero_filled"], model
    assert mse["denoise"]["generative"] < mse["denoise"]["noisy_input"]


def test_a_figures_dataset_that_is_not_28x28_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="list fashion-mnist or mnist first"):
        run_experiment("pcgraph-topologies", out=tmp_path, quick=True, progress=False,
                       overrides={"datasets": "cifar10-png,mnist"})  # fmt: skip
