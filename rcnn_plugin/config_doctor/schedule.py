"""Check the parameter schedulers against the length of training.

A fine-tune on a small dataset usually inherits a COCO schedule and shortens
``train_cfg``: mmdet's 1x warms up for 500 iterations and decays at epochs 8
and 11. On 200 images at batch 4 and 8 epochs that is a warm-up longer than
the whole run and a decay that never comes. Nothing fails and the loss looks
normal, so this check compares each scheduler with the training length.
"""
import math
from typing import Any, Iterator, List, Optional, Tuple

from mmengine.dist import get_dist_info

from rcnn_plugin.utils.config_types import cfg_type_name

from .context import DoctorContext
from .finding import Finding
from .sampler import accepts, sampler_class

__all__ = ['check_schedule', 'train_length']

# mmengine's INF: the ``end`` of a scheduler that is never cut.
_INF = int(1e9)
# Schedulers whose values depend on reaching ``end``: cut short, a warm-up
# never reaches the set lr and a decay never reaches its floor.
_RUN_TO_END = ('LinearLR', 'ConstantLR', 'CosineAnnealingLR', 'PolyLR',
               'QuadraticWarmupLR')


def _loop_by_epoch(train_cfg: Any) -> Optional[bool]:
    if train_cfg.get('type') is None:
        return train_cfg.get('by_epoch')
    return {'EpochBasedTrainLoop': True,
            'IterBasedTrainLoop': False}.get(cfg_type_name(train_cfg))


def _samples_per_process(ctx: DoctorContext, dataset: Any,
                         loader: dict) -> Tuple[Any, int, bool]:
    """The training sampler and how many samples one process draws an
    epoch: ``(sampler, samples, exact)``.

    The sampler is built as mmengine's runner builds it, so a sampler that
    changes the length of an epoch (``NegativeFractionSampler``) counts as
    it trains. One that takes ``rank`` and ``world_size`` gets the checked
    world size; any other sees this process's, and its length is scaled to
    the checked one (``exact`` is then False).
    """
    from mmdet.registry import DATA_SAMPLERS
    cfg = dict(loader.get('sampler') or dict(type='DefaultSampler'))
    default_args = dict(dataset=dataset, seed=0)
    if accepts(sampler_class(cfg), 'rank', 'world_size'):
        default_args.update(rank=0, world_size=ctx.world_size)
    sampler = DATA_SAMPLERS.build(cfg, default_args=default_args)
    built_for = (ctx.world_size if 'world_size' in default_args else
                 get_dist_info()[1])
    if built_for == ctx.world_size:
        return sampler, len(sampler), True
    return sampler, math.ceil(len(sampler) * built_for /
                              ctx.world_size), False


def _iters_per_epoch(ctx: DoctorContext) -> Tuple[Optional[int], str]:
    """Iterations per epoch from the training set, sampler and batch, and
    how they were counted (or why they were not)."""
    loader = ctx.cfg.get('train_dataloader') or {}
    if 'batch_size' not in loader:
        return None, ''
    what = 'training set'
    try:
        dataset = ctx.dataset('train')
        if dataset is None:
            return None, ''
        what = 'training sampler'
        sampler, samples, exact = _samples_per_process(ctx, dataset, loader)
        batch = int(loader['batch_size'])
        batch_cfg = loader.get('batch_sampler')
        if isinstance(batch_cfg, dict) and exact:
            from mmdet.registry import DATA_SAMPLERS
            iters = len(DATA_SAMPLERS.build(
                batch_cfg, default_args=dict(sampler=sampler,
                                             batch_size=batch)))
        else:
            drop_last = (batch_cfg or loader).get('drop_last', False)
            iters = (math.floor if drop_last else math.ceil)(samples / batch)
    except Exception as err:  # noqa: BLE001 - reported by the caller
        return None, (f'the {what} did not build: '
                      f'{type(err).__name__}: {err}'.splitlines()[0])
    how = (f'{len(dataset)} images / batch {batch} x '
           f'{ctx.world_size} process(es)')
    if samples != math.ceil(len(dataset) / ctx.world_size):
        how = (f'{type(sampler).__name__}: {samples} samples a process '
               f'from {how}')
    return max(1, iters), how


def train_length(ctx: DoctorContext) -> Optional[dict]:
    """The length of training in epochs and iterations.

    Args:
        ctx (DoctorContext): The config; the training set, when available,
            gives the iterations of an epoch-based loop.

    Returns:
        dict | None: ``by_epoch`` (the loop's kind), ``epochs`` (None for an
        iteration-based loop), ``iters`` (None when unknown) and ``how``
        (how the iterations were counted, or why they were not, or '' when
        the training set may not be built); None for a loop other than
        mmengine's epoch- and iteration-based ones.
    """
    train_cfg = ctx.cfg.get('train_cfg') or {}
    by_epoch = _loop_by_epoch(train_cfg)
    if by_epoch is None:
        return None
    if not by_epoch:
        iters = train_cfg.get('max_iters')
        return None if iters is None else dict(
            by_epoch=False, epochs=None, iters=int(iters),
            how=f'train_cfg.max_iters={iters}')
    epochs = train_cfg.get('max_epochs')
    if epochs is None:
        return None
    per_epoch, how = _iters_per_epoch(ctx)
    iters = None if per_epoch is None else int(epochs) * per_epoch
    if iters is not None:
        how = f'{epochs} epochs x {per_epoch} iterations ({how})'
    return dict(by_epoch=True, epochs=int(epochs), iters=iters, how=how)


