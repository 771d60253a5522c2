"""Check an EMA of the weights against the length of training.

mmengine's ``EMAHook`` validates and saves the averaged weights. Its
momentum defaults come from long COCO schedules: YOLOX's ``ExpMomentumEMA``
(momentum 0.0002, gamma 2000) anneals over thousands of iterations, and the
plain ``ExponentialMovingAverage`` at momentum 0.0002 averages over about
5000. On a fine-tune of a few hundred iterations the first is still the raw
weights at the end, and the second is still mostly the model as the average
began (for ``begin_iter=0`` the pretrained, untrained detector). Neither
fails, so this check computes what the average is made of at the end.
"""
import math
from typing import List, Optional, Tuple

import numpy as np

from rcnn_plugin.utils.config_types import cfg_type_name

from .context import DoctorContext
from .finding import Finding
from .schedule import train_length

__all__ = ['check_ema', 'ema_momenta']

# Above this, the average still holds that much of the model as it began.
_MAX_START_SHARE = 0.1
# Above this, the last update alone makes up that much of the average.
_MAX_LAST_SHARE = 0.5
# mmengine's and mmdet's default gamma of the annealed averages.
_GAMMA = {'ExpMomentumEMA': 2000, 'MomentumAnnealingEMA': 100}
_KNOWN = ('ExponentialMovingAverage', *_GAMMA)


def ema_momenta(ema: dict, updates: int) -> Optional[np.ndarray]:
    """The momentum of each update of mmengine's averaged models.

    The first call of ``update_parameters`` copies the weights; the calls
    ``s = interval, 2 * interval, ... < updates`` then average with the
    momentum returned here.

    Args:
        ema (dict): ``EMAHook`` keyword arguments: ``ema_type``,
            ``momentum``, ``gamma``, ``interval``.
        updates (int): Calls of ``update_parameters`` (one per iteration
            from the EMA's start).

    Returns:
        np.ndarray | None: One momentum per averaging update; None for an
        averaged model whose rule is not known here.
    """
    kind = cfg_type_name(ema, '') or 'ExponentialMovingAverage'
    momentum = float(ema.get('momentum', 0.0002))
    steps = np.arange(int(ema.get('interval', 1)), updates,
                      int(ema.get('interval', 1)), dtype=np.float64)
    if kind == 'ExponentialMovingAverage':
        return np.full_like(steps, momentum)
    if kind == 'ExpMomentumEMA':
        gamma = float(ema.get('gamma', _GAMMA[kind]))
        return (1 - momentum) * np.exp(-(1 + steps) / gamma) + momentum
    if kind == 'MomentumAnnealingEMA':
        gamma = float(ema.get('gamma', _GAMMA[kind]))
        return np.maximum(momentum, gamma / (gamma + steps))
    return None


def _shares(args: dict, updates: int) -> Tuple[float, float]:
    """``(start, last)``: the share of the weights as the EMA began, and of
    the last update, in the average after ``updates`` calls."""
    momenta = ema_momenta(args, updates)
    if not len(momenta):
        return 1.0, 0.0
    return float(np.prod(1 - momenta)), float(momenta[-1])


def _fits(args: dict, updates: int) -> bool:
    start, last = _shares(args, updates)
    return start <= _MAX_START_SHARE and last <= _MAX_LAST_SHARE


def _round_up(value: float) -> float:
    """``value`` rounded up to two significant digits."""
    scale = 10**(math.floor(math.log10(value)) - 1)
    return math.ceil(value / scale - 1e-9) * scale


def _fix(args: dict, kind: str, key: str, updates: int) -> Tuple[str, str]:
    """A value of the average's own parameter that passes both limits."""
    steps = int(args.get('interval', 1))
    averaging = len(range(steps, updates, steps))
    tries = []
    if kind in _GAMMA:  # the largest gamma of a halving series that passes
        top = (updates // 4 if kind == 'ExpMomentumEMA' else
               int(0.05 / 0.95 * (averaging * steps)))
        tries = [('gamma', top >> k) for k in range(max(top, 1).bit_length())]
    # Else a constant momentum under which the start weighs 1 %.
    tries.append(('momentum', _round_up(1 - 0.01**(1 / averaging))))
    for name, value in tries:
        if value > 0 and _fits(dict(args, **{name: value}), updates):
            return f'set {key}.{name}={value:g}', f'{key}.{name}'
    return (f'remove the EMAHook or train longer: {averaging} averaging '
            'updates are too few for an average of the weights', key)


