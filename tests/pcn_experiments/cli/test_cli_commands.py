"""The `pcn` command: list, run (also data parallel), sweep, demo and bench, and its errors."""

import json
import subprocess
import sys

import pytest

from pcn_experiments.cli import force_host_devices, main


def test_list_names_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "digits-mlp",
        "fashion-mnist-mlp",
        "fashion-mnist-generative",
        "nongauss-classification",
        "zil-divergence",
        "zil-timing",
        "zil-training",
    ):
        assert name in out


def test_run_of_an_unknown_experiment_exits_2_naming_the_setting(capsys):
    assert main(["run", "no-such-thing", "--quick"]) == 2
    assert "Unknown `experiment` 'no-such-thing'" in capsys.readouterr().err


def test_demo_prints_accuracy_and_step_time_of_bp_and_pc(tmp_path, capsys):
    assert main(["demo", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "BP: test accuracy" in out and "PC: test accuracy" in out and "ms/step" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["test_accuracy"]) == {"bp", "pc"}
    assert (tmp_path / "energy.png").exists()


@pytest.mark.usefixtures("fashion_mnist_available")
def test_bench_train_step_json_has_the_documented_keys(capsys):
    assert main(["bench", "train-step", "--json", "--steps", "3", "--warmup", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("bp", "pc_t5", "pc_t20", "handwritten_t20"):
        assert result["ms_per_step"][key] > 0
    assert result["s_per_epoch"]["pc_t20"] > 0
    # each ratio is the quotient of the two times it names; how large the machine's
    # timings make it is not a claim a test can make on a shared machine
    ms = result["ms_per_step"]
    assert result["ratios"]["pc_t20_over_bp"] == pytest.approx(ms["pc_t20"] / ms["bp"])
    assert result["ratios"]["pc_t20_over_handwritten"] == pytest.approx(
        ms["pc_t20"] / ms["handwritten_t20"]
    )


@pytest.mark.usefixtures("fashion_mnist_available")
def test_bench_pcgraph_layered_json_reports_both_forms_and_their_ratio(capsys):
    assert main(["bench", "pcgraph-layered", "--json", "--steps", "2", "--warmup", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["ms_per_step"]) == {"masked_layered", "direct_layered"}
    ms = result["ms_per_step"]
    assert min(ms.values()) > 0
    assert result["ratio_masked_over_direct"] == pytest.approx(
        ms["masked_layered"] / ms["direct_layered"]
    )


def test_run_with_a_malformed_set_exits_2_with_the_expected_form(capsys):
    assert main(["run", "digits-mlp", "--quick", "--set", "epochs"]) == 2
    assert "`--set` takes NAME=VALUE" in capsys.readouterr().err


def test_sweep_of_an_experiment_without_a_search_exits_2_naming_those_with_one(tmp_path, capsys):
    assert main(["sweep", "digits-mlp", "--trials", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "digits-mlp declares no hyperparameter search" in err
    assert "faster-pc-table1" in err


def test_devices_split_a_cpu_host_unless_the_flags_already_say_how():
    environ = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    assert force_host_devices(4, environ)
    assert environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_force_host_platform_device_count=4"
    assert not force_host_devices(8, environ)  # the user's own count stands
    assert not force_host_devices(1, {})


def test_run_with_devices_trains_data_parallel_in_a_fresh_process(tmp_path):
    # a fresh process: XLA splits the host only before JAX starts a backend
    done = subprocess.run(
        [sys.executable, "-m", "pcn_experiments.cli", "run", "digits-mlp", "--quick",
         "--devices", "2", "--no-progress", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["devices"] == 2 and results["test_accuracy"]["pc"] > 0.5


def test_a_multi_process_run_missing_a_setting_exits_2_naming_it(capsys, monkeypatch):
    monkeypatch.delenv("PCN_NUM_PROCESSES", raising=False)
    monkeypatch.setenv("PCN_PROCESS_ID", "0")
    code = main(["run", "digits-mlp", "--quick", "--coordinator", "127.0.0.1:1234"])
    assert code == 2
    assert "missing --num-processes" in capsys.readouterr().err
