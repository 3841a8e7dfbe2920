"""`table-2-1 --quick`: BP, PC and PPC with early stopping on a validation split."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn import layers
from pcn_experiments import run_experiment
from pcn_experiments.table_2_1 import convolutions_held, search_space

METHODS = ("bp", "pc", "ppc")


@pytest.mark.usefixtures("fashion_mnist_available")
def test_table_2_1_quick_run_scores_every_method_by_early_stopping(tmp_path, check_outputs):
    results = run_experiment("table-2-1", out=tmp_path, quick=True, progress=False)
    row = "fashion-mnist-mlp"
    check_outputs(
        tmp_path,
        results,
        [f"{row}.test_accuracy.{m}.{s}" for m in METHODS for s in ("mean", "std")]
        + [f"seconds_per_epoch.{row}.{m}" for m in METHODS]
        + [f"smm_per_update.{row}.{m}.per_batch" for m in METHODS],
    )
    cfg = results["config"]
    accuracy = results[row]["test_accuracy"]
    assert all(accuracy[m]["mean"] > 40 for m in METHODS)  # chance is 10
    # the score is the test accuracy at the best validation evaluation
    curve = results[row]["curves"]["pc"][0]
    best = max(range(len(curve["validation"])), key=curve["validation"].__getitem__)
    assert accuracy["pc"]["seeds"][0] == curve["accuracy"][best]
    # PPC makes T / k weight updates per batch in one step of the same chain as PC's
    smm = results["smm_per_update"][row]
    assert smm["ppc"]["updates_per_batch"] == cfg["ppc_steps"] // cfg["ppc_weight_every"]
    assert smm["bp"]["per_batch"] == 2 * (len(cfg["mlp_hidden"]) + 1) - 1
    assert results["seconds_to_bp"][row]["bp"] is not None


def test_the_cifar10_cnn_row_trains_pc_and_unrolled_ppc(tmp_path):
    # the thesis's CNN row, small: a few subset images, narrow convolutions; PPC's steps
    # are unrolled on CNN rows (pcn.PPC's `unroll`), and its weight updates run beside
    # its value steps, so one batch's chain is as long as PC's
    tiny = {"rows": "cifar10-cnn", "methods": "pc,ppc,bp_dense", "cnn_channels": "4,8,4",
            "cnn_hidden": "16", "seeds": "1", "epochs": "1",
            "train": "300", "test": "100"}  # fmt: skip
    results = run_experiment("table-2-1", out=tmp_path, quick=True, progress=False, overrides=tiny)
    accuracy = results["cifar10-cnn"]["test_accuracy"]
    assert set(accuracy) == {"pc", "ppc", "bp_dense"}
    smm = results["smm_per_update"]["cifar10-cnn"]
    assert smm["ppc"]["per_batch"] == smm["pc"]["per_batch"]  # T value steps either way


def test_the_dense_only_control_moves_the_dense_weights_and_no_convolution():
    graph = pcn.cnn((3, 8, 8), channels=(2, 3), hidden=4, key=jax.random.key(0))
    step = pcn.make_train_step(graph, pcn.BP(), convolutions_held(optax.adamw(1e-2)))
    rng = np.random.default_rng(0)
    batch = {"x": jnp.asarray(rng.normal(size=(5, 3, 8, 8)), jnp.float32),
             "y": jnp.asarray(np.eye(10)[rng.integers(0, 10, 5)], jnp.float32)}  # fmt: skip
    state, _ = step(step.init(graph), batch)
    trained = step.graph(state)

    def weights(g: pcn.PCGraph, kind: type) -> list[np.ndarray]:
        modules = jax.tree.leaves(g, is_leaf=lambda x: isinstance(x, kind))
        return [np.asarray(m.weight) for m in modules if isinstance(m, kind)]

    assert len(weights(graph, layers.Conv2d)) == len(weights(graph, layers.Linear)) == 2
    for before, after in zip(weights(graph, layers.Conv2d), weights(trained, layers.Conv2d),
                             strict=True):  # fmt: skip
        np.testing.assert_array_equal(after, before)
    for before, after in zip(weights(graph, layers.Linear), weights(trained, layers.Linear),
                             strict=True):  # fmt: skip
        assert not np.allclose(after, before)


def test_the_search_space_is_the_thesis_grid_for_one_method_and_row():
    space = search_space({"methods": "ppc", "rows": "fashion-mnist-mlp"})
    assert len(space["ppc_learning_rate"]) == 8 and space["ppc_gamma"] == (0.1, 0.5, 1.0)
    assert len(space["ppc_weight_decay"]) == 4
    # CNN rows search a smaller grid, of the same size for every method (an epoch costs
    # minutes on CPU): learning rate x gamma, and for BP learning rate x weight decay
    rates = (1e-4, 3e-4, 1e-3)
    assert search_space({"methods": "ppc", "rows": "cifar10-cnn"}) == {
        "ppc_learning_rate": rates,
        "ppc_gamma": (0.1, 0.5),
    }
    assert search_space({"methods": "bp", "rows": "cifar10-cnn"}) == {
        "bp_learning_rate": rates,
        "bp_weight_decay": (1e-3, 1e-1),
    }
    with pytest.raises(ValueError, match="--set methods=M --set rows=R"):
        search_space({"methods": "ppc"})


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("ppc_weight_every", "3", "must divide `steps`"),
        ("rows", "imagenet-mlp", "`rows` must list some of"),
        ("validation", "0", "held out for early stopping"),
        ("methods", "bp_dense", "an MLP row has none"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(tmp_path, setting, value, message):
    with pytest.raises(ValueError, match=message):
        run_experiment("table-2-1", out=tmp_path, quick=True, progress=False,
                       overrides={setting: value})  # fmt: skip
