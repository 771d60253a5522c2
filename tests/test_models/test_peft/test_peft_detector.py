"""PEFTDetector on the shrunk BCCD LoRA config: a real Faster R-CNN."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config

from rcnn_plugin.models.peft import (
    build_peft_detector,
    lora_layers,
    merge_to_plain,
    plain_config,
)

from conftest import REPO, shrink_model

PEFT_DIR = osp.join(REPO, 'configs', 'bccd_peft')
LORA_R8 = osp.join(PEFT_DIR,
                   'faster-rcnn_mobilenetv2_fpn-128_lora-r8_8e_bccd.py')
TRAINABLE = ('neck.', 'rpn_head.', 'roi_head.bbox_head.fc_cls.',
             'roi_head.bbox_head.fc_reg.')


def _cfg(path=LORA_R8):
    register_all_modules()
    return Config.fromfile(path)


def _outputs(model, image):
    with torch.no_grad():
        feats = model.extract_feat(image)
        rois = torch.tensor([[0, 4., 4., 60., 50.], [0, 30., 10., 90., 70.]])
        out = model.roi_head._bbox_forward(feats, rois)
    return list(feats) + [out['cls_score'], out['bbox_pred']]


def test_registered_as_function():
    assert MODELS.get('PEFTDetector') is build_peft_detector


def test_zero_init_outputs_equal_the_plain_detector():
    cfg = _cfg()
    torch.manual_seed(0)
    peft = MODELS.build(shrink_model(cfg.model))
    peft.init_weights()
    assert len(lora_layers(peft)) > 10
    plain = MODELS.build(shrink_model(plain_config(cfg).model))
    base_state = {k: v for k, v in peft.state_dict().items()
                  if 'lora_' not in k}
    plain.load_state_dict(base_state, strict=True)  # same keys as plain
    peft.eval(), plain.eval()
    image = torch.rand(1, 3, 96, 128)
    for a, b in zip(_outputs(peft, image), _outputs(plain, image)):
        assert torch.equal(a, b)


def test_gradients_reach_only_lora_and_unfrozen_parameters():
    cfg = _cfg()
    torch.manual_seed(0)
    model = MODELS.build(shrink_model(cfg.model))
    model.init_weights()
    model.train()
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128)] * 2,
                            num_items=[3, 0], num_classes=3)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    model.parse_losses(losses)[0].backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    expected = {n for n, _ in model.named_parameters()
                if n.startswith(TRAINABLE) or n.endswith(('lora_A',
                                                          'lora_B'))}
    assert grads == expected
    lora_b = [p for n, p in model.named_parameters() if n.endswith('lora_B')]
    assert all(p.grad.abs().sum() > 0 for p in lora_b)
    assert not any(n.startswith('backbone.') and not n.endswith(
        ('lora_A', 'lora_B')) for n in grads)


def test_lora_r4_fpn_trains_under_5_percent_and_merges():
    path = osp.join(PEFT_DIR,
                    'faster-rcnn_mobilenetv2_fpn-128_lora-r4-fpn_8e_bccd.py')
    cfg = _cfg(path)
    full = MODELS.build(cfg.model)  # the real widths: the budget
    plain_params = sum(p.numel() for n, p in full.named_parameters()
                       if 'lora_' not in n)
    trainable = {n: p.numel() for n, p in full.named_parameters()
                 if p.requires_grad}
    assert sum(trainable.values()) <= 0.05 * plain_params
    # FPN output convs and the RPN conv: frozen base, trained LoRA
    for prefix in ('neck.fpn_convs.0.conv.', 'rpn_head.rpn_conv.'):
        assert {n[len(prefix):] for n in trainable
                if n.startswith(prefix)} == {'lora_A', 'lora_B'}
    assert 'neck.lateral_convs.3.conv.weight' in trainable
    del full
    torch.manual_seed(0)
    model = MODELS.build(shrink_model(cfg.model))
    model.init_weights()
    with torch.no_grad():  # a trained-looking update everywhere
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.eval()
    image = torch.rand(1, 3, 96, 128)

    def outputs(detector):  # features, box head and the RPN's outputs
        out = _outputs(detector, image)
        with torch.no_grad():
            scores, deltas = detector.rpn_head(out[:-2])
        return out + list(scores) + list(deltas)

    before = outputs(model)
    plain = MODELS.build(shrink_model(plain_config(cfg).model))
    plain.load_state_dict(merge_to_plain(model), strict=True)
    after = outputs(plain.eval())
    assert len(after) == len(before) == 2 * 5 + 2 + 5
    for a, b in zip(after, before):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_frozen_stage_adapters_are_refused():
    cfg = _cfg()
    cfg.model.lora.target_modules = r'backbone\.layer1\..*'
    with pytest.raises(ValueError, match='frozen by the model itself'):
        MODELS.build(shrink_model(cfg.model))


def test_head_only_freezes_backbone_and_its_bn():
    path = osp.join(PEFT_DIR,
                    'faster-rcnn_mobilenetv2_fpn-128_head-only_8e_bccd.py')
    model = MODELS.build(shrink_model(_cfg(path).model))
    model.train()
    trainable = {n.split('.')[0] for n, p in model.named_parameters()
                 if p.requires_grad}
    assert trainable == {'neck', 'rpn_head', 'roi_head'}
    bns = [m for n, m in model.backbone.named_modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)


def test_bias_norm_alone_freezes_the_weights():
    # freeze=dict(bias_norm=True) with no frozen pattern trained the whole
    # model (frozen defaulted to '.*' only with lora / adapters / prompts).
    cfg = _cfg()
    cfg.model.pop('lora')
    cfg.model['freeze'] = dict(bias_norm=True)
    model = MODELS.build(shrink_model(cfg.model))
    weights = [p for n, p in model.named_parameters()
               if n.endswith('weight') and p.dim() > 1]
    assert weights and not any(p.requires_grad for p in weights)
    assert any(p.requires_grad for n, p in model.named_parameters()
               if n.endswith('bias'))


@pytest.mark.parametrize('change,match', [
    (dict(lora=dict(rank=4, target_modules='neck.*', ranks=3)),
     'unknown keys'),
    (dict(lora=dict(rank=4)), 'target_modules'),
    (dict(freeze=dict(frozen='nek')), "freeze.frozen='nek'"),
    (dict(detector_type='PEFTDetector'), 'detector_type'),
])
def test_config_errors(change, match):
    model_cfg = shrink_model(_cfg().model)
    for key, value in change.items():  # replace, do not merge
        model_cfg[key] = copy.deepcopy(value)
    with pytest.raises((ValueError, TypeError), match=match):
        MODELS.build(model_cfg)
