"""IncrementalMaskRCNN on a tiny Mask R-CNN with a random teacher."""
import copy
import functools
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import (
    BYTES_PER_FLOAT,
    _do_paste_mask,
)
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

from projects.IncrementalDet.incremental_det import (
    add_pseudo_labels,
    mask_logit_distill,
    paste_masks,
)

from conftest import REPO, shrink_model

BASE = osp.join(REPO, 'configs', '_base_', 'models',
                'mask-rcnn_mobilenetv2_fpn-128.py')
OLD, NEW = ('a', 'b'), ('c', 'd')  # old labels 0, 1; new 2, 3
KEYS = ('loss_distill_cls', 'loss_distill_reg', 'loss_distill_rpn',
        'loss_distill_feat', 'loss_distill_mask')


@functools.cache
def _parsed() -> dict:
    register_all_modules()
    model = Config.fromfile(BASE).model
    model.update(
        type='IncrementalMaskRCNN', old_classes=OLD, new_classes=NEW,
        teacher_ckpt='unused.pth',  # shrink_model: a random teacher
        distill=dict(cls=1.0, reg=1.0, rpn=1.0, feat=1.0, mask=1.0))
    model.roi_head.bbox_head.num_classes = 4
    model.roi_head.mask_head.num_classes = 4
    return shrink_model(model)


def _model_cfg():
    return copy.deepcopy(_parsed())


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    det = MODELS.build(_model_cfg())
    det.init_weights()
    return det


def _inputs(model, num_items=(3, 2)):
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128)] * 2,
                            num_items=list(num_items), num_classes=4,
                            with_mask=True)
    for sample in packed['data_samples']:  # new classes only: 2, 3
        sample.gt_instances.labels.clamp_(min=2, max=3)
    return model.data_preprocessor(packed, True)


def _losses(model, data, **settings):
    saved = model.distill, model.pseudo_label
    model.distill = dict(saved[0], **settings.get('distill', {}))
    model.pseudo_label = settings.get('pseudo_label')
    try:
        model.train()
        return model(**data, mode='loss')
    finally:
        model.distill, model.pseudo_label = saved


def _finite(losses):
    return all(torch.isfinite(v).all() for k, v in losses.items()
               if 'loss' in k and isinstance(v, torch.Tensor))


@pytest.mark.parametrize('value', [-1.0, '1'])
def test_a_bad_mask_distill_weight_is_refused(value):
    # before: mask=-1 switched the mask distillation off without a word,
    # and '1' failed inside the first training step
    with pytest.raises(ValueError, match='distill.mask must be a number'):
        MODELS.build(dict(_model_cfg(), distill=dict(mask=value)))


def test_mask_logit_distill():
    torch.manual_seed(0)
    teacher = torch.randn(5, 2, 7, 7) * 3
    student = torch.cat([teacher, torch.randn(5, 1, 7, 7)], dim=1)
    assert mask_logit_distill(student, teacher) == 0  # new channel unused
    student = (student + torch.randn_like(student)).requires_grad_()
    loss = mask_logit_distill(student, teacher)
    loss.backward()
    assert loss > 0
    assert torch.all(student.grad[:, 2] == 0)
    # The gradient of MMA's BCE with the teacher's sigmoid as target.
    s = student.detach()[:, :2].clone().requires_grad_()
    F.binary_cross_entropy_with_logits(s, teacher.sigmoid()).backward()
    assert torch.allclose(student.grad[:, :2], s.grad, atol=1e-7)
    empty = torch.zeros(0, 3, 7, 7, requires_grad=True)
    zero = mask_logit_distill(empty, torch.zeros(0, 2, 7, 7))
    assert zero == 0 and zero.requires_grad


def test_paste_masks():
    logits = torch.full((2, 4, 4), -10.)
    logits[0] = 10.
    masks = paste_masks(logits, torch.tensor([[2., 3., 10., 7.],
                                              [0., 0., 5., 5.]]), 12, 16)
    assert isinstance(masks, BitmapMasks) and masks.masks.shape == (2, 12,
                                                                     16)
    assert masks.masks[0, 3:7, 2:10].all() and masks.masks[0].sum() == 32
    assert masks.masks[1].sum() == 0
    assert len(paste_masks(logits[:0], torch.zeros(0, 4), 12, 16)) == 0



