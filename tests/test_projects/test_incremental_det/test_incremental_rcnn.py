"""IncrementalFasterRCNN on a shrunk model with a random teacher."""
import copy
import functools
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config

from projects.IncrementalDet.incremental_det.arg_checks import check_values
from projects.IncrementalDet.incremental_det.incremental_rcnn import (
    DISTILL_DEFAULTS,
)

from conftest import REPO, shrink_model

CFG_DIR = osp.join(REPO, 'projects', 'IncrementalDet', 'configs')
ALL = 'faster-rcnn_mobilenetv2_fpn-128_all_8e_bccd-1-2.py'


@functools.cache
def _parsed(name: str) -> dict:
    register_all_modules()
    return shrink_model(Config.fromfile(osp.join(CFG_DIR, name)).model)


def _model_cfg(name: str = ALL):
    return copy.deepcopy(_parsed(name))


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    det = MODELS.build(_model_cfg())
    det.init_weights()
    return det


def _inputs(model, num_items=(3, 0)):
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128)] * 2,
                            num_items=list(num_items), num_classes=3)
    for sample in packed['data_samples']:  # new classes only: 1, 2
        sample.gt_instances.labels.clamp_(min=1, max=2)
    return model.data_preprocessor(packed, True)


def test_teacher_is_frozen_and_not_part_of_the_student(model):
    teacher = model.teacher
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    student = {id(p) for p in model.parameters()}
    assert not student & {id(p) for p in teacher.parameters()}
    assert not any('teacher' in k for k in model.state_dict())
    model.train()
    assert not teacher.training  # runner.train() does not reach it
    data = _inputs(model)
    losses = model(**data, mode='loss')
    for key in ('loss_distill_cls', 'loss_distill_reg', 'loss_distill_rpn',
                'loss_distill_feat'):
        assert key in losses
    sum(v for k, v in losses.items() if 'loss' in k
        and isinstance(v, torch.Tensor)).backward()
    assert not teacher.training
    assert all(p.grad is None for p in teacher.parameters())


def test_expanded_heads_reproduce_old_logits(model):
    model.eval()
    data = _inputs(model)
    rois = bbox2roi([torch.tensor([[0., 0., 40., 40.], [10., 20., 90.,
                                                        80.]])] * 2)
    with torch.no_grad():
        t = model.teacher.roi_head._bbox_forward(
            model.teacher.extract_feat(data['inputs']), rois)
        s = model.roi_head._bbox_forward(model.extract_feat(data['inputs']),
                                         rois)
    # The same rows; only the matmul's float summation order may differ.
    assert torch.allclose(s['cls_score'][:, [0, -1]], t['cls_score'],
                          atol=1e-6)
    assert torch.allclose(s['bbox_pred'][:, :4], t['bbox_pred'], atol=1e-6)


def test_new_class_rows_follow_the_run_seed():
    """The surgery draws the new classes' rows with the run's seed
    (``torch.initial_seed()``, which mmengine's ``randomness.seed`` sets);
    the old and background rows are the teacher's whatever the seed."""
    torch.manual_seed(0)
    det = MODELS.build(_model_cfg())
    head, rows = det.roi_head.bbox_head, []
    for seed in (0, 1, 0):
        torch.manual_seed(seed)
        det.init_weights()
        rows.append(head.fc_cls.weight.detach().clone())
    assert torch.equal(rows[0], rows[2])
    assert not torch.equal(rows[0][1:3], rows[1][1:3])  # WBC, Platelets
    teacher = det.teacher.roi_head.bbox_head.fc_cls.weight
    for got in rows:
        assert torch.equal(got[[0, 3]], teacher)


def test_distillation_is_zero_at_the_start(model):
    """Faster ILOD's losses (L2 logits, deltas, RPN, features) vanish while
    the student is the teacher with grown heads (no optimizer step yet)."""
    saved = model.distill, model.pseudo_label
    model.distill, model.pseudo_label = dict(saved[0], cls_mode='l2'), None
    try:
        model.train()
        losses = model(**_inputs(model), mode='loss')
    finally:
        model.distill, model.pseudo_label = saved
    for key in ('loss_distill_cls', 'loss_distill_reg', 'loss_distill_rpn',
                'loss_distill_feat'):
        assert losses[key].abs().item() < 1e-6, key


