"""The EMA check: what an ``EMAHook``'s average is made of at the end."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.models.layers import ExpMomentumEMA
from mmengine.config import Config
from mmengine.model import ExponentialMovingAverage, MomentumAnnealingEMA

from rcnn_plugin.config_doctor import (
    ema_momenta,
    prepare_registries,
    run_checks,
)

from conftest import REPO

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
EMA_LEVER = osp.join(REPO, 'configs', 'bccd_ablation',
                     'faster-rcnn_mobilenetv2_fpn-128_ema-8e_bccd.py')
_cache = {}


@pytest.mark.parametrize('model_cls, kwargs', [
    (ExponentialMovingAverage, dict(momentum=0.3)),
    (ExpMomentumEMA, dict(momentum=0.05, gamma=3)),
    (MomentumAnnealingEMA, dict(momentum=0.1, gamma=2)),
    (ExpMomentumEMA, dict(momentum=0.05, gamma=3, interval=2)),
])
def test_momenta_are_mmengine_s(model_cls, kwargs):
    """The share of the first weights in the average, from the momenta, is
    the one mmengine's averaged models really keep: the first update copies
    1.0, every later one averages in 0.0."""
    updates = 9
    source = torch.nn.Linear(1, 1, bias=False)
    averaged = model_cls(source, **kwargs)
    for step in range(updates):
        source.weight.data.fill_(1.0 if step == 0 else 0.0)
        averaged.update_parameters(source)
    kind = model_cls.__name__
    momenta = ema_momenta(dict(kwargs, type=kind), updates)
    assert len(momenta) == (updates - 1) // kwargs.get('interval', 1)
    assert np.prod(1 - momenta) == pytest.approx(
        averaged.module.weight.item(), rel=1e-5)


def test_unknown_average_is_not_modelled():
    assert ema_momenta(dict(type='StochasticWeightAverage'), 10) is None


@pytest.fixture
def demo(synthetic_cells):
    """The demo config (4 epochs x 2 iterations = 8) with ``hook`` added
    to its custom hooks."""
    if 'cfg' not in _cache:
        _cache['cfg'] = Config.fromfile(DEMO)
        prepare_registries(_cache['cfg'])

    def make(**hook):
        cfg = copy.deepcopy(_cache['cfg'])
        cfg.train_dataloader.dataset.data_root = synthetic_cells + '/'
        cfg.custom_hooks = list(cfg.custom_hooks) + [
            dict(dict(type='EMAHook'), **hook)]
        return cfg
    return make


def _ema(cfg):
    found = run_checks(cfg, checks=['ema'])
    assert all(f.check == 'ema' and f.severity == 'warning' for f in found)
    return found


def test_yolox_annealing_on_a_short_run_is_the_raw_weights(demo):
    cfg = demo(ema_type='ExpMomentumEMA', momentum=0.0002)
    found = _ema(cfg)
    assert len(found) == 1
    key = f'custom_hooks[{len(cfg.custom_hooks) - 1}]'
    assert 'momentum 0.0002, gamma 2000' in found[0].message
    assert 'averages 8 iterations from iteration 0' in found[0].message
    assert 'its momentum ends at 1.00' in found[0].message
    # No gamma fits 7 averaging updates: a small one keeps the start.
    assert found[0].fix.startswith('remove the EMAHook or train longer')
    assert found[0].key == key


def test_slow_plain_average_keeps_the_start(demo):
    found = _ema(demo(momentum=0.0002))  # mmengine's default average
    assert [f.key[-9:] for f in found] == ['.momentum']
    assert '100% of the average is still the model as the EMA' in \
        found[0].message
    # 7 averaging updates: 1 - 0.01 ** (1 / 7) = 0.48, rounded up.
    assert found[0].fix.endswith('.momentum=0.49')


@pytest.fixture
def iters():
    """A config of ``n`` iterations (IterBasedTrainLoop: counted without
    the training set) with one EMAHook."""
    cfg = Config.fromfile(DEMO)
    prepare_registries(cfg)

    def make(n, **hook):
        out = copy.deepcopy(cfg)
        out.train_cfg = dict(type='IterBasedTrainLoop', max_iters=n,
                             val_interval=n)
        out.custom_hooks = [dict(dict(type='EMAHook'), **hook)]
        return out
    return make


def _ema_iters(cfg):
    found = run_checks(cfg, checks=['ema'], skip_data=True)
    assert all(f.check == 'ema' for f in found)
    return found


@pytest.mark.parametrize('hook, fix', [
    (dict(ema_type='ExpMomentumEMA', momentum=0.0002), 'gamma=104'),
    (dict(ema_type='mmdet.ExpMomentumEMA', momentum=0.0002), 'gamma=104'),
    (dict(ema_type=ExpMomentumEMA, momentum=0.0002), 'gamma=104'),
    (dict(momentum=0.0002), 'momentum=0.012'),
    (dict(ema_type='MomentumAnnealingEMA', momentum=0.0002, gamma=1000),
     'gamma=21'),
    # No gamma helps a momentum that is itself too large.
    (dict(ema_type='ExpMomentumEMA', momentum=0.7, gamma=50),
     'momentum=0.012'),
])
def test_the_fix_passes_the_check(iters, hook, fix):
    """Over BCCD's 416 iterations each default average is flagged, and the
    value the fix names passes."""
    found = _ema_iters(iters(416, **hook))
    assert [f.severity for f in found] == ['warning']
    assert found[0].fix == f'set custom_hooks[0].{fix}'
    name, value = fix.split('=')
    assert _ema_iters(iters(416, **dict(hook, **{name: float(value)}))) \
        == []


def test_begin_iter_shortens_the_average(iters):
    # EMAHook starts where iter + 1 >= begin_iter: iteration 4 of 0..7.
    found = _ema_iters(iters(8, momentum=0.3, begin_iter=5))
    assert 'averages 4 iterations from iteration 4' in found[0].message
    assert '34% of the average' in found[0].message  # 0.7 ** 3


@pytest.mark.parametrize('hook, key, text', [
    (dict(begin_iter=9), 'begin_iter', 'begins at iteration 9 but '
     'training has 8 iterations'),
    (dict(begin_epoch=2), 'begin_epoch', 'begins at epoch 2 but training '
     'has 1 epoch'),
    (dict(momentum=1), 'momentum', 'needs 0 < momentum < 1'),
    (dict(interval=0), 'interval', 'and interval >= 1'),
])
def test_hook_mmengine_refuses_is_an_error(iters, hook, key, text):
    found = _ema_iters(iters(8, **dict(dict(momentum=0.3), **hook)))
    assert [(f.severity, f.key) for f in found] == [
        ('error', f'custom_hooks[0].{key}')]
    assert text in found[0].message


def test_interval_past_the_end_never_averages(iters):
    found = _ema_iters(iters(8, momentum=0.3, interval=8))
    assert found[0].key == 'custom_hooks[0].interval'
    assert 'makes no averaging update' in found[0].message


@pytest.mark.parametrize('hook', [
    dict(momentum=0.5),
    dict(type='mmdet.EMAHook', ema_type='mmdet.ExpMomentumEMA',
         momentum=0.2, gamma=2),
    dict(ema_type='StochasticWeightAverage'),
])
def test_fitting_or_unknown_average_is_clean(demo, hook):
    assert _ema(demo(**hook)) == []


def test_scoped_hook_is_checked(demo):
    assert len(_ema(demo(type='mmdet.EMAHook', momentum=0.0002))) == 1


def test_begin_epoch_shortens_the_average(demo):
    # From epoch 4 of 4 (2 iterations an epoch): 2 updates, one averaging.
    found = _ema(demo(momentum=0.3, begin_epoch=4))
    assert 'averages 2 iterations from iteration 6' in found[0].message
    assert '70% of the average' in found[0].message


def test_bccd_ema_lever_fits_its_416_iterations():
    """The lever's hook, over BCCD's 8 epochs x 52 iterations, and the
    YOLOX values it replaced."""
    hook = Config.fromfile(EMA_LEVER).custom_hooks[-1]
    args = dict(hook, type=hook['ema_type'])
    assert ema_momenta(args, 416)[-1] == pytest.approx(0.025, abs=1e-3)
    yolox = dict(args, momentum=0.0002, gamma=2000)
    assert ema_momenta(yolox, 416)[-1] == pytest.approx(0.81, abs=0.01)
