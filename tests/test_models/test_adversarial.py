"""FGSM / PGD attacks and adversarial training steps on a tiny detector."""
import copy
import functools
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.optim import OptimWrapper

import rcnn_plugin  # noqa: F401
from rcnn_plugin.models.adversarial import (
    AdversarialTraining,
    LossTermError,
    attack_losses,
    frozen_norm_stats,
    gt_to_input_scale,
    pgd_attack,
    select_loss,
)

from conftest import REPO, shrink_model

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')


@functools.lru_cache(maxsize=2)
def _built(norm_eval: bool):
    register_all_modules()
    cfg = shrink_model(Config.fromfile(DEMO).model)
    cfg['backbone']['norm_eval'] = norm_eval
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def tiny_model(norm_eval: bool = True):
    """A fresh copy of the shrunk demo detector (built once per module)."""
    return copy.deepcopy(_built(norm_eval))


def batch(num_items=(3, 2), seed=0):
    torch.manual_seed(seed)
    packed = demo_mm_inputs(
        batch_size=len(num_items), image_shapes=[(3, 96, 128)] *
        len(num_items), num_items=list(num_items), num_classes=3)
    for sample in packed['data_samples']:
        sample.gt_instances.labels.clamp_(max=2)
    return packed


def loss_at(model, data, inputs, target, seed=0):
    torch.manual_seed(seed)  # the same anchor and RoI samples each time
    with torch.no_grad():
        return select_loss(attack_losses(model, data, inputs), target).item()


# The RPN's terms: anchors are sampled against the ground truth, the same
# for clean and attacked images (seeded). The RoI head's loss_bbox of an
# untrained model is not tested alone: its positive RoIs change with the
# proposals, and that change outweighs a 2-pixel step.
@pytest.mark.parametrize('target', [('loss_rpn_cls', ), ('loss_rpn_bbox', ),
                                    'cls'])
def test_pgd_step_increases_attacked_loss(target):
    model, data = tiny_model().eval(), batch()
    clean = [x.float() for x in data['inputs']]
    torch.manual_seed(0)
    adv = pgd_attack(model, data, eps=2.0, step_size=2.0, steps=1,
                     target=target)
    assert loss_at(model, data, adv, target) > loss_at(
        model, data, clean, target)


@pytest.mark.parametrize('random_start', [False, True])
def test_eps_zero_leaves_images_unchanged(random_start):
    model, data = tiny_model().eval(), batch()
    adv = pgd_attack(model, data, eps=0.0, step_size=1.0, steps=2,
                     random_start=random_start)
    for x, a in zip(data['inputs'], adv):
        assert torch.equal(a, x.float())


def test_perturbation_stays_in_eps_ball_and_pixel_range():
    model, data = tiny_model().eval(), batch()
    data['inputs'][0][:, :10] = 255  # saturated pixels cannot go up
    data['inputs'][1][:, :10] = 0
    gen = torch.Generator().manual_seed(0)
    adv = pgd_attack(model, data, eps=4.0, step_size=3.0, steps=2,
                     target='sum', random_start=True, generator=gen)
    for x, a in zip(data['inputs'], adv):
        delta = a - x.float()
        assert delta.abs().max() <= 4.0 + 1e-4
        assert delta.abs().max() > 1.0
        assert a.min() >= 0 and a.max() <= 255


def test_unknown_loss_term_is_an_error_naming_it():
    model, data = tiny_model().eval(), batch()
    with pytest.raises(LossTermError, match="'loss_mask'.*loss_rpn_cls"):
        pgd_attack(model, data, eps=2.0, step_size=1.0, steps=1,
                   target=['loss_cls', 'loss_mask'])
    with pytest.raises(ValueError, match='unknown attack target'):
        pgd_attack(model, data, eps=2.0, step_size=1.0, steps=1,
                   target='box')


@pytest.mark.parametrize('kwargs,match', [
    (dict(eps=-1.0, step_size=1.0, steps=1), 'eps must be >= 0'),
    (dict(eps=2.0, step_size=0.0, steps=1), 'step_size must be > 0'),
    (dict(eps=2.0, step_size=1.0, steps=0), 'steps must be an integer'),
])
def test_bad_attack_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pgd_attack(torch.nn.Module(), batch(), **kwargs)


