"""The three TFA steps end to end on the tiny synthetic smears.

base training (rbc) -> fewshot_surgery.py (prototype rows for wbc and
platelet, cosine head) -> 1-shot fine-tuning of fc_cls / fc_reg and the
RPN's rpn_cls / rpn_reg only.
"""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from rcnn_plugin.engine import load_checkpoint_safely

from conftest import REPO, run_tool

pytestmark = pytest.mark.slow

CFG_DIR = osp.join(REPO, 'configs', 'bccd_fewshot')
SHRINK = """
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)
model = dict(
    backbone=dict(widen_factor=0.25, init_cfg=None),
    neck=dict(in_channels=[8, 8, 24, 1280], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=32)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=50),
                   rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=50)))
cells = dict(
    _delete_=True, type='SyntheticCellsDataset', data_root='{root}/',
    ann_file='annotations/train.json', data_prefix=dict(img=''),
    pipeline=[dict(type='LoadImageFromFile'),
              dict(type='LoadAnnotations', with_bbox=True),
              dict(type='PackDetInputs')])
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
optim_wrapper = dict(optimizer=dict(lr=0.001))
"""
BASE = """
_base_ = '{cfg}'
""" + SHRINK + """
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(classes=('rbc', ), dataset=cells))
train_cfg = dict(max_epochs=1, val_interval=10)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""
FINE = """
_base_ = '{cfg}'
""" + SHRINK + """
load_from = '{ckpt}'
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(split_file='{split}', dataset=cells))
train_cfg = dict(max_iters=2, val_interval=10)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
"""


def surgery_tool():
    """tools/model_converters/fewshot_surgery.py as a module."""
    path = osp.join(REPO, 'tools', 'model_converters', 'fewshot_surgery.py')
    spec = importlib.util.spec_from_file_location('fewshot_surgery', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(tmp_path, name, text, **kw):
    path = tmp_path / name
    path.write_text(text.format(**kw))
    return str(path)


def test_base_surgery_fine_tune(tmp_path, synthetic_cells, capsys):
    base_cfg = _write(
        tmp_path, 'base.py', BASE, root=synthetic_cells,
        cfg=osp.join(CFG_DIR,
                     'faster-rcnn_mobilenetv2_fpn-128_base-training_bccd.py'))
    run_tool(['tools/train.py', base_cfg, '--work-dir',
              str(tmp_path / 'base')])
    base = load_checkpoint_safely(str(tmp_path / 'base' / 'epoch_1.pth'))
    assert base['meta']['dataset_meta']['classes'] == ('rbc', )
    base_sd = base['state_dict']
    assert base_sd['roi_head.bbox_head.fc_cls.weight'].shape == (2, 32)

    surgery = str(tmp_path / 'surgery.pth')
    split = str(tmp_path / 'splits' / '{shots}shot_seed{seed}.json')
    fine_cfg = _write(
        tmp_path, 'fine.py', FINE, root=synthetic_cells, ckpt=surgery,
        split=split, cfg=osp.join(
            CFG_DIR, 'faster-rcnn_mobilenetv2_fpn-128_cos_'
            'fine-tuning_1shot_bccd.py'))
    # In-process (a subprocess would re-import mmdet: ~15 s here).
    assert surgery_tool().main([
        str(tmp_path / 'base' / 'epoch_1.pth'), surgery, '--classes', 'rbc',
        'wbc', 'platelet', '--cosine', '--init', 'prototype', '--config',
        fine_cfg]) == 0
    assert 'wbc: prototype of 1 box(es)' in capsys.readouterr().out
    sd = torch.load(surgery, weights_only=True)['state_dict']
    w, bw = sd['roi_head.bbox_head.fc_cls.weight'], base_sd[
        'roi_head.bbox_head.fc_cls.weight']
    assert 'roi_head.bbox_head.fc_cls.bias' not in sd
    assert torch.equal(w[0], bw[0]) and torch.equal(w[3], bw[1])
    torch.testing.assert_close(w[1:3].norm(dim=1), bw[:1].norm(dim=1).expand(
        2))
    assert sd['roi_head.bbox_head.fc_reg.weight'].shape == (12, 32)
    picked = json.load(open(str(tmp_path / 'splits' / '1shot_seed0.json')))
    assert {k: sum(len(e['instances']) for e in v)
            for k, v in picked['images'].items()} == dict(
                rbc=1, wbc=1, platelet=1)

    run_tool(['tools/train.py', fine_cfg, '--work-dir',
              str(tmp_path / 'fine')])
    fine = load_checkpoint_safely(str(tmp_path / 'fine' / 'iter_2.pth'))
    assert fine['meta']['dataset_meta']['classes'] == (
        'rbc', 'wbc', 'platelet')
    tuned = fine['state_dict']
    last = ('roi_head.bbox_head.fc_cls.', 'roi_head.bbox_head.fc_reg.',
            'rpn_head.rpn_cls.', 'rpn_head.rpn_reg.')
    frozen = [k for k in sd if not k.startswith(last)]
    assert len(frozen) > 100
    moved = [k for k in frozen if not torch.equal(sd[k], tuned[k])]
    assert moved == []  # backbone, FPN, RPN conv, shared fcs, BN stats
    for key in ('roi_head.bbox_head.fc_cls.weight', 'rpn_head.rpn_cls.weight'):
        assert not torch.equal(sd[key], tuned[key]), key
