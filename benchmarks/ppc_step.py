"""What parallel / incremental PC costs per batch against inference learning, on the
reference MLP (784-128-128-10, batch 128, Adam, T = 20): IL (fused and unfused), PPC with
a weight step every T steps (IL's schedule), every 5 and every step (iPC). 15 rounds of 30
steps of every case in turns, in one process; medians, and ratios to unfused IL taken
within each round. Run: `python benchmarks/ppc_step.py`."""

import json
import statistics

from reference import median_ratio, runner, timed_rounds  # the shared setup (this folder)

from pcn import IL, PPC

T = 20

cases = {
    "il_fused": runner(IL(T, gamma=0.1), 1e-4),
    "il_unfused": runner(IL(T, gamma=0.1, fuse=False), 1e-4),
    f"ppc_k{T}": runner(PPC(T, weight_every=T, gamma=0.1), 1e-4),
    "ppc_k5": runner(PPC(T, weight_every=5, gamma=0.1), 1e-4),
    "ppc_k1": runner(PPC(T, weight_every=1, gamma=0.1), 1e-4),
}
times = timed_rounds(cases, warmup=10, rounds=15, calls=30)
print(json.dumps({name: round(statistics.median(t), 3) for name, t in times.items()}))
for name in cases:
    print(f"{name} / il_unfused: {median_ratio(times, name, 'il_unfused'):.2f}")
