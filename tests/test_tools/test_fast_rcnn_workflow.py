"""The three Fast R-CNN steps of configs/fast_rcnn/README.md, end to end.

1. train a (tiny) Faster R-CNN, 2. write its RPN proposals for each split,
3. train a (tiny) Fast R-CNN on them and evaluate it on val.
"""
import os.path as osp
import pickle

import numpy as np
import pytest

from conftest import REPO, run_tool

pytestmark = pytest.mark.slow

FAST_CONFIG = """
_base_ = '{base}'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)
data_root = '{data_root}/'
model = dict(
    backbone=dict(widen_factor=0.25, init_cfg=None),
    neck=dict(in_channels=[8, 8, 24, 1280], out_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=32)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', num_max_proposals=50),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='ProposalBroadcaster', transforms=[
        dict(type='Resize', scale=(128, 128), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5)]),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals'),
    dict(type='ProposalBroadcaster', transforms=[
        dict(type='Resize', scale=(128, 128), keep_ratio=True)]),
    dict(type='PackDetInputs', meta_keys=(
        'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
dataset = dict(
    type='SyntheticCellsDataset', data_root=data_root,
    data_prefix=dict(img=''))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(
        dataset, _delete_=True, ann_file='annotations/train.json',
        proposal_file='{proposals}/train.pkl', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(
        dataset, _delete_=True, ann_file='annotations/val.json',
        proposal_file='{proposals}/val.pkl', test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True, type='CocoMetric', metric='bbox',
    ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
optim_wrapper = dict(optimizer=dict(lr=0.001))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""


def test_rpn_then_proposals_then_fast_rcnn(tiny_config, synthetic_cells,
                                           tmp_path):
    # Step 1: Faster R-CNN (its RPN gives the proposals).
    rpn_dir = str(tmp_path / 'faster')
    run_tool(['tools/train.py', tiny_config, '--work-dir', rpn_dir,
              '--cfg-options', 'train_cfg.val_interval=2'])  # no val

    # Step 2: proposals for train and val, in original image pixels.
    props = str(tmp_path / 'proposals')
    out = run_tool([
        'tools/generate_proposals.py', tiny_config,
        osp.join(rpn_dir, 'epoch_1.pth'), '--out-dir', props,
        '--splits', 'train', 'val', '--num-proposals', '30'
    ])
    assert 'val: 4 images' in out
    with open(osp.join(props, 'val.pkl'), 'rb') as f:
        val = pickle.load(f)
    assert sorted(val) == [f'val/{i:05d}.jpg' for i in range(1, 5)]
    for entry in val.values():
        boxes, scores = np.asarray(entry.bboxes), np.asarray(entry.scores)
        assert 0 < len(boxes) <= 30 and boxes.shape[1] == 4
        assert np.all(np.diff(scores) <= 0), 'not sorted best first'
        # The demo pipeline resizes 96 -> 320: boxes must come back to 96.
        assert boxes.min() >= 0 and boxes.max() <= 96
    with open(osp.join(props, 'train.pkl'), 'rb') as f:
        assert len(pickle.load(f)) == 8

    # Step 3: Fast R-CNN on those proposals, then evaluate.
    cfg = tmp_path / 'tiny_fast-rcnn.py'
    cfg.write_text(FAST_CONFIG.format(
        base=osp.join(REPO, 'configs', 'fast_rcnn',
                      'fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py'),
        data_root=synthetic_cells, proposals=props))
    fast_dir = str(tmp_path / 'fast')
    out = run_tool(['tools/train.py', str(cfg), '--work-dir', fast_dir])
    assert 'Epoch(train) [1][2/2]' in out
    # The epoch-end validation reads val.pkl through LoadProposals.
    assert 'Epoch(val) [1][2/2]' in out and 'coco/bbox_mAP' in out
    assert osp.isfile(osp.join(fast_dir, 'epoch_1.pth'))