def _check_hook(hook: dict, key: str, length: dict) -> List[Finding]:
    args = dict(hook, type=hook.get('ema_type', 'ExponentialMovingAverage'))
    kind = cfg_type_name(args)
    if kind not in _KNOWN:
        return []
    momentum, interval = args.get('momentum', 0.0002), args.get('interval', 1)
    if not 0 < float(momentum) < 1 or int(interval) < 1:
        return [Finding(
            'ema', 'error',
            f'{key} has momentum {momentum} and interval {interval}: '
            'mmengine needs 0 < momentum < 1 and interval >= 1',
            f'set {key}.momentum inside (0, 1) and {key}.interval >= 1',
            f'{key}.momentum' if int(interval) >= 1 else f'{key}.interval')]
    # EMAHook starts at the first iteration where iter + 1 >= begin_iter
    # and epoch + 1 >= begin_epoch; an IterBasedTrainLoop has one epoch.
    if hook.get('begin_epoch', 0) > 0:
        unit, field, begin = 'epoch', 'begin_epoch', int(hook['begin_epoch'])
        limit = length['epochs'] if length['by_epoch'] else 1
        per_epoch = length['iters'] // limit
    else:
        unit, field, begin = ('iteration', 'begin_iter',
                              int(hook.get('begin_iter', 0)))
        limit = length['iters']
        per_epoch = 1
    if begin > limit:
        return [Finding(
            'ema', 'error',
            f'{key} begins at {unit} {begin} but training has {limit} '
            f'{unit}{"s" * (limit != 1)} ({length["how"]}): mmengine\'s '
            'EMAHook refuses it when training starts',
            f'set {key}.{field} to at most {limit}', f'{key}.{field}')]
    start = max(begin - 1, 0) * per_epoch
    updates = length['iters'] - start
    what = f'{key} ({kind}, momentum {float(momentum):g}'
    if kind in _GAMMA:
        what += f', gamma {float(args.get("gamma", _GAMMA[kind])):g}'
    what += (f') averages {updates} iterations from iteration {start} '
             f'({length["how"]})')
    if not range(int(interval), updates, int(interval)):
        return [Finding(
            'ema', 'warning',
            f'{what} with interval {interval}: it makes no averaging '
            f'update, so the average is the weights of iteration {start}',
            f'set {key}.interval below {updates}, or begin the EMA earlier',
            f'{key}.interval')]
    start_share, last = _shares(args, updates)
    if start_share > _MAX_START_SHARE:
        return [Finding(
            'ema', 'warning',
            f'{what}: at the end {start_share:.0%} of the average is still '
            'the model as the EMA began, and validation and the checkpoint '
            'use the average', *_fix(args, kind, key, updates))]
    if last > _MAX_LAST_SHARE:
        return [Finding(
            'ema', 'warning',
            f'{what}: its momentum ends at {last:.2f}, so the last '
            f'iteration alone is {last:.0%} of the average: it is close to '
            'the raw weights, not an average', *_fix(args, kind, key,
                                                      updates))]
    return []


def check_ema(ctx: DoctorContext) -> List[Finding]:
    """Check every ``EMAHook`` in ``custom_hooks`` against the length of
    training.

    Warns when, at the last iteration, more than 10 % of the average is
    still the model as the EMA began, or when the last update alone makes
    up more than half of it (the average is then the raw weights). Averaged
    models other than mmengine's and mmdet's are not checked, nor is an
    EMA when the iterations could not be counted.

    Args:
        ctx (DoctorContext): The config; the training set, when available,
            gives the iterations of an epoch-based loop.

    Returns:
        list[Finding]: A warning per EMA, naming the hook key to change.
    """
    hooks = [(h, f'custom_hooks[{i}]')
             for i, h in enumerate(ctx.cfg.get('custom_hooks') or [])
             if isinstance(h, dict) and cfg_type_name(h) == 'EMAHook']
    if not hooks:
        return []
    length = train_length(ctx)
    if length is None or not length['iters'] or (
            length['by_epoch'] and not length['epochs']):
        return []
    findings = []
    for hook, key in hooks:
        findings += _check_hook(hook, key, length)
    return findings

