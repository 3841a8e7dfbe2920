"""The cost of `TrainStep`'s finiteness checks on the reference MLP (784-128-128-10,
batch 128, Adam): BP and PC T = 20, each with `check_finite` on and off; 15 rounds of
50 steps of every case in turns, in one process, the median per-round ratio.
Run: `python benchmarks/check_cost.py`."""

import json
import statistics

from reference import median_ratio, runner, timed_rounds  # the shared setup (this folder)

from pcn.algorithms import BP, IL

cases = {
    "bp_on": runner(BP()),
    "bp_off": runner(BP(), check_finite=False),
    "pc_on": runner(IL(20, gamma=0.1)),
    "pc_off": runner(IL(20, gamma=0.1), check_finite=False),
}
times = timed_rounds(cases, warmup=20, rounds=15, calls=50)
print(json.dumps({name: round(statistics.median(t), 4) for name, t in times.items()}))
print(
    "bp on/off", round(median_ratio(times, "bp_on", "bp_off"), 3),
    "pc on/off", round(median_ratio(times, "pc_on", "pc_off"), 3),
)  # fmt: skip
