"""`pcn sweep NAME --trials N`: a hyperparameter search of an experiment, on Optuna.

Every trial is one run of the experiment (`run_experiment`) in `OUT/trials/<number>/`
with the search's fixed settings (a validation split: a search never sees test
accuracy), the user's `--set`, and one choice for each setting the experiment's
`Search.space` names. The study lives in `OUT/study.db` (SQLite), so a search stopped
by a crash or Ctrl-C continues when the same command runs again: finished trials are
kept, and a trial cut short is failed after its heartbeat stops and retried from its
own checkpoints. `--jobs J` runs trials in J processes sharing that database. A trial
whose best evaluation so far falls below the median of earlier trials' at the same step
is pruned (Optuna's `MedianPruner`, from the fifth trial on and never before its
`Search.prune_after`-th evaluation); one that diverges is pruned too, with the reason kept.

`OUT/results.json`, `OUT/report.md` and `OUT/trials.png` hold every trial, the best
configuration and the `pcn run` command that trains with it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import pyplot as plt

import pcn
from pcn._validation import check_at_least, check_choice

from .output import markdown_table, save_figure, to_jsonable, write_json, write_text
from .registry import get_experiment, load_all, run_experiment
from .run_folder import RunFolderError, locked

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "grid")
STUDY_FILE = "study.db"
HEARTBEAT_S = 10  # a running trial's heartbeat; one silent for GRACE_S is failed, then retried
GRACE_S = 30
TPE_STARTUP = 10  # Optuna's default: random draws before TPE models the trials


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What every worker process needs to run trials (plain data: it crosses processes)."""

    name: str
    folder: str
    trials: int
    fixed: dict[str, str]
    space: dict[str, list[Any]]
    sampler: str
    seed: int
    quick: bool
    data_dir: str | None
    progress: bool
    devices: int = 1  # data-parallel devices of every trial (`pcn.parallel.use`)


def run_sweep(
    name: str,
    *,
    trials: int,
    out: str | Path | None = None,
    jobs: int = 1,
    sampler: str = "tpe",
    seed: int = 0,
    quick: bool = False,
    data_dir: str | None = None,
    progress: bool = True,
    overrides: Mapping[str, str] | None = None,
    devices: int = 1,
) -> dict[str, Any]:
    """Search experiment `name`'s settings with `trials` runs in all (those already in
    `out`, default `runs/sweep-NAME`, count), `jobs` at a time; write and return the
    summary.

    Raises:
        ValueError: an experiment without a search, a `--set` of a searched setting, or
            a count below 1.
        RunFolderError: `out` holds a search with other settings.
    """
    exp = get_experiment(name)
    if exp.search is None:
        searchable = sorted(n for n, e in load_all().items() if e.search is not None)
        raise ValueError(
            f"{name} declares no hyperparameter search; `pcn sweep` takes one of "
            f"{', '.join(searchable)}."
        )
    check_at_least("trials", trials, 1)
    check_at_least("jobs", jobs, 1)
    check_choice("sampler", sampler, SAMPLERS)
    user = dict(sorted((overrides or {}).items()))
    fixed = {**exp.search.fixed, **user}
    space = {k: list(v) for k, v in exp.search.space(fixed).items()}
    searched = sorted(set(space) & set(user))
    if searched:
        raise ValueError(
            f"--set {', '.join(searched)}: the sweep searches "
            f"{'this setting' if len(searched) == 1 else 'these settings'}; drop the --set."
        )
    folder = Path(out) if out is not None else Path("runs") / f"sweep-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    plan = _Plan(
        name, str(folder), trials, fixed, space, sampler, seed, quick, data_dir, progress, devices
    )
    identity = to_jsonable(
        {
            "experiment": name,
            "fixed": fixed,
            "space": space,
            "sampler": sampler,
            "seed": seed,
            "quick": quick,
            "data_dir": data_dir,
            "pcn_version": pcn.__version__,
        }
    )
    with locked(folder):
        study = _study(plan, create=True)
        saved = study.user_attrs.get("identity")
        if saved is None:
            study.set_user_attr("identity", identity)
        elif saved != identity:
            changed = sorted(k for k in identity if saved.get(k) != identity.get(k))
            raise RunFolderError(
                f"--out {folder} holds a search with other {', '.join(changed)}; pass "
                "another --out, or the same settings to continue it."
            )
        if jobs == 1:
            _work(plan)
        else:
            context = multiprocessing.get_context("spawn")  # JAX does not survive a fork
            with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
                for done in [pool.submit(_work, plan, w) for w in range(jobs)]:
                    done.result()
        summary = _summary(_study(plan), plan, exp.search.note, user)
        write_json(folder / "results.json", summary)
        write_text(folder / "report.md", _markdown(summary))
        save_figure(_figure(summary), folder / "trials.png")
    return summary


