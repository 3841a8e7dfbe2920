"""Each experiment's --quick run writes a well-formed results.json, report and figures."""

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

import pcn.data
from pcn import BP, ZIL, level_graph, make_train_step
from pcn_experiments import run_experiment, zil_timing
from pcn_experiments.registry import load_all
from pcn_experiments.zil_divergence import ARCHITECTURES, build_model


def test_every_registered_experiment_is_covered_by_a_quick_test():
    names = set(load_all())
    assert {"digits-mlp", "fashion-mnist-mlp", "zil-training"} <= names
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    untested = sorted(n for n in names if f'run_experiment("{n}"' not in tests)
    assert not untested, f"experiments without a quick test in tests/pcn_experiments: {untested}"


def test_digits_quick_run_writes_results_report_and_figures(tmp_path, check_outputs):
    results = run_experiment("digits-mlp", out=tmp_path, quick=True, progress=False)
    check_outputs(
        tmp_path, results, ["test_accuracy.bp", "test_accuracy.pc", "epochs", "wall_time_s"]
    )
    # five epochs on digits are enough for both to be far above chance (10%)
    assert results["test_accuracy"]["bp"] > 0.5
    assert results["test_accuracy"]["pc"] > 0.5
    # PC with a small T and gamma trains like BP from the same start (thesis Table 2.1;
    # quick run: 92.5% against 93.3%)
    assert abs(results["test_accuracy"]["pc"] - results["test_accuracy"]["bp"]) < 0.03


@pytest.mark.usefixtures("fashion_mnist_available")
def test_fashion_mnist_mlp_quick_run_is_well_formed(tmp_path, check_outputs):
    results = run_experiment("fashion-mnist-mlp", out=tmp_path, quick=True, progress=False)
    check_outputs(
        tmp_path, results, ["test_accuracy.bp", "test_accuracy.pc", "epochs", "wall_time_s"]
    )
    assert results["test_accuracy"]["pc"] > 0.5
    # with a small output precision IL's update approximates BP's (thesis Table 2.1,
    # MLP rows; quick run: 80.0% against 80.1%)
    assert abs(results["test_accuracy"]["pc"] - results["test_accuracy"]["bp"]) < 0.03


@pytest.mark.usefixtures("fashion_mnist_available")
def test_fashion_mnist_generative_quick_run_is_well_formed(tmp_path, check_outputs):
    results = run_experiment("fashion-mnist-generative", out=tmp_path, quick=True, progress=False)
    check_outputs(tmp_path, results, ["test_mse.pc", "test_mse.bp_autoencoder", "wall_time_s"])
    # a reconstruction must beat predicting black everywhere
    assert results["test_mse"]["pc"] < 0.17


@pytest.mark.usefixtures("fashion_mnist_available")
def test_zil_training_quick_run_has_identical_bp_and_zil_losses(tmp_path, check_outputs):
    results = run_experiment("zil-training", out=tmp_path, quick=True, progress=False)
    check_outputs(tmp_path, results, ["max_abs_loss_diff", "wall_time_s"])
    assert results["max_abs_loss_diff"] < 1e-10
    assert results["max_abs_final_weight_diff"] < 1e-10
    assert len(results["loss"]["zil"]) == 30


@pytest.mark.usefixtures("fashion_mnist_available")
def test_zil_divergence_quick_run_reproduces_the_pattern_of_tables_3_1_and_3_2(
    tmp_path, check_outputs
):
    results = run_experiment("zil-divergence", out=tmp_path, quick=True, progress=False)
    keys = [
        f"divergence.{a}.{k}"
        for a in ("mlp", "cnn", "rnn", "resnet", "transformer")
        for k in ("levelled", "unlevelled")
    ]
    check_outputs(tmp_path, results, keys)
    div = results["divergence"]
    for arch in ("mlp", "cnn", "rnn", "resnet", "transformer"):
        assert div[arch]["levelled"] < 1e-12
        for value in div[arch]["ablation"].values():
            assert value > 1e-6
    for arch in ("mlp", "cnn", "rnn"):
        assert div[arch]["unlevelled"] < 1e-12
    for arch in ("resnet", "transformer"):
        assert div[arch]["unlevelled"] > 1e-3


