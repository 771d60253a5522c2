"""mmengine's early stopping, with its counters kept across ``--resume``."""
import itertools
import logging
import math
import os.path as osp
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import CheckpointHook, EarlyStoppingHook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

__all__ = ['ResumableEarlyStoppingHook']

KEY = 'early_stopping'
# what the epoch's checkpoint carries and a save_best file does not
FULL = frozenset(('optimizer', 'param_schedulers'))


@HOOKS.register_module()
class ResumableEarlyStoppingHook(EarlyStoppingHook):
    """``EarlyStoppingHook`` whose state survives a resumed training.

    mmengine's hook keeps ``best_score`` and ``wait_count`` on the instance
    only, so after ``--resume`` the patience starts again from zero. This
    subclass writes them (with the resolved ``monitor`` and ``rule``) into
    every checkpoint under ``checkpoint['early_stopping']`` and restores
    them when training resumes (a ``load_from`` checkpoint, epoch 0, starts
    fresh). A run it stopped stays stopped, without loading the trained
    batches again (an ``IterBasedTrainLoop`` skips them one by one); a
    stop for patience is judged again against the patience given now.

    The epoch's checkpoint is saved before its validation
    (``CheckpointHook.after_train_epoch``); so the checkpoint of this epoch
    is saved again after the validation when the counters changed since it
    was written (at most one extra save per validation). After a new best,
    ``CheckpointHook`` itself saves the epoch's checkpoint again (with the
    new state: this hook runs first); that save counts as the epoch's, so
    none is added. The ``save_best`` file (no optimizer, no schedulers) is
    another file and does not count.

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
        self.stop_reason: Optional[str] = None
        self._validating = False
        self.skipped_evaluations = 0

    def state(self) -> dict:
        """The state written into checkpoints.

        Returns:
            dict: ``monitor``, ``rule``, ``best_score``, ``wait_count``,
            ``stopped`` (whether it ended the training) and
            ``stop_reason`` (``'patience'``, ``'threshold'``,
            ``'not_finite'`` or None).
        """
        return dict(monitor=self.monitor, rule=self.rule,
                    best_score=self.best_score, wait_count=self.wait_count,
                    stopped=self.stopped, stop_reason=self.stop_reason)

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
        if self._stays_stopped(state):
            self.stopped = runner.train_loop.stop_training = True
            self.stop_reason = state.get('stop_reason')
            if isinstance(runner.train_loop, IterBasedTrainLoop):
                # its run() next()s this runner.iter times to skip the
                # trained batches before it reads stop_training
                runner.train_loop.dataloader_iterator = itertools.repeat(
                    None)
            why = f' ({self.stop_reason})' if self.stop_reason else ''
            print_log('ResumableEarlyStoppingHook: the resumed run had '
                      f'stopped early{why}; it is not trained further.',
                      logger='current', level=logging.WARNING)
            return
        print_log(f'ResumableEarlyStoppingHook: resumed {self.monitor} best '
                  f'{self.best_score:.4f}, {self.wait_count} of '
                  f'{self.patience} evaluations without improvement.',
                  logger='current')

    def _stays_stopped(self, state: dict) -> bool:
        if not state.get('stopped'):
            return False
        reason = state.get('stop_reason')  # None: saved before it was kept
        if reason == 'patience' or (reason is None
                                    and self.stopping_threshold is None):
            return self.wait_count >= self.patience  # a larger one goes on
        return True  # a threshold reached, a non-finite metric

    def _reason(self, score: float) -> str:
        # the order of mmengine's _check_stop_condition
        if self.check_finite and not math.isfinite(score):
            return 'not_finite'
        if self.stopping_threshold is not None and self.rule_map[self.rule](
                score, self.stopping_threshold):
            return 'threshold'
        return 'patience'

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
            if runner.train_loop.stop_training and not before:
                self.stopped = True
                self.stop_reason = self._reason(metrics[self.monitor])
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
        meta = checkpoint.get('meta', {})
        saved = (runner.message_hub.get_info('last_ckpt'), meta.get('epoch'),
                 meta.get('iter'), FULL.intersection(checkpoint))
        if self._validating and (self._saved is None or not saved[3]
                                 or saved != self._saved[:4]):
            # save_best's file: the epoch's checkpoint (last_ckpt) still
            # holds the state from before this validation. CheckpointHook
            # saving the epoch's again after a new best is recognised by
            # its path, step and contents (optimizer, schedulers).
            return
        self._saved = (*saved, self.state())

    def after_val(self, runner) -> None:
        """Save this epoch's checkpoint again if the state changed.

        Args:
            runner (Runner): The runner.
        """
        self._validating = False
        if self._saved is None:
            return
        path, epoch, it, _, state = self._saved
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
