"""An interrupted experiment resumes from its checkpoints to the same result."""

import json
import shutil

from pcn_experiments import run_experiment


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
