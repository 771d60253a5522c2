"""Run the config checks and collect their findings."""
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import BaseDataset

from .context import DoctorContext, prepare_registries
from .data_checks import (
    check_empty_data,
    check_ignored_negatives,
    check_learning_rate,
)
from .ema import check_ema
from .evaluator import check_evaluator
from .finding import Finding
from .model_checks import (
    check_checkpoint_classes,
    check_feature_strides,
    check_num_classes,
)
from .normalisation import check_normalisation
from .offline import check_offline
from .sampler import check_sampler
from .schedule import check_schedule

__all__ = ['CHECKS', 'DATA_CHECKS', 'HOOK_CHECKS', 'run_checks']

CheckFn = Callable[[DoctorContext], List[Finding]]

# name -> check, in the order they run.
CHECKS: Dict[str, CheckFn] = {
    'feature_strides': check_feature_strides,
    'num_classes': check_num_classes,
    'checkpoint_classes': check_checkpoint_classes,
    'normalisation': check_normalisation,
    'learning_rate': check_learning_rate,
    'schedule': check_schedule,
    'ema': check_ema,
    'sampler': check_sampler,
    'offline': check_offline,
    'evaluator': check_evaluator,
    'empty_data': check_empty_data,
    'ignored_negatives': check_ignored_negatives,
}
# Checks that build datasets (skipped by ``skip_data``).
DATA_CHECKS = ('empty_data', 'ignored_negatives')
# What the training hook runs by default: everything that is cheap once the
# runner has built the model and the training set. Weights (``offline``,
# ``checkpoint_classes``) are already loaded by then.
HOOK_CHECKS = ('feature_strides', 'num_classes', 'normalisation',
               'learning_rate', 'schedule', 'ema', 'sampler', 'evaluator',
               'empty_data', 'ignored_negatives')


def run_checks(cfg: Config,
               checks: Optional[Sequence[str]] = None,
               model: Optional[nn.Module] = None,
               datasets: Optional[Dict[str, BaseDataset]] = None,
               world_size: Optional[int] = None,
               skip_data: bool = False,
               build_datasets: bool = True,
               timings: Optional[Dict[str, float]] = None) -> List[Finding]:
    """Run config checks and return every finding.

    A check that raises (say, the model does not build) becomes an error
    finding that carries the exception, so one broken part does not hide
    the others.

    Args:
        cfg (Config): The merged config.
        checks (Sequence[str], optional): Names from :data:`CHECKS`; all
            when None. Defaults to None.
        model (nn.Module, optional): A built model to reuse. Defaults to
            None (built from ``cfg.model``).
        datasets (dict[str, BaseDataset], optional): Built datasets by
            split to reuse. Defaults to None.
        world_size (int, optional): Number of training processes. Defaults
            to ``$WORLD_SIZE`` or 1.
        skip_data (bool): Skip the checks that build datasets, and build
            none for the others (``schedule`` then checks only what needs
            no dataset). Defaults to False.
        build_datasets (bool): Whether datasets not given in ``datasets``
            may be built. Defaults to True.
        timings (dict, optional): If given, filled with the seconds each
            check took. Defaults to None.

    Returns:
        list[Finding]: Findings in check order.
    """
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f'unknown config checks {unknown}; known: '
                         f'{list(CHECKS)}')
    if skip_data:
        names = [n for n in names if n not in DATA_CHECKS]
    prepare_registries(cfg)
    ctx = DoctorContext(cfg, model=model, datasets=datasets,
                        world_size=world_size,
                        build_datasets=build_datasets and not skip_data)
    findings = []
    for name in names:
        start = time.perf_counter()
        try:
            findings += CHECKS[name](ctx)
        except Exception as err:  # noqa: BLE001 - reported as a finding
            findings.append(Finding(
                name, 'error',
                f'the check could not run: {type(err).__name__}: '
                f'{str(err).splitlines()[0] if str(err) else ""}',
                'fix the config so that this part builds (run '
                'tools/analysis/check_config.py for the full error)'))
        if timings is not None:
            timings[name] = time.perf_counter() - start
    return findings
