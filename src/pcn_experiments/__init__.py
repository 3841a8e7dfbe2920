"""The experiment suite of `pcn`: reproduced experiments, one module each, registered by
name for `pcn run NAME`; speed measurements in `bench`; the `pcn` command in `cli`.

Kept apart from the library so that `import pcn` needs none of the suite's plotting,
progress-bar and tokenizer dependencies (the `experiments` extra)."""

from .registry import EXPERIMENTS as EXPERIMENTS
from .registry import Experiment as Experiment
from .registry import RunContext as RunContext
from .registry import get_experiment as get_experiment
from .registry import run_experiment as run_experiment
