"""SmallInitFCNMaskHead: the mask logits' draw, loss and predict (incl.
no GT and no proposals), and mmdet's FCNMaskHead state dict."""
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs, demo_mm_proposals
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict

import rcnn_plugin  # noqa: F401

IN_CH, CONV = 8, 8


def _mask_head(kind='SmallInitFCNMaskHead', num_classes=1, **kwargs):
    register_all_modules()
    cfg = dict(type=kind, num_convs=2, in_channels=IN_CH,
               conv_out_channels=CONV, num_classes=num_classes)
    head = MODELS.build(dict(cfg, **kwargs))
    head.init_weights()
    return head


def _roi_head(num_classes=2):
    # 2 classes: mmdet's demo_mm_inputs draws labels in [1, num_classes).
    register_all_modules()
    extractor = dict(
        type='SingleRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=IN_CH, featmap_strides=[4])
    cfg = ConfigDict(
        type='StandardRoIHead',
        bbox_roi_extractor=extractor,
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=IN_CH,
                       fc_out_channels=16, num_classes=num_classes),
        mask_roi_extractor=dict(
            extractor, roi_layer=dict(type='RoIAlign', output_size=14,
                                      sampling_ratio=0)),
        mask_head=dict(type='SmallInitFCNMaskHead', num_convs=2,
                       in_channels=IN_CH, conv_out_channels=CONV,
                       num_classes=num_classes),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                          neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=True),
            sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25),
            mask_size=28, pos_weight=-1, debug=False),
        test_cfg=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=20, mask_thr_binary=0.5))
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_logits_start_near_zero_where_mmdet_s_do_not():
    """With one class, mmdet's Kaiming fan_out draw has std sqrt(2) and the
    first mask loss is far above ln 2; the small draw starts at ln 2."""
    # The balloon config's head: 128 channels.
    wide = dict(in_channels=128, conv_out_channels=128)
    torch.manual_seed(0)
    ours = _mask_head(**wide)
    torch.manual_seed(0)
    mmdet = _mask_head('FCNMaskHead', **wide)
    w = ours.conv_logits.weight
    assert w.std().item() == pytest.approx(0.001, rel=0.5)
    assert torch.count_nonzero(ours.conv_logits.bias) == 0
    assert mmdet.conv_logits.weight.std().item() > 1.0
    # The layers before it are drawn as mmdet draws them.
    for name, p in mmdet.named_parameters():
        if not name.startswith('conv_logits'):
            assert torch.equal(p, dict(ours.named_parameters())[name]), name
    x = torch.rand(6, 128, 14, 14)
    target = (torch.rand(6, 28, 28) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert bce(ours(x)[:, 0], target).item() == pytest.approx(math.log(2),
                                                              abs=1e-3)
    assert bce(mmdet(x)[:, 0], target).item() > 1.0


def test_state_dict_is_fcn_mask_head_s():
    ours, mmdet = _mask_head(num_classes=3), _mask_head('FCNMaskHead',
                                                        num_classes=3)
    assert ours.state_dict().keys() == mmdet.state_dict().keys()
    ours.load_state_dict(mmdet.state_dict())  # strict


@pytest.mark.parametrize('std', [0, -0.1, float('nan'), '0.001'])
def test_bad_logits_std(std):
    with pytest.raises(ValueError, match='logits_std'):
        _mask_head(logits_std=std)


@pytest.mark.parametrize('num_gt,num_props', [(3, 20), (0, 20), (3, 0),
                                              (0, 0)])
def test_loss(num_gt, num_props):
    head = _roi_head()
    head.train()
    feats = (torch.rand(2, IN_CH, 32, 32), )
    samples = demo_mm_inputs(
        batch_size=2, image_shapes=[(3, 128, 128)] * 2,
        num_items=[num_gt, num_gt], num_classes=2,
        with_mask=True)['data_samples']
    props = demo_mm_proposals(image_shapes=[(3, 128, 128)] * 2,
                              num_proposals=num_props)
    losses = head.loss(feats, props, samples)
    if num_gt == 0:
        # No positive RoI: mmdet's StandardRoIHead returns a zero mask
        # loss; there is no mask to learn.
        assert losses['loss_mask'].item() == 0
        return
    # GT boxes join as proposals: positives even without proposals. The
    # first loss is ln 2, not the several units of mmdet's draw.
    assert losses['loss_mask'].item() == pytest.approx(math.log(2),
                                                       abs=0.01)
    losses['loss_mask'].backward()
    assert head.mask_head.conv_logits.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('num_props', [0, 15])
def test_predict(num_props):
    head = _roi_head().eval()
    feats = (torch.rand(2, IN_CH, 32, 32), )
    samples = demo_mm_inputs(
        batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[2, 0],
        num_classes=2, with_mask=True)['data_samples']
    props = demo_mm_proposals(image_shapes=[(3, 128, 128)] * 2,
                              num_proposals=num_props)
    with torch.no_grad():
        results = head.predict(feats, props, samples, rescale=True)
    assert len(results) == 2
    for res in results:
        assert res.masks.shape[0] == len(res.bboxes)
        assert res.masks.shape[1:] == (128, 128)  # ori_shape
        assert (len(res.bboxes) > 0) == (num_props > 0)
