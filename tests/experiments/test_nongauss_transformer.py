"""The `nongauss-transformer` quick run trains BP, PC_F and PC_FKL language models and
writes the Fig. 7 outputs."""

from __future__ import annotations

from pcn.experiments import run_experiment


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
