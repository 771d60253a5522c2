"""Conv adapters, prompts and bias / norm tuning in a shrunk Faster R-CNN."""
import copy
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.logging import MMLogger

from rcnn_plugin.engine import AdapterCheckpointHook
from rcnn_plugin.models.peft import (
    is_adapter_param,
    load_adapter,
    merge_to_plain,
    plain_config,
)

from conftest import REPO, shrink_model

CFG = osp.join(REPO, 'configs', 'bccd_peft',
               'faster-rcnn_mobilenetv2_fpn-128_{}_8e_bccd.py')
METHODS = ['conv-adapter', 'prompt', 'bias-norm']
# Everything that folds: a linear adapter on the FPN output convs, bias
# prompts on the lateral convs (ConvModules without norm / activation).
MERGEABLE = dict(
    conv_adapter=dict(target_modules=r'neck\.fpn_convs\.\d\.conv', act=None,
                      bottleneck=4),
    prompt=dict(features=dict(target_modules=r'neck\.lateral_convs\.\d')))
_CACHE = {}


def _model_cfg(method, change=None):
    register_all_modules()
    cfg = Config.fromfile(CFG.format(method))
    for key, value in (change or {}).items():
        cfg.model[key] = value
    return cfg


def _build(cfg):
    """A fresh copy of the shrunk model (built once per config)."""
    key = repr(cfg.model.to_dict())
    if key not in _CACHE:
        torch.manual_seed(0)
        model = MODELS.build(shrink_model(cfg.model))
        model.init_weights()
        _CACHE[key] = model.eval()
    return copy.deepcopy(_CACHE[key])


def _outputs(model, image):
    with torch.no_grad():
        feats = model.extract_feat(image)
        rois = torch.tensor([[0, 4., 4., 60., 50.], [0, 30., 10., 90., 70.]])
        out = model.roi_head._bbox_forward(feats, rois)
    return list(feats) + [out['cls_score'], out['bbox_pred']]


def _perturb(model):
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))


def _plain(cfg, state):
    plain = _build(plain_config(cfg))
    plain.load_state_dict(state, strict=True)
    return plain


@pytest.mark.parametrize('method', METHODS)
def test_step0_equals_the_plain_detector_and_gradients(method):
    cfg = _model_cfg(method)
    model = _build(cfg)
    base = {k: v for k, v in model.state_dict().items()
            if not is_adapter_param(k)}
    image = torch.rand(1, 3, 96, 128)
    for a, b in zip(_outputs(model, image),
                    _outputs(_plain(cfg, base), image)):
        assert torch.equal(a, b)
    model.train()
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128)] * 2,
                            num_items=[3, 0], num_classes=3)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    model.parse_losses(losses)[0].backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {n for n, p in model.named_parameters()
                     if p.requires_grad}
    backbone = {n for n in grads if n.startswith('backbone.')}
    if method == 'bias-norm':
        assert backbone and all('.bn.' in n for n in backbone)
        bns = [m for m in model.backbone.modules()
               if isinstance(m, torch.nn.BatchNorm2d)]
        assert not any(m.training for m in bns)  # statistics stay
    else:
        assert not backbone
        assert any(n.startswith(('conv_adapters.', 'feature_prompts.'))
                   for n in grads)


@pytest.mark.parametrize('method', ['conv-adapter', 'prompt'])
def test_adapter_checkpoint_hook_round_trip(method, tmp_path):
    cfg = _model_cfg(method)
    model = _build(cfg)
    base = copy.deepcopy(model.state_dict())
    _perturb(model)
    runner = SimpleNamespace(model=model, hooks=[], work_dir=str(tmp_path),
                             cfg=Config(dict(load_from=None)),
                             logger=MMLogger.get_current_instance())
    AdapterCheckpointHook().before_save_checkpoint(
        runner, dict(meta=dict(epoch=2)))
    fresh = _build(cfg)
    fresh.load_state_dict(base, strict=True)
    load_adapter(fresh, str(tmp_path / 'adapter_epoch_2.pth'))
    image = torch.rand(1, 3, 96, 128)
    for a, b in zip(_outputs(fresh, image), _outputs(model, image)):
        assert torch.equal(a, b)


def test_linear_adapters_and_bias_prompts_merge_into_a_plain_model():
    cfg = _model_cfg('conv-adapter', MERGEABLE)
    model = _build(cfg)
    _perturb(model)
    image = torch.rand(1, 3, 96, 128)
    before = _outputs(model, image)
    plain = _plain(cfg, merge_to_plain(model))
    for a, b in zip(_outputs(plain, image), before):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('method,reason', [
    ('conv-adapter', 'nonlinear'), ('prompt', 'varies over the image')])
def test_merge_refuses_what_does_not_fold(method, reason):
    model = _build(_model_cfg(method))
    with pytest.raises(ValueError, match=reason):
        merge_to_plain(model)


@pytest.mark.parametrize('change,match', [
    (dict(conv_adapter=dict(target_modules=r'backbone\.stage2')),
     r"conv_adapter\.target_modules='backbone.*Close names: backbone"),
    (dict(conv_adapter=dict(target_modules=r'neck\.fpn_convs\.0',
                            bottleneck=0)), 'bottleneck'),
    (dict(prompt=dict(features=dict(target_modules='backbone.layer9'))),
     r'prompt\.features\.target_modules'),
    (dict(prompt=dict(inputs=dict(size=(8, 8)))), 'unknown keys'),
])
def test_config_errors(change, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MODELS.build(shrink_model(_model_cfg('conv-adapter', change).model))
