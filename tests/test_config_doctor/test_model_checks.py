"""Strides and class counts, each broken in a real config by one key."""
import copy
import functools
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from rcnn_plugin.config_doctor import (
    measure_feature_strides,
    prepare_registries,
    run_checks,
)
from rcnn_plugin.config_doctor.model_checks import class_heads

from conftest import REPO, shrink_model

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')


@functools.lru_cache(maxsize=1)
def _demo_once():
    cfg = Config.fromfile(DEMO)
    prepare_registries(cfg)
    cfg.model = shrink_model(cfg.model)  # same wiring, 10x cheaper
    return cfg


def _demo(changes=None):
    cfg = copy.deepcopy(_demo_once())
    cfg.merge_from_dict(changes or {})
    return cfg


def _keys(findings, check, severity='error'):
    return [f.key for f in findings
            if f.check == check and f.severity == severity]


def test_measure_feature_strides_keeps_training_state():
    cfg = _demo()
    model = MODELS.build(cfg.model)
    model.train()
    bn = model.backbone.conv1.bn
    bn.train()  # even a BN that would update its statistics
    before = bn.running_mean.clone()
    strides = measure_feature_strides(model, 128)
    assert strides == [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    assert model.training and bn.training
    assert torch.equal(bn.running_mean, before)


def test_measure_feature_strides_feeds_the_backbones_channels():
    # A grayscale model (1 input channel) failed the dry forward, which
    # always fed 3 channels, and the check reported that as an error.
    model = MODELS.build(_demo().model)
    conv = model.backbone.conv1.conv
    model.backbone.conv1.conv = torch.nn.Conv2d(
        1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        bias=False)
    assert measure_feature_strides(model, 128)[0] == (4, 4)


def _mmdet(tmp_path, name):
    path = tmp_path / 'leaf.py'
    path.write_text(f"_base_ = 'mmdet::{name}'\n")
    return Config.fromfile(str(path))


def test_ssd_design_strides_are_not_measured(tmp_path):
    # SSD300's anchor strides (.., 100, 300) are not the ratios of its maps:
    # the check called every SSD config mis-wired.
    cfg = _mmdet(tmp_path, 'ssd/ssd300_coco.py')
    prepare_registries(cfg)
    assert run_checks(cfg, checks=['feature_strides']) == []


def test_anchor_free_head_strides_are_checked(tmp_path):
    cfg = _mmdet(tmp_path, 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    prepare_registries(cfg)
    cfg.model.backbone.init_cfg = None  # no download
    assert run_checks(cfg, checks=['feature_strides']) == []
    cfg.model.neck.start_level = 0  # maps at 4 ... 64, the head at 8 ... 128
    findings = run_checks(cfg, checks=['feature_strides'])
    assert _keys(findings, 'feature_strides') == ['model.bbox_head.strides']
    assert 'strides [4, 8, 16, 32, 64]' in findings[0].message


def test_own_wiring_has_no_stride_finding():
    assert run_checks(_demo(), checks=['feature_strides']) == []


def test_anchor_strides_off_by_one_level():
    cfg = _demo({'model.rpn_head.anchor_generator.strides':
                 [8, 16, 32, 64, 128]})
    findings = run_checks(cfg, checks=['feature_strides'])
    assert _keys(findings, 'feature_strides') == [
        'model.rpn_head.anchor_generator.strides']
    assert 'strides [4, 8, 16, 32, 64]' in findings[0].message
    assert '=[4, 8, 16, 32, 64]' in findings[0].fix


def test_roi_extractor_strides():
    key = 'model.roi_head.bbox_roi_extractor.featmap_strides'
    cfg = _demo({key: [8, 16, 32, 64]})
    findings = run_checks(cfg, checks=['feature_strides'])
    assert _keys(findings, 'feature_strides') == [key]
    # Only the first 4 levels feed the RoI extractor.
    assert 'strides [4, 8, 16, 32]' in findings[0].message


def test_backbone_wired_from_stride_8():
    """The measured failure: MobileNetV2 feeding the FPN from stride 8."""
    # layer3 (stride 8), layer5 (16), layer7 (32), conv2 (32); the neck's
    # in_channels follow (widen_factor 0.25), as a user would fix them.
    cfg = _demo({'model.backbone.out_indices': (2, 4, 6, 7),
                 'model.neck.in_channels': [8, 24, 80, 1280]})
    findings = run_checks(cfg, checks=['feature_strides'])
    assert _keys(findings, 'feature_strides') == [
        'model.rpn_head.anchor_generator.strides',
        'model.roi_head.bbox_roi_extractor.featmap_strides']
    assert 'strides [8, 16, 32, 32, 64]' in findings[0].message


def test_semi_supervised_detector_strides_are_checked():
    """mmdet's SoftTeacher (and our mean teacher) wrap the detector."""
    cfg = _demo({'model.rpn_head.anchor_generator.strides':
                 [8, 16, 32, 64, 128]})
    cfg.model = dict(type='SoftTeacher', detector=copy.deepcopy(cfg.model),
                     data_preprocessor=cfg.model.data_preprocessor,
                     semi_train_cfg=dict(freeze_teacher=True))
    # no semi_test_cfg: the wrapper's extract_feat cannot run; the student
    # is measured
    findings = run_checks(cfg, checks=['feature_strides'])
    assert _keys(findings, 'feature_strides') == [
        'model.detector.rpn_head.anchor_generator.strides']
    assert 'strides [4, 8, 16, 32, 64]' in findings[0].message
    assert findings[0].fix.startswith(
        'rewire model.detector.backbone.out_indices / model.detector.neck')


def test_num_classes_left_at_80():
    cfg = _demo({'model.roi_head.bbox_head.num_classes': 80})
    findings = run_checks(cfg, checks=['num_classes'])
    assert _keys(findings, 'num_classes') == [
        'model.roi_head.bbox_head.num_classes']
    assert findings[0].fix == 'set model.roi_head.bbox_head.num_classes=3'


def test_val_classes_differ_from_train():
    cfg = _demo({'val_dataloader.dataset.metainfo':
                 dict(classes=('wbc', 'rbc', 'platelet'))})
    findings = run_checks(cfg, checks=['num_classes'])
    assert _keys(findings, 'num_classes') == [
        'val_dataloader.dataset.metainfo.classes']


def test_class_heads_cascade_and_mask():
    model = dict(
        rpn_head=dict(num_classes=1),
        roi_head=dict(
            bbox_head=[dict(num_classes=3), dict(num_classes=3),
                       dict(num_classes=80)],
            mask_head=dict(num_classes=3)))
    assert list(class_heads(model)) == [
        ('model.roi_head.bbox_head[0].num_classes', 3),
        ('model.roi_head.bbox_head[1].num_classes', 3),
        ('model.roi_head.bbox_head[2].num_classes', 80),
        ('model.roi_head.mask_head.num_classes', 3)]


def _save_ckpt(path, classes):
    torch.save({'meta': {'dataset_meta': {'classes': classes}},
                'state_dict': {}}, str(path))
    return str(path)


@pytest.mark.parametrize('classes,expected,text', [
    (('rbc', 'wbc', 'platelet'), [], ''),
    (tuple(f'c{i}' for i in range(80)), ['load_from'], 'on 80 classes'),
    (('wbc', 'rbc', 'platelet'), ['load_from'], "('wbc', 'rbc', 'platelet')"),
], ids=['same', 'coco-80', 'reordered'])
def test_checkpoint_classes(tmp_path, classes, expected, text):
    ckpt = _save_ckpt(tmp_path / 'c.pth', classes)
    findings = run_checks(_demo({'load_from': ckpt}),
                          checks=['checkpoint_classes'])
    assert _keys(findings, 'checkpoint_classes', 'warning') == expected
    if expected:
        assert text in findings[0].message
