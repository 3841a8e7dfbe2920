"""`faster-pc-generative --quick`: a PC decoder per initialiser at T_train x T_eval."""

import pytest

from pcn_experiments import run_experiment


@pytest.mark.usefixtures("fashion_mnist_available")
def test_faster_pc_generative_quick_run_reports_every_pair_of_steps(tmp_path, check_outputs):
    results = run_experiment("faster-pc-generative", out=tmp_path, quick=True, progress=False)
    cfg = results["config"]
    tt, te = cfg["train_inference_steps"], cfg["eval_inference_steps"]
    check_outputs(
        tmp_path,
        results,
        [f"best_loss.{i}.{a}.{b}" for i in ("memory", "zero", "normal") for a in tt for b in te],
    )
    best = results["best_loss"]
    # more inference at test time reconstructs better from a zero start (quick run when
    # written: 0.073 after 3 steps, 0.058 after 20), and after 20 every decoder beats
    # answering each image with the mean training image (0.088 on these test images)
    low, high = str(min(te)), str(max(te))
    assert best["zero"][str(min(tt))][high] < best["zero"][str(min(tt))][low]
    for init in ("memory", "zero", "normal"):
        assert all(best[init][str(t)][high] < 0.08 for t in tt), init
    # each relaxation step adds a prediction and the error sent back: 2 SMMs (Eq. 5)
    smm = results["smm"]["zero"]
    a, b = min(tt), max(tt)
    assert smm[str(b)]["per_update"] - smm[str(a)]["per_update"] == 2 * (b - a)
    assert smm[str(a)]["cumulative"][-1] == smm[str(a)]["per_update"] * results["steps"]
