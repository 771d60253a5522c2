"""One base, many adapters: Predictor.load_adapter / switch_adapter."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from rcnn_plugin.models.peft import save_adapter
from rcnn_plugin.models.peft.adapter_bank import AdapterBank

from conftest import REPO, TINY_CONFIG

PEFT = r"""
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=(
        'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]))
model = dict(
    type='PEFTDetector', detector_type='FasterRCNN',
    lora=dict(rank=2, alpha=4, target_modules=r'neck\.fpn_convs\.\d+\.conv'
              r'|roi_head\.bbox_head\.shared_fcs\.\d+'),
    freeze=dict(frozen='.*', trainable=['bbox_head.fc_cls',
                                        'bbox_head.fc_reg']))
"""
IMAGE = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _outputs(model):
    with torch.no_grad():
        feats = model.extract_feat(IMAGE)
        rois = torch.tensor([[0, 4., 4., 40., 30.], [0, 20., 10., 60., 60.]])
        out = model.roi_head._bbox_forward(feats, rois)
    return list(feats) + [out['cls_score'], out['bbox_pred']]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def _tuned(model, seed, base_shift=False):
    """A copy with moved trainable tensors (and a moved base, if asked)."""
    model = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn(p.shape, generator=g))
        if base_shift:
            model.backbone.conv1.conv.weight.add_(1.0)
    return model.eval()


@pytest.fixture(scope='module')
def bank_files(tmp_path_factory, synthetic_cells):
    """Config, base checkpoint, adapters a, b, and one on another base."""
    root = tmp_path_factory.mktemp('adapters')
    base = osp.join(REPO, 'configs', 'demo',
                    'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
    config = root / 'tiny_lora.py'
    config.write_text(TINY_CONFIG.format(base=base, data_root=synthetic_cells)
                      + PEFT)
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(config)).model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), root / 'base.pth')
    files, expected = {}, {None: _outputs(model.eval())}
    for name, seed, shift in (('a', 1, False), ('b', 2, False),
                              ('other', 3, True)):
        tuned = _tuned(model, seed, shift)
        files[name] = str(root / f'{name}.pth')
        save_adapter(tuned, files[name], dict(base_name='base.pth'))
        expected[name] = _outputs(tuned)
    return str(config), str(root / 'base.pth'), files, expected


@pytest.fixture(scope='module')
def predictor(bank_files):
    from rcnn_plugin.apis import Predictor
    config, base, _, _ = bank_files
    return Predictor(config, base)


def test_switch_round_trip_gives_identical_outputs(predictor, bank_files):
    _, _, files, expected = bank_files
    model = predictor.model
    assert _same(_outputs(model), expected[None])
    image = (np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)
    assert predictor.load_adapter(files['a']) == 'a'
    assert _same(_outputs(model), expected['a'])
    first = predictor.predict([image])[0]
    assert predictor.load_adapter(files['b']) == 'b'
    assert _same(_outputs(model), expected['b'])
    times = [predictor.switch_adapter(n) for n in ('a', 'b', None, 'a')]
    assert _same(_outputs(model), expected['a'])
    again = predictor.predict([image])[0]
    assert torch.equal(first.bboxes, again.bboxes)
    assert torch.equal(first.scores, again.scores)
    predictor.switch_adapter(None)
    assert _same(_outputs(model), expected[None])
    print(f'\nswitch times (s): {[round(t, 5) for t in times]}')
    assert max(times) < 1.0  # copies of the adapter tensors only


def test_adapter_on_another_base_is_refused_naming_both_hashes(
        predictor, bank_files):
    _, _, files, _ = bank_files
    meta = torch.load(files['other'], weights_only=True)['meta']
    with pytest.raises(ValueError) as err:
        predictor.load_adapter(files['other'])
    state = torch.load(files['other'], weights_only=True)['state_dict']
    ours = predictor.adapter_bank.base_sha256(state)
    assert meta['base_sha256'] != ours
    assert meta['base_sha256'] in str(err.value)
    assert ours in str(err.value) and "'base.pth'" in str(err.value)
    assert 'other' not in predictor.adapter_bank.names


def test_bank_refuses_other_architecture_and_unknown_names(bank_files):
    config, base, files, _ = bank_files
    cfg = Config.fromfile(config)
    cfg.model.lora.rank = 3
    model = MODELS.build(cfg.model)
    bank = AdapterBank(model)
    with pytest.raises(ValueError, match='first mismatched key'):
        bank.add(files['a'])
    with pytest.raises(KeyError, match="no adapter named 'a'"):
        bank.switch('a')


def test_every_way_to_add_an_adapter_checks_its_base(bank_files):
    import re

    from rcnn_plugin.models.peft import load_adapter
    config, base, files, _ = bank_files
    model = MODELS.build(Config.fromfile(config).model)
    model.load_state_dict(torch.load(base, weights_only=True)['state_dict'])
    bank = AdapterBank(model)
    assert bank.add(files['a']) == 'a'  # caches the hash of its key set
    # same key set as 'a' (cached hash), by path and by content
    with pytest.raises(ValueError, match=re.escape(files['other'])
                       + ' was trained on other base weights'):
        bank.add(files['other'])
    content = torch.load(files['other'], weights_only=True)
    with pytest.raises(ValueError, match='other base weights'):
        bank.add(content, name='other')
    with pytest.raises(ValueError, match=re.escape(files['other'])):
        load_adapter(model, files['other'])
    assert bank.names == ['a']


def test_class_names_follow_the_active_adapter(predictor, bank_files):
    """An adapter records its training set's classes (AdapterCheckpointHook
    copies dataset_meta); switching back to the base restores the base's."""
    config, _, files, _ = bank_files
    base_classes = predictor.classes
    content = torch.load(files['a'], weights_only=True)
    named = dict(meta=dict(content['meta'], dataset_meta=dict(
        classes=('car', 'van', 'bus'))), state_dict=content['state_dict'])
    path = osp.join(osp.dirname(files['a']), 'named.pth')
    torch.save(named, path)
    predictor.load_adapter(path)
    assert predictor.classes == ['car', 'van', 'bus']
    predictor.switch_adapter('a')  # records no names: the base's
    assert predictor.classes == base_classes
    predictor.switch_adapter('named')
    predictor.switch_adapter(None)
    assert predictor.classes == base_classes


def test_other_lora_alpha_is_refused(bank_files):
    """alpha sets LoRA's scaling, an attribute: the shapes agree, so only
    the recorded settings can tell."""
    config, _, files, _ = bank_files
    cfg = Config.fromfile(config)
    cfg.model.lora.alpha = 8
    bank = AdapterBank(MODELS.build(cfg.model))
    with pytest.raises(ValueError, match=r'other PEFT settings.*lora\.alpha:'
                       r' 4 in the adapter, 8 here'):
        bank.add(files['a'])


def test_truncated_adapter_is_a_sentence(bank_files, tmp_path):
    from rcnn_plugin.models.peft import load_adapter
    config, _, files, _ = bank_files
    path = str(tmp_path / 'half.pth')
    with open(files['a'], 'rb') as src, open(path, 'wb') as dst:
        dst.write(src.read()[:200])
    model = MODELS.build(Config.fromfile(config).model)
    for add in (AdapterBank(model).add, lambda p: load_adapter(model, p)):
        with pytest.raises(ValueError, match='half.pth is not a readable '
                           r'torch checkpoint \(truncated or corrupt\?\)'):
            add(path)
