"""`faster-pc-inits --quick`: every initialiser at each T, with measured SMMs."""

import pytest

from pcn_experiments import run_experiment

INITS = ("normal", "zero", "null", "forward", "average", "memory")


@pytest.mark.usefixtures("fashion_mnist_available")
def test_faster_pc_inits_quick_run_trains_every_initialiser(tmp_path, check_outputs):
    results = run_experiment("faster-pc-inits", out=tmp_path, quick=True, progress=False)
    steps = results["config"]["inference_steps"]
    check_outputs(
        tmp_path,
        results,
        [f"best_accuracy.{i}.{t}" for i in INITS for t in steps]
        + [f"smm_per_update.{i}.{t}.measured" for i in INITS for t in steps],
    )
    best, smm, layers = results["best_accuracy"], results["smm_per_update"], results["layers"]
    low = str(min(steps))
    # Fig. 2: forward initialisation trains at a low T, zero and random starts do not
    # (quick run when written, T = 3: forward 66.2 %, average 61.2, zero 12.1, normal 12.0)
    assert best["forward"][low] > best["zero"][low] + 20
    assert best["forward"][low] > best["normal"][low] + 20
    assert best["average"][low] > best["zero"][low] + 20
    for t in steps:  # Eq. 6 for I_fw; the others start with no product, plus the
        assert smm["forward"][str(t)]["measured"] == 2 * t + layers  # prediction at the
        assert smm["average"][str(t)]["measured"] == 2 * t + 1  # relaxed values
        assert smm["zero"][str(t)]["formula"] == 2 * t


def test_unknown_initialisers_are_refused_naming_the_choices(tmp_path):
    with pytest.raises(ValueError, match="`inits` must list some of normal, zero"):
        run_experiment("faster-pc-inits", out=tmp_path, quick=True, progress=False,
                       overrides={"inits": "forward,hopfield"})  # fmt: skip
