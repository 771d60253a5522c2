"""Predicted masks -> COCO RLE in the results JSON -> the same masks.

And the balloon Mask R-CNN config's tools: train, then test with
``--show-dir`` and RLE results, on a tiny generated VIA dataset.
"""
import glob
import json
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
import torch
from mmdet.evaluation import CocoMetric
from PIL import Image
from pycocotools import mask as mask_util

from conftest import REPO, run_tool


def _masks(h=30, w=40):
    yy, xx = np.mgrid[:h, :w]
    disk = (yy - 12) ** 2 + (xx - 15) ** 2 <= 36
    ring = ((yy - 15) ** 2 + (xx - 28) ** 2 <= 64) & \
        ((yy - 15) ** 2 + (xx - 28) ** 2 > 9)  # a hole in the middle
    square = np.zeros((h, w), bool)
    square[20:28, 2:10] = True
    pixel = np.zeros((h, w), bool)
    pixel[0, w - 1] = True
    return np.stack([disk, ring, square, pixel, np.zeros((h, w), bool)])


def _sample(img_id, masks, instances):
    n = len(masks)
    boxes = torch.tensor([[0, 0, 5, 5]] * n, dtype=torch.float32)
    return dict(
        img_id=img_id, ori_shape=masks.shape[1:], instances=instances,
        pred_instances=dict(
            bboxes=boxes, scores=torch.linspace(0.9, 0.5, n),
            labels=torch.zeros(n, dtype=torch.long),
            masks=torch.from_numpy(masks)))


def test_predicted_masks_survive_rle_round_trip(tmp_path):
    masks = _masks()
    # Ground truth: the square, as a polygon (pixel corners) and its box.
    square_gt = dict(bbox=[2, 20, 10, 28], bbox_label=0, ignore_flag=0,
                     mask=[[2, 20, 10, 20, 10, 28, 2, 28]])
    prefix = str(tmp_path / 'results')
    metric = CocoMetric(ann_file=None, metric=['bbox', 'segm'],
                        outfile_prefix=prefix)
    metric.dataset_meta = dict(classes=('balloon', ))
    empty = np.zeros((0, 30, 40), bool)  # an image without predictions
    metric.process({}, [_sample(0, masks, [square_gt]),
                        _sample(1, empty, [])])
    metric.compute_metrics(metric.results)

    segm = json.load(open(prefix + '.segm.json'))
    assert [r['image_id'] for r in segm] == [0] * len(masks)
    for entry, expected in zip(segm, masks):
        rle = entry['segmentation']
        assert isinstance(rle['counts'], str) and rle['size'] == [30, 40]
        decoded = mask_util.decode(rle)
        assert decoded.shape == (30, 40)
        np.testing.assert_array_equal(decoded.astype(bool), expected)
        assert mask_util.area(rle) == expected.sum()


def test_segm_ap_from_ground_truth_built_without_ann_file(tmp_path):
    masks = _masks()[2:3]  # the square only, predicted perfectly
    square_gt = dict(bbox=[2, 20, 10, 28], bbox_label=0, ignore_flag=0,
                     mask=[[2, 20, 10, 20, 10, 28, 2, 28]])
    metric = CocoMetric(ann_file=None, metric=['bbox', 'segm'],
                        outfile_prefix=str(tmp_path / 'r'))
    metric.dataset_meta = dict(classes=('balloon', ))
    sample = _sample(0, masks, [square_gt])
    sample['pred_instances']['bboxes'] = torch.tensor([[2., 20., 10., 28.]])
    metric.process({}, [sample])
    result = metric.compute_metrics(metric.results)
    assert result['bbox_mAP'] == pytest.approx(1.0)
    assert result['segm_mAP_50'] == pytest.approx(1.0)


TINY_MASK_CONFIG = """
_base_ = '{base}'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)
data_root = '{data_root}/'
model = dict(
    backbone=dict(widen_factor=0.25, init_cfg=None),
    neck=dict(in_channels=[8, 8, 24, 1280], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=32),
        mask_roi_extractor=dict(out_channels=16),
        mask_head=dict(in_channels=16, conv_out_channels=16)),
    # Untrained: keep every detection so that there are masks to check.
    test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=5)))
img_scale = (96, 96)
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='train/via.json',
                 data_prefix=dict(img='train/')))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='val/via.json',
                 data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
# No validation while training: tools/test.py below evaluates.
train_cfg = dict(max_epochs=1, val_interval=2)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
optim_wrapper = dict(optimizer=dict(lr=0.001))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""


def _write_via(root, split, count, rng):
    """Images with one or two filled ellipses ('balloons') and their VIA."""
    import os
    os.makedirs(osp.join(root, split))
    data = {}
    for i in range(count):
        img = np.full((72, 96, 3), 200, np.uint8)
        regions = {}
        for k in range(1 + i % 2):
            cx, cy = int(rng.integers(20, 76)), int(rng.integers(20, 52))
            pts = cv2.ellipse2Poly((cx, cy), (12, 16), 0, 0, 360, 30)
            cv2.fillPoly(img, [pts], (30, 30, 220))
            regions[str(k)] = dict(
                shape_attributes=dict(
                    name='polygon', all_points_x=pts[:, 0].tolist(),
                    all_points_y=pts[:, 1].tolist()),
                region_attributes={})
        name = f'{i:03d}.jpg'
        Image.fromarray(img).save(osp.join(root, split, name))
        data[name + '1'] = dict(filename=name, size=1, regions=regions,
                                file_attributes={})
    with open(osp.join(root, split, 'via.json'), 'w') as f:
        json.dump(data, f)


@pytest.mark.slow
def test_balloon_config_train_then_show_dir_and_rle(tmp_path):
    root = str(tmp_path / 'via')
    rng = np.random.default_rng(0)
    _write_via(root, 'train', 4, rng)
    _write_via(root, 'val', 2, rng)
    cfg = tmp_path / 'tiny_mask-rcnn.py'
    cfg.write_text(TINY_MASK_CONFIG.format(
        base=osp.join(REPO, 'configs', 'balloon',
                      'mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py'),
        data_root=root))
    work = str(tmp_path / 'work')
    out = run_tool(['tools/train.py', str(cfg), '--work-dir', work])
    assert 'Epoch(train) [1][2/2]' in out

    prefix = osp.join(work, 'results')
    preds_file = str(tmp_path / 'preds.pkl')
    out = run_tool([
        'tools/test.py', str(cfg), osp.join(work, 'epoch_1.pth'),
        '--work-dir', work, '--show-dir', 'vis', '--out', preds_file,
        '--cfg-options', f'test_evaluator.outfile_prefix={prefix}'])
    assert 'coco/segm_mAP' in out and 'coco/bbox_mAP' in out
    painted = glob.glob(osp.join(work, '*', 'vis', '*.jpg'))
    assert len(painted) == 2
    # Ground truth (left) beside the prediction (right), original size.
    assert cv2.imread(painted[0]).shape[:2] == (72, 2 * 96)

    with open(preds_file, 'rb') as f:
        preds = pickle.load(f)
    segm = json.load(open(prefix + '.segm.json'))
    assert len(segm) == sum(len(p['pred_instances']['scores'])
                            for p in preds) > 0
    for pred in preds:
        entries = [s for s in segm if s['image_id'] == pred['img_id']]
        for entry, rle in zip(entries, pred['pred_instances']['masks']):
            assert entry['segmentation']['size'] == [72, 96]
            np.testing.assert_array_equal(
                mask_util.decode(entry['segmentation']),
                mask_util.decode(rle))
