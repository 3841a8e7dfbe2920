"""The `pcn` command: `pcn demo`, `pcn list`, `pcn run NAME`, `pcn sweep NAME`,
`pcn bench train-step`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from . import run_experiment

    results = run_experiment(
        "digits-mlp",
        out=args.out,
        quick=args.quick,
        seed=args.seed,
        progress=not args.no_progress,
        overwrite=True,  # the demo replaces its own earlier output
    )
    acc, ms = results["test_accuracy"], results["ms_per_step"]
    print("digits MLP, same initial weights and optimiser:")
    for method in ("bp", "pc"):
        print(
            f"  {method.upper()}: test accuracy {100 * acc[method]:.2f}%, {ms[method]:.3f} ms/step"
        )
    print(f"results, report and figures (energy.png) in {args.out}/")
    return 0


def _list(args: argparse.Namespace) -> int:
    from .registry import load_all

    for name, exp in sorted(load_all().items()):
        print(f"{name:<28}{exp.summary}")
    return 0


def force_host_devices(count: int, environ: MutableMapping[str, str]) -> bool:
    """Ask XLA (before JAX starts) to split a CPU host into `count` devices, unless the
    flags already say how many; True if the flag was added. Other platforms ignore it."""
    flags = environ.get("XLA_FLAGS", "")
    if count <= 1 or "xla_force_host_platform_device_count" in flags:
        return False
    environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    return True


def distributed_settings(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[str, int, int] | None:
    """(coordinator, number of processes, this process's id) from the options, each
    defaulting to PCN_COORDINATOR / PCN_NUM_PROCESSES / PCN_PROCESS_ID; None if none is
    given.

    Raises:
        ValueError: some but not all three given, or a count that is not an integer.
    """
    coordinator = args.coordinator or environ.get("PCN_COORDINATOR") or None
    count = (
        args.num_processes if args.num_processes is not None else environ.get("PCN_NUM_PROCESSES")
    )
    rank = args.process_id if args.process_id is not None else environ.get("PCN_PROCESS_ID")
    given = {"--coordinator": coordinator, "--num-processes": count, "--process-id": rank}
    missing = [k for k, v in given.items() if v is None or v == ""]
    if len(missing) == 3:
        return None
    if missing or coordinator is None or count is None or rank is None:
        raise ValueError(
            f"A multi-process run needs {', '.join(given)}; missing {', '.join(missing)} "
            "(or PCN_COORDINATOR, PCN_NUM_PROCESSES, PCN_PROCESS_ID in the environment)."
        )
    try:
        return coordinator, int(count), int(rank)
    except ValueError:
        raise ValueError(
            f"--num-processes and --process-id must be integers, got {count!r} and {rank!r}."
        ) from None


def _run(args: argparse.Namespace) -> int:
    distributed = distributed_settings(args, os.environ)
    # XLA reads the flag when JAX first starts a backend, which nothing has done yet
    force_host_devices(args.devices, os.environ)
    from pcn.parallel import data_parallel, initialize_distributed, use

    from . import run_experiment

    out = args.out or f"runs/{args.name}"
    if distributed is not None:
        # joined before anything starts a backend: then every process's devices are seen
        initialize_distributed(*distributed)
        parallel = data_parallel()
        if distributed[2] > 0:  # process 0 writes the record; the others, their checkpoints
            out = f"{out}/process-{distributed[2]}"
    else:
        parallel = data_parallel(args.devices) if args.devices > 1 else None
    with use(parallel):
        results = run_experiment(
            args.name,
            out=out,
            quick=args.quick,
            seed=args.seed,
            data_dir=args.data_dir,
            progress=not args.no_progress,
            resume=args.resume,
            overrides=dict(_parse_set(item) for item in args.set),
            overwrite=args.overwrite,
        )
    print(f"{args.name}: done in {results['wall_time_s']} s; results.json and report.md in {out}/")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    force_host_devices(args.devices, os.environ)  # before JAX starts (spawned jobs inherit it)
    from .sweep import describe, run_sweep

    out = args.out or f"runs/sweep-{args.name}"
    summary = run_sweep(
        args.name,
        trials=args.trials,
        out=out,
        jobs=args.jobs,
        sampler=args.sampler,
        seed=args.seed,
        quick=args.quick,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        overrides=dict(_parse_set(item) for item in args.set),
        devices=args.devices,
    )
    print(f"{args.name}: {describe(summary)}")
    print(f"every trial in {out}/report.md; the study in {out}/study.db")
    return 0


def _parse_set(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ValueError(f"`--set` takes NAME=VALUE (e.g. --set learning_rate=1e-4), got {item!r}.")
    return name.strip(), value.strip()


def _report(args: argparse.Namespace) -> int:
    from .report import run as report

    report(Path(args.results), Path(args.out) if args.out else None, as_json=args.json)
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.bench == "scaling":
        from .bench import scaling

        scaling.run(as_json=args.json, steps=args.steps, warmup=args.warmup)
        return 0
    if args.bench == "pcgraph-layered":
        from .bench import pcgraph_layered

        pcgraph_layered.run(
            as_json=args.json, steps=args.steps, warmup=args.warmup, data_dir=args.data_dir
        )
        return 0
    from .bench import train_step

    train_step.run(
        as_json=args.json,
        against_pcx=args.against_pcx,
        steps=args.steps,
        warmup=args.warmup,
        data_dir=args.data_dir,
    )
    return 0


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum` (argparse names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    return parse


def _folder(text: str) -> str:
    """An argparse type: a non-empty folder path."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty path")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `pcn` command."""
    parser = argparse.ArgumentParser(prog="pcn", description="Predictive coding networks in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train a PC and a BP MLP on digits (no download)")
    demo.add_argument("--out", type=_folder, default="runs/demo")
    demo.add_argument("--seed", type=_count(0), default=0)
    demo.add_argument("--debug", action="store_true", help="show the traceback of an error")
    demo.add_argument("--quick", action="store_true")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(func=_demo)

    lister = sub.add_parser("list", help="list the experiments")
    lister.set_defaults(func=_list)

    run = sub.add_parser("run", help="run one experiment")
    run.add_argument("name")
    run.add_argument("--quick", action="store_true", help="reduced run (< 2 min on 2 cores)")
    run.add_argument("--out", type=_folder, default=None, help="output folder (default runs/NAME)")
    run.add_argument("--seed", type=_count(0), default=0)
    run.add_argument(
        "--data-dir", type=_folder, default=None, help="folder holding the dataset files"
    )
    run.add_argument("--no-progress", action="store_true")
    run.add_argument(
        "--resume", action="store_true", help="continue from the checkpoints in the output folder"
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the checkpoints of an earlier run in the output folder",
    )
    run.add_argument("--debug", action="store_true", help="show the traceback of an error")
    run.add_argument(
        "--devices",
        type=_count(1),
        default=1,
        help="train data parallel over this many devices (a CPU host is split into that many)",
    )
    run.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help="multi-process run (jax.distributed): process 0's address (or PCN_COORDINATOR)",
    )
    run.add_argument("--num-processes", type=_count(1), default=None, help="(or PCN_NUM_PROCESSES)")
    run.add_argument(
        "--process-id", type=_count(0), default=None, help="0 .. N-1 (or PCN_PROCESS_ID)"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a setting of the experiment's config (repeatable), e.g. epochs=10",
    )
    run.set_defaults(func=_run)

    sweep = sub.add_parser(
        "sweep", help="search an experiment's hyperparameters (Optuna, resumable)"
    )
    sweep.add_argument("name")
    sweep.add_argument("--trials", type=_count(1), required=True, help="trials in all")
    sweep.add_argument("--jobs", type=_count(1), default=1, help="trials run at once")
    sweep.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    sweep.add_argument("--quick", action="store_true", help="each trial a --quick run")
    sweep.add_argument(
        "--devices", type=_count(1), default=1, help="each trial data parallel over N devices"
    )
    sweep.add_argument(
        "--out", type=_folder, default=None, help="output folder (default runs/sweep-NAME)"
    )
    sweep.add_argument("--seed", type=_count(0), default=0)
    sweep.add_argument("--data-dir", type=_folder, default=None)
    sweep.add_argument("--no-progress", action="store_true")
    sweep.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sweep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting every trial runs with (repeatable), e.g. methods=pc_avg",
    )
    sweep.set_defaults(func=_sweep)

    gallery = sub.add_parser(
        "report", help="the committed results beside the papers' numbers (Markdown)"
    )
    gallery.add_argument("--results", default="results", help="folder of committed runs")
    gallery.add_argument("--out", default=None, help="write here instead of printing")
    gallery.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    gallery.add_argument("--debug", action="store_true", help="show the traceback of an error")
    gallery.set_defaults(func=_report)

    bench = sub.add_parser("bench", help="speed measurements")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    step = bench_sub.add_parser("train-step", help="ms per training step, BP vs PC")
    step.add_argument("--json", action="store_true", help="print one JSON object")
    step.add_argument("--against-pcx", action="store_true", help="also time PCX, same config")
    step.add_argument("--steps", type=_count(1), default=300)
    step.add_argument("--warmup", type=_count(0), default=20)
    step.add_argument("--data-dir", type=_folder, default=None)
    step.add_argument("--debug", action="store_true", help="show the traceback of an error")
    step.set_defaults(func=_bench)
    layered = bench_sub.add_parser(
        "pcgraph-layered", help="masked PC graph of a layered topology vs the layered model"
    )
    layered.add_argument("--json", action="store_true", help="print one JSON object")
    layered.add_argument("--steps", type=_count(1), default=100)
    layered.add_argument("--warmup", type=_count(0), default=10)
    layered.add_argument("--data-dir", type=_folder, default=None)
    layered.add_argument("--debug", action="store_true", help="show the traceback of an error")
    layered.set_defaults(func=_bench)
    scaling = bench_sub.add_parser(
        "scaling", help="data- and layer-parallel steps per second on 1, 2, 4, 8 devices"
    )
    scaling.add_argument("--json", action="store_true", help="print one JSON object")
    scaling.add_argument("--steps", type=_count(1), default=50)
    scaling.add_argument("--warmup", type=_count(0), default=5)
    scaling.add_argument("--debug", action="store_true", help="show the traceback of an error")
    scaling.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pcn` command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, FloatingPointError) as err:
        # errors a user can cause (settings, data, files, a diverging run): one line;
        # `--debug` shows the traceback
        if getattr(args, "debug", False):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"pcn: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
