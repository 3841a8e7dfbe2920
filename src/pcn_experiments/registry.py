"""The experiment registry: `@experiment(name, summary)` registers a function that runs
one reproduced result and returns its numbers; `run_experiment` gives it an output
folder and writes `results.json` and `report.md` there."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import pkgutil
import sys
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pcn
from pcn._validation import check_choice
from pcn.parallel import current as current_parallel

from .output import to_jsonable, write_json, write_text
from .run_folder import RunFolderError, claim, locked


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What an experiment is asked to do: where to write, how big, which seed."""

    out: Path
    quick: bool = False
    seed: int = 0
    data_dir: str | None = None
    progress: bool = True
    resume: bool = False
    overrides: tuple[tuple[str, str], ...] = ()  # ("learning_rate", "1e-4"), from --set
    # who the run is (experiment, quick, seed, settings, data folder, pcn version), and,
    # once `choose_config` has run, its full "config": stored with every checkpoint
    identity: dict[str, Any] = dataclasses.field(default_factory=dict)
    # the config fields the experiment read (see `choose_config`)
    reads: set[str] = dataclasses.field(default_factory=set)
    # where each dataset was found (the identity holds a hash of the arrays used)
    data_sources: dict[str, str] = dataclasses.field(default_factory=dict)
    # called with (steps done, evaluation) at every evaluation of `trainer.fit`: a
    # hyperparameter search's pruner (see `sweep`); not part of the run's identity
    monitor: Callable[[int, Mapping[str, float]], None] | None = None

    def run_record(self) -> dict[str, Any]:
        """The identity with the config, as JSON would give it back (lists for tuples)."""
        return json.loads(json.dumps(to_jsonable(self.identity)))


def choose_config(ctx: RunContext, full: Any, quick: Any) -> Any:
    """The experiment's config (`quick` or `full`) with `ctx.overrides` applied, each
    value parsed as the type of the field it replaces.

    Raises:
        ValueError: an unknown field (the valid ones are listed) or an unparsable value.
    """
    cfg = quick if ctx.quick else full
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for name, text in ctx.overrides:
        if name not in fields:
            raise ValueError(
                f"Unknown setting {name!r} in `--set`; this experiment's settings are "
                f"{sorted(fields)}."
            )
        current = fields[name]
        try:
            value = _parse_setting(text, current, hints[name])
        except (KeyError, ValueError, IndexError, TypeError):
            raise ValueError(
                f"Cannot read {text!r} as the setting {name!r} (currently {current!r}, "
                f"of type {_type_name(hints[name])})."
            ) from None
        changes[name] = value
    cfg = dataclasses.replace(cfg, **changes)
    ctx.identity["config"] = to_jsonable(dataclasses.asdict(cfg))
    return _tracked(cfg, ctx.reads)


def _parse_setting(text: str, current: Any, hint: Any) -> Any:
    """`text` (from `--set`) as a value of the field whose value is `current` and whose
    annotation is `hint`: "none" for an optional field, "a,b" for a tuple."""
    options = typing.get_args(hint) if _is_union(hint) else ()
    if type(None) in options:
        if text.lower() == "none":
            return None
        hint = next(o for o in options if o is not type(None))
    if current is None:
        return hint(text)
    if isinstance(current, bool):
        return {"true": True, "false": False}[text.lower()]
    if isinstance(current, tuple):
        return tuple(type(current[0])(v) for v in text.split(","))
    return type(current)(text)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


_NOT_A_USE = frozenset({"dataclasses", __name__, "pcn._validation", "copy", "reprlib"})


def _tracked(cfg: Any, reads: set[str]) -> Any:
    """`cfg`, recording in `reads` each field the experiment reads. Reads by the config's
    own methods (its validation), by `dataclasses` (asdict, replace) and by this module
    are not uses: `run_experiment` reports fields nobody else read (settings that would
    change nothing)."""
    names = frozenset(f.name for f in dataclasses.fields(cfg))
    base = type(cfg)

    def __getattribute__(self: Any, name: str) -> Any:
        if name in names:
            caller = sys._getframe(1)
            module = caller.f_globals.get("__name__", "")
            if module not in _NOT_A_USE and caller.f_locals.get("self") is not self:
                reads.add(name)
        return object.__getattribute__(self, name)

    tracked = type(base.__name__, (base,), {"__getattribute__": __getattribute__})
    tracked.__qualname__ = base.__qualname__
    tracked.__module__ = base.__module__
    out = copy.copy(cfg)
    object.__setattr__(out, "__class__", tracked)
    return out


@dataclasses.dataclass(frozen=True)
class Report:
    """An experiment's outcome: every number (`results`) and the Markdown report."""

    results: dict[str, Any]
    markdown: str


@dataclasses.dataclass(frozen=True)
class Search:
    """How `pcn sweep` searches an experiment's settings: every trial is a run with the
    `fixed` settings (a validation split, one seed, ...) and the user's `--set`, plus one
    choice per setting of `space(those settings)`; `objective(results)` is maximised,
    and `monitor` names the evaluation of `trainer.fit` reported to the pruner (after
    `prune_after` evaluations a trial below the median of earlier ones stops)."""

    fixed: Mapping[str, str]
    space: Callable[[Mapping[str, str]], Mapping[str, Sequence[Any]]]
    objective: Callable[[Mapping[str, Any]], float]
    monitor: str | None = None
    note: str = ""  # what the objective is, for the report
    prune_after: int = 4  # evaluations a trial always gets before it may be pruned