def test_paste_masks_in_chunks_equals_one_paste(monkeypatch):
    """Chunks of 2 boxes (4 pastes for 7 boxes) give the masks of a
    single paste of all boxes, also for boxes outside the image, tiny or
    empty; a limit below one box pastes box by box."""
    from projects.IncrementalDet.incremental_det import incremental_mask_rcnn
    torch.manual_seed(0)
    height, width = 30, 40
    logits = torch.randn(7, 28, 28) * 4
    xy = torch.rand(7, 2) * torch.tensor([width, height]) - 5
    bboxes = torch.cat([xy, xy + torch.rand(7, 2) * 30 + 0.5], dim=1)
    bboxes[5] = torch.tensor([10., 10., 10.2, 10.1])  # tiny
    bboxes[6] = torch.tensor([50., 40., 60., 45.])  # outside the image
    probs, _ = _do_paste_mask(logits.sigmoid()[:, None], bboxes, height,
                              width, skip_empty=False)
    expected = (probs >= 0.5).to(torch.uint8).numpy()
    sizes = []

    def counted(masks, boxes, *args, **kwargs):
        sizes.append(len(boxes))
        return _do_paste_mask(masks, boxes, *args, **kwargs)

    monkeypatch.setattr(incremental_mask_rcnn, '_do_paste_mask', counted)
    two = 2 * height * width * BYTES_PER_FLOAT
    masks = paste_masks(logits, bboxes, height, width, mem_limit=two + 1)
    assert sizes == [2, 2, 2, 1]
    assert masks.masks.dtype == np.uint8
    assert np.array_equal(masks.masks, expected) and expected.any()
    sizes.clear()
    masks = paste_masks(logits, bboxes, height, width, mem_limit=1)
    assert sizes == [1] * 7 and np.array_equal(masks.masks, expected)
    sizes.clear()
    assert np.array_equal(paste_masks(logits, bboxes, height, width).masks,
                          expected) and sizes == [7]
    with pytest.raises(ValueError, match='mem_limit must be > 0'):
        paste_masks(logits, bboxes, height, width, mem_limit=0)

def test_add_pseudo_labels_with_masks():
    polygon = PolygonMasks([[np.array([0., 0., 8., 0., 8., 8., 0., 8.])]],
                           12, 16)
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 8., 8.]]),
                      labels=torch.tensor([2]), masks=polygon)
    pseudo = InstanceData(
        bboxes=torch.tensor([[4., 4., 12., 10.]]), labels=torch.tensor([0]),
        masks=BitmapMasks(np.ones((1, 12, 16), np.uint8), 12, 16))
    both = add_pseudo_labels(gt, pseudo)
    assert isinstance(both.masks, BitmapMasks)
    assert len(both.masks) == len(both.bboxes) == 2
    assert both.masks.masks[1].all() and both.masks.masks[0].sum() > 0
    boxes_only = add_pseudo_labels(gt, InstanceData(bboxes=pseudo.bboxes,
                                                    labels=pseudo.labels))
    assert 'masks' not in boxes_only and len(boxes_only) == 2


def test_teacher_has_the_old_classes_and_stays_outside(model):
    teacher = model.teacher
    assert teacher.roi_head.mask_head.conv_logits.out_channels == 2
    assert model.roi_head.mask_head.conv_logits.out_channels == 4
    assert not any('teacher' in k for k in model.state_dict())
    assert all(not p.requires_grad for p in teacher.parameters())


def test_expanded_heads_reproduce_old_box_and_mask_logits(model):
    model.eval()
    data = _inputs(model)
    rois = bbox2roi([torch.tensor([[0., 0., 40., 40.],
                                   [10., 20., 90., 80.]])] * 2)
    with torch.no_grad():
        t_feats = model.teacher.extract_feat(data['inputs'])
        s_feats = model.extract_feat(data['inputs'])
        t_box = model.teacher.roi_head._bbox_forward(t_feats, rois)
        s_box = model.roi_head._bbox_forward(s_feats, rois)
        t_mask = model.teacher.roi_head._mask_forward(t_feats, rois)
        s_mask = model.roi_head._mask_forward(s_feats, rois)
    assert torch.allclose(s_box['cls_score'][:, [0, 1, -1]],
                          t_box['cls_score'], atol=1e-6)
    assert torch.allclose(s_box['bbox_pred'][:, :8], t_box['bbox_pred'],
                          atol=1e-6)
    t_mask, s_mask = t_mask['mask_preds'], s_mask['mask_preds']
    assert s_mask.shape == (4, 4, 28, 28) and t_mask.shape == (4, 2, 28, 28)
    assert torch.allclose(s_mask[:, :2], t_mask, atol=1e-6)
    assert not torch.allclose(s_mask[:, 2:], t_mask)  # new: fresh rows


def test_mask_distillation_zero_at_start_positive_after_change(model):
    data = _inputs(model)
    losses = _losses(model, data)
    for key in KEYS:
        assert losses[key].abs().item() < 1e-6, key
    assert 'loss_mask' in losses and _finite(losses)
    conv = model.roi_head.mask_head.conv_logits
    saved = conv.weight.detach().clone()
    try:
        with torch.no_grad():  # the new classes' channels: not distilled
            conv.weight[2:] += torch.randn_like(conv.weight[2:])
        torch.manual_seed(0)
        new_only = _losses(model, data)['loss_distill_mask']
        with torch.no_grad():  # an old class's channel
            conv.weight[1] += torch.randn_like(conv.weight[1])
        torch.manual_seed(0)
        old = _losses(model, data)['loss_distill_mask']
        old.backward()
    finally:
        with torch.no_grad():
            conv.weight.copy_(saved)
        model.zero_grad()
    assert new_only.abs().item() < 1e-6
    assert old.item() > 1e-4


