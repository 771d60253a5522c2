"""Test-time augmentation: rcnn_plugin.apis.tta and tools/test.py --tta."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from rcnn_plugin.apis.tta import apply_tta, default_tta_pipeline

from conftest import REPO, run_tool, wrap_split

PACK = dict(type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor', 'instances'))
BCCD_TTA = osp.join(REPO, 'configs', 'bccd_ablation',
                    'faster-rcnn_mobilenetv2_fpn-128_flip-tta-8e_bccd.py')


def _image(tmp_path):
    img = np.zeros((48, 64, 3), np.uint8)
    img[:10, :20] = 255  # a bright top-left corner
    path = str(tmp_path / 'img.png')
    cv2.imwrite(path, img)
    return path


def _views(pipeline, path, box):
    from mmcv.transforms import Compose
    from mmdet.utils import register_all_modules
    register_all_modules()
    return Compose(pipeline)(dict(
        img_path=path, img_id=0,
        instances=[dict(bbox=box, bbox_label=1, ignore_flag=0)]))


def test_default_pipeline_keeps_the_meta_keys_and_adds_the_flip_keys():
    load = dict(type='LoadImageFromFile')
    pipeline = default_tta_pipeline([load, PACK])
    assert pipeline[0] == load
    tta = pipeline[1]
    assert tta['type'] == 'TestTimeAug'
    flips, (pack, ) = tta['transforms']
    assert [f['prob'] for f in flips] == [0., 1.]  # unflipped view first
    assert 'instances' in pack['meta_keys']  # CocoMetric without a json
    assert pack['meta_keys'][-2:] == ('flip', 'flip_direction')


def test_default_pipeline_keeps_the_ground_truth_of_the_kept_view(
        tmp_path):
    """DetTTAModel keeps the first view's sample, whose gt_instances
    VOCMetric reads: with LoadAnnotations before the flips (as in mmdet's
    test pipelines), that view must be the unflipped one."""
    box = [2., 3., 20., 10.]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(320, 320), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True), PACK
    ]
    views = _views(default_tta_pipeline(test_pipeline), _image(tmp_path),
                   box)
    first, flipped = views['data_samples']
    assert not first.flip and flipped.flip_direction == 'horizontal'
    assert torch.equal(first.gt_instances.bboxes.tensor,
                       torch.tensor([box]))


@pytest.mark.parametrize('pipeline, match', [
    ([dict(type='LoadImageFromFile'), dict(type='Resize', scale=(8, 8))],
     "got 'Resize' last"),
    ([dict(type='LoadImageFromFile'), dict(type='LoadProposals'), PACK],
     'RandomFlip does not flip'),
])
def test_default_pipeline_refusals(pipeline, match):
    with pytest.raises(ValueError, match=match):
        default_tta_pipeline(pipeline)


def test_apply_tta_wraps_the_model_and_builds_each_leaf(tiny_config):
    cfg = Config.fromfile(tiny_config)
    leaf = cfg.test_dataloader.dataset
    other = copy.deepcopy(leaf)
    other.pipeline[1].scale = (160, 160)
    cfg.test_dataloader.dataset = dict(type='ConcatDataset',
                                       datasets=[leaf, other])
    detector = cfg.model.copy()
    apply_tta(cfg)
    assert cfg.model.type == 'DetTTAModel'
    assert cfg.model.module == detector
    assert 'pipeline' not in cfg.test_dataloader.dataset  # the wrapper
    scales = [sub.pipeline[1]['scale']
              for sub in cfg.test_dataloader.dataset.datasets]
    assert scales == [(320, 320), (160, 160)]  # each leaf its own
    for sub in cfg.test_dataloader.dataset.datasets:
        assert sub.pipeline[-1]['type'] == 'TestTimeAug'


def test_apply_tta_refuses_masks_only_under_det_tta_model(tiny_config):
    cfg = Config.fromfile(tiny_config)
    cfg.model.roi_head.mask_head = dict(type='FCNMaskHead')
    with pytest.raises(ValueError, match='merges boxes only'):
        apply_tta(cfg)
    cfg.tta_model = dict(type='MyMaskTTAModel')  # the user's own merge
    assert apply_tta(cfg).model.type == 'MyMaskTTAModel'


def test_test_tool_refusal_is_one_sentence(tiny_config, tmp_path):
    import subprocess
    import sys
    cfg = Config.fromfile(tiny_config)
    cfg.model.roi_head.mask_head = dict(type='FCNMaskHead')
    config = str(tmp_path / 'mask.py')
    cfg.dump(config)
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', config, 'x.pth', '--tta'],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert 'error: --tta: mmdet\'s DetTTAModel merges boxes only' in (
        proc.stderr)
    assert 'Traceback' not in proc.stderr


def test_bccd_tta_views_flip_the_image_and_keep_the_ground_truth(tmp_path):
    """The BCCD config's pipeline gives 4 views (none, h, v, diagonal) of
    one image, each with the ground truth in the original pixels."""
    cfg = Config.fromfile(BCCD_TTA)
    box = [2., 3., 20., 10.]
    views = _views(cfg.tta_pipeline, _image(tmp_path), box)
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
    config = wrap_split(tiny_config, 'test', str(tmp_path / 'wrapped.py'))
    work_dir = str(tmp_path / 'work')
    run_tool(['tools/train.py', config, '--work-dir', work_dir,
              '--cfg-options', 'train_cfg.val_interval=2'])
    out = run_tool(['tools/test.py', config,
                    osp.join(work_dir, 'epoch_1.pth'), '--tta',
                    '--work-dir', work_dir])
    assert 'the config has no tta_model' in out
    assert 'no flip and a horizontal flip of the test pipeline' in out
    assert 'Epoch(test)' in out and 'coco/bbox_mAP' in out
