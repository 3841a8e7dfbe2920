"""`ppc-signal --quick`: PPC's per-step gradients against BP's on Table 2.1's rows."""

import pytest

from pcn_experiments import run_experiment


@pytest.mark.usefixtures("fashion_mnist_available")
def test_ppc_signal_quick_run_compares_moving_and_held_weights_on_rows(tmp_path, check_outputs):
    results = run_experiment("ppc-signal", out=tmp_path, quick=True, progress=False)
    rows = ("fashion-mnist-mlp", "cifar10-cnn")
    output = {"fashion-mnist-mlp": "h2->y.weight", "cifar10-cnn": "h->y.weight"}
    check_outputs(tmp_path, results, [f"{r}.batches" for r in rows])  # names hold dots
    for row in rows:
        assert all(r > 0 for r in results[row]["rms_ratio"].values())
    for row in rows:
        moving, still = results[row]["moving"], results[row]["still"]
        assert set(moving) == set(still) and len(moving) == len(results[row]["rms_ratio"])
        steps = results[row]["settings"]["steps"]
        assert all(len(c) == steps + 1 for c in [*moving.values(), *still.values()])
        # forward-initialised, the output layer's first gradient is BP's, before any
        # weight step: moving and held agree there
        assert still[output[row]][0] == pytest.approx(1.0, abs=1e-4)
        assert moving[output[row]][0] == pytest.approx(still[output[row]][0], abs=1e-6)
