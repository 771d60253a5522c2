"""The optional HF ``peft`` backend on the shrunk BCCD LoRA config."""
import copy
import os.path as osp
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config

from rcnn_plugin.models.peft import (
    load_adapter,
    merge_to_plain,
    plain_config,
    save_adapter,
)
from rcnn_plugin.models.peft.hf_peft import (
    hf_adapter_keys,
    hf_tuner_layers,
    remap_base_keys,
)

from conftest import REPO, shrink_model

LORA_R4 = osp.join(REPO, 'configs', 'bccd_peft',
                   'faster-rcnn_mobilenetv2_fpn-128_lora-r4_8e_bccd.py')
_CFG = {}


def _model_cfg(**peft_cfg):
    """The shrunk LoRA-r4 model dict on the peft backend (or native)."""
    if not _CFG:
        register_all_modules()
        _CFG['cfg'] = Config.fromfile(LORA_R4)
    cfg = shrink_model(_CFG['cfg'].model)
    if peft_cfg:
        peft_cfg.setdefault('target_modules', cfg.lora.target_modules)
        cfg.pop('lora')
        cfg.backend, cfg.peft_cfg = 'peft', peft_cfg
        cfg['freeze'] = dict(frozen='.*')  # adapters only
    return cfg


_MODELS = {}


def _build(**peft_cfg):
    """A fresh copy of an initialised model (built once per kind)."""
    key = repr(sorted(peft_cfg.items()))
    if key not in _MODELS:
        torch.manual_seed(0)
        _MODELS[key] = MODELS.build(_model_cfg(**peft_cfg))
        _MODELS[key].init_weights()
    return copy.deepcopy(_MODELS[key])


def _outputs(model, image):
    with torch.no_grad():
        feats = model.extract_feat(image)
        rois = torch.tensor([[0, 4., 4., 40., 30.], [0, 20., 10., 60., 60.]])
        out = model.roi_head._bbox_forward(feats, rois)
    return list(feats) + [out['cls_score'], out['bbox_pred']]


def _assert_close(a, b, atol=1e-5):
    for x, y in zip(_outputs(a, IMAGE), _outputs(b, IMAGE)):
        torch.testing.assert_close(x, y, atol=atol, rtol=1e-4)


IMAGE = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_missing_peft_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'peft', None)  # import peft fails
    with pytest.raises(ImportError, match=r"'\.\[peft\]'"):
        MODELS.build(_model_cfg(type='LoHa', r=4))


peft = pytest.importorskip('peft')


@pytest.mark.parametrize('method,kwargs', [('LoHa', dict(r=4, alpha=8)),
                                           ('IA3', {})])
