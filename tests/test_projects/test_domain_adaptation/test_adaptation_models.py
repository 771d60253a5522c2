"""DAFasterRCNN and DomainAdaptiveTeacher on shrunk models: one loss step
each, target labels never read, a mean-teacher step without pseudo-labels.
"""
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config

from conftest import REPO, shrink_model

CONFIGS = osp.join(REPO, 'projects', 'DomainAdaptation', 'configs')
DA = 'da-faster-rcnn_mobilenetv2_fpn-128_800i_bccd-to-bcd.py'
MT = 'mean-teacher_faster-rcnn_mobilenetv2_fpn-128_800i_bccd-to-bcd.py'
SF = ('source-free-teacher_faster-rcnn_mobilenetv2_fpn-128_400i_'
      'bccd-to-bcd.py')


class TargetSample(DetDataSample):
    """A target sample whose labels raise if anything reads them."""

    @property
    def gt_instances(self):
        raise AssertionError('target gt_instances were read in training')


def _cfg(name):
    register_all_modules()
    import projects.DomainAdaptation.domain_adaptation  # noqa: F401
    return Config.fromfile(osp.join(CONFIGS, name))


def _batch(model, num_items, training=True):
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128)] * 2,
                            num_items=num_items, num_classes=3)
    for s in packed['data_samples']:
        s.set_metainfo(dict(homography_matrix=np.eye(3, dtype=np.float32)))
    return model.data_preprocessor.data_preprocessor(packed, training)


def _total(losses):
    values = [v for k, v in losses.items() if 'loss' in k]
    flat = [t for v in values for t in (v if isinstance(v, list) else [v])]
    return sum(t.sum() for t in flat)


def test_da_faster_rcnn_never_reads_target_labels():
    cfg = _cfg(DA)
    model = MODELS.build(dict(shrink_model(cfg.model),
                              data_preprocessor=cfg.model.data_preprocessor))
    model.init_weights()
    model.train()
    src = _batch(model, [3, 0])
    tgt = _batch(model, [2, 2])
    tgt_samples = [TargetSample(metainfo=s.metainfo)
                   for s in tgt['data_samples']]
    losses = model.loss(
        dict(sup=src['inputs'], unsup=tgt['inputs']),
        dict(sup=src['data_samples'], unsup=tgt_samples))
    for key in ('loss_da_img', 'loss_da_ins', 'loss_da_cst', 'loss_cls'):
        assert math.isfinite(float(_total({key: losses[key]}))), key
    # the instance classifier sees the box head's FC features (the paper),
    # so its loss reaches the shared FCs
    fc = model.roi_head.bbox_head.shared_fcs[0].weight
    grad, = torch.autograd.grad(losses['loss_da_ins'], fc, retain_graph=True)
    assert grad.abs().sum() > 0
    assert model.ins_da_head.net[0].in_features == \
        model.roi_head.bbox_head.fc_out_channels
    total = _total(losses)
    total.backward()
    assert model.img_da_head.net[0].weight.grad is not None
    with pytest.raises(AssertionError, match='target gt_instances'):
        _ = tgt_samples[0].gt_instances  # the sentinel works


def test_da_faster_rcnn_ins_feat_options():
    cfg = _cfg(DA)
    model_cfg = dict(shrink_model(cfg.model),
                     data_preprocessor=cfg.model.data_preprocessor)
    roi = MODELS.build(dict(model_cfg, ins_feat='roi'))
    assert roi.ins_da_head.net[0].in_features == \
        model_cfg['roi_head']['bbox_roi_extractor']['out_channels']
    with pytest.raises(ValueError, match="ins_feat must be 'box_head'"):
        MODELS.build(dict(model_cfg, ins_feat='fc'))


@pytest.mark.parametrize('key,value', [('img', -1.0), ('ins', -0.5),
                                       ('cst', '0.1')])
