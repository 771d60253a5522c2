"""Run the config doctor when training starts and stop on errors."""
import logging
from typing import Optional, Sequence

from mmdet.registry import HOOKS
from mmengine.logging import print_log

from rcnn_plugin.config_doctor import (
    HOOK_CHECKS,
    SEVERITIES,
    format_findings,
    run_checks,
)

from .ground_truth_frame_hook import GroundTruthFrameHook

__all__ = ['ConfigDoctorError', 'ConfigDoctorHook']


class ConfigDoctorError(RuntimeError):
    """The config doctor found a problem that would waste the training."""


@HOOKS.register_module()
class ConfigDoctorHook(GroundTruthFrameHook):
    """Check the config, model and training set at ``before_train``.

    Uses the runner's model (a dry forward on a blank image), its training
    dataset (already built) and world size, so it adds about a second.
    Findings are logged; if one is at least ``fail_on`` severe, training
    stops with :class:`ConfigDoctorError` before the first iteration.

    Switch it off in a config with
    ``custom_hooks = [dict(type='ConfigDoctorHook', enabled=False)]``, or
    run ``tools/analysis/check_config.py`` for every check (datasets of all
    splits, checkpoints, offline weights).

    Before each validation and test it also tells rcnn_plugin's metrics in
    which frame the pipeline packs the ground truth (it is a
    :class:`GroundTruthFrameHook`, also with ``enabled=False``), so a test
    pipeline that loads annotations before ``Resize`` (an error for
    training) is scored right by ``tools/test.py``.

    Args:
        enabled (bool): Run the checks. Defaults to True.
        checks (Sequence[str], optional): Check names (see
            ``rcnn_plugin.config_doctor.CHECKS``). Defaults to
            ``HOOK_CHECKS``: strides, classes, normalisation, learning
            rate, lr schedule, EMA, sampler, evaluator and the training
            set.
        fail_on (str): ``'error'``, ``'warning'`` or ``'never'``.
            Defaults to ``'error'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 enabled: bool = True,
                 checks: Optional[Sequence[str]] = None,
                 fail_on: str = 'error') -> None:
        if fail_on not in ('error', 'warning', 'never'):
            raise ValueError("fail_on must be 'error', 'warning' or "
                             f"'never', got {fail_on!r}")
        self.enabled = enabled
        self.checks = tuple(HOOK_CHECKS if checks is None else checks)
        self.fail_on = fail_on

    def before_train(self, runner) -> None:
        """Run the checks; raise if a finding reaches ``fail_on``.

        Args:
            runner (Runner): The training runner.

        Raises:
            ConfigDoctorError: With every finding, when one is at least
                ``fail_on`` severe.
        """
        if not self.enabled:
            return
        findings = run_checks(
            runner.cfg, checks=self.checks, model=runner.model,
            datasets={'train': runner.train_dataloader.dataset},
            world_size=runner.world_size, build_datasets=False)
        if not findings:
            print_log('ConfigDoctorHook: no problem found in '
                      f'{len(self.checks)} checks', logger='current')
            return
        text = format_findings(findings)
        print_log(f'ConfigDoctorHook:\n{text}', logger='current',
                  level=logging.WARNING)
        if self.fail_on == 'never':
            return
        level = SEVERITIES.index(self.fail_on)
        if any(SEVERITIES.index(f.severity) >= level for f in findings):
            raise ConfigDoctorError(
                f'the config doctor stopped training before the first '
                f'iteration (fail_on={self.fail_on!r}):\n{text}\nFix the '
                'config, or disable the check with custom_hooks=[dict('
                "type='ConfigDoctorHook', enabled=False)].")