def _storage(plan: _Plan) -> optuna.storages.RDBStorage:
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback as retry

    path = (Path(plan.folder) / STUDY_FILE).resolve()
    with warnings.catch_warnings():  # the heartbeat is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            f"sqlite:///{path}",
            engine_kwargs={"connect_args": {"timeout": 60}},  # processes wait for the lock
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=retry(max_retry=2),
        )


def _study(plan: _Plan, create: bool = False, stream: int = 0) -> optuna.Study:
    """The study, its sampler seeded by `plan.seed` and `stream` (a process that joins
    or resumes a search must not replay the draws of the one before)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = plan.seed + 7919 * stream
    if plan.sampler == "grid":
        # every process must shuffle the grid alike: trial n runs grid point n, so
        # workers with their own orders would run some points twice and others never
        sampler: optuna.samplers.BaseSampler = optuna.samplers.GridSampler(
            plan.space, seed=plan.seed
        )
    elif plan.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(n_startup_trials=TPE_STARTUP, seed=seed)
    exp = get_experiment(plan.name)
    warmup = exp.search.prune_after if exp.search is not None else 0
    # steps are evaluation counts (1, 2, ...): no trial is pruned before `warmup` of them
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=warmup)
    if create:
        return optuna.create_study(
            study_name=plan.name, storage=_storage(plan), sampler=sampler, pruner=pruner,
            direction="maximize", load_if_exists=True,
        )  # fmt: skip
    return optuna.load_study(
        study_name=plan.name, storage=_storage(plan), sampler=sampler, pruner=pruner
    )


def _work(plan: _Plan, worker: int = 0) -> None:
    """Run trials until the study holds `plan.trials` finished (or pruned) ones, each
    data parallel over `plan.devices`."""
    import optuna

    from pcn.parallel import data_parallel, use

    with use(data_parallel(plan.devices) if plan.devices > 1 else None):
        _optimize(plan, worker, optuna)


def _optimize(plan: _Plan, worker: int, optuna: Any) -> None:
    states = _finished()  # the trial states that use up the budget
    existing = _study(plan).get_trials(deepcopy=False)
    if len([t for t in existing if t.state in states]) >= plan.trials:
        return
    study = _study(plan, stream=len(existing) * 64 + worker)
    study.optimize(lambda trial: _objective(trial, plan), callbacks=[_budget(plan), _announce])


def _budget(plan: _Plan) -> Any:
    """The callback that ends a worker's search once `plan.trials` are finished or
    running: a worker that finishes one while the last of the budget runs elsewhere must
    not start another (on a grid it would draw a point already running and spend a whole
    run on it)."""
    import optuna

    running = optuna.trial.TrialState.RUNNING
    return optuna.study.MaxTrialsCallback(plan.trials, states=(*_finished(), running))


def _objective(trial: optuna.Trial, plan: _Plan) -> float:
    """One run of the experiment with the trial's choices; its search objective."""
    import optuna

    exp = get_experiment(plan.name)
    assert exp.search is not None
    params = {k: trial.suggest_categorical(k, choices) for k, choices in plan.space.items()}
    frozen = trial.study.get_trials(deepcopy=False)[trial.number]
    with warnings.catch_warnings():  # marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    number = trial.number if retried is None else retried
    for earlier in trial.study.get_trials(deepcopy=False, states=_finished()):
        if earlier.params == params:  # a sampler may draw a point again: reuse its outcome
            trial.set_user_attr("repeat_of", earlier.number)
            # a pruned trial's `value` is its last monitored evaluation, not an objective
            if earlier.state != optuna.trial.TrialState.COMPLETE or earlier.value is None:
                raise optuna.TrialPruned(f"as trial {earlier.number}")
            return earlier.value
    monitored = exp.search.monitor
    best: list[float] = []

    def monitor(step: int, values: Mapping[str, float]) -> None:
        # the pruner sees the best evaluation so far (what the objective scores), so one
        # noisy evaluation does not end a trial
        if monitored is None:
            return
        best.append(max([float(values[monitored]), *best]))
        trial.report(best[-1], len(best))
        if trial.should_prune():
            raise optuna.TrialPruned(f"{monitored} {best[-1]:.4g} by training step {step}")

    def run(resume: bool) -> dict[str, Any]:
        return run_experiment(
            plan.name,
            out=Path(plan.folder) / "trials" / f"{number:04d}",
            quick=plan.quick,
            seed=plan.seed,
            data_dir=plan.data_dir,
            progress=plan.progress,
            resume=resume,
            overwrite=not resume,
            overrides={**plan.fixed, **{k: str(v) for k, v in params.items()}},
            monitor=monitor,
        )

    try:
        try:  # a retried trial continues the checkpoints of the one cut short...
            results = run(resume=retried is not None)
        except RunFolderError as error:
            if retried is None:
                raise
            # ...unless they belong to another run (the experiment's settings changed
            # with the code in between): then it starts afresh
            trial.set_user_attr("restarted", " ".join(str(error).split())[:300])
            results = run(resume=False)
    except FloatingPointError as error:  # a diverging run: the worst outcome, not a crash
        trial.set_user_attr("diverged", " ".join(str(error).split()))
        raise optuna.TrialPruned("diverged") from error
    trial.set_user_attr("wall_time_s", results["wall_time_s"])
    return exp.search.objective(results)


