"""Quick runs of the generative-memory experiments (thesis sections 4.3-4.7): stored by
Algorithm 6, retrieved by F and Algorithm 7, autoencoders beside them."""

import pytest

from pcn_experiments import run_experiment


def test_memory_partial_quick_run_completes_half_images(tmp_path, check_outputs):
    results = run_experiment("memory-partial", out=tmp_path, quick=True, progress=False)
    cfg = results["config"]
    keys = [f"retrieved.pc-L2-n128.tiny-imagenet-val.{n}.{k}.count"
            for n in cfg["images"] for k in ("partial_2", "partial_8")]  # fmt: skip
    check_outputs(tmp_path, results, keys + ["ms_per_retrieval.pc-L2-n128.10.partial_2"])
    half = results["retrieved"]["pc-L2-n128"]["tiny-imagenet-val"]
    # (quick run when written: 10 of 10 and 19 of 20 from half the pixels, 4 and 1 from 1/8)
    assert half["10"]["partial_2"]["count"] >= 9
    assert half["10"]["partial_2"]["count"] > half["10"]["partial_8"]["count"]
    assert results["storage"]["pc-L2-n128"]["10"]["energy"] < 0.01


def test_memory_hierarchical_quick_run_cleans_noisy_keys_by_iterating_f(tmp_path, check_outputs):
    results = run_experiment("memory-hierarchical", out=tmp_path, quick=True, progress=False)
    models = ("pc-L2-n64", "pc-L2-n128", "autoencoder-L3-n64", "autoencoder-L3-n128")
    check_outputs(
        tmp_path,
        results,
        [f"retrieved.{m}.tiny-imagenet-val.20.noisy_var0_05.count" for m in models]
        + [f"ms_per_retrieval.{w}.{i}" for w in (64, 128) for i in (1, 2)]
        + ["by_iteration.pc-L2-n128.20.noisy_var0_05.4.mse"]
        + [f"strict.{m}.20" for m in models],
    )
    path = results["by_iteration"]["pc-L2-n128"]["20"]["noisy_var0_05"]
    # F moves a noisy key towards its image: the error falls with iterations and ends far
    # below the key's own error, 0.05 (quick run when written: 0.0056 -> 0.0043)
    assert path["4"]["mse"] <= path["1"]["mse"] < 0.02
    assert (
        results["retrieved"]["pc-L2-n128"]["tiny-imagenet-val"]["20"]["noisy_var0_05"]["count"]
        >= 10
    )


def test_memory_depth_quick_run_sets_pc_beside_the_autoencoder_at_each_depth(
    tmp_path, check_outputs
):
    results = run_experiment("memory-depth", out=tmp_path, quick=True, progress=False)
    models = [f"{k}-L{d}-n128" for k in ("pc", "autoencoder") for d in (1, 3)]
    check_outputs(
        tmp_path,
        results,
        [f"retrieved.{m}.tiny-imagenet-val.20.{k}.count" for m in models
         for k in ("partial_2", "partial_4")],
    )  # fmt: skip
    r = results["retrieved"]
    for depth in (1, 3):  # (quick run when written: PC 19 and 19, autoencoders 15 and 14)
        pc = r[f"pc-L{depth}-n128"]["tiny-imagenet-val"]["20"]["partial_2"]["count"]
        assert pc >= 15


def test_memory_hetero_quick_run_reports_both_directions(tmp_path, check_outputs):
    results = run_experiment("memory-hetero", out=tmp_path, quick=True, progress=False)
    models = [f"{k}-L{d}-n128" for k in ("pc", "autoencoder") for d in (1, 2)]
    check_outputs(
        tmp_path,
        results,
        [f"retrieved.{m}.tiny-imagenet-pairs.{n}.{direction}.count" for m in models
         for n in (10, 20) for direction in ("caption_from_image", "image_from_caption")],
    )  # fmt: skip
    assert results["vocabulary"]["20"]["size"] >= 20
    assert "stand-in" in (tmp_path / "report.md").read_text().lower()
    # the marginal completion recalls images from captions (quick run when written: 3
    # of 10 at L = 2; 0 by Algorithm 7 as written, `--set completion=relax`)
    r = results["retrieved"]["pc-L2-n128"]["tiny-imagenet-pairs"]
    assert r["10"]["image_from_caption"]["count"] >= 1


@pytest.mark.parametrize(
    ("name", "setting", "value", "message"),
    [
        ("memory-partial", "fractions", "0.5,1.5", r"`fractions`.*\(0, 1\]"),
        ("memory-partial", "threshold", "0", "`threshold` must be > 0"),
        ("memory-partial", "images", "20000", "fewer than the 20000"),
        ("memory-partial", "dataset", "svhn", "`dataset` must be one of"),
        ("memory-partial", "side", "48", "must divide"),
        ("memory-hierarchical", "iterations", "6,1", "`iterations` must increase"),
        ("memory-hierarchical", "variances", "0", "variances"),
        ("memory-hetero", "pairs", "500", "may not exceed 200"),
        ("memory-hetero", "completion", "fast", "`completion` must be one of relax, marginal"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(tmp_path, name, setting, value, message):
    with pytest.raises(ValueError, match=message):
        run_experiment(name, out=tmp_path, quick=True, progress=False,
                       overrides={setting: value})  # fmt: skip
