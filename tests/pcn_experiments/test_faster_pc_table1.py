"""`faster-pc-table1 --quick`: BP, PC-I_fw and PC-I_avg over fractions and seeds, with
measured SMMs and the cost of reaching each relative error."""

import dataclasses

import pytest

from pcn_experiments import run_experiment
from pcn_experiments.classify import MethodRun
from pcn_experiments.faster_pc_table1 import (
    FULL,
    RELATIVE_ERRORS,
    hidden_layers,
    paper_smm,
    percent,
    search_space,
)

METHODS = ("bp", "pc_fw", "pc_avg")


@pytest.mark.usefixtures("fashion_mnist_available")
def test_faster_pc_table1_quick_run_fills_the_table_and_the_costs(tmp_path, check_outputs):
    results = run_experiment("faster-pc-table1", out=tmp_path, quick=True, progress=False)
    fractions = [percent(f) for f in results["config"]["fractions"]]
    check_outputs(
        tmp_path,
        results,
        [f"fashion-mnist.test_accuracy.{f}.{m}.{s}" for f in fractions for m in METHODS
         for s in ("mean", "std")]
        + [f"smm_per_update.{m}.{k}" for m in METHODS for k in ("measured", "formula")],
    )  # fmt: skip
    smm = results["smm_per_update"]
    # the measured counts are the paper's formulas (Eqs. 5-6), and for the hybrid I_avg
    # (m >= 2) Eq. 5 + m plus the prediction at the relaxed values that Eq. 5 leaves out
    layers, cfg = results["layers"], results["config"]
    assert smm["bp"]["measured"] == smm["bp"]["formula"] == 2 * layers - 1
    assert smm["pc_fw"]["measured"] == smm["pc_fw"]["formula"] == 2 * cfg["pc_fw_steps"] + layers
    assert cfg["pc_avg_forward_layers"] >= 2
    assert smm["pc_avg"]["measured"] == smm["pc_avg"]["formula"] + 1
    full = results["fashion-mnist"]["test_accuracy"]["100%"]
    assert full["bp"]["mean"] > 50 and full["pc_fw"]["mean"] > 50  # chance is 10
    assert len(full["bp"]["seeds"]) == cfg["seeds"]
    # every evaluation carries its steps, SMMs (measured per update x steps) and seconds
    curve = results["fashion-mnist"]["curves"]["100%"]["pc_fw"][0]
    assert curve["smm"] == [smm["pc_fw"]["measured"] * s for s in curve["steps"]]
    assert curve["seconds"] == sorted(curve["seconds"]) and curve["seconds"][0] >= 0
    # the method with the best mean reaches every relative error of it
    best = max(METHODS, key=lambda m: full[m]["mean"])
    costs = results["smm_to_relative_error"]["fashion-mnist"]["100%"]
    assert all(costs[percent(rel)][best] is not None for rel in RELATIVE_ERRORS)


def test_a_run_reaches_a_target_at_its_first_evaluation_above_it():
    run = MethodRun(accuracy=[50.0, 80.0, 79.0, 90.0], steps=[1, 2, 3, 4],
                    smm=[10, 20, 30, 40], seconds=[0.1, 0.2, 0.3, 0.4])  # fmt: skip
    assert run.first_reaching(80.0, run.smm) == 20
    assert run.first_reaching(85.0, run.seconds) == 0.4
    assert run.first_reaching(95.0, run.smm) is None


def test_the_papers_smm_formulas():
    assert paper_smm("bp", 5, 0) == 9  # 2L - 1
    assert paper_smm("pc_fw", 5, 4) == 13  # 2T + L
    assert paper_smm("pc_avg", 5, 4, forward_layers=2) == 10  # 2T + m


def test_the_search_space_is_the_papers_grid_for_one_method():
    space = search_space({"methods": "pc_avg"})
    assert space["pc_avg_forward_layers"] == (1, 2, 3)
    assert max(space["pc_avg_steps"]) < len(FULL.hidden) + 1  # T < L, the claim's regime
    assert set(search_space({"methods": "bp"})) == {"bp_learning_rate", "bp_activation"}
    with pytest.raises(ValueError, match="--set methods=M"):
        search_space({"methods": "bp,pc_fw"})


def test_a_cnn_search_keeps_pc_avg_below_the_depth_and_every_m_valid():
    space = search_space({"methods": "pc_avg", "architecture": "cnn"})
    cnn = dataclasses.replace(FULL, architecture="cnn", channels=(8, 8, 8, 8, 8))
    layers = hidden_layers(cnn) + 1  # five convolutions, a dense layer, the output
    assert max(space["pc_avg_steps"]) < layers
    for m in space["pc_avg_forward_layers"]:  # each a valid config
        dataclasses.replace(cnn, pc_avg_forward_layers=m)
    assert set(search_space({"methods": "bp", "architecture": "cnn"})) == {"bp_learning_rate"}
    assert max(space["pc_avg_learning_rate"]) == 1e-3  # 3e-3 diverged in every PC trial


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("fractions", "0.5,1.5", "fractions of the training set in \\(0, 1\\]"),
        ("pc_avg_forward_layers", "4", "m of Eq. 10"),
        ("validation", "1.0", "fraction of the training set held out"),
        ("methods", "bp,sgd", "`methods` must list some of bp, pc_fw, pc_avg"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(tmp_path, setting, value, message):
    with pytest.raises(ValueError, match=message):
        run_experiment("faster-pc-table1", out=tmp_path, quick=True, progress=False,
                       overrides={setting: value})  # fmt: skip


@pytest.mark.usefixtures("fashion_mnist_available")
def test_the_cifar10_row_trains_a_cnn_by_bp_and_pc(tmp_path):
    # the paper's CIFAR-10 row (AlexNet), here a small CNN on a few subset images; beside
    # Fashion-MNIST, whose images have another shape (each gets its own compiled step)
    tiny = {"architecture": "cnn",
            "datasets": "fashion-mnist,cifar10-png", "channels": "4,8", "hidden": "16",
            "fractions": "1.0", "seeds": "1", "epochs": "1", "train": "400", "test": "100",
            "pc_avg_forward_layers": "1", "methods": "bp,pc_avg"}  # fmt: skip
    results = run_experiment(
        "faster-pc-table1", out=tmp_path, quick=True, progress=False, overrides=tiny
    )
    assert results["layers"] == 4  # two convolutions, the dense hidden layer, the output
    assert results["smm_per_update"]["bp"]["measured"] == 7  # 2L - 1
    for dataset in ("fashion-mnist", "cifar10-png"):
        accuracy = results[dataset]["test_accuracy"]["100%"]
        assert set(accuracy) == {"bp", "pc_avg"} and "train_examples" in results[dataset]
