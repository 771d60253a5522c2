"""The sampler check, and the schedule check counting a sampler's epoch."""
import copy
import json
import os.path as osp

import pytest
from mmdet.datasets.samplers import AspectRatioBatchSampler
from mmengine.config import Config

from rcnn_plugin.config_doctor import (
    DoctorContext,
    prepare_registries,
    run_checks,
)
from rcnn_plugin.datasets.samplers import (
    NegativeFractionSampler,
    is_negative_image,
)

from conftest import REPO

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
NEG = dict(type='NegativeFractionSampler', batch_size=4, neg_fraction=0.5)
_cache = {}


def _coco(path, sizes, positive):
    """A COCO file (no pixels needed): image i is ``sizes[i]`` (w, h) and
    holds one box when ``positive[i]``."""
    images = [dict(id=i, file_name=f'{i}.png', width=w, height=h)
              for i, (w, h) in enumerate(sizes)]
    anns = [dict(id=i, image_id=i, category_id=1, bbox=[1, 1, 10, 10],
                 area=100, iscrowd=0)
            for i, pos in enumerate(positive) if pos]
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='cell')]), f)
    return str(path)


@pytest.fixture
def config(tmp_path):
    """The demo config on 8 images, 4 with an object and 4 without:
    ``make(tall=k, sampler=..., **loader)`` makes the last k images tall."""
    if 'cfg' not in _cache:
        _cache['cfg'] = Config.fromfile(DEMO)
        prepare_registries(_cache['cfg'])

    def make(tall=0, sampler=NEG, **loader):
        sizes = [(96, 64)] * (8 - tall) + [(64, 96)] * tall
        ann = _coco(tmp_path / f'tall{tall}.json', sizes, [1, 0] * 4)
        cfg = copy.deepcopy(_cache['cfg'])
        cfg.train_dataloader.update(sampler=sampler, **loader)
        cfg.train_dataloader.dataset.update(
            data_root=str(tmp_path), ann_file=ann,
            metainfo=dict(classes=('cell', )),
            filter_cfg=dict(filter_empty_gt=False))
        return cfg
    return make


def _sampler(cfg, **kwargs):
    return [(f.severity, f.key, f.message)
            for f in run_checks(cfg, checks=['sampler'], **kwargs)]


def test_batch_size_must_be_the_loader_s(config):
    found = _sampler(config(sampler=dict(NEG, batch_size=2),
                            batch_sampler=None))
    assert [f[:2] for f in found] == [
        ('error', 'train_dataloader.sampler.batch_size')]
    assert 'lays out batches of 2 but train_dataloader.batch_size is 4' \
        in found[0][2]
    missing = {k: v for k, v in NEG.items() if k != 'batch_size'}
    found = _sampler(config(sampler=missing, batch_sampler=None))
    assert 'has no batch_size' in found[0][2]
    assert _sampler(config(batch_sampler=None)) == []


def test_aspect_ratio_batch_sampler(config):
    # The demo inherits mmdet's AspectRatioBatchSampler: harmless while
    # every image is wide, a warning once some are tall.
    assert _sampler(config(tall=0)) == []
    found = _sampler(config(tall=3))
    assert [f[:2] for f in found] == [
        ('warning', 'train_dataloader.batch_sampler')]
    assert '3 tall (w < h) and 5 wide images' in found[0][2]
    assert 'set train_dataloader.batch_sampler=None' in run_checks(
        config(tall=3), checks=['sampler'])[0].fix
    # Without the training set the groups are unknown: still warned.
    found = _sampler(config(tall=0), skip_data=True)
    assert 'regroups the stream by aspect ratio' in found[0][2]


def test_samplers_that_lay_no_batches_are_not_checked(config):
    cfg = config(tall=3, sampler=dict(type='DefaultSampler', shuffle=True))
    assert _sampler(cfg) == []


def test_the_warning_is_real(config):
    """AspectRatioBatchSampler really breaks the fraction on mixed aspect
    ratios: the batches the loader yields are not the sampler's."""
    ctx = DoctorContext(config(tall=3))
    dataset = ctx.dataset('train')
    sampler = NegativeFractionSampler(dataset, batch_size=4,
                                      neg_fraction=0.5, seed=0,
                                      rank=0, world_size=1)

    def negatives(batches):
        return [sum(is_negative_image(dataset.get_data_info(i)) for i in b)
                for b in batches]

    order = list(sampler)
    laid = [order[i:i + 4] for i in range(0, len(order), 4)]
    assert negatives(laid) == [2] * len(laid)
    regrouped = list(AspectRatioBatchSampler(sampler, batch_size=4))
    assert sorted(map(sorted, regrouped)) != sorted(map(sorted, laid))
    assert negatives(regrouped) != [2] * len(regrouped)


def test_schedule_counts_the_sampler_s_epoch(config):
    """NegativeFractionSampler at 0.75 on 4 positives: 4 batches of one
    positive and three negatives an epoch, 16 samples, not 8."""
    sampler = dict(NEG, neg_fraction=0.75)
    warmup = [dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                   end=20)]
    cfg = config(sampler=sampler, batch_sampler=None)
    cfg.param_scheduler = warmup
    found = run_checks(cfg, checks=['schedule'])
    assert 'training stops at 16' in found[0].message  # 4 epochs x 4
    assert ('NegativeFractionSampler: 16 samples a process from 8 images / '
            'batch 4 x 1 process(es)') in found[0].message
    # Two processes split the 4 batches of each step: 2 iterations each.
    found = run_checks(cfg, checks=['schedule'], world_size=2)
    assert 'training stops at 8' in found[0].message
    cfg.param_scheduler = [dict(warmup[0], end=16)]
    assert run_checks(cfg, checks=['schedule']) == []


def test_schedule_says_when_the_sampler_does_not_build(config):
    """Negatives asked of a set without any: the sampler raises, and the
    schedule check says so instead of counting a wrong epoch."""
    cfg = config(batch_sampler=None)
    cfg.train_dataloader.dataset.filter_cfg = dict(filter_empty_gt=True)
    cfg.param_scheduler = [dict(type='LinearLR', by_epoch=False, end=20)]
    found = run_checks(cfg, checks=['schedule'])
    assert [(f.severity, f.key) for f in found] == [
        ('info', 'param_scheduler[0].end')]
    assert ('the training sampler did not build: ValueError: '
            'NegativeFractionSampler') in found[0].message
