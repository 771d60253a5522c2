"""Warn or stop when a training goes wrong: NaN/Inf, divergence, collapse."""
import logging
import math
import os.path as osp
from functools import partial
from typing import List, Optional, Sequence, Union

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import IterBasedTrainLoop

from .health_advice import divergence_fix
from .health_file import (
    read_health,
    save_live_weights,
    save_replay,
    write_health,
)
from .health_monitors import (
    BackgroundCounter,
    DivergenceMonitor,
    check_collapse,
    collapse_message,
    describe_nonfinite,
    img_paths,
    inspect_grads,
    scalar,
)

__all__ = ['TrainingHealthError', 'TrainingHealthHook']

DATA_BATCH = Optional[Union[dict, tuple, list]]


class TrainingHealthError(RuntimeError):
    """TrainingHealthHook stopped a training that went wrong."""


@HOOKS.register_module()
class TrainingHealthHook(Hook):
    """Catch a training that goes wrong, early and with a concrete fix.

    Reads only what training computes anyway (logged terms, the grads
    before ``optimizer.step()``, the bbox head's targets, validation
    predictions): no extra forward pass.

    Conditions and how they are computed:

    - ``nonfinite``: a logged ``loss*`` term or a gradient is NaN/Inf
      (a step pre-hook on the torch optimizer sees the grads after
      clipping, before the update; clip_grad may be off). The message
      names the terms, parameters, iteration and image paths; the batch
      goes to ``<work_dir>/<out_dir>/nonfinite_iter<N>.pth``. With
      ``'stop'``/``'skip'`` the bad update is not applied (grads set to
      None: SGD/Adam leave those parameters and momenta alone); ``'skip'``
      goes on for ``max_skips`` such steps, then stops; stopping saves the
      weights (``nonfinite_iter<N>_state.pth``). With
      ``accumulative_counts`` an iteration without an optimizer step only
      warns (nothing was applied; ``'stop'`` stops): the step that applies
      its gradients is the one skipped and counted. Under AMP a step that
      the loss scaler skips is not seen (normal there).
    - ``divergence`` (:class:`DivergenceMonitor`): after ``burn_in``
      iterations the median loss of the last ``window`` exceeds
      ``loss_ratio`` x its lowest value so far, or the gradient norm
      before clipping exceeded ``clip_grad.max_norm`` on more than
      ``clip_fraction`` of the last ``window`` steps. Reported once, with
      the lr ``ref_lr x real batch / ref_batch_size``; the reference is
      ``ref_lr``/``ref_batch_size``, else the config's furthest base that
      sets lr and ``auto_scale_lr.base_batch_size``
      (:func:`linear_scaling_reference`), else SGD 0.02 at batch 16.
      Default ``'warn'``: a risen loss is strong evidence, not proof (a
      curriculum or resampled data can raise it).
    - ``collapse`` (:func:`check_collapse`): at each epoch end (each
      validation for an iteration-based loop), the mean ``acc`` over the
      epoch's second half is at most ``acc_margin`` points above the
      share of background among the sampled RoIs (counted from the bbox
      head's targets by :class:`BackgroundCounter`; else the lower bound
      ``1 - sampler.pos_fraction``). Also a validation in which nothing
      scores ``score_thr``. Both only after ``collapse_after`` iterations
      (a young classifier predicts background). Not for cascade heads.

    Each finding is logged as a warning with a banner, kept in
    :attr:`findings` (dicts: ``kind``, ``iteration``, ``epoch``,
    ``action``, ``message``, numbers) and written to
    ``<work_dir>/health.json`` (also at the end of training); ``'stop'``
    then raises :class:`TrainingHealthError`.

    Args:
        nonfinite (str): ``'stop'``, ``'skip'`` or ``'warn'``.
            Defaults to 'stop'.
        max_skips (int): Non-finite steps skipped before stopping, with
            ``nonfinite='skip'``. Defaults to 3.
        divergence (str): ``'warn'`` or ``'stop'``. Defaults to 'warn'.
        loss_ratio (float): Smoothed loss over its lowest value that
            counts as divergence. Defaults to 2.5.
        clip_fraction (float): Share of the last ``window`` steps with a
            clipped gradient that counts as divergence. Defaults to 0.5.
        window (int): Iterations of the median loss and of the clipping
            share. Defaults to 15.
        burn_in (int): Iterations before judging. Defaults to 20.
        collapse (str): ``'warn'`` or ``'stop'``, for a collapsed
            classifier and a validation without foreground.
            Defaults to 'warn'.
        acc_margin (float): Points of ``acc`` above the background share
            that a working classifier must reach. Defaults to 1.0.
        collapse_after (int): Iterations before the collapse checks
            count. Defaults to 100.
        score_thr (float): Score a validation prediction needs to count
            as a detection. Defaults to 0.3.
        ref_lr (float, optional): Reference lr. Defaults to None.
        ref_batch_size (int, optional): Its batch. Defaults to None.
        out_dir (str): Work-dir folder of replays. Defaults to 'health'.
    """

    priority = 'NORMAL'  # after RuntimeInfoHook, before CheckpointHook
    def __init__(self, nonfinite: str = 'stop', max_skips: int = 3,
                 divergence: str = 'warn', loss_ratio: float = 2.5,
                 clip_fraction: float = 0.5, window: int = 15,
                 burn_in: int = 20, collapse: str = 'warn',
                 acc_margin: float = 1.0, collapse_after: int = 100,
                 score_thr: float = 0.3, ref_lr: Optional[float] = None,
                 ref_batch_size: Optional[int] = None,
                 out_dir: str = 'health') -> None:
        for name, value, allowed in (
                ('nonfinite', nonfinite, ('stop', 'skip', 'warn')),
                ('divergence', divergence, ('warn', 'stop')),
                ('collapse', collapse, ('warn', 'stop'))):
            if value not in allowed:
                raise ValueError(f'{name} must be one of {allowed}, got '
                                 f'{value!r}')
        DivergenceMonitor(loss_ratio, clip_fraction, window)  # validate
        if (ref_lr is None) != (ref_batch_size is None):
            raise ValueError('set both ref_lr and ref_batch_size or none')
        self.actions = dict(nonfinite=nonfinite, divergence=divergence,
                            collapse=collapse, no_foreground=collapse)
        self.max_skips = max_skips
        self._div_args = (loss_ratio, clip_fraction, window, burn_in)
        self.acc_margin = acc_margin
        self.collapse_after = collapse_after
        self.score_thr = score_thr
        self.ref = ref_lr and dict(name='ref_lr/ref_batch_size', lr=ref_lr,
                                   base_batch_size=ref_batch_size)
        self.out_dir = out_dir
        self.findings: List[dict] = []
        self.skipped = 0
        self._handles: list = []
        self._wrappers: list = []
        self._counter = BackgroundCounter()
        self._step: Optional[dict] = None
        self._val = [0, 0]

    def before_train(self, runner) -> None:
        """Hook the optimizer(s) and the bbox head; reset the statistics.

        Args:
            runner (Runner): The training runner.
        """
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._names = {id(p): n for n, p in model.named_parameters()}
        self.divergence = DivergenceMonitor.from_hub(runner, *self._div_args)
        self._acc: List[tuple] = []
        self._max_norm: Optional[float] = None
        ow = runner.optim_wrapper
        self._wrappers = list(ow.values()) if isinstance(
            ow, OptimWrapperDict) else [ow]
        for wrapper in self._wrappers:
            self._handles.append(wrapper.optimizer.register_step_pre_hook(
                partial(self._before_step, wrapper)))
        self._counter.attach(model)
        # Kept on resume: the findings, and when the classifier learned.
        self.findings, self.skipped, self._learned_at = read_health(runner)

    def after_train(self, runner) -> None:
        """Unhook and write ``health.json``.

        Args:
            runner (Runner): The training runner.
        """
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._counter.detach()
        self._write(runner)

    def _before_step(self, wrapper, optimizer, args, kwargs) -> None:
        if self._step is None:
            return None
        step = self._step
        step['stepped'] = True
        info = inspect_grads(optimizer, self._names, wrapper)
        if info is None:
            return None
        step['grad_norm'] = math.hypot(step.get('grad_norm', 0.), info['norm'])
        step['bad'] += info['bad']
        if 'clipped' in info:
            self._max_norm = info['max_norm']
            step['clipped'] = step.get('clipped', False) or info['clipped']
        if info['bad'] and self.actions['nonfinite'] in ('stop', 'skip'):
            for p in info['params']:
                p.grad = None  # the update below becomes a no-op
            step['skipped'] = True
        return None

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Start recording this iteration's optimizer step.

        Args:
            runner (Runner): The training runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict | tuple | list, optional): The batch.
                Defaults to None.
        """
        self._step = dict(bad=[], skipped=False)
        self._counter.reset()

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Check the logged terms and this step's gradients.

        Args:
            runner (Runner): The training runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict | tuple | list, optional): The batch.
                Defaults to None.
            outputs (dict, optional): The logged terms (``loss``,
                ``loss_*``, ``acc``, ...). Defaults to None.
        """
        it, step = runner.iter + 1, self._step or dict(bad=[])
        terms = {k: scalar(v) for k, v in (outputs or {}).items()}
        terms = {k: v for k, v in terms.items() if v is not None}
        bad = [k for k, v in terms.items()
               if 'loss' in k and not math.isfinite(v)]
        if bad or step['bad']:
            self._nonfinite(runner, it, data_batch, terms, bad, step)
            return
        if 'acc' in terms:  # not a semi-supervised sup_acc: see the docs
            self._acc.append((it, terms['acc'], self._counter.share()))
        stats = self.divergence.update(it, terms.get('loss'),
                                       step.get('grad_norm'),
                                       step.get('clipped'))
        self.divergence.save_to(runner.message_hub)
        if stats and 'divergence' not in [f['kind'] for f in self.findings]:
            self._report_divergence(runner, it, stats)

    def _nonfinite(self, runner, it, data_batch, terms, bad, step) -> None:
        action = self.actions['nonfinite']
        if action == 'warn' and sum(f['kind'] == 'nonfinite'
                                    for f in self.findings) >= 10:
            return  # the weights are NaN by now: enough said
        paths = img_paths(data_batch)
        msg = describe_nonfinite(it, terms, bad, step['bad'], paths)
        base = osp.join(runner.work_dir, self.out_dir, f'nonfinite_iter{it}')
        replay, how = save_replay(base, data_batch)
        msg += how
        # accumulative_counts=k: only every k-th iteration steps (all()
        # passes a wrapper that this train_step did not use)
        stepped = step.get('stepped') or all(
            w.should_update() for w in self._wrappers
            if hasattr(w, 'should_update'))
        if action != 'warn' and not stepped:
            msg += ('\nNo optimizer step ran at this iteration (gradient '
                    'accumulation): its gradients wait for the next one.')
        elif action != 'warn' and not step.get('skipped'):
            msg += ('\nThe gradients were finite: the update was applied.')
        if action == 'skip' and not stepped:
            action = 'warn'  # nothing to skip (nor to count) here
            msg += ('\nThe next step skips the update if they are not '
                    'finite, counted in max_skips.')
        elif action == 'skip' and self.skipped < self.max_skips:
            self.skipped += 1
            msg += (f'\nNon-finite step {self.skipped} of max_skips='
                    f'{self.max_skips}; training goes on.')
        elif action != 'warn':
            state = f'{base}_state.pth'
            if step.get('skipped') or not stepped:
                save_live_weights(runner, state, it)
                msg += (f'\nThe update was not applied; the weights that '
                        f'gave these values are in {state} (load_from).')
            if action == 'skip':
                msg += (f'\n{self.skipped} non-finite steps were skipped '
                        f'before (max_skips={self.max_skips}).')
            action = 'stop'
        msg += ('\nCommon causes: an lr too high for the batch, boxes of '
                'zero size or outside the image, a corrupt image.')
        self._report(runner, 'nonfinite', action, msg, it, replay=replay,
                     img_paths=paths, terms=bad,
                     parameters=step['bad'][:20])

    def _report_divergence(self, runner, it: int, stats: dict) -> None:
        msg = (f'the training diverges at iteration {it}:'
               f'{self.divergence.describe(stats, self._max_norm)}\n'
               + divergence_fix(runner, self.ref, self._max_norm))
        self._report(runner, 'divergence', self.actions['divergence'], msg,
                     it, **stats)

    def after_train_epoch(self, runner) -> None:
        """Check the classifier over the epoch's second half.

        Args:
            runner (Runner): The training runner.
        """
        self._check_collapse(runner)

    def _check_collapse(self, runner) -> None:
        recs = [r for r in self._acc if r[0] > self.collapse_after]
        self._acc = []
        model = runner.cfg.get('model') or {}
        rcnn = (model.get('train_cfg') or {}).get('rcnn')
        frac = rcnn.get('sampler', {}).get('pos_fraction') if isinstance(
            rcnn, dict) else None
        total = getattr(runner.train_loop, 'max_iters', None)
        learned, (found, phase, self._learned_at) = self._learned_at, \
            check_collapse(recs, self.acc_margin, frac, self._learned_at,
                           runner.iter / total if total else None)
        if learned is None and self._learned_at is not None:
            self._write(runner)  # kept for a resume (read_health)
        if found is not None:  # a slow start only warns
            action = 'warn' if phase == 'early' else self.actions['collapse']
            self._report(runner, 'collapse', action,
                         collapse_message(found, self.acc_margin, phase),
                         found['last'], phase=phase, **found)

    def after_val_iter(self, runner, batch_idx: int,
                       data_batch: DATA_BATCH = None,
                       outputs: Optional[Sequence] = None) -> None:
        """Count predictions at or above ``score_thr``.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch (dict | tuple | list, optional): The batch.
                Defaults to None.
            outputs (Sequence, optional): Predicted data samples.
                Defaults to None.
        """
        for sample in outputs or []:
            pred = getattr(sample, 'pred_instances', None)
            if pred is not None and 'scores' in pred:
                self._val[0] += 1
                self._val[1] += int((pred.scores >= self.score_thr).sum())

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Report a validation without foreground; in an iteration-based
        loop, also check the classifier.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): Metrics of this evaluation.
                Defaults to None.
        """
        (images, found), self._val = self._val, [0, 0]
        if not hasattr(self, 'divergence'):
            return  # a validation or test outside of training
        if images and not found and \
                runner.iter >= self.collapse_after:
            self._report(
                runner, 'no_foreground', self.actions['no_foreground'],
                f'no detection scored {self.score_thr:g} or more on the '
                f'{images} validation images after {runner.iter} '
                'iterations: the model predicts only background.\nFix: see '
                'the acc and loss_cls in the log; check the classes and '
                'the lr.', runner.iter, epoch=runner.epoch,
                images=images)
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            self._check_collapse(runner)

    def _report(self, runner, kind: str, action: str, message: str,
                it: int, epoch: Optional[int] = None, **details) -> None:
        # During training runner.epoch counts finished epochs.
        epoch = runner.epoch + 1 if epoch is None else epoch
        finding = dict(kind=kind, iteration=it, epoch=epoch, action=action,
                       message=message, **details)
        self.findings.append(finding)
        path = self._write(runner)
        bar = '!' * 79
        print_log(f'\n{bar}\nTrainingHealthHook: {kind} ({action})\n'
                  f'{message}\nAll findings: {path}\n{bar}',
                  logger='current', level=logging.WARNING)
        if action == 'stop':
            arg = 'collapse' if kind == 'no_foreground' else kind
            raise TrainingHealthError(
                f'{kind} at iteration {it}: {message}\nAll findings: {path}'
                f'. To only warn: custom_hooks=[dict(type='
                f"'TrainingHealthHook', {arg}='warn')].")

    def _write(self, runner) -> str:
        path = osp.join(runner.work_dir, 'health.json')
        if is_main_process():
            write_health(path, self.findings, self.skipped,
                         self._learned_at)
        return path
