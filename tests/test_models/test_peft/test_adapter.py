"""Adapter-only checkpoints: round trip and architecture checks."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from rcnn_plugin.models.peft import apply_freeze, load_adapter, save_adapter

from conftest import REPO, shrink_model

PEFT_DIR = osp.join(REPO, 'configs', 'bccd_peft')


_CACHE = {}


def _build(rank=4, plain=False):
    """A fresh copy of a shrunk model (built once per kind: CPU time)."""
    if (rank, plain) not in _CACHE:
        _CACHE[rank, plain] = _make(rank, plain)
    return copy.deepcopy(_CACHE[rank, plain])


def _make(rank, plain):
    register_all_modules()
    cfg = Config.fromfile(osp.join(
        PEFT_DIR, f'faster-rcnn_mobilenetv2_fpn-128_lora-r{rank}_8e_bccd.py'))
    model_cfg = shrink_model(cfg.model)
    if plain:
        model_cfg.type = model_cfg.pop('detector_type')
        model_cfg.pop('lora'), model_cfg.pop('freeze')
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def _fine_tune(model):
    """Stand-in for training: move every trainable tensor."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))


@pytest.fixture
def tuned(tmp_path):
    torch.manual_seed(0)
    model = _build()
    base = copy.deepcopy(model.state_dict())
    _fine_tune(model)
    path = str(tmp_path / 'adapter.pth')
    numel = save_adapter(model, path, dict(epoch=3))
    return model, base, path, numel


def test_round_trip_reproduces_the_fine_tuned_model(tuned):
    model, base, path, numel = tuned
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert numel == trainable  # the trainable parts hold no BN buffers
    fresh = _build()
    fresh.load_state_dict(base, strict=True)
    meta = load_adapter(fresh, path)
    assert meta['epoch'] == 3 and meta['peft_cfg']['lora']['rank'] == 4
    tuned_state, loaded = model.state_dict(), fresh.state_dict()
    assert list(tuned_state) == list(loaded)
    for key, value in tuned_state.items():
        assert torch.equal(value, loaded[key]), key


def test_adapter_is_small(tuned, tmp_path):
    model, _, path, _ = tuned
    full = tmp_path / 'full.pth'
    torch.save(model.state_dict(), full)
    assert osp.getsize(path) < 0.5 * osp.getsize(full)


def test_other_rank_names_the_first_mismatched_key(tuned):
    _, _, path, _ = tuned
    with pytest.raises(ValueError) as err:
        load_adapter(_build(rank=8), path)
    assert ("first mismatched key "
            "'backbone.layer2.0.expand_conv.conv.lora_A' (shape [4, 8, 1, 1]"
            " in the adapter, [8, 8, 1, 1] in the model)") in str(err.value)


def test_model_without_lora_names_the_first_missing_key(tuned):
    _, _, path, _ = tuned
    with pytest.raises(ValueError, match="first mismatched key 'backbone.layer"
                       r"2.0.expand_conv.conv.lora_A' \(in the adapter, not"):
        load_adapter(_build(plain=True), path)


def test_other_base_weights_are_refused(tuned):
    _, _, path, _ = tuned
    other = _build()
    with torch.no_grad():  # other (random) frozen head FCs
        other.roi_head.bbox_head.shared_fcs[0].weight.normal_()
    with pytest.raises(ValueError, match='other base weights'):
        load_adapter(other, path)
    load_adapter(other, path, check_base=False)


def test_not_an_adapter(tmp_path):
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict={}), path)
    with pytest.raises(ValueError, match='is not an adapter checkpoint'):
        load_adapter(_build(), path)


def test_running_stats_that_training_changes_are_saved(tmp_path):
    """norm_eval=False: a frozen BN layer in train mode updates its running
    statistics; they are part of the adapter, so the tuned model comes
    back on the untouched base."""
    from peft_tiny_net import TinyNet
    torch.manual_seed(0)
    model = TinyNet()
    base = copy.deepcopy(model.state_dict())
    apply_freeze(model, frozen='.*', trainable='bbox_head.fc_cls',
                 norm_eval=False)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 16, 16) * 3 + 1)  # moves the BN stats
    path = str(tmp_path / 'adapter.pth')
    save_adapter(model, path)
    fresh = TinyNet()
    fresh.load_state_dict(base)
    apply_freeze(fresh, frozen='.*', trainable='bbox_head.fc_cls',
                 norm_eval=False)
    load_adapter(fresh, path)  # the base check passes: stats not in it
    model.eval(), fresh.eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(model(x), fresh(x))


