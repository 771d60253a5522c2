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
from typing import List, Optional

import numpy as np

from .context import DoctorContext
from .finding import Finding
from .schedule import _type_name, train_length

__all__ = ['check_ema', 'ema_momenta']

# Above this, the average still holds that much of the model as it began.
_MAX_START_SHARE = 0.1
# Above this, the last update alone makes up that much of the average.
_MAX_LAST_SHARE = 0.5
# mmengine's and mmdet's default gamma of the annealed averages.
_GAMMA = {'ExpMomentumEMA': 2000, 'MomentumAnnealingEMA': 100}


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
    kind = _type_name(ema, '') or 'ExponentialMovingAverage'
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


def _check_hook(hook: dict, key: str, length: dict) -> List[Finding]:
    args = dict(hook, type=hook.get('ema_type', 'ExponentialMovingAverage'))
    kind = _type_name(args)
    start = max(int(hook.get('begin_iter', 0)) - 1, 0)
    if length['by_epoch'] and hook.get('begin_epoch', 0):
        per_epoch = length['iters'] // length['epochs']
        start = max(start, (int(hook['begin_epoch']) - 1) * per_epoch)
    updates = length['iters'] - start
    momenta = ema_momenta(args, updates)
    if momenta is None or updates <= 0:
        return []
    what = f'{key} ({kind}, momentum {args.get("momentum", 0.0002):g}'
    if kind in _GAMMA:
        what += f', gamma {args.get("gamma", _GAMMA[kind]):g}'
    what += ')'
    span = (f'{updates} iterations from iteration {start} '
            f'({length["how"]})')
    start_share = float(np.exp(np.log1p(-np.minimum(momenta, 1)).sum()))
    if start_share > _MAX_START_SHARE:
        needed = 1 - 0.01**(1 / max(len(momenta), 1))
        return [Finding(
            'ema', 'warning',
            f'{what} averages {span}: at the end {start_share:.0%} of the '
            'average is still the model as the EMA began, and validation '
            'and the checkpoint use the average',
            f'raise {key}.momentum to at least {needed:.2g} (the start then '
            'weighs under 1 %), or set begin_iter later',
            f'{key}.momentum')]
    last = float(momenta[-1]) if len(momenta) else 1.0
    if last > _MAX_LAST_SHARE:
        fix = {'ExpMomentumEMA': (
            f'set {key}.gamma to at most {max(updates // 4, 1)} (a quarter '
            'of the averaged iterations)', f'{key}.gamma'),
               'MomentumAnnealingEMA': (
            f'set {key}.gamma to at most {max(updates // 20, 1)} (its '
            'momentum then ends under 0.05)', f'{key}.gamma')}.get(
            kind, (f'lower {key}.momentum', f'{key}.momentum'))
        return [Finding(
            'ema', 'warning',
            f'{what} averages {span}: its momentum ends at {last:.2f}, so '
            f'the last iteration alone is {last:.0%} of the average: it is '
            'close to the raw weights, not an average', fix[0], fix[1])]
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
             if isinstance(h, dict) and _type_name(h) == 'EMAHook']
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