def test_da_weights_must_be_numbers_not_below_zero(key, value):
    # A negative weight turned the domain loss around without a word, as a
    # negative grl_weight did (refused since).
    cfg = _cfg(DA)
    model_cfg = dict(shrink_model(cfg.model),
                     data_preprocessor=cfg.model.data_preprocessor)
    with pytest.raises(ValueError,
                       match=f'da_weights.{key} must be a number >= 0'):
        MODELS.build(dict(model_cfg, da_weights={key: value}))


def test_da_faster_rcnn_plain_batch_is_source_only():
    cfg = _cfg(DA)
    model = MODELS.build(dict(shrink_model(cfg.model),
                              data_preprocessor=cfg.model.data_preprocessor))
    model.train()
    src = _batch(model, [2, 1])
    losses = model.loss(src['inputs'], src['data_samples'])
    assert 'loss_da_img' not in losses and 'loss_cls' in losses
    with pytest.raises(KeyError, match="'unsup'"):
        model.loss(dict(sup=src['inputs']), dict(sup=src['data_samples']))


def _teacher(cls_pseudo_thr, name=MT):
    cfg = _cfg(name)
    model_cfg = cfg.model
    model_cfg.detector = shrink_model(model_cfg.detector)
    model_cfg.semi_train_cfg.cls_pseudo_thr = cls_pseudo_thr
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    return model


def _semi_step(model):
    src = _batch(model, [3, 1])
    weak = _batch(model, [0, 0])
    strong = _batch(model, [0, 0])
    return model.loss(
        dict(sup=src['inputs'], unsup_teacher=weak['inputs'],
             unsup_student=strong['inputs']),
        dict(sup=src['data_samples'], unsup_teacher=weak['data_samples'],
             unsup_student=strong['data_samples']))


def test_mean_teacher_step_without_pseudo_labels():
    model = _teacher(cls_pseudo_thr=1.01)  # no score can pass
    losses = _semi_step(model)
    assert losses['unsup_num_pseudo'].item() == 0
    for key, value in losses.items():
        if key.startswith('unsup_loss') and key != 'unsup_loss_disc':
            assert float(_total({key: value})) == 0, key
    assert float(losses['sup_loss_cls']) > 0
    total = _total(losses)
    assert math.isfinite(total.item())
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    # frozen, not only untouched: the teacher's pass runs under no_grad, so
    # no gradient reaches it even when freeze_teacher is off
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert 'sup_loss_disc' in losses and 'unsup_loss_disc' in losses


def test_mean_teacher_step_with_pseudo_labels_and_predict():
    model = _teacher(cls_pseudo_thr=0.0)  # every teacher box is a target
    losses = _semi_step(model)
    assert math.isfinite(_total(losses).item())
    model.eval()
    with torch.no_grad():
        data = _batch(model, [1, 0], training=False)
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == 2


def _target_step(model):
    weak = _batch(model, [0, 0])
    strong = _batch(model, [0, 0])
    return model.loss(
        dict(unsup_teacher=weak['inputs'], unsup_student=strong['inputs']),
        dict(unsup_teacher=weak['data_samples'],
             unsup_student=strong['data_samples']))


@pytest.mark.parametrize('thr', [0.0, 1.01])
def test_source_free_step_trains_on_target_images_only(thr):
    model = _teacher(cls_pseudo_thr=thr, name=SF)
    assert model.source_free and model.discriminator is None
    losses = _target_step(model)
    assert losses and all(k.startswith('unsup_') for k in losses)
    if thr > 1:  # no pseudo-label: a normal step whose losses weigh 0
        assert losses['unsup_num_pseudo'].item() == 0
        assert float(_total(losses)) == 0
    else:
        assert losses['unsup_num_pseudo'].item() > 0
        assert float(_total(losses)) > 0
    total = _total(losses)
    assert math.isfinite(total.item())
    if total.requires_grad:
        total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    # frozen, not only untouched: the teacher's pass runs under no_grad, so
    # no gradient reaches it even when freeze_teacher is off
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_steps_in_a_row_without_pseudo_labels_are_warned_once(
        monkeypatch):
    # An untrained teacher (no load_from) gives no box above the
    # threshold: every step weighs 0 and the run ended with nothing said.
    from projects.DomainAdaptation.domain_adaptation import mean_teacher
    logged = []
    monkeypatch.setattr(mean_teacher, 'print_log',
                        lambda msg, *a, **k: logged.append(msg))
    model = _teacher(cls_pseudo_thr=1.01, name=SF)
    monkeypatch.setattr(model, 'NO_PSEUDO_WARN', 2)
    for _ in range(3):
        _target_step(model)
    assert len(logged) == 1 and 'Is load_from the trained source' in \
        logged[0]
    model._note_pseudo(5)  # a box: the count starts again
    assert model._steps_without_pseudo == 0


