"""Reproduced experiments, one module each, registered by name for `pcn run NAME`."""

from .registry import EXPERIMENTS as EXPERIMENTS
from .registry import Experiment as Experiment
from .registry import RunContext as RunContext
from .registry import get_experiment as get_experiment
from .registry import run_experiment as run_experiment
