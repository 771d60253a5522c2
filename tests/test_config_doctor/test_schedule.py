"""The schedule check: schedulers against the length of training."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim.scheduler import LinearLR

from rcnn_plugin.config_doctor import (
    DoctorContext,
    prepare_registries,
    run_checks,
    train_length,
)

from conftest import REPO

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
# mmdet's schedule_1x, as a fine-tune inherits it.
COCO_1X = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
_cache = {}


@pytest.fixture
def demo(synthetic_cells):
    """The demo config (4 epochs, batch 4) on the 8-image dataset: 2
    iterations an epoch, 8 in all."""
    if 'cfg' not in _cache:
        _cache['cfg'] = Config.fromfile(DEMO)
        prepare_registries(_cache['cfg'])

    def make(param_scheduler, **train_cfg):
        cfg = copy.deepcopy(_cache['cfg'])
        cfg.train_dataloader.dataset.data_root = synthetic_cells + '/'
        cfg.param_scheduler = param_scheduler
        cfg.train_cfg.update(train_cfg)
        return cfg
    return make


def _schedule(cfg, **kwargs):
    return [(f.severity, f.key, f.message)
            for f in run_checks(cfg, checks=['schedule'], **kwargs)]


def test_demo_schedule_is_clean():
    cfg = Config.fromfile(DEMO)
    prepare_registries(cfg)
    assert _schedule(cfg, skip_data=True) == []


def test_coco_1x_on_a_short_fine_tune(demo):
    found = _schedule(demo(COCO_1X))
    assert [f[:2] for f in found] == [
        ('warning', 'param_scheduler[0].end'),
        ('warning', 'param_scheduler[1].milestones')]
    warmup, decay = found[0][2], found[1][2]
    assert 'runs to iteration 500 but training stops at 8' in warmup
    assert '4 epochs x 2 iterations (8 images / batch 4 x 1' in warmup
    assert 'milestone(s) [8, 11]' in decay
    assert 'the lr never drops' in decay


def test_cut_short_warmup_factor_is_mmengine_s(demo):
    """The reported factor is the one mmengine's LinearLR really reaches
    in the last iteration."""
    param = torch.nn.Parameter(torch.zeros(1))
    optim = torch.optim.SGD([param], lr=1.0)
    sched = LinearLR(optim, start_factor=0.001, by_epoch=False, end=500)
    for _ in range(7):  # 8 iterations: the last one runs after 7 steps
        optim.step()
        sched.step()
    reached = optim.param_groups[0]['lr']
    found = _schedule(demo(COCO_1X[:1]))
    assert f'its factor ends at {reached:.3g} instead of 1' in found[0][2]


@pytest.mark.parametrize('kind', ['mmengine.LinearLR', LinearLR])
def test_scoped_or_class_type_is_checked(demo, kind):
    """A scheduler named with its scope, or by its class (pure-Python
    configs), is checked as the bare name is."""
    found = _schedule(demo([dict(COCO_1X[0], type=kind)]))
    assert [f[:2] for f in found] == [('warning', 'param_scheduler[0].end')]
    assert '(LinearLR)' in found[0][2]
    assert 'its factor ends at' in found[0][2]


def test_processes_shorten_an_epoch(demo):
    warmup = [dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                   end=6)]
    assert _schedule(demo(warmup)) == []  # 8 iterations
    found = _schedule(demo(warmup), world_size=2)  # 4 iterations
    assert 'training stops at 4' in found[0][2]
    assert 'x 2 process(es)' in found[0][2]


def test_milestones_inside_training_and_scheduler_end(demo):
    steps = dict(type='MultiStepLR', by_epoch=True, milestones=[3])
    assert _schedule(demo([steps])) == []
    # Epoch 4 of 4 is never reached; nor is a milestone past its own end.
    assert [f[1] for f in _schedule(demo([dict(steps, milestones=[4])]))
            ] == ['param_scheduler[0].milestones']
    found = _schedule(demo([dict(steps, begin=1, end=3, milestones=[2])]))
    assert 'milestone(s) [2]' in found[0][2]


def test_scheduler_that_never_runs(demo):
    found = _schedule(demo([dict(type='CosineAnnealingLR', by_epoch=True,
                                 begin=4, end=8)]))
    assert [f[:2] for f in found] == [('warning', 'param_scheduler[0].begin')]
    assert 'it never runs' in found[0][2]


def test_decay_cut_short(demo):
    cosine = dict(type='CosineAnnealingLR', by_epoch=True, begin=0)
    assert _schedule(demo([dict(cosine, end=4)])) == []
    found = _schedule(demo([dict(cosine, end=12)]))
    assert [f[1] for f in found] == ['param_scheduler[0].end']
    assert 'runs to epoch 12 but training stops at 4' in found[0][2]


def test_epoch_scheduler_under_iteration_loop(demo):
    cfg = demo([dict(type='MultiStepLR', by_epoch=True, milestones=[8])])
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=100)
    found = _schedule(cfg, skip_data=True)
    assert [f[:2] for f in found] == [
        ('warning', 'param_scheduler[0].by_epoch')]
    assert 'never changes the lr' in found[0][2]
    cfg.param_scheduler[0].convert_to_iter_based = True
    assert _schedule(cfg, skip_data=True) == []
    # In iterations it is checked against max_iters.
    cfg.param_scheduler = dict(type='MultiStepLR', by_epoch=False,
                               milestones=[100])
    assert 'training has 100 iterations' in _schedule(cfg)[0][2]


def test_loop_kinds():
    def length(train_cfg):
        return train_length(DoctorContext(Config(dict(train_cfg=train_cfg)),
                                          build_datasets=False))
    assert length(dict(by_epoch=False, max_iters=9))['iters'] == 9
    assert length(dict(type='EpochBasedTrainLoop', max_epochs=3)) == dict(
        by_epoch=True, epochs=3, iters=None, how='')
    # A scoped loop name is read as its class name.
    assert length(dict(type='mmengine.IterBasedTrainLoop', max_iters=9)
                  )['iters'] == 9
    assert length(dict(type='MyLoop', max_epochs=3)) is None
    assert length({}) is None


def test_several_optimizers(demo):
    cfg = demo(dict(generator=[dict(type='MultiStepLR', milestones=[9])],
                    discriminator=dict(type='MultiStepLR', milestones=[1])))
    assert [f[1] for f in _schedule(cfg, skip_data=True)] == [
        'param_scheduler.generator[0].milestones']


def test_iterations_without_the_training_set(demo, tmp_path):
    cfg = demo(COCO_1X)
    # --skip-data: epochs are checked, iterations are not counted.
    assert [f[1] for f in _schedule(cfg, skip_data=True)] == [
        'param_scheduler[1].milestones']
    # A training set that does not build: said, not skipped silently.
    cfg.train_dataloader.dataset.ann_file = str(tmp_path / 'missing.json')
    found = _schedule(cfg)
    assert found[0][:2] == ('info', 'param_scheduler[0].end')
    assert 'the training set did not build' in found[0][2]


@pytest.mark.parametrize(
    'path', sorted(glob.glob(osp.join(REPO, 'configs', '*', '*.py'))),
    ids=lambda p: osp.relpath(p, REPO))
def test_configs_schedules_are_clean(path):
    """No config of ours stops before its own warm-up or milestones (the
    epoch-level part: the datasets are not built here)."""
    cfg = Config.fromfile(path)
    prepare_registries(cfg)
    assert _schedule(cfg, skip_data=True) == []
