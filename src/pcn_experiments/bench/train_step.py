"""`pcn bench train-step`: median ms per training step on the reference configuration.

MLP 784-128-128-10, tanh hidden, linear output, squared-error energy, batch 128, float32,
SGD 0.1 per example on the values, Adam 1e-3 on the weights: BP, PC with T = 5 and
T = 20 (and T = 20 without the fused relaxation, and without recording the energy trace,
as PCX's step does not), a hand-written JAX PC step (T = 20)
for reference, timed in turns, and seconds per Fashion-MNIST epoch at T = 20.
`--against-pcx` also runs the peer library PCX on the same configuration
(`shared/bench/run_pcx_anchor.sh`) in the same invocation and prints the ratios.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

from pcn import data as pcn_data
from pcn.algorithms import BP, IL, make_train_step
from pcn.models import mlp

from . import handwritten
from .timing import interleaved_medians

SIZES = (784, 128, 128, 10)
BATCH = 128
GAMMA = 0.1
LEARNING_RATE = 1e-3


def _batches(ds: pcn_data.Dataset, seed: int) -> list[tuple[jax.Array, jax.Array]]:
    return [
        (jnp.asarray(xb), jnp.asarray(pcn_data.one_hot(yb, 10)))
        for xb, yb in pcn_data.batches(ds.x_train, ds.y_train, BATCH, key_or_seed=seed)
    ]


def _on_batches(run_one, batches):
    return lambda i: run_one(*batches[i % len(batches)])


def _library_runner(algorithm, seed: int, *, donate: bool = False, check_finite: bool = True):
    graph = mlp(SIZES, activation="tanh", key=jax.random.key(seed))
    step = make_train_step(
        graph, algorithm, optax.adam(LEARNING_RATE), donate=donate, check_finite=check_finite
    )
    holder = {"state": step.init(graph)}

    def run_one(xb, yb):
        holder["state"], info = step(holder["state"], {"x": xb, "y": yb})
        return holder["state"]

    return run_one


def _handwritten_runner(steps: int, seed: int):
    optimizer = optax.adam(LEARNING_RATE)
    params = handwritten.init_params(jax.random.key(seed), SIZES)
    step = handwritten.make_step(steps, GAMMA, optimizer)
    holder = {"state": (params, optimizer.init(params))}

    def run_one(xb, yb):
        holder["state"] = step(*holder["state"], xb, yb)
        return holder["state"]

    return run_one


def measure(*, steps: int = 300, warmup: int = 20, seed: int = 0, data_dir=None) -> dict:
    """Run every measurement of this benchmark in one process; returns the figures."""
    ds = pcn_data.load("fashion-mnist", data_dir=data_dir)
    batches = _batches(ds, seed)
    runners = {
        "bp": _library_runner(BP(), seed),
        "pc_t5": _library_runner(IL(5, gamma=GAMMA), seed),
        "pc_t20": _library_runner(IL(20, gamma=GAMMA), seed),
        "pc_t20_unfused": _library_runner(IL(20, gamma=GAMMA, fuse=False), seed),
        "pc_t20_no_trace": _library_runner(IL(20, gamma=GAMMA, record_energy=False), seed),
        "handwritten_t20": _handwritten_runner(20, seed),
        # the cost of the finiteness checks (data, loss, energies) and of not donating
        "bp_unchecked": _library_runner(BP(), seed, check_finite=False),
        "pc_t20_unchecked": _library_runner(IL(20, gamma=GAMMA), seed, check_finite=False),
        "pc_t20_donated": _library_runner(IL(20, gamma=GAMMA), seed, donate=True),
    }
    ms = interleaved_medians(
        {name: _on_batches(run, batches) for name, run in runners.items()},
        warmup=warmup,
        steps=steps,
    )
    run_one = _library_runner(IL(20, gamma=GAMMA), seed)
    jax.block_until_ready(run_one(*batches[0]))  # compile outside the timed epoch
    start = time.perf_counter()
    for xb, yb in batches:
        out = run_one(xb, yb)
    jax.block_until_ready(out)
    epoch_s = time.perf_counter() - start
    return {
        "config": {
            "sizes": SIZES,
            "batch": BATCH,
            "gamma": GAMMA,
            "learning_rate": LEARNING_RATE,
            "timed_steps": steps,
            "warmup_steps": warmup,
        },
        "ms_per_step": ms,
        "s_per_epoch": {"pc_t20": epoch_s},
        "ratios": {
            "pc_t20_over_bp": ms["pc_t20"] / ms["bp"],
            "pc_t5_over_bp": ms["pc_t5"] / ms["bp"],
            "pc_t20_over_handwritten": ms["pc_t20"] / ms["handwritten_t20"],
            "pc_t20_unfused_over_bp": ms["pc_t20_unfused"] / ms["bp"],
            "pc_t20_no_trace_over_bp": ms["pc_t20_no_trace"] / ms["bp"],
            "bp_checked_over_unchecked": ms["bp"] / ms["bp_unchecked"],
            "pc_t20_checked_over_unchecked": ms["pc_t20"] / ms["pc_t20_unchecked"],
            "pc_t20_kept_over_donated": ms["pc_t20"] / ms["pc_t20_donated"],
        },
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
        },
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def find_pcx_anchor() -> Path:
    """`run_pcx_anchor.sh` from `$PCN_PCX_ANCHOR` or a `shared/bench` folder beside the repo."""
    if "PCN_PCX_ANCHOR" in os.environ:
        return Path(os.environ["PCN_PCX_ANCHOR"])
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        candidate = parent.parent / "shared" / "bench" / "run_pcx_anchor.sh"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "Could not find shared/bench/run_pcx_anchor.sh beside the repository; set "
        "`PCN_PCX_ANCHOR` to its path."
    )


def measure_pcx(*, steps: int, warmup: int) -> dict:
    """Run the PCX anchor script and return its medians (ms) by configuration."""
    script = find_pcx_anchor()
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pcn" / "pcx-anchor"
    env = {**os.environ, "STEPS": str(steps), "WARMUP": str(warmup)}
    env.setdefault("ANCHOR_ROOT", str(root))
    proc = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    figures = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            key = "bp" if rec["lib"] == "jax-bp" else f"pc_t{rec['T']}"
            figures[key] = rec["median_ms"]
    return figures


def run(*, as_json: bool, against_pcx: bool, steps: int, warmup: int, data_dir=None) -> dict:
    """Measure, print (table or JSON) and return the figures."""
    result = measure(steps=steps, warmup=warmup, data_dir=data_dir)
    if against_pcx:
        pcx = measure_pcx(steps=steps, warmup=warmup)
        result["pcx_ms_per_step"] = pcx
        result["ratios"]["pc_t20_over_pcx_t20"] = result["ms_per_step"]["pc_t20"] / pcx["pc_t20"]
        # PCX's step returns only the final energy: like for like is the step without trace
        result["ratios"]["pc_t20_no_trace_over_pcx_t20"] = (
            result["ms_per_step"]["pc_t20_no_trace"] / pcx["pc_t20"]
        )
        result["ratios"]["pc_t5_over_pcx_t5"] = result["ms_per_step"]["pc_t5"] / pcx["pc_t5"]
        result["ratios"]["pcx_t20_over_pcx_bp"] = pcx["pc_t20"] / pcx["bp"]
    if as_json:
        print(json.dumps(result))
        return result
    ms = result["ms_per_step"]
    print(f"reference MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, {result['machine']}")
    print(f"{'measurement':<28}{'pcn':>10}" + (f"{'PCX':>10}" if against_pcx else ""))
    for key in ("bp", "pc_t5", "pc_t20"):
        extra = f"{result['pcx_ms_per_step'].get(key, float('nan')):>10.3f}" if against_pcx else ""
        print(f"{key + ' ms/step':<28}{ms[key]:>10.3f}{extra}")
    print(f"{'pc_t20_unfused ms/step':<28}{ms['pc_t20_unfused']:>10.3f}")
    print(f"{'pc_t20_no_trace ms/step':<28}{ms['pc_t20_no_trace']:>10.3f}")
    print(f"{'handwritten_t20 ms/step':<28}{ms['handwritten_t20']:>10.3f}")
    print(f"{'pc_t20 s/epoch':<28}{result['s_per_epoch']['pc_t20']:>10.3f}")
    for name, value in result["ratios"].items():
        print(f"{name:<28}{value:>10.3f}")
    return result
