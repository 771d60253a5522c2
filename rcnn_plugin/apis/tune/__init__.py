"""Hyperparameter search over config keys with Optuna (``tools/tune.py``)."""
from .cli import main, parse_args
from .space import Param, SpaceError, best_overrides, load_space, resolve_key
from .study import StudyError, TuneOptions, export_study, run_study

__all__ = [
    'Param', 'SpaceError', 'StudyError', 'TuneOptions', 'best_overrides',
    'export_study', 'load_space', 'main', 'parse_args', 'resolve_key',
    'run_study'
]