def test_source_free_and_source_branch_disagree_loudly():
    model = _teacher(cls_pseudo_thr=0.7, name=SF)
    with pytest.raises(ValueError, match="drop the source dataset"):
        _semi_step(model)  # a batch with labelled source images
    plain = _teacher(cls_pseudo_thr=0.7)
    with pytest.raises(ValueError, match='set source_free=True'):
        _target_step(plain)


def test_source_free_refuses_a_discriminator():
    cfg = _cfg(SF).model
    cfg.detector = shrink_model(cfg.detector)
    cfg.discriminator = dict(type='ImageDomainClassifier')
    with pytest.raises(ValueError, match='source_free=True has none'):
        MODELS.build(cfg)


def test_da_faster_rcnn_without_proposals_or_ground_truth(monkeypatch):
    """No RPN proposal on either domain and no source GT: the instance and
    consistency terms are finite zeros that keep the graph."""
    from mmengine.structures import InstanceData
    cfg = _cfg(DA)
    model = MODELS.build(dict(shrink_model(cfg.model),
                              data_preprocessor=cfg.model.data_preprocessor))
    model.init_weights()
    model.train()

    def no_proposals(*args, batch_img_metas, **kwargs):
        return [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                             labels=torch.zeros(0, dtype=torch.long))
                for _ in batch_img_metas]

    monkeypatch.setattr(model.rpn_head, 'predict_by_feat', no_proposals)
    src, tgt = _batch(model, [0, 0]), _batch(model, [0, 0])
    losses = model._domain_losses(model.extract_feat(src['inputs']),
                                  src['data_samples'], 0)
    for key in ('loss_da_ins', 'loss_da_cst'):
        assert float(losses[key]) == 0, key
        assert losses[key].requires_grad, key
    assert math.isfinite(float(losses['loss_da_img']))
    monkeypatch.undo()  # the detector's own RPN for its supervised losses
    losses = model.loss(dict(sup=src['inputs'], unsup=tgt['inputs']),
                        dict(sup=src['data_samples'],
                             unsup=tgt['data_samples']))
    total = _total(losses)
    assert math.isfinite(float(total))
    total.backward()


def test_teacher_defaults_and_a_detector_without_a_neck():
    from projects.DomainAdaptation.domain_adaptation.mean_teacher import (
        DomainAdaptiveTeacher,
    )
    cfg = _cfg(MT).model
    detector = shrink_model(cfg.detector)
    # The documented defaults are read by attribute, as configs give them.
    model = DomainAdaptiveTeacher(detector=detector)
    assert model.semi_train_cfg.cls_pseudo_thr == 0.7
    assert model.semi_test_cfg.predict_on == 'teacher'
    no_neck = dict(detector)
    no_neck.pop('neck')
    with pytest.raises(ValueError, match='set discriminator.in_channels'):
        DomainAdaptiveTeacher(detector=no_neck,
                              discriminator=dict(type='ImageDomainClassifier'))
    with pytest.raises(ValueError, match='disc_weight must be a number >= 0'):
        DomainAdaptiveTeacher(detector=detector, disc_weight=-0.1)
