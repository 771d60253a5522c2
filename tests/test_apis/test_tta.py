"""Test-time augmentation: rcnn_plugin.apis.tta and tools/test.py --tta."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from rcnn_plugin.apis.tta import apply_tta, default_tta_pipeline

from conftest import REPO, run_tool

PACK = dict(type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor', 'instances'))
BCCD_TTA = osp.join(REPO, 'configs', 'bccd_ablation',
                    'faster-rcnn_mobilenetv2_fpn-128_flip-tta-8e_bccd.py')


def test_default_pipeline_keeps_the_meta_keys_and_adds_the_flip_keys():
    load = dict(type='LoadImageFromFile')
    pipeline = default_tta_pipeline([load, PACK])
    assert pipeline[0] == load
    tta = pipeline[1]
    assert tta['type'] == 'TestTimeAug'
    flips, (pack, ) = tta['transforms']
    assert [f['prob'] for f in flips] == [1., 0.]
    assert 'instances' in pack['meta_keys']  # CocoMetric without a json
    assert pack['meta_keys'][-2:] == ('flip', 'flip_direction')
    assert PACK['meta_keys'][-1] == 'instances'  # the input is not changed


def test_default_pipeline_needs_pack_last():
    with pytest.raises(ValueError, match="got 'Resize' last"):
        default_tta_pipeline([dict(type='LoadImageFromFile'),
                              dict(type='Resize', scale=(8, 8))])


def test_apply_tta_wraps_the_model_and_sets_the_leaf_pipeline(tiny_config):
    cfg = Config.fromfile(tiny_config)
    leaf = cfg.test_dataloader.dataset
    cfg.test_dataloader.dataset = dict(type='ConcatDataset',
                                       datasets=[leaf, leaf])
    detector = cfg.model.copy()
    apply_tta(cfg)
    assert cfg.model.type == 'DetTTAModel'
    assert cfg.model.module == detector
    assert 'pipeline' not in cfg.test_dataloader.dataset  # the wrapper
    for sub in cfg.test_dataloader.dataset.datasets:
        assert sub.pipeline[-1]['type'] == 'TestTimeAug'


def test_apply_tta_refuses_mask_rcnn(tiny_config):
    cfg = Config.fromfile(tiny_config)
    cfg.model.roi_head.mask_head = dict(type='FCNMaskHead')
    with pytest.raises(ValueError, match='not instance masks'):
        apply_tta(cfg)


def test_bccd_tta_views_flip_the_image_and_keep_the_ground_truth(tmp_path):
    """The BCCD config's pipeline gives 4 views (none, h, v, diagonal) of
    one image, each with the ground truth in the original pixels."""
    from mmcv.transforms import Compose
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(BCCD_TTA)
    img = np.zeros((48, 64, 3), np.uint8)
    img[:10, :20] = 255  # a bright top-left corner
    path = str(tmp_path / 'img.png')
    cv2.imwrite(path, img)
    box = [2., 3., 20., 10.]
    views = Compose(cfg.tta_pipeline)(dict(
        img_path=path, img_id=0,
        instances=[dict(bbox=box, bbox_label=1, ignore_flag=0)]))
    metas = [s.metainfo for s in views['data_samples']]
    assert [m['flip_direction'] for m in metas] == [
        None, 'horizontal', 'vertical', 'diagonal']
    assert all(m['img_shape'] == (480, 640) for m in metas)
    corners = [x[:, [0, 0, -1, -1], [0, -1, 0, -1]].float().mean(0)
               for x in views['inputs']]
    assert [int(c.argmax()) for c in corners] == [0, 1, 2, 3]
    for sample in views['data_samples']:
        assert torch.equal(sample.gt_instances.bboxes.tensor,
                           torch.tensor([box]))


@pytest.mark.slow
def test_test_tool_tta_on_a_wrapped_split(tiny_config, tmp_path):
    """tools/test.py --tta with mmdet's default (warned) on a ConcatDataset
    test split: the run evaluates, and the log says what it used."""
    cfg = Config.fromfile(tiny_config)
    leaf = cfg.test_dataloader.dataset
    cfg.test_dataloader.dataset = dict(type='ConcatDataset', datasets=[leaf])
    config = str(tmp_path / 'wrapped.py')
    cfg.dump(config)
    work_dir = str(tmp_path / 'work')
    run_tool(['tools/train.py', config, '--work-dir', work_dir,
              '--cfg-options', 'train_cfg.val_interval=2'])
    out = run_tool(['tools/test.py', config,
                    osp.join(work_dir, 'epoch_1.pth'), '--tta',
                    '--work-dir', work_dir])
    assert 'the config has no tta_model' in out
    assert 'flipping the test pipeline horizontally' in out
    assert 'Epoch(test)' in out and 'coco/bbox_mAP' in out