def test_train_step_moves_only_adapter_parameters(method, kwargs):
    model = _build(type=method, **kwargs)
    layers = hf_tuner_layers(model)
    assert len(layers) > 10
    adapter = set(hf_adapter_keys(model))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == adapter
    before = copy.deepcopy(model.state_dict())
    packed = demo_mm_inputs(1, [[3, 64, 64]], num_items=[3],
                            num_classes=3)
    data = model.data_preprocessor(packed, training=True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    loss = sum(v.sum() for k, v in losses.items() if 'loss' in k
               for v in (v if isinstance(v, list) else [v]))
    loss.backward()
    optim = torch.optim.SGD([p for p in model.parameters()
                             if p.requires_grad], lr=0.1)
    optim.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= adapter, changed - adapter


def test_hf_backend_keeps_what_the_freeze_policy_trains():
    """peft's injection freezes every non-adapter parameter; the freeze
    policy decides instead (as with the native backend)."""
    cfg = _model_cfg(type='LoRA', r=4, lora_alpha=8)
    cfg['freeze'] = dict(frozen='backbone')
    model = MODELS.build(cfg)
    neck = [p.requires_grad for p in model.neck.parameters()]
    assert neck and all(neck)
    assert model.roi_head.bbox_head.fc_cls.weight.requires_grad
    assert all(p.requires_grad for p in model.rpn_head.parameters())
    base = [n for n, p in model.backbone.named_parameters()
            if p.requires_grad and 'lora_' not in n]
    assert not base
    with pytest.raises(ValueError, match='bias / modules_to_save'):
        MODELS.build(_model_cfg(type='LoRA', r=4, lora_alpha=8,
                                bias='all'))


def test_base_weights_a_pattern_selects_stay_frozen_in_a_warning():
    """A peft layer's base layer stays frozen whole, as our LoRA layers':
    weights that freeze.trainable selects are named in a warning, not
    dropped without a word."""
    from unittest import mock

    from mmengine.logging import MMLogger
    cfg = _model_cfg(type='LoRA', r=4, lora_alpha=8)
    cfg['freeze'] = dict(frozen='.*',
                         trainable=['roi_head.bbox_head.shared_fcs'])
    with mock.patch.object(MMLogger, 'get_current_instance') as logger:
        fc = MODELS.build(cfg).roi_head.bbox_head.shared_fcs[0]
    assert not fc.base_layer.weight.requires_grad
    assert not fc.base_layer.bias.requires_grad
    said = ' '.join(str(c) for c in logger.return_value.warning.call_args_list)
    assert '2 base-layer weights under peft adapters stay frozen' in said
    assert 'roi_head.bbox_head.shared_fcs.0.base_layer.weight' in said


def test_no_match_names_regex_and_candidates():
    with pytest.raises(ValueError, match=r'peft_cfg\.target_modules='
                       r"'backbone\\\\.nope'.*Close names: backbone"):
        MODELS.build(_model_cfg(type='IA3', target_modules=r'backbone\.nope'))


def test_bad_type_and_rank_are_errors():
    with pytest.raises(ValueError, match='peft_cfg.type must be one of'):
        MODELS.build(_model_cfg(type='VeRA'))
    with pytest.raises(ValueError, match='positive int'):
        MODELS.build(_model_cfg(type='LoHa', r=0))


def test_our_lora_equals_peft_lora_under_the_same_weights():
    ours = _build()
    theirs = _build(type='LoRA', r=4, lora_alpha=8)  # alpha / r = 2 both
    for name, value in theirs.state_dict().items():  # init_weights kept
        if 'lora_B' in name:  # peft's zero B (mmengine's Xavier would not)
            assert not value.any(), name
    state = {k: v for k, v in ours.state_dict().items() if 'lora_' not in k}
    result = theirs.load_state_dict(remap_base_keys(state, theirs),
                                    strict=False)
    assert set(result.missing_keys) == set(hf_adapter_keys(theirs))
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, layer in hf_tuner_layers(theirs).items():
            mine = ours.get_submodule(name)
            mine.lora_B.copy_(torch.randn(mine.lora_B.shape, generator=g))
            assert layer.scaling['default'] == mine.scaling == 2.0
            layer.lora_A['default'].weight.copy_(
                mine.lora_A.reshape(layer.lora_A['default'].weight.shape))
            layer.lora_B['default'].weight.copy_(
                mine.lora_B.reshape(layer.lora_B['default'].weight.shape))
    ours.eval(), theirs.eval()
    _assert_close(ours, theirs)
    base = _build()
    base.eval()
    assert any(not torch.allclose(a, b) for a, b in zip(
        _outputs(base, IMAGE), _outputs(ours, IMAGE)))  # B moved outputs


def _perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize('method,kwargs', [('LoHa', dict(r=4, alpha=8)),
                                           ('IA3', {})])
def test_adapter_round_trip_and_merge(method, kwargs, tmp_path):
    model = _build(type=method, **kwargs)
    base = copy.deepcopy(model.state_dict())
    _perturb(model, 3)
    path = str(tmp_path / 'adapter.pth')
    numel = save_adapter(model, path)
    assert numel == sum(p.numel() for p in model.parameters()
                        if p.requires_grad)
    saved = torch.load(path, weights_only=True)['state_dict']
    assert set(saved) == set(hf_adapter_keys(model))  # adapters only
    fresh = _build(type=method, **kwargs)
    fresh.load_state_dict(base)
    load_adapter(fresh, path)
    model.eval(), fresh.eval()
    for a, b in zip(_outputs(model, IMAGE), _outputs(fresh, IMAGE)):
        assert torch.equal(a, b)
    # merge: peft's per-layer merge(), then the plain detector's keys
    state = merge_to_plain(fresh)
    assert not hf_tuner_layers(fresh)
    plain_cfg = plain_config(Config(dict(model=_model_cfg(
        type=method, **kwargs))))
    plain = MODELS.build(plain_cfg.model)
    plain.load_state_dict(state, strict=True)
    plain.eval()
    _assert_close(model, plain)


def test_dora_starts_at_the_base_model_after_init_weights():
    model = _build(type='DoRA', r=4, lora_alpha=8)  # init_weights ran
    base = copy.deepcopy(model)
    for name, layer in hf_tuner_layers(base).items():
        parent, _, child = name.rpartition('.')
        setattr(base.get_submodule(parent), child, layer.get_base_layer())
    model.eval(), base.eval()
    for a, b in zip(_outputs(model, IMAGE), _outputs(base, IMAGE)):
        assert torch.equal(a, b)


@pytest.mark.parametrize('method,kwargs', [
    ('LoHa', dict(r=4, alpha=8)), ('DoRA', dict(r=4, lora_alpha=8))])
def test_plain_load_from_fills_the_wrapped_base_layers(method, kwargs):
    """mmengine's ``load_from`` of a plain checkpoint (strict=False) must
    reach the layers ``peft`` moved under ``base_layer``, not skip them;
    DoRA then starts at the loaded base (its magnitudes recomputed)."""
    from mmengine.runner.checkpoint import load_state_dict
    model = _build(type=method, **kwargs)
    plain_cfg = plain_config(Config(dict(model=_model_cfg(
        type=method, **kwargs))))
    torch.manual_seed(1)
    plain = MODELS.build(plain_cfg.model)
    plain.init_weights()
    state = plain.state_dict()
    wrapped = [name for name in hf_tuner_layers(model)]
    assert wrapped
    load_state_dict(model, state, strict=False)
    own = model.state_dict()
    for name in wrapped:
        assert torch.equal(own[f'{name}.base_layer.weight'],
                           state[f'{name}.weight']), name
    if method == 'DoRA':
        plain.eval()
        model.eval()
        _assert_close(model, plain)