def test_no_ground_truth_and_no_proposals(model):
    model.train()
    losses = model(**_inputs(model, num_items=(0, 0)), mode='loss')
    assert all(torch.isfinite(v).all() for k, v in losses.items()
               if 'loss' in k and isinstance(v, torch.Tensor))
    out = {'rois': torch.zeros(0, 5), 'nums': [0, 0]}
    assert model._with_pseudo_labels(model.teacher, out, ['x']) == ['x']
    feats = model.extract_feat(_inputs(model)['inputs'])
    rpn_cls, rpn_reg = model.rpn_head(feats)
    zero = model._distill_losses(
        {'feats': feats, 'rpn': (rpn_cls, rpn_reg)},
        dict(out, feats=feats, rpn_cls=rpn_cls, rpn_reg=rpn_reg))
    assert zero['loss_distill_cls'] == 0 and zero['loss_distill_reg'] == 0


def test_bad_input_errors(tmp_path, model):
    cfg = _model_cfg()
    cfg.update(allow_random_teacher=False)
    with pytest.raises(ValueError, match='model.teacher_ckpt is None'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='collide with old_classes'):
        MODELS.build(dict(_model_cfg(), new_classes=('RBC', 'WBC')))
    with pytest.raises(ValueError, match='num_classes is 3'):
        MODELS.build(dict(_model_cfg(), new_classes=('WBC', )))
    mma = 'faster-rcnn_mobilenetv2_fpn-128_mma_8e_bccd-1-2.py'
    with pytest.raises(ValueError, match='do not go together'):
        MODELS.build(dict(_model_cfg(mma), pseudo_label=dict(score_thr=.5)))
    cfg = _model_cfg(mma)
    cfg['roi_head']['bbox_head']['loss_cls']['num_old_classes'] = 2
    with pytest.raises(ValueError, match=r"num_old_classes is 2, but "
                       r"old_classes \['RBC'\] are 1"):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match=r"distill.feat_mode must be one"):
        MODELS.build(dict(_model_cfg(), distill=dict(feat_mode='l2')))
    # A teacher checkpoint of other classes: an error naming both lists.
    teacher = model.teacher
    path = str(tmp_path / 'old.pth')
    torch.save({'state_dict': teacher.state_dict(),
                'meta': {'dataset_meta': {'classes': ('WBC', )}}}, path)
    cfg = dict(_model_cfg(), teacher_ckpt=path, allow_random_teacher=False)
    with pytest.raises(ValueError, match=r"\['WBC'\].*\['RBC'\]"):
        MODELS.build(cfg)
    # The right classes, another architecture: torch's size-mismatch
    # traceback named neither the file nor the key.
    state = dict(teacher.state_dict())
    name = next(k for k in state if k.startswith('neck.'))
    state[name] = torch.zeros(1)
    torch.save({'state_dict': state,
                'meta': {'dataset_meta': {'classes': ('RBC', )}}}, path)
    with pytest.raises(ValueError, match=r'model.teacher_ckpt .*old.pth '
                       r"does not fit the student's architecture"):
        MODELS.build(cfg)
    torch.save({'state_dict': teacher.state_dict(),
                'meta': {'dataset_meta': {'classes': ('RBC', )}}}, path)
    det = MODELS.build(cfg)
    for a, b in zip(det.teacher.parameters(), teacher.parameters()):
        assert torch.equal(a, b)


def test_a_step_checkpoint_is_the_next_steps_teacher(tmp_path, model):
    """1+2 then +1: the step's weights (classes RBC, WBC, Platelets) load
    as the teacher of the next step, whose student grows to 4 classes."""
    path = str(tmp_path / 'step1.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {
                    'classes': ('RBC', 'WBC', 'Platelets')}}}, path)
    cfg = _model_cfg()
    cfg.roi_head.bbox_head.num_classes = 4
    cfg.update(old_classes=('RBC', 'WBC', 'Platelets'),
               new_classes=('Eosinophil', ), teacher_ckpt=path,
               allow_random_teacher=False)
    step2 = MODELS.build(cfg)
    step2.init_weights()
    old = model.state_dict()['roi_head.bbox_head.fc_cls.weight']
    new = step2.state_dict()['roi_head.bbox_head.fc_cls.weight']
    assert new.shape[0] == 5
    assert torch.equal(new[:3], old[:3]) and torch.equal(new[4], old[3])


