"""`pcn bench scaling`: each device count in its own process, with examples per second
and efficiency against one device."""

from pcn_experiments.bench.scaling import measure


def test_scaling_bench_times_each_device_count_in_a_fresh_process():
    result = measure(steps=1, warmup=0, counts=(1, 2))
    rows = result["devices"]
    assert [rows[n]["devices"] for n in ("1", "2")] == [1, 2]
    for case in ("weak_il", "weak_bp", "strong_il", "strong_bp", "layer_il"):
        assert rows["1"]["efficiency"][case] == 1.0
        assert rows["2"]["examples_per_second"][case] > 0