def _finished() -> tuple[Any, ...]:
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _announce(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if trial.state.name == "COMPLETE" and trial.value is not None:
        value = f"{trial.value:.4g}"
    else:
        steps = sorted(trial.intermediate_values)
        value = f"{trial.state.name.lower()} after {steps[-1] if steps else 0} evaluations"
    choices = ", ".join(f"{k}={v}" for k, v in trial.params.items())
    print(f"trial {trial.number}: {value} ({choices})", flush=True)


def _summary(
    study: optuna.Study, plan: _Plan, note: str, user: Mapping[str, str]
) -> dict[str, Any]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = None
        if t.datetime_start is not None and t.datetime_complete is not None:
            seconds = round((t.datetime_complete - t.datetime_start).total_seconds(), 1)
        steps = sorted(t.intermediate_values)
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                # Optuna gives a pruned trial its last reported evaluation as value: a
                # monitored number, not the objective
                "value": t.value if t.state.name == "COMPLETE" else None,
                "params": t.params,
                "seconds": seconds,
                "evaluations": steps[-1] if steps else None,
                "diverged": t.user_attrs.get("diverged"),
                "repeat_of": t.user_attrs.get("repeat_of"),
            }
        )
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = max(complete, key=lambda r: r["value"]) if complete else None
    sets = {**user, **(best["params"] if best else {})}
    command = f"pcn run {plan.name}" + "".join(f" --set {k}={v}" for k, v in sets.items())
    return {
        "experiment": plan.name,
        "objective": note,
        "space": plan.space,
        "grid_size": int(np.prod([len(v) for v in plan.space.values()])),
        "fixed": plan.fixed,
        "trials_requested": plan.trials,
        "sampler": plan.sampler,
        "seed": plan.seed,
        "quick": plan.quick,
        "best": None if best is None else {**best, "command": command},
        "trials": rows,
        "seconds": round(sum(r["seconds"] or 0.0 for r in rows), 1),
    }


_TPE_NOTE = f"; its first {TPE_STARTUP} draws are uniformly random"


def _markdown(s: dict[str, Any]) -> str:
    space = "\n".join(f"- `{k}` in {{{', '.join(map(str, v))}}}" for k, v in s["space"].items())
    fixed = ", ".join(f"`{k}={v}`" for k, v in s["fixed"].items())
    best = s["best"]
    if best is None:
        verdict = "No trial has completed yet."
    else:
        choices = ", ".join(f"`{k}={v}`" for k, v in best["params"].items())
        verdict = (
            f"Best: trial {best['number']}, objective **{best['value']:.4g}**, with {choices}."
            f"\n\nTrain with it (without the search's validation settings):\n\n"
            f"    {best['command']}"
        )
    names = list(s["space"])
    rows = [
        [t["number"], t["state"].lower() + (" (diverged)" if t["diverged"] else "")
         + ("" if t["repeat_of"] is None else f" (as trial {t['repeat_of']})"),
         "-" if t["value"] is None else f"{t['value']:.4g}",
         *[t["params"].get(k, "-") for k in names], t["seconds"] or "-"]
        for t in s["trials"]
    ]  # fmt: skip
    return f"""# Hyperparameter search: {s["experiment"]}

Objective (maximised): {s["objective"] or "the experiment's search objective"}. Every trial
runs with {fixed}. Search space ({s["grid_size"]} combinations), sampled by Optuna's
{s["sampler"]} sampler (seed {s["seed"]}{_TPE_NOTE if s["sampler"] == "tpe" else ""}), trials
below the median of earlier ones at the same evaluation pruned; budget
{s["trials_requested"]} trials, {s["seconds"]:.0f} s of trials on this machine:

{space}

{verdict}

Every trial:

{markdown_table(["trial", "state", "objective", *names, "seconds"], rows)}

![trials](trials.png)
"""


def _figure(s: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    done = [t for t in s["trials"] if t["value"] is not None]
    if done:
        xs = [t["number"] for t in done]
        ys = [t["value"] for t in done]
        ax.plot(xs, ys, "o", label="completed trial")
        ax.plot(xs, np.maximum.accumulate(ys), "-", label="best so far")
    pruned = [t["number"] for t in s["trials"] if t["state"] == "PRUNED"]
    for i, number in enumerate(pruned):
        ax.axvline(number, color="0.8", lw=0.8, label="pruned trial" if i == 0 else None)
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.set_title(s["experiment"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def describe(summary: Mapping[str, Any]) -> str:
    """One line for the terminal: the best trial and its command."""
    best = summary["best"]
    if best is None:
        return f"{summary['experiment']}: no trial completed"
    return json.dumps(best["params"]) + f" -> {best['value']:.4g}; run: {best['command']}"