def test_loss_without_ground_truth_and_with_empty_proposals(model,
                                                            monkeypatch):
    losses = _losses(model, _inputs(model, num_items=(0, 0)))
    assert _finite(losses) and 'loss_distill_mask' in losses
    # The teacher proposes nothing: the distillation losses are zeros
    # that keep the graph, and pseudo-labels are skipped.
    teacher_rpn = model.teacher.rpn_head

    def no_proposals(*args, batch_img_metas, **kwargs):
        return [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                             labels=torch.zeros(0, dtype=torch.long))
                for _ in batch_img_metas]

    monkeypatch.setattr(teacher_rpn, 'predict_by_feat', no_proposals)
    losses = _losses(model, _inputs(model),
                     pseudo_label=dict(score_thr=0.0, iou_thr=0.5))
    assert losses['loss_distill_mask'] == 0
    assert losses['loss_distill_mask'].requires_grad
    assert _finite(losses)


def test_pseudo_labels_get_teacher_masks(model):
    data = _inputs(model)
    model.pseudo_label = dict(score_thr=0.0, iou_thr=0.5)
    try:
        with torch.no_grad():
            out = model._teacher_forward(model.teacher, data['inputs'],
                                         data['data_samples'])
            samples = model._with_pseudo_labels(model.teacher, out,
                                                data['data_samples'])
        losses = _losses(model, data, pseudo_label=model.pseudo_label)
    finally:
        model.pseudo_label = None
    for before, after in zip(data['data_samples'], samples):
        gt = after.gt_instances
        assert len(gt) > len(before.gt_instances)  # pseudo-labels added
        assert len(gt.masks) == len(gt.bboxes)
        assert (gt.masks.height, gt.masks.width) == \
            (before.gt_instances.masks.height,
             before.gt_instances.masks.width)
        assert gt.labels[len(before.gt_instances):].max() < len(OLD)
    assert _finite(losses) and losses['loss_mask'] > 0


def test_predict_returns_masks_of_every_class(model):
    model.eval()
    data = _inputs(model)
    saved = copy.deepcopy(model.roi_head.test_cfg)
    model.roi_head.test_cfg.score_thr = 0.0
    try:
        with torch.no_grad():
            results = model(**data, mode='predict')
    finally:
        model.roi_head.test_cfg = saved
    labels = set()
    for result in results:
        pred = result.pred_instances
        assert pred.masks.shape == (len(pred.labels), 96, 128)
        labels |= set(pred.labels.tolist())
    assert labels == {0, 1, 2, 3}


def test_bad_input_errors():
    cfg = _model_cfg()
    cfg.roi_head.mask_head.num_classes = 2
    with pytest.raises(ValueError, match='mask_head.num_classes is 2'):
        MODELS.build(cfg)
    cfg = _model_cfg()
    cfg.roi_head.mask_head = None
    with pytest.raises(ValueError, match='needs roi_head.mask_head'):
        MODELS.build(cfg)
    cfg = _model_cfg()
    cfg.type = 'IncrementalFasterRCNN'
    cfg.distill.pop('mask')
    with pytest.raises(ValueError, match="type='IncrementalMaskRCNN'"):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='unknown distill keys'):
        MODELS.build(dict(_model_cfg(), distill=dict(masks=1.0)))


def test_one_old_class_with_class_agnostic_heads():
    """1+2 with class-agnostic box and mask heads: the teacher's 4 deltas
    and 1 mask channel are copied unchanged (the surgery would grow them
    as one class's rows), and a step with pseudo-labels trains."""
    cfg = _model_cfg()
    cfg.update(old_classes=('a', ), new_classes=('c', 'd'),
               pseudo_label=dict(score_thr=0.0, iou_thr=0.5))
    cfg.roi_head.bbox_head.update(num_classes=3, reg_class_agnostic=True)
    cfg.roi_head.mask_head.update(num_classes=3, class_agnostic=True)
    torch.manual_seed(0)
    det = MODELS.build(cfg)
    det.init_weights()
    teacher = det.teacher.state_dict()
    for key in ('roi_head.bbox_head.fc_reg.weight',
                'roi_head.mask_head.conv_logits.weight'):
        assert torch.equal(det.state_dict()[key], teacher[key])
    assert det.roi_head.mask_head.conv_logits.out_channels == 1
    losses = _losses(det, _inputs(det), pseudo_label=det.pseudo_label)
    assert _finite(losses) and losses['loss_distill_mask'].abs() < 1e-6
    assert losses['loss_distill_reg'].abs() < 1e-6
