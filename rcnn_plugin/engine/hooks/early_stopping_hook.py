"""mmengine's early stopping, with its counters kept across ``--resume``."""
import logging
import math
import os.path as osp
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import CheckpointHook, EarlyStoppingHook
from mmengine.logging import print_log

__all__ = ['ResumableEarlyStoppingHook']

KEY = 'early_stopping'


@HOOKS.register_module()
class ResumableEarlyStoppingHook(EarlyStoppingHook):
    """``EarlyStoppingHook`` whose state survives a resumed training.

    mmengine's hook keeps ``best_score`` and ``wait_count`` on the instance
    only, so after ``--resume`` the patience starts again from zero. This
    subclass writes them (with the resolved ``monitor`` and ``rule``) into
    every checkpoint under ``checkpoint['early_stopping']`` and restores
    them when training resumes (a ``load_from`` checkpoint, epoch 0, starts
    fresh).

    The epoch's checkpoint is saved before its validation
    (``CheckpointHook.after_train_epoch``); so the checkpoint of this epoch
    is saved again after the validation when the counters changed since it
    was written (at most one extra save per validation). A ``save_best``
    checkpoint written during the validation is another file and carries
    the new state already; it does not count as the epoch's.

    ``monitor='auto'`` follows the first metric key of the first
    evaluation, as ``save_best='auto'`` does, with the rule inferred from
    its name unless ``rule`` is given.

    Args:
        monitor (str): Metric key, or 'auto'.
        rule (str, optional): 'greater' or 'less'. Defaults to None
            (inferred from the key).
        min_delta (float): Smallest change counted as an improvement.
            Defaults to 0.1 (mmengine's default).
        strict (bool): Raise when ``monitor`` is missing from the metrics;
            with False each such validation is skipped with a logged
            warning and counted in ``skipped_evaluations``. Defaults to
            True (mmengine's hook defaults to False and warns once, outside
            the log, so a misspelled key turned early stopping off).
        check_finite (bool): Stop when the monitored value is not finite.
            Defaults to True.
        patience (int): Evaluations without improvement before stopping.
            Defaults to 5.
        stopping_threshold (float, optional): Stop once the value passes
            it. Defaults to None.
    """

    priority = 'LOW'

    def __init__(self, monitor: str, rule: Optional[str] = None,
                 min_delta: float = 0.1, strict: bool = True,
                 check_finite: bool = True, patience: int = 5,
                 stopping_threshold: Optional[float] = None) -> None:
        self._auto = monitor == 'auto'
        super().__init__(monitor, rule or ('greater' if self._auto else None),
                         min_delta, strict, check_finite, patience,
                         stopping_threshold)
        self._given_rule = rule
        self._delta = abs(min_delta)
        self._loaded: Optional[dict] = None
        self._saved: Optional[tuple] = None
        self.stopped = False
        self.skipped_evaluations = 0

    def state(self) -> dict:
        """The state written into checkpoints.

        Returns:
            dict: ``monitor``, ``rule``, ``best_score``, ``wait_count``
            and ``stopped`` (whether it ended the training).
        """
        return dict(monitor=self.monitor, rule=self.rule,
                    best_score=self.best_score, wait_count=self.wait_count,
                    stopped=self.stopped)

    def _resolve(self, metrics: dict) -> None:
        if not (self._auto and self.monitor == 'auto' and metrics):
            return
        key = next(iter(metrics))
        try:
            rule = self._given_rule or self._init_rule(key)
        except ValueError:
            raise ValueError(
                f"ResumableEarlyStoppingHook(monitor='auto') follows the "
                f'first metric, {key!r}, whose name does not say whether '
                "greater or less is better: set rule='greater' or 'less' "
                '(or a monitor).') from None
        self.monitor = key
        self._set_rule(rule)

    def _set_rule(self, rule: str) -> None:
        self.rule = rule
        self.min_delta = self._delta if rule == 'greater' else -self._delta
        self.best_score = -math.inf if rule == 'greater' else math.inf

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the checkpoint's state until ``before_train`` applies it.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        self._loaded = checkpoint.get(KEY)

    def before_train(self, runner) -> None:
        """Restore the state when training resumes (epoch > 0).

        Args:
            runner (Runner): The training runner.
        """
        state, self._loaded = self._loaded, None
        if runner.epoch == 0 and runner.iter == 0:
            return  # a new training, or load_from
        if state is None:
            print_log('ResumableEarlyStoppingHook: the resumed checkpoint '
                      'has no early-stopping state; patience starts again.',
                      logger='current', level=logging.WARNING)
            return
        if not (self._auto or state['monitor'] == self.monitor):
            print_log('ResumableEarlyStoppingHook: the checkpoint monitored '
                      f"{state['monitor']!r}, this run {self.monitor!r}; "
                      'patience starts again.', logger='current',
                      level=logging.WARNING)
            return
        self.monitor = state['monitor']
        self._set_rule(state['rule'])
        self.best_score = state['best_score']
        self.wait_count = state['wait_count']
        if state.get('stopped') and (self.wait_count >= self.patience
                                     or self.stopping_threshold is not None):
            # resumed after it ended the training (a larger patience given
            # now lets it go on)
            self.stopped = runner.train_loop.stop_training = True
            print_log('ResumableEarlyStoppingHook: the resumed run had '
                      'stopped early; it is not trained further.',
                      logger='current', level=logging.WARNING)
            return
        print_log(f'ResumableEarlyStoppingHook: resumed {self.monitor} best '
                  f'{self.best_score:.4f}, {self.wait_count} of '
                  f'{self.patience} evaluations without improvement.',
                  logger='current')

    def after_val_epoch(self, runner, metrics: dict) -> None:
        """Resolve ``'auto'``, then decide as mmengine's hook.

        Args:
            runner (Runner): The runner.
            metrics (dict): Evaluation results.
        """
        self._resolve(metrics)
        if self.monitor in (metrics or {}):
            before = runner.train_loop.stop_training
            super().after_val_epoch(runner, metrics)
            # this hook's stop, not another hook's (Optuna's pruning)
            self.stopped |= runner.train_loop.stop_training and not before
            return
        problem = (f'ResumableEarlyStoppingHook: monitor {self.monitor!r} '
                   'is not among the metrics of this validation '
                   f'({", ".join(metrics) if metrics else "none"})')
        if self.strict and metrics:  # a key that no evaluation will give
            raise ValueError(f'{problem}: set monitor to one of them, or '
                             "'auto' (the first).")
        self.skipped_evaluations += 1
        print_log(f'{problem}; early stopping skipped this validation '
                  f'({self.skipped_evaluations} so far).', logger='current',
                  level=logging.WARNING)

    def before_val(self, runner) -> None:
        """Mark the saves that follow as the validation's (best ones).

        Args:
            runner (Runner): The runner.
        """
        self._validating = True

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Write the state into the checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint about to be saved.
        """
        checkpoint[KEY] = self.state()
        if getattr(self, '_validating', False):
            # save_best's file: the epoch's checkpoint (last_ckpt) still
            # holds the state from before this validation
            return
        meta = checkpoint.get('meta', {})
        self._saved = (runner.message_hub.get_info('last_ckpt'),
                       meta.get('epoch'), meta.get('iter'), self.state())

    def after_val(self, runner) -> None:
        """Save this epoch's checkpoint again if the state changed.

        Args:
            runner (Runner): The runner.
        """
        self._validating = False
        if self._saved is None:
            return
        path, epoch, it, state = self._saved
        hook = next((h for h in runner.hooks
                     if isinstance(h, CheckpointHook)), None)
        if hook is None or path is None or state == self.state() or \
                (epoch, it) != (runner.epoch, runner.iter) or \
                path != runner.message_hub.get_info('last_ckpt'):
            return
        runner.save_checkpoint(
            osp.dirname(path), osp.basename(path), hook.file_client_args,
            save_optimizer=hook.save_optimizer,
            save_param_scheduler=hook.save_param_scheduler,
            meta=dict(epoch=epoch, iter=it), by_epoch=hook.by_epoch,
            backend_args=hook.backend_args, **hook.args)