@pytest.mark.parametrize('kwargs,match', [
    (dict(method='trades'), 'method must be one of'),
    (dict(eps=0.0), 'eps must be > 0'),
    (dict(method='pgd', steps=0), 'steps must be an integer'),
    (dict(clean_ratio=1.5), 'clean_ratio'),
    (dict(method='free', target='cls'), 'takes no target'),
    # used to be accepted and ignored
    (dict(method='fgsm-rs', steps=10), "steps is for method 'pgd' only"),
    (dict(method='pgd', replays=8), "replays is for method 'free' only"),
    (dict(target=['loss_rpn_cls', 3]), 'loss keys'),
])
def test_bad_training_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdversarialTraining(**kwargs)


def test_frozen_norm_stats_restores_modes():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                              torch.nn.BatchNorm2d(4), torch.nn.Dropout())
    net.train()
    net[1].running_mean.zero_()
    with frozen_norm_stats(net):
        assert not net[1].training and net[2].training
        net(torch.rand(2, 3, 8, 8) + 5)
    assert net[1].training
    assert torch.equal(net[1].running_mean, torch.zeros(4))


def _train_once(model, adv, data):
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = copy.deepcopy(model.state_dict())
    log_vars = adv.train_step(model, data, optim)
    changed = [k for k, v in model.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    return log_vars, changed, before


@pytest.mark.parametrize('adv', [
    AdversarialTraining(eps=4.0),
    AdversarialTraining(method='pgd', eps=4.0, steps=2, clean_ratio=0.5),
    AdversarialTraining(method='free', eps=4.0, replays=2),
], ids=['fgsm-rs', 'pgd', 'free'])
def test_training_step_with_an_image_without_gt_changes_weights(adv):
    model = tiny_model().train()
    log_vars, changed, _ = _train_once(model, adv, batch((3, 0)))
    assert torch.isfinite(log_vars['loss'])
    assert any(k.startswith('backbone.') for k in changed)
    assert any(k.startswith('roi_head.') for k in changed)


def test_attack_pass_leaves_bn_statistics_to_the_training_pass(monkeypatch):
    """BN running statistics change once per step (the training pass)."""
    model = tiny_model(norm_eval=False).train()
    bn = next(m for m in model.backbone.modules()
              if isinstance(m, torch.nn.BatchNorm2d))
    adv, data = AdversarialTraining(eps=4.0), batch()
    counts = []
    from rcnn_plugin.models.adversarial import training
    real = training.pgd_attack

    def spy(*args, **kwargs):
        count = int(bn.num_batches_tracked)
        out = real(*args, **kwargs)
        counts.append((count, int(bn.num_batches_tracked)))
        return out

    monkeypatch.setattr(training, 'pgd_attack', spy)
    _, _, before = _train_once(model, adv, data)
    assert counts == [(0, 0)]  # the attack did not touch the statistics
    assert int(bn.num_batches_tracked) == 1
    assert model.training and bn.training


@pytest.mark.parametrize('box_type', [False, True])
def test_gt_to_input_scale_rescales_copies(box_type):
    from mmdet.structures.bbox import HorizontalBoxes
    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 96, 128)],
                            num_items=[2], num_classes=3, with_mask=True)
    sample = packed['data_samples'][0]
    sample.set_metainfo(dict(scale_factor=(2.0, 0.5), img_shape=(48, 256)))
    boxes = torch.as_tensor(sample.gt_instances.bboxes).clone()
    if box_type:
        sample.gt_instances.bboxes = HorizontalBoxes(boxes.clone())
    out = gt_to_input_scale([sample])[0].gt_instances
    scaled = torch.as_tensor(out.bboxes.tensor if box_type else out.bboxes)
    assert torch.allclose(scaled, boxes * torch.tensor([2, .5, 2, .5]))
    assert out.masks.masks.shape[1:] == (48, 256)
    original = sample.gt_instances.bboxes  # the input is left as it was
    assert torch.equal(original.tensor if box_type else original, boxes)


def test_gt_to_input_scale_rescales_ignored_boxes():
    from mmengine.structures import InstanceData
    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 96, 128)],
                            num_items=[1], num_classes=3)
    sample = packed['data_samples'][0]
    sample.set_metainfo(dict(scale_factor=(0.5, 0.5)))
    sample.ignored_instances = InstanceData(
        bboxes=torch.tensor([[10., 10., 40., 40.]]),
        labels=torch.tensor([0]))
    out = gt_to_input_scale([sample])[0]
    assert out.ignored_instances.bboxes.tolist() == [[5., 5., 20., 20.]]
    assert sample.ignored_instances.bboxes.tolist() == [[10., 10., 40., 40.]]
