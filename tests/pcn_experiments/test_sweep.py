"""`pcn sweep`: an Optuna search of an experiment's settings that resumes from its SQLite
study and refuses a folder holding another search."""

import json
import sqlite3

import pytest

from pcn_experiments.run_folder import RunFolderError
from pcn_experiments.sweep import _budget, _Plan, _study, run_sweep


@pytest.mark.usefixtures("fashion_mnist_available")
def test_a_sweep_scores_validation_runs_and_continues_its_study(tmp_path):
    out = tmp_path / "sweep"
    kw = dict(out=out, quick=True, progress=False, overrides={"methods": "bp"})
    first = run_sweep("faster-pc-table1", trials=2, **kw)
    assert [t["state"] for t in first["trials"]] == ["COMPLETE", "COMPLETE"]
    # every trial ran on the validation split, never the test set
    trial = json.loads((out / "trials" / "0000" / "results.json").read_text())
    assert trial["score"] == "validation_accuracy"
    assert trial["config"]["validation"] == 0.2 and trial["config"]["methods"] == ["bp"]
    params = first["trials"][0]["params"]
    assert trial["config"]["bp_learning_rate"] == params["bp_learning_rate"]
    best = first["best"]
    assert best["value"] == max(t["value"] for t in first["trials"])
    assert f"--set bp_activation={best['params']['bp_activation']}" in best["command"]
    # the study is a real SQLite database; running again adds only the missing trial
    with sqlite3.connect(out / "study.db") as db:
        assert db.execute("select count(*) from trials").fetchone()[0] == 2
    again = run_sweep("faster-pc-table1", trials=3, **kw)
    assert [t["number"] for t in again["trials"]] == [0, 1, 2]
    assert again["trials"][:2] == first["trials"]
    # the resumed process draws afresh instead of replaying the first process's draws
    assert again["trials"][2]["params"] != first["trials"][0]["params"]
    report = (out / "report.md").read_text()
    assert "bp_learning_rate" in report and (out / "trials.png").stat().st_size > 0


def test_a_folder_holding_another_search_is_refused(tmp_path):
    # the settings check runs before any trial, so a search that cannot start costs nothing
    out = tmp_path / "sweep"
    kw = dict(out=out, quick=True, progress=False)
    run_sweep("faster-pc-table1", trials=1, overrides={"methods": "bp", "epochs": "1"}, **kw)
    with pytest.raises(RunFolderError, match="holds a search with other fixed"):
        run_sweep("faster-pc-table1", trials=1, overrides={"methods": "pc_fw"}, **kw)


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("digits-mlp", {}, "digits-mlp declares no hyperparameter search"),
        ("faster-pc-table1", {}, "--set methods=M"),
        ("faster-pc-table1", {"methods": "bp", "bp_activation": "relu"}, "searches this"),
    ],
)
def test_sweeps_that_cannot_run_are_refused_with_the_fix(tmp_path, name, overrides, message):
    with pytest.raises(ValueError, match=message):
        run_sweep(name, trials=1, out=tmp_path, quick=True, overrides=overrides)


def test_a_grid_search_in_several_processes_runs_each_point_once(tmp_path):
    # every process (worker, or a later resume) loads the study with its own sampler seed;
    # the grid's order must not depend on it, or workers run points twice and miss others
    grid = [1e-4, 3e-4, 1e-3, 3e-3]
    plan = _Plan("faster-pc-table1", str(tmp_path), 4, {}, {"lr": grid}, "grid", 0, True,
                 None, False)  # fmt: skip
    _study(plan, create=True)
    drawn = []
    for stream in range(len(grid)):  # one trial from each of four processes' samplers
        study = _study(plan, stream=stream)
        trial = study.ask()
        drawn.append(trial.suggest_categorical("lr", grid))
        if len(drawn) < len(grid):  # the last tell would stop the study (only optimize may)
            study.tell(trial, 0.0)
    assert sorted(drawn) == grid


def test_a_worker_starts_no_trial_past_the_budget_while_others_run(tmp_path):
    plan = _Plan("faster-pc-table1", str(tmp_path), 2, {}, {"lr": [1e-3, 1e-2]}, "grid", 0,
                 True, None, False)  # fmt: skip
    study = _study(plan, create=True)
    study.ask()  # a trial another worker is running
    # this worker's first trial completes the budget with the running one: it stops there
    study.optimize(lambda trial: trial.suggest_categorical("lr", [1e-3, 1e-2]),
                   callbacks=[_budget(plan)])  # fmt: skip
    assert len(study.trials) == 2