@pytest.mark.usefixtures("fashion_mnist_available")
def test_zil_timing_quick_run_reports_every_method_on_every_architecture(tmp_path, check_outputs):
    results = run_experiment("zil-timing", out=tmp_path, quick=True, progress=False)
    archs = ("mlp", "cnn", "rnn", "resnet", "transformer")
    keys = [f"ms_per_update.{a}.{m}" for a in archs for m in ("bp", "pc", "zil", "zil_traced")]
    check_outputs(tmp_path, results, [*keys, *[f"ms_per_update.{a}.pc_T" for a in archs]])
    ms = results["ms_per_update"]
    for arch in archs:
        # T of standard PC as the thesis uses it (section 3.7): 20 for the MLP, else 100
        assert ms[arch]["pc_T"] == (20 if arch == "mlp" else 100), arch
        # each ratio is the quotient of the two times it names (no claim on their size)
        assert results["ratios"][arch]["zil_over_bp"] == pytest.approx(
            ms[arch]["zil"] / ms[arch]["bp"]
        )


@pytest.mark.usefixtures("fashion_mnist_available")
def test_the_z_il_updates_zil_timing_times_equal_the_bp_updates_they_are_timed_against():
    """Table 3.3 compares the cost of equal updates: one step of each timed Z-IL runner
    (trainer on the levelled graph, traced `pcn.zil.grad`) moves every weight as its BP
    baseline does, to float32 rounding (seen: at most 1.5e-8; updates are ~3e-3)."""
    ds = pcn.data.load("fashion-mnist")
    x, y = ds.x_train[:20], ds.y_train[:20]
    lr = 0.01
    for i, arch in enumerate(ARCHITECTURES):
        graph, batch = build_model(arch, x, y, 14, jax.random.key(i), jnp.float32)
        before = jax.tree.leaves(eqx.filter(graph, eqx.is_inexact_array))
        levelled = level_graph(graph, ["y"])
        after = {}
        for name, model, algorithm in (("bp", graph, BP()), ("zil", levelled, ZIL())):
            step = make_train_step(model, algorithm, optax.sgd(lr))
            state = zil_timing._trainer_runner(model, algorithm, batch, lr)(0)
            after[name] = jax.tree.leaves(eqx.filter(step.graph(state), eqx.is_inexact_array))
        for by_zil in (True, False):
            after[by_zil] = jax.tree.leaves(
                zil_timing._traced_runner(graph, batch, lr, by_zil=by_zil)(0)
            )
        for zil, bp in (("zil", "bp"), (True, False)):
            assert len(after[zil]) == len(after[bp]) == len(before)
            for a, b in zip(after[zil], after[bp], strict=True):
                assert float(jnp.max(jnp.abs(a - b))) < 1e-6, (arch, zil)
            # ... and the update compared is not the trivial one
            moved = max(
                float(jnp.max(jnp.abs(b - w))) for w, b in zip(before, after[bp], strict=True)
            )
            assert moved > 1e-4, (arch, moved)


@pytest.mark.usefixtures("fashion_mnist_available")
def test_nongauss_classification_quick_run_is_well_formed(tmp_path, check_outputs):
    results = run_experiment("nongauss-classification", out=tmp_path, quick=True, progress=False)
    keys = [
        f"fashion-mnist.test_accuracy.{m}.{v}"
        for m in ("M1", "M2", "M3")
        for v in ("bp", "pc_f", "pc_fkl")
    ]
    regimes = [f"fashion-mnist.regimes.precision_{p}.test_accuracy.M2.pc_fkl" for p in (1, 100)]
    memory = [f"fashion-mnist.memory.{m}.pc_fkl_total_over_bp" for m in ("M1", "M2", "M3")]
    check_outputs(tmp_path, results, keys + regimes + memory)
    accuracy = results["fashion-mnist"]["test_accuracy"]
    for m in ("M1", "M2"):  # two epochs: far above chance (quick run: 59-72%)
        for v in ("bp", "pc_f", "pc_fkl"):
            assert accuracy[m][v] > 0.4, (m, v)
    for m in ("M1", "M2", "M3"):  # the paper's bound on PC's memory
        assert 1.0 < results["fashion-mnist"]["memory"][m]["pc_fkl_total_over_bp"] < 2.0
    for regime in results["fashion-mnist"]["regimes"].values():
        # on M1 (no softmax layer) PC_F and PC_FKL are the same algorithm
        m1 = regime["curves"]["M1"]
        assert m1["pc_f"]["train_loss"] == m1["pc_fkl"]["train_loss"]
        # BP is trained once and shown in every regime
        assert m1["bp"] == results["fashion-mnist"]["curves"]["M1"]["bp"]


def test_unknown_experiment_error_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"Unknown `experiment` 'nope'.*digits-mlp"):
        run_experiment("nope", quick=True)