@dataclasses.dataclass(frozen=True)
class PaperNumber:
    """A number of a paper's table or figure that an experiment reproduces: where it is
    (`source`, e.g. "thesis Table 2.1"), what it is (`label`), the paper's `value`, and
    the dotted `key` of the run's results.json that holds pcn's number in the same units
    (`pcn report` sets them side by side)."""

    source: str
    label: str
    value: float
    key: str


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    summary: str
    run: Callable[[RunContext], Report]
    resumable: bool = True  # it trains through `trainer.fit`, which checkpoints
    search: Search | None = None  # what `pcn sweep` may search
    paper: tuple[PaperNumber, ...] = ()  # the papers' numbers it reproduces
    # what the paper shows where it gives no numbers (a plot), or why there is no paper
    # figure to compare with; for `pcn report`
    figure: str = ""


EXPERIMENTS: dict[str, Experiment] = {}

# modules and subpackages of this package that hold no experiment
_SUPPORT_MODULES = frozenset(
    {
        "bench",
        "classify",
        "cli",
        "common",
        "memory_common",
        "output",
        "plots",
        "registry",
        "report",
        "run_folder",
        "sweep",
        "trainer",
    }
)


def experiment(
    name: str,
    summary: str,
    *,
    resumable: bool = True,
    search: Search | None = None,
    paper: Sequence[PaperNumber] = (),
    figure: str = "",
) -> Callable[[Callable], Callable]:
    """Register `fn(ctx) -> Report` as experiment `name`; `resumable=False` for one that
    trains nothing (so writes no checkpoint to resume from); `search` for one that
    `pcn sweep` can tune; `paper`, the papers' numbers its results reproduce, and
    `figure`, what the paper shows where it gives no numbers."""

    def register(fn: Callable[[RunContext], Report]) -> Callable[[RunContext], Report]:
        EXPERIMENTS[name] = Experiment(name, summary, fn, resumable, search, tuple(paper), figure)
        return fn

    return register


def load_all() -> dict[str, Experiment]:
    """Import every module of this package (bar the support ones) so that all
    experiments are registered: a new experiment is a new module, nothing else to edit."""
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if module.name not in _SUPPORT_MODULES and not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")
    return EXPERIMENTS


def get_experiment(name: str) -> Experiment:
    """The experiment called `name` (error lists the valid names)."""
    check_choice("experiment", name, sorted(load_all()))
    return EXPERIMENTS[name]


def run_experiment(
    name: str,
    *,
    out: str | Path | None = None,
    quick: bool = False,
    seed: int = 0,
    data_dir: str | None = None,
    progress: bool = True,
    resume: bool = False,
    overrides: dict[str, str] | None = None,
    overwrite: bool = False,
    monitor: Callable[[int, Mapping[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run experiment `name`, writing `results.json`, `report.md` and figures to `out`
    (default `runs/<name>`); returns the results. With `resume`, experiments that
    checkpoint continue from the latest checkpoint in `out`, if it was written by a run
    of the same identity (experiment, quick, seed, settings, data folder, pcn version);
    `overrides` change settings of the experiment's config by name
    (`{"learning_rate": "1e-4"}`). A folder holding another run's checkpoints is refused
    unless `overwrite` (which deletes them); a folder another run is writing to, always.
    `monitor` sees every evaluation of the run's training (`RunContext.monitor`).

    Raises:
        RunFolderError: the folder is busy, or its checkpoints belong to another run.
        ValueError: `resume` for an experiment that writes no checkpoints.
    """
    exp = get_experiment(name)
    if resume and not exp.resumable:
        raise ValueError(
            f"--resume: {name} trains no model, so it writes no checkpoint to resume from; "
            "run it without --resume."
        )
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(
            f"--data-dir {data_dir} is not a folder (it does not exist, or is a file); pass "
            "the folder that holds the dataset files, or leave --data-dir out."
        )
    folder = Path(out) if out is not None else Path("runs") / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(
            f"--out {folder}: the output folder cannot be created ({error.strerror or error}); "
            "pass a folder you can write to."
        ) from error
    overrides = dict(sorted((overrides or {}).items()))
    identity: dict[str, Any] = {
        "experiment": name,
        "quick": quick,
        "seed": seed,
        "overrides": overrides,
        "data_dir": data_dir,
        "pcn_version": pcn.__version__,
    }
    ctx = RunContext(
        folder,
        quick=quick,
        seed=seed,
        data_dir=data_dir,
        progress=progress,
        resume=resume,
        overrides=tuple(overrides.items()),
        identity=dict(identity),
        monitor=monitor,
    )
    with locked(folder):
        claim(folder, identity, resume=resume, overwrite=overwrite)
        start = time.perf_counter()
        report = exp.run(ctx)
        fields = set(ctx.identity.get("config", {}))
        unread = sorted(fields - ctx.reads)
        ignored = sorted(set(overrides) & set(unread))
        if ignored:
            raise ValueError(
                f"--set {', '.join(ignored)}: {name} never reads "
                f"{'this setting' if len(ignored) == 1 else 'these settings'}, so the run "
                "would not be what its report says; drop it."
            )
        results = to_jsonable(
            {
                "experiment": name,
                "quick": quick,
                "seed": seed,
                "overrides": overrides,
                **report.results,
                "unread_settings": unread,
                # data-parallel devices (`pcn run --devices`): not part of the identity, a
                # run resumes on any count
                "devices": parallel.size if (parallel := current_parallel()) else 1,
                "data_sources": ctx.data_sources,
                "run": ctx.run_record(),
                "wall_time_s": round(time.perf_counter() - start, 2),
            }
        )
        write_json(folder / "results.json", results)
        sets = "".join(f" --set {k}={v}" for k, v in overrides.items())
        footer = (
            f"\n\n---\nRun: `pcn run {name}{' --quick' if quick else ''} --seed {seed}{sets}`"
            f"; wall time {results['wall_time_s']} s. Every number above is in "
            "`results.json`.\n"
        )
        write_text(folder / "report.md", report.markdown + footer)
    return results