def _schedulers(cfg: Any) -> Iterator[Tuple[dict, str]]:
    """``(scheduler, key)`` for every scheduler dict, including the dict of
    lists used with several optimizers."""
    schedulers = cfg.get('param_scheduler')
    if isinstance(schedulers, dict) and 'type' not in schedulers:
        for name, group in schedulers.items():
            many = isinstance(group, (list, tuple))
            for i, s in enumerate(group if many else [group]):
                yield s, f'param_scheduler.{name}' + (f'[{i}]' if many else '')
        return
    many = isinstance(schedulers, (list, tuple))
    for i, s in enumerate(schedulers if many else [schedulers]):
        if isinstance(s, dict):
            yield s, 'param_scheduler' + (f'[{i}]' if many else '')


def _linear_reached(s: dict, last: int) -> float:
    """LinearLR's factor at step ``last`` (mmengine's closed form)."""
    start = s.get('start_factor', 1.0 / 3)
    stop = s.get('end_factor', 1.0)
    span = s['end'] - s.get('begin', 0) - 1
    return start + (stop - start) * min(last, span) / max(span, 1)


def _check_one(s: dict, key: str, length: dict) -> List[Finding]:
    name = cfg_type_name(s, '?') or '?'
    what = f'{key} ({name})'
    by_epoch = s.get('by_epoch', True)
    if by_epoch and not length['by_epoch']:
        if s.get('convert_to_iter_based'):
            return []
        return [Finding(
            'schedule', 'warning',
            f'{what} is epoch-based (by_epoch=True) but training is '
            f'iteration-based ({length["how"]}): mmengine steps it only '
            'after the one "epoch" an IterBasedTrainLoop runs, so it never '
            'changes the lr',
            f'set {key}.by_epoch=False with begin/end/milestones in '
            'iterations', f'{key}.by_epoch')]
    if by_epoch:
        total, unit, how = (length['epochs'], 'epoch',
                            f'train_cfg.max_epochs={length["epochs"]}')
    else:
        total, unit, how = length['iters'], 'iteration', length['how']
    if total is None:
        return [Finding(
            'schedule', 'info',
            f'{what} counts iterations, which were not counted: '
            f'{length["how"]}', 'fix the training set to check it',
            f'{key}.end')] if length['how'] else []
    begin = s.get('begin', 0)
    end = s.get('end', total)
    if begin >= total:
        return [Finding(
            'schedule', 'warning',
            f'{what} begins at {unit} {begin} but training has {total} '
            f'{unit}s ({how}): it never runs',
            f'set {key}.begin below {total}, or lengthen training',
            f'{key}.begin')]
    findings = []
    milestones = s.get('milestones') or []
    late = [m for m in milestones if begin + m >= min(end, total)]
    if late:
        findings.append(Finding(
            'schedule', 'warning',
            f'{what} milestone(s) {late} come at or after the end of '
            f'training or of the scheduler (begin {begin}, end {end}; '
            f'training has {total} {unit}s: {how}): the lr never drops '
            'there',
            f'set {key}.milestones below {min(end, total) - begin} (mmdet\'s '
            '1x decays after 2/3 and 11/12 of training)',
            f'{key}.milestones'))
    if name in _RUN_TO_END and total < end < _INF:
        reached = ''
        if name == 'LinearLR':
            factor = _linear_reached(s, total - 1 - begin)
            reached = (f'; its factor ends at {factor:.3g} instead of '
                       f'{s.get("end_factor", 1.0):g}')
        findings.append(Finding(
            'schedule', 'warning',
            f'{what} runs to {unit} {end} but training stops at {total} '
            f'({how}): it is cut short{reached}',
            f'set {key}.end to at most {total} (a warm-up: a small fraction '
            'of training), or lengthen training', f'{key}.end'))
    return findings


def check_schedule(ctx: DoctorContext) -> List[Finding]:
    """Compare every parameter scheduler with the length of training.

    Finds schedulers that never run (``begin`` past the end), milestones
    that are never reached, warm-ups and decays cut short by the end of
    training, and epoch-based schedulers under an iteration-based loop
    (mmengine never steps them). Iteration-based schedulers under an
    epoch-based loop are checked only when the training set is available
    to count the iterations.

    Args:
        ctx (DoctorContext): The config and world size; the training set
            when it is built or may be.

    Returns:
        list[Finding]: A warning per problem, naming the scheduler key.
    """
    length = train_length(ctx)
    if length is None:
        return []
    findings = []
    for s, key in _schedulers(ctx.cfg):
        findings += _check_one(s, key, length)
    return findings