def test_adapter_values_from_a_checkpoint_state_dict(tmp_path):
    """The hook hands the checkpoint's state dict (an EMAHook puts the
    averaged weights there): the adapter holds those values."""
    from types import SimpleNamespace

    from mmengine.logging import MMLogger

    from rcnn_plugin.engine import AdapterCheckpointHook
    from rcnn_plugin.models.peft import adapter_state_dict
    model = _build()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(iter(adapter_state_dict(model)))
    state[key] += 2.0  # the "EMA" value differs from the live one
    runner = SimpleNamespace(model=model, hooks=[], work_dir=str(tmp_path),
                             cfg=Config(dict(load_from=None)),
                             logger=MMLogger.get_current_instance())
    AdapterCheckpointHook().before_save_checkpoint(
        runner, dict(meta=dict(epoch=3), state_dict=state))
    saved = torch.load(str(tmp_path / 'adapter_epoch_3.pth'),
                       weights_only=False)
    assert torch.equal(saved['state_dict'][key], state[key])
    assert not torch.equal(saved['state_dict'][key], model.state_dict()[key])


def test_adapter_keys_do_not_depend_on_the_mode_when_saved():
    """save_best saves after validation, with the model in eval mode."""
    from peft_tiny_net import TinyNet

    from rcnn_plugin.models.peft import adapter_state_dict
    for norm_eval in (True, False):
        model = TinyNet()
        apply_freeze(model, frozen='.*', trainable='bbox_head.fc_cls',
                     norm_eval=norm_eval)
        model.train()
        in_train = list(adapter_state_dict(model))
        model.eval()
        assert list(adapter_state_dict(model)) == in_train
        assert not any(m.training for m in model.modules())  # restored
        bn = [k for k in in_train if 'running_mean' in k]
        assert bool(bn) == (not norm_eval)


def test_base_hash_ignores_ema_rounding_of_frozen_values(tmp_path):
    """mmdet's ExpMomentumEMA (mul_ then add_) can round a frozen tensor's
    average away from it: the base hash comes from the live model, and the
    checkpoint's class names go into the adapter."""
    from types import SimpleNamespace

    from mmengine.logging import MMLogger

    from rcnn_plugin.engine import AdapterCheckpointHook
    from rcnn_plugin.models.peft import adapter_state_dict
    model = _build()
    trained = set(adapter_state_dict(model))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = next(k for k, v in state.items()
                  if k not in trained and v.is_floating_point())
    state[frozen] = state[frozen] * (1 + 1e-7) + 1e-9
    runner = SimpleNamespace(model=model, hooks=[], work_dir=str(tmp_path),
                             cfg=Config(dict(load_from=None)),
                             logger=MMLogger.get_current_instance())
    AdapterCheckpointHook().before_save_checkpoint(runner, dict(
        meta=dict(epoch=1, dataset_meta=dict(classes=('a', 'b', 'c'))),
        state_dict=state))
    path = str(tmp_path / 'adapter_epoch_1.pth')
    meta = load_adapter(_build(), path)  # the base check passes
    assert meta['dataset_meta'] == dict(classes=('a', 'b', 'c'))


def test_settings_that_change_outputs_are_compared():
    from rcnn_plugin.models.peft.settings import first_setting_difference
    lora = dict(target_modules='a', rank=4, alpha=16)
    saved = dict(detector_type='FasterRCNN', lora=lora,
                 freeze=dict(frozen='.*'))
    same = dict(detector_type='FasterRCNN', freeze=dict(frozen='.*', x=1),
                lora=dict(target_modules='b', rank=4, dropout=0.1))
    assert first_setting_difference(saved, same) is None  # 16: the default
    assert first_setting_difference(None, same) is None  # nothing recorded
    other = dict(same, lora=dict(lora, alpha=32))
    assert first_setting_difference(saved, other) == \
        'lora.alpha: 16 in the adapter, 32 here'
    adapter = dict(target_modules='c', bottleneck=8)
    assert first_setting_difference(
        dict(saved, conv_adapter=adapter),
        dict(saved, conv_adapter=dict(adapter, act=None))) == \
        "conv_adapter.act: 'ReLU' in the adapter, None here"
    prompt = dict(input=dict(size=(64, 64)), features=dict(kind='block'))
    assert first_setting_difference(
        dict(saved, prompt=prompt),
        dict(saved, prompt=dict(prompt, input=dict(size=(64, 64),
                                                   resize=False)))) == \
        'prompt.input.resize: True in the adapter, False here'
    # --cfg-options writes a list where the config has a tuple: the same
    assert first_setting_difference(
        dict(saved, prompt=prompt),
        dict(saved, prompt=dict(prompt, input=dict(size=[64, 64])))) is None


def test_peft_backend_settings_use_peft_defaults():
    pytest.importorskip('peft')
    from rcnn_plugin.models.peft.settings import first_setting_difference
    saved = dict(backend='peft', peft_cfg=dict(type='LoRA', r=4,
                                               target_modules='x'))
    default_alpha = dict(backend='peft', peft_cfg=dict(
        type='LoRA', r=4, lora_alpha=8, target_modules='y'))
    assert first_setting_difference(saved, default_alpha) is None
    assert first_setting_difference(saved, dict(
        backend='peft', peft_cfg=dict(type='LoRA', r=4, use_rslora=True))) \
        == 'peft_cfg.use_rslora: False in the adapter, True here'