def test_one_old_class_with_a_class_agnostic_regressor():
    """1+2 with ``reg_class_agnostic=True``: the teacher's 4 deltas have the
    shape of one class's, and the surgery grew them to 4 * 3 rows (a
    size mismatch in load_state_dict). They are copied unchanged, and a
    step with every loss and the pseudo-labels trains."""
    cfg = _model_cfg()
    cfg.roi_head.bbox_head.reg_class_agnostic = True
    cfg.pseudo_label = dict(score_thr=0.0, iou_thr=0.5)
    torch.manual_seed(0)
    det = MODELS.build(cfg)
    det.init_weights()
    for name in ('weight', 'bias'):
        key = f'roi_head.bbox_head.fc_reg.{name}'
        assert torch.equal(det.state_dict()[key],
                           det.teacher.state_dict()[key])
    det.eval()
    data = _inputs(det)
    rois = bbox2roi([torch.tensor([[0., 0., 40., 40.]])] * 2)
    with torch.no_grad():
        t = det.teacher.roi_head._bbox_forward(
            det.teacher.extract_feat(data['inputs']), rois)
        s = det.roi_head._bbox_forward(det.extract_feat(data['inputs']),
                                       rois)
    assert s['bbox_pred'].shape == t['bbox_pred'].shape == (2, 4)
    assert torch.allclose(s['bbox_pred'], t['bbox_pred'], atol=1e-6)
    det.train()
    losses = det(**data, mode='loss')
    assert losses['loss_distill_reg'].abs().item() < 1e-6
    total = sum(v for k, v in losses.items()
                if 'loss' in k and isinstance(v, torch.Tensor))
    assert torch.isfinite(total)
    total.backward()


def test_attentive_roi_distillation_in_the_step():
    """ABR's ARD: zero while the student is the teacher, positive and
    training the student's neck once they differ, zero with no RoI."""
    torch.manual_seed(0)
    det = MODELS.build(_model_cfg(
        'faster-rcnn_mobilenetv2_fpn-128_abr-ard_8e_bccd-1-2.py'))
    det.init_weights()
    assert det.distill['ard'] == 1.0 and det.distill['cls_mode'] == \
        'unbiased'
    det.train()
    data = _inputs(det)
    assert det(**data, mode='loss')['loss_distill_ard'].item() < 1e-6
    with torch.no_grad():
        for p in det.neck.parameters():
            p.mul_(1.5)
    loss = det(**data, mode='loss')['loss_distill_ard']
    assert loss.item() > 1e-4
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in det.neck.parameters())
    feats = det.extract_feat(data['inputs'])
    out = {'rois': torch.zeros(0, 5), 'nums': [0, 0], 'feats': feats}
    zero = det._distill_losses({'feats': feats}, out)
    assert zero['loss_distill_ard'] == 0
    assert zero['loss_distill_ard'].requires_grad


@pytest.mark.parametrize('distill, pseudo, match', [
    (dict(cls=-1.0), {}, r'distill.cls must be a number >= 0'),
    (dict(num_rois=0), {}, r'distill.num_rois must be an integer >= 1'),
    # a switch, not a dict: "'bool' object is not iterable" before
    (True, {}, r'model.distill must be a dict or None, got True'),
    ({}, True, r'model.pseudo_label must be a dict or None, got True'),
    (dict(num_candidates=2.5), {}, 'distill.num_candidates must be an int'),
    ({}, dict(score_thr=1.5), r'pseudo_label.score_thr must be in \[0, 1\]'),
    ({}, dict(iou_thr=-0.1), r'pseudo_label.iou_thr must be in \[0, 1\]'),
])
def test_values_that_would_switch_a_loss_off_are_refused(distill, pseudo,
                                                         match):
    # before: cls=-1 switched the loss off, num_rois=0 distilled nothing,
    # score_thr > 1 kept no pseudo-label, all without a word
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(_model_cfg(), distill=distill,
                          pseudo_label=pseudo))
    check_values(dict(cls=1, num_rois=8), dict(score_thr=0.5, iou_thr=0.5),
                 DISTILL_DEFAULTS, ('cls', ))
