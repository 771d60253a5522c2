"""CosineSimBBoxHead: scores, loss and predict, incl. zero RoIs / no GT."""
import math

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs, demo_mm_proposals
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict

import rcnn_plugin  # noqa: F401

IN_CH, FC, C = 4, 16, 3


def _roi_head(**head_kwargs):
    register_all_modules()
    cfg = ConfigDict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=IN_CH, featmap_strides=[4]),
        bbox_head=dict(type='CosineSimBBoxHead', in_channels=IN_CH,
                       fc_out_channels=FC, num_classes=C, **head_kwargs),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                          neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=False),
            sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25),
            pos_weight=-1, debug=False),
        test_cfg=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=100))
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_scores_are_scaled_cosines_background_included():
    head = _roi_head().bbox_head
    assert head.fc_cls.weight.shape == (C + 1, FC)  # background row last
    assert head.fc_cls.bias is None
    torch.manual_seed(0)
    x = torch.randn(5, IN_CH, 7, 7)
    cls_score, bbox_pred = head(x)
    feats = x.flatten(1)
    for fc in head.shared_fcs:
        feats = torch.relu(fc(feats))
    f = feats.detach().numpy().astype(np.float64)
    w = head.fc_cls.weight.detach().numpy().astype(np.float64)
    expected = 20 * (f @ w.T) / np.outer(
        np.linalg.norm(f, axis=1) + 1e-5, np.linalg.norm(w, axis=1) + 1e-5)
    np.testing.assert_allclose(cls_score.detach().numpy(), expected,
                               rtol=1e-4, atol=1e-5)
    assert cls_score.abs().max() <= 20 + 1e-4
    assert bbox_pred.shape == (5, 4 * C)


def test_learned_scale_gets_a_gradient_fixed_one_does_not():
    fixed = _roi_head().bbox_head
    assert 'fc_cls.scale' not in dict(fixed.named_parameters())
    head = _roi_head(scale=10.0, learn_scale=True).bbox_head
    cls_score, _ = head(torch.rand(3, IN_CH, 7, 7))
    assert cls_score.abs().max() <= 10 + 1e-4
    cls_score.sum().backward()
    assert head.fc_cls.scale.grad is not None
    assert 'fc_cls.scale' in head.state_dict()


def test_bad_arguments():
    with pytest.raises(ValueError, match='scale'):
        _roi_head(scale=0.0)
    with pytest.raises(TypeError, match='cls_predictor_cfg'):
        _roi_head(cls_predictor_cfg=dict(type='Linear'))


@pytest.mark.parametrize('num_gt,num_props', [(3, 20), (0, 20), (3, 0),
                                              (0, 0)])
def test_loss(num_gt, num_props):
    head = _roi_head()
    head.train()
    feats = (torch.rand(2, IN_CH, 32, 32), )
    samples = demo_mm_inputs(
        batch_size=2, image_shapes=[(3, 128, 128)] * 2,
        num_items=[num_gt, num_gt], num_classes=C)['data_samples']
    props = demo_mm_proposals(image_shapes=[(3, 128, 128)] * 2,
                              num_proposals=num_props)
    losses = head.loss(feats, props, samples)
    if num_gt == 0 and num_props == 0:
        # Zero RoIs: mmdet's BBoxHead.loss emits no loss_cls (nothing to
        # classify) and a zero loss_bbox that is still part of the graph.
        assert 'loss_cls' not in losses
        assert losses['loss_bbox'].item() == 0
        return
    assert math.isfinite(losses['loss_cls'].item())
    assert losses['loss_cls'].item() > 0  # GT boxes join as proposals or bg
    total = losses['loss_cls'] + losses['loss_bbox']
    total.backward()
    assert head.bbox_head.fc_cls.weight.grad is not None
    if num_gt == 0:
        assert losses['loss_bbox'].item() == 0


@pytest.mark.parametrize('num_props', [0, 15])
def test_predict(num_props):
    head = _roi_head().eval()
    feats = (torch.rand(2, IN_CH, 32, 32), )
    samples = demo_mm_inputs(
        batch_size=2, image_shapes=[(3, 128, 128)] * 2,
        num_items=[2, 0], num_classes=C)['data_samples']
    props = demo_mm_proposals(image_shapes=[(3, 128, 128)] * 2,
                              num_proposals=num_props)
    with torch.no_grad():
        results = head.predict(feats, props, samples, rescale=False)
    assert len(results) == 2
    for res in results:
        assert res.bboxes.shape[1] == 4
        assert len(res.scores) == len(res.labels) == len(res.bboxes)
        if num_props == 0:
            assert len(res.bboxes) == 0
        else:
            assert len(res.bboxes) > 0
            assert int(res.labels.max()) < C
