"""The `nongauss-transformer` quick run trains BP, PC_F and PC_FKL language models and
writes the Fig. 7 outputs."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
import optax
import pytest

from pcn import BP
from pcn.language_model import language_model, lm_batch
from pcn_experiments import run_experiment


@pytest.mark.usefixtures("tiny_shakespeare_available")
def test_float64_setting_trains_every_method_in_float64(tmp_path):
    overrides = {
        "float64": "true",
        "adam_eps": "1e-12",
        "train_sequences": "64",
        "epochs": "1",
        "dev_sequences": "32",
    }
    results = run_experiment(
        "nongauss-transformer", out=tmp_path, quick=True, progress=False, overrides=overrides
    )
    assert results["config"]["float64"] is True
    report = " ".join((tmp_path / "report.md").read_text().split())
    assert "float64 arithmetic" in report and "eps 1e-12" in report
    assert results["weight_dtype"] == "float64"
    assert not jax.config.jax_enable_x64  # the setting does not leak past the run


@pytest.mark.usefixtures("tiny_shakespeare_available")
def test_nongauss_transformer_quick_run_learns_and_writes_fig7_outputs(tmp_path, check_outputs):
    results = run_experiment("nongauss-transformer", out=tmp_path, quick=True, progress=False)
    keys = [f"test_perplexity{s}.{v}" for s in ("", "_std") for v in ("bp", "pc_f", "pc_fkl")]
    check_outputs(tmp_path, results, [*keys, "wall_time_s", "memory_ratio_to_bp_total.pc_fkl"])
    vocab = results["data"]["vocab_size"]
    for variant in ("bp", "pc_f", "pc_fkl"):
        curve = results["curves"][variant][0]["dev_perplexity"]
        assert curve[-1] < 0.9 * curve[0], variant  # every method learned something
        assert results["test_perplexity"][variant] < 0.8 * vocab  # beats guessing uniformly
    # PC keeps a few copies of the activations, not a different order of memory
    assert 0.5 < results["memory_ratio_to_bp_total"]["pc_fkl"] < 3.0
    report = (tmp_path / "report.md").read_text()
    assert "T = 5" in report and "true next" in report
    assert len(results["examples"]) == 2 and len(results["examples"][0]["pc_fkl"]) == 3
    assert results["weight_dtype"] == "float32"
    alignment = results["update_alignment"]  # PC_FKL's update vs BP's, per weight array
    assert {"tokens->embed.tokens", "z->y.linear.weight"} <= set(alignment)
    assert alignment["z->y.linear.weight"]["cosine"] > 0.9  # the output layer's follows BP
    assert "How far PC_FKL's update is from BP's" in report


def test_the_bp_control_takes_k_backprop_steps_on_each_batch():
    graph = language_model(11, seq_len=4, dim=8, variant="bp", key=jax.random.key(0))
    batch = lm_batch(graph, np.random.default_rng(0).integers(0, 11, size=(3, 5)))
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(eqx.filter(graph, eqx.is_inexact_array))
    repeated, _, info = BP(weight_updates=3).step(graph, opt_state, batch, optimizer=optimizer)
    expected, state = graph, opt_state
    for _ in range(3):
        expected, state, _ = BP().step(expected, state, batch, optimizer=optimizer)
    np.testing.assert_allclose(
        info.loss, BP().step(graph, opt_state, batch, optimizer=optimizer)[2].loss
    )
    for a, b in zip(
        jax.tree.leaves(eqx.filter(repeated, eqx.is_inexact_array)),
        jax.tree.leaves(eqx.filter(expected, eqx.is_inexact_array)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
