"""Report each validation to an Optuna trial and stop a pruned training."""
import math
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop


def import_optuna():
    """Import Optuna or say how to install it."""
    try:
        import optuna
    except ImportError:
        raise ImportError(
            'hyperparameter search needs Optuna: pip install -e ".[tune]" '
            '(or pip install "optuna>=3.6")') from None
    return optuna


@HOOKS.register_module()
class OptunaPruningHook(Hook):
    """Report the validation metric to an Optuna trial after each val epoch.

    The trial is opened from its storage, so the hook works the same in the
    process that runs the study and in a training started as a separate
    process (``tools/tune.py --separate-processes``). When the pruner says
    so, the training stops at the end of that epoch (``stop_training``, as
    mmengine's EarlyStoppingHook) and the trial gets the user attribute
    ``pruned_at_epoch`` (``pruned_at_iteration`` for an
    ``IterBasedTrainLoop``, whose validations are reported at their
    iteration). A non-finite metric stops the training too, with
    ``pruned_reason``.

    Args:
        storage (str): Optuna storage URL, e.g. ``sqlite:///study.db``.
        study_name (str): The study.
        trial_id (int): The trial's id in the storage (``trial._trial_id``).
        metric (str): The key of the validation metric, e.g.
            ``'pascal_voc/mAP'``.
        pruner (dict, optional): ``type`` (a class of ``optuna.pruners``)
            and its arguments; Optuna does not store the pruner with the
            study. None never prunes. Defaults to None.
    """

    priority = 'LOW'  # after the evaluator's metrics reach the message hub

    def __init__(self, storage: str, study_name: str, trial_id: int,
                 metric: str, pruner: Optional[dict] = None) -> None:
        self.storage = storage
        self.study_name = study_name
        self.trial_id = int(trial_id)
        self.metric = metric
        self.pruner_cfg = dict(pruner) if pruner else None
        self._trial = None

    def _open(self):
        if self._trial is None:
            optuna = import_optuna()
            pruner = optuna.pruners.NopPruner()
            if self.pruner_cfg:
                args = dict(self.pruner_cfg)
                kind = args.pop('type')
                pruner = getattr(optuna.pruners, kind)(**args)
            study = optuna.load_study(study_name=self.study_name,
                                      storage=self.storage, pruner=pruner)
            self._trial = optuna.trial.Trial(study, self.trial_id)
        return self._trial

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Report the metric; stop the training if the trial is pruned.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): This validation's metrics.
        """
        metrics = metrics or {}
        trial = self._open()
        # An IterBasedTrainLoop stays at epoch 0: Optuna would drop every
        # report after the first, and a pruner never pass its warm-up.
        unit = ('iteration' if isinstance(runner.train_loop,
                                          IterBasedTrainLoop) else 'epoch')
        step = runner.iter if unit == 'iteration' else runner.epoch
        if not metrics:  # e.g. CocoMetric gives {} when nothing is detected
            trial.set_user_attr(
                'pruned_reason', f'the validation at {unit} {step} gave no '
                'metrics (no detection at all?)')
            self._stop(runner, 'the validation gave no metrics')
            return
        if self.metric not in metrics:
            raise KeyError(
                f'OptunaPruningHook: the validation gave no {self.metric!r}; '
                f'it gave {sorted(metrics)}. Choose one with --metric.')
        value = float(metrics[self.metric])
        if not math.isfinite(value):
            trial.set_user_attr('pruned_reason',
                                f'{self.metric} is {value} at {unit} {step}')
            self._stop(runner, f'{self.metric} is {value}')
            return
        trial.report(value, step)
        if trial.should_prune():
            trial.set_user_attr(f'pruned_at_{unit}', step)
            trial.set_user_attr(
                'pruned_reason', f'{self.metric} {value:.4f} at {unit} '
                f"{step} is below the pruner's bar")
            self._stop(runner, f'pruned at {unit} {step} ({self.metric} '
                       f'{value:.4f})')

    @staticmethod
    def _stop(runner, why: str) -> None:
        print_log(f'OptunaPruningHook: {why}; stopping this trial',
                  logger='current')
        runner.train_loop.stop_training = True
