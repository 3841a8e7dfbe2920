"""A run's record is the run: resume only the same run, one writer per output folder,
no other run's checkpoints picked up, no leftovers of interrupted writes."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from pcn.files import atomic_write
from pcn_experiments import run_experiment
from pcn_experiments.cli import main
from pcn_experiments.run_folder import LOCK_FILE, RunFolderError, locked

QUICK = dict(quick=True, progress=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished quick digits run (seed 0): its folder and results."""
    out = tmp_path_factory.mktemp("finished")
    return out, run_experiment("digits-mlp", out=out, **QUICK)


def _copy(finished, tmp_path, *, with_record: bool = True):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    if not with_record:
        (out / "run.json").unlink()
    return out


def test_results_and_checkpoints_record_the_run_with_its_full_config(finished):
    out, results = finished
    run = results["run"]
    assert run["experiment"] == "digits-mlp" and run["quick"] is True and run["seed"] == 0
    assert run["config"]["epochs"] == results["config"]["epochs"]
    assert {"pcn_version", "overrides", "data_dir"} <= set(run)
    saved = json.loads((out / "run.json").read_text())
    # run.json is written before the run: without what the run finds (config, data hash)
    assert {k: v for k, v in run.items() if k not in ("config", "data_sha256")} == saved


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(seed=1), "seed: 0 there, 1 now"),
        (dict(overrides={"learning_rate": "0.05"}), "overrides"),
        (dict(quick=False), "quick: True there, False now"),
    ],
)
def test_resume_refuses_a_run_of_other_settings_naming_each_difference(
    finished, tmp_path, change, named
):
    out = _copy(finished, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.ckpt")}
    settings = {**QUICK, **change}
    with pytest.raises(RunFolderError, match="belong to another run") as error:
        run_experiment("digits-mlp", out=out, resume=True, **settings)
    assert named in str(error.value)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.ckpt")} == before  # untouched


def test_checkpoints_alone_still_carry_their_run(finished, tmp_path):
    # without run.json (checkpoints copied by hand) the trainer checks each checkpoint
    out = _copy(finished, tmp_path, with_record=False)
    with pytest.raises(RunFolderError, match="seed: 0 there, 1 now"):
        run_experiment("digits-mlp", out=out, resume=True, seed=1, **QUICK)


def test_a_new_run_refuses_a_folder_holding_another_runs_checkpoints(finished, tmp_path):
    out = _copy(finished, tmp_path)
    with pytest.raises(RunFolderError, match="--resume.*--overwrite"):
        run_experiment("digits-mlp", out=out, seed=1, **QUICK)
    results = run_experiment("digits-mlp", out=out, seed=1, overwrite=True, **QUICK)
    assert results["run"]["seed"] == 1
    # the old run's checkpoints are gone: resuming now continues seed 1, not seed 0
    assert (
        run_experiment("digits-mlp", out=out, seed=1, resume=True, **QUICK)["test_accuracy"]
        == (results["test_accuracy"])
    )


def test_a_second_writer_to_the_same_folder_fails_at_once_naming_the_holder(tmp_path):
    with locked(tmp_path):
        with pytest.raises(RunFolderError, match=f"PID {os.getpid()}"):
            run_experiment("digits-mlp", out=tmp_path, **QUICK)
    assert not (tmp_path / LOCK_FILE).exists()  # released at exit


def test_the_lock_of_a_process_that_ended_is_taken_over(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(ended.stdout), "host": os.uname()[1]}))
    with locked(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_resume_of_an_experiment_without_checkpoints_is_refused(tmp_path):
    with pytest.raises(ValueError, match="zil-timing trains no model"):
        run_experiment("zil-timing", out=tmp_path, resume=True, **QUICK)


def test_a_corrupt_latest_checkpoint_is_skipped_with_a_warning(finished, tmp_path):
    out = _copy(finished, tmp_path)
    latest = max((out / "checkpoints" / "pc").glob("step-*.ckpt"))
    latest.write_bytes(latest.read_bytes()[:-10])
    with pytest.warns(RuntimeWarning, match=f"skipped unreadable checkpoints {latest.name}"):
        resumed = run_experiment("digits-mlp", out=out, resume=True, **QUICK)
    assert resumed["test_accuracy"] == finished[1]["test_accuracy"]


def test_leftover_temporary_files_of_ended_writers_are_removed_on_the_next_write(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f".step-000003.ckpt.{int(ended.stdout)}.k2j4h1x9.tmp"
    live = tmp_path / f".other.json.{os.getpid()}.a1b2c3d4.tmp"
    dead.write_bytes(b"x" * 100)
    live.write_bytes(b"y")
    atomic_write(tmp_path / "results.json", b"{}")
    assert not dead.exists() and live.exists()


@pytest.mark.parametrize(
    "argv, named",
    [
        (["run", "digits-mlp", "--seed", "-1"], "--seed"),
        (["run", "digits-mlp", "--out", ""], "--out"),
        (["bench", "train-step", "--steps", "0"], "--steps"),
    ],
)
def test_invalid_options_are_refused_naming_the_option(argv, named, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err


def test_cli_errors_a_user_can_cause_are_one_line(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for argv, named in (
        (["run", "digits-mlp", "--quick", "--out", str(a_file)], "--out"),
        (["run", "digits-mlp", "--quick", "--data-dir", str(tmp_path / "typo")], "--data-dir"),
        (["run", "zil-timing", "--quick", "--resume", "--out", str(tmp_path / "z")], "--resume"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("pcn: error: ") and err.count("\n") == 1 and named in err, err
    with pytest.raises(ValueError, match="--data-dir"):
        main(["run", "digits-mlp", "--data-dir", str(tmp_path / "typo"), "--debug"])


def test_a_setting_the_experiment_never_reads_is_refused(tmp_path, monkeypatch):
    from pcn_experiments import digits_mlp

    def ignores_output(ctx):  # an experiment that lists `output` but never uses it
        cfg = digits_mlp.choose_config(ctx, digits_mlp.FULL, digits_mlp.QUICK)
        return digits_mlp.Report({"epochs": cfg.epochs}, "# x\n")

    from pcn_experiments.registry import EXPERIMENTS, Experiment

    monkeypatch.setitem(EXPERIMENTS, "ignoring", Experiment("ignoring", "", ignores_output))
    results = run_experiment("ignoring", out=tmp_path / "a", **QUICK)
    assert "output" in results["unread_settings"] and "epochs" not in results["unread_settings"]
    with pytest.raises(ValueError, match="--set output: ignoring never reads this setting"):
        run_experiment("ignoring", out=tmp_path / "b", overrides={"output": "categorical"}, **QUICK)


def test_results_record_the_data_source_and_resume_refuses_other_data(
    finished, tmp_path, monkeypatch
):
    out, results = finished
    assert "scikit-learn" in results["data_sources"]["digits"]
    assert len(results["run"]["data_sha256"]["digits"]) == 64
    copy = _copy(finished, tmp_path, with_record=False)
    import pcn.data

    load = pcn.data.load

    def other_copy(name, **kwargs):  # the same dataset name, other content
        ds = load(name, **kwargs)
        return dataclasses.replace(ds, x_train=ds.x_train[::-1].copy())

    monkeypatch.setattr(pcn.data, "load", other_copy)
    with pytest.raises(RunFolderError, match="data_sha256"):
        run_experiment("digits-mlp", out=copy, resume=True, **QUICK)


@pytest.mark.usefixtures("fashion_mnist_available")
def test_a_data_dir_that_does_not_hold_the_dataset_is_an_error_not_a_fallback(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="--data-dir .* does not hold fashion-mnist"):
        run_experiment(
            "fashion-mnist-mlp", out=tmp_path / "out", data_dir=str(tmp_path / "empty"), **QUICK
        )
