"""An interrupted experiment resumes from its checkpoints to the same result."""

import json
import shutil

import pytest

from pcn_experiments import run_experiment, trainer


def test_resumed_digits_run_matches_the_uninterrupted_run(tmp_path):
    full = run_experiment("digits-mlp", out=tmp_path / "full", quick=True, progress=False)
    # simulate a crash after epoch 2 of each method: later checkpoints never got written
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full" / "checkpoints", partial / "checkpoints")
    for method in ("bp", "pc"):
        for ckpt in (partial / "checkpoints" / method).glob("step-*.ckpt"):
            if int(ckpt.stem.split("-")[1]) > 1:
                ckpt.unlink()
    kept = {p: p.stat().st_mtime_ns for p in (partial / "checkpoints").rglob("*.ckpt")}
    resumed = run_experiment("digits-mlp", out=partial, quick=True, progress=False, resume=True)
    # epochs 0-1 were not trained again (their checkpoints were not rewritten) ...
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert len(list((partial / "checkpoints").rglob("*.ckpt"))) == 2 * 5
    # ... and the continued run ends exactly where the uninterrupted one did
    for method in ("bp", "pc"):
        assert resumed["curves"][method]["test_accuracy"] == full["curves"][method]["test_accuracy"]
        assert resumed["curves"][method]["train_loss"] == full["curves"][method]["train_loss"]
    assert (
        json.loads((partial / "results.json").read_text())["test_accuracy"] == full["test_accuracy"]
    )


class _Interrupted(Exception):
    """Stands in for a crash (or Ctrl-C) right after a run's first checkpoint."""


def _without_timing(value):
    """`value` without the keys that measure wall time (they differ between runs)."""
    if isinstance(value, dict):
        return {
            k: _without_timing(v)
            for k, v in value.items()
            if not any(t in k for t in ("seconds", "ms_per_step", "wall_time"))
        }
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def _interrupted_then_resumed(name: str, overrides: dict[str, str], tmp_path, monkeypatch):
    """Results of an uninterrupted quick run and of one interrupted after the first
    checkpoint that `trainer.fit` writes, then resumed from it."""
    full = run_experiment(name, out=tmp_path / "full", quick=True, progress=False,
                          overrides=overrides)  # fmt: skip
    save = trainer.save_checkpoint

    def save_then_crash(path, tree, **kwargs):
        written = save(path, tree, **kwargs)
        if written.name.startswith("step-"):
            raise _Interrupted(str(written))
        return written

    out = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(trainer, "save_checkpoint", save_then_crash)
        with pytest.raises(_Interrupted):
            run_experiment(name, out=out, quick=True, progress=False, overrides=overrides)
    (first,) = (out / "checkpoints").rglob("step-*.ckpt")
    written = first.stat().st_mtime_ns
    resumed = run_experiment(name, out=out, quick=True, progress=False, resume=True,
                             overrides=overrides)  # fmt: skip
    assert first.stat().st_mtime_ns == written  # its epoch was not trained again
    return _without_timing(full), _without_timing(resumed)


@pytest.mark.usefixtures("tiny_shakespeare_available")
def test_interrupted_transformer_run_resumes_to_the_same_results(tmp_path, monkeypatch):
    overrides = {"train_sequences": "64", "dev_sequences": "32"}
    full, resumed = _interrupted_then_resumed(
        "nongauss-transformer", overrides, tmp_path, monkeypatch
    )
    assert resumed == full


def test_interrupted_topologies_run_resumes_to_the_same_results(tmp_path, monkeypatch):
    overrides = {"train": "256", "test": "100", "gen_train": "128", "query_images": "4",
                 "query_max_steps": "20", "classify_max_steps": "50"}  # fmt: skip
    full, resumed = _interrupted_then_resumed(
        "pcgraph-topologies", overrides, tmp_path, monkeypatch
    )
    assert resumed == full


def test_interrupted_memory_storage_resumes_to_the_same_results(tmp_path, monkeypatch):
    overrides = {"widths": "32", "images": "8", "fractions": "0.5"}
    full, resumed = _interrupted_then_resumed("memory-partial", overrides, tmp_path, monkeypatch)
    for r in (full, resumed):
        r.pop("ms_per_retrieval")
    assert resumed == full
