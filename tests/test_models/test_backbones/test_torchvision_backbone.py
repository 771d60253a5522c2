"""TorchvisionBackbone: shapes, stages, freezing and offline weights."""
import os
import os.path as osp

import pytest
import torch
import torchvision
from mmdet.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

import rcnn_plugin  # noqa: F401
from rcnn_plugin.models import TorchvisionBackbone

CHANNELS = {
    'resnet18': [64, 128, 256, 512],
    'mobilenet_v2': [24, 32, 96, 1280],
    'mobilenet_v3_large': [24, 40, 112, 960],
    'efficientnet_b0': [24, 40, 112, 1280],
    'regnet_y_400mf': [48, 104, 208, 440],
    'convnext_tiny': [96, 192, 384, 768],
}


@pytest.mark.parametrize('name', list(CHANNELS))
def test_output_shapes_and_strides(name):
    backbone = MODELS.build(dict(type='TorchvisionBackbone', name=name))
    assert backbone.out_channels == CHANNELS[name]
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (2, c, 64 // s, 96 // s)
        for c, s in zip(CHANNELS[name], (4, 8, 16, 32))]


def test_outputs_equal_torchvision_layers():
    torch.manual_seed(0)
    backbone = TorchvisionBackbone('resnet18', out_indices=(1, 3)).eval()
    net = backbone.tv
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        c2, c4 = backbone(x)
        y = net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(
            net.conv1(x))))))
        torch.testing.assert_close(c2, y)
        torch.testing.assert_close(c4, net.layer4(net.layer3(y)))
        empty = backbone(torch.zeros(0, 3, 64, 64))
    assert [o.shape[0] for o in empty] == [0, 0]
    assert isinstance(net.fc, torch.nn.Identity)  # no unused parameters


def test_frozen_stages_and_norm_eval():
    backbone = TorchvisionBackbone('mobilenet_v2', frozen_stages=1,
                                   norm_eval=True)
    backbone.train()
    frozen = backbone.stages[0] + backbone.stages[1]
    for name, param in backbone.tv.named_parameters():
        layer = '.'.join(name.split('.')[:2])
        assert param.requires_grad == (layer not in frozen), name
    assert all(not m.training for m in backbone.modules()
               if isinstance(m, _BatchNorm))
    trainable = TorchvisionBackbone('mobilenet_v2', frozen_stages=-1)
    trainable.train()
    assert all(p.requires_grad for p in trainable.parameters())
    assert all(m.training for m in trainable.modules()
               if isinstance(m, _BatchNorm))


def test_weights_from_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    name = 'resnet18-f37072fd.pth'  # ResNet18_Weights.IMAGENET1K_V1
    expected = osp.join(str(tmp_path), 'hub', 'checkpoints', name)
    backbone = TorchvisionBackbone('resnet18', weights='IMAGENET1K_V1')
    with pytest.raises(FileNotFoundError) as err:
        backbone.init_weights()
    assert expected in str(err.value) and 'get_model_weights' in str(err.value)
    torch.manual_seed(3)
    source = torchvision.models.resnet18()
    os.makedirs(osp.dirname(expected))
    torch.save(source.state_dict(), expected)
    backbone.init_weights()
    torch.testing.assert_close(backbone.tv.layer3[1].conv2.weight,
                               source.layer3[1].conv2.weight)
    torch.testing.assert_close(backbone.tv.bn1.running_var,
                               source.bn1.running_var)
    # An explicit path works too; a missing one names itself.
    by_path = TorchvisionBackbone('resnet18', weights=expected)
    by_path.init_weights()
    assert torch.equal(by_path.tv.conv1.weight, source.conv1.weight)
    missing = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        TorchvisionBackbone('resnet18', weights=missing).init_weights()
    # LoRA in the backbone adds keys no ImageNet file has: still loads.
    from rcnn_plugin.models.peft.inject import inject_lora
    with_lora = TorchvisionBackbone('resnet18', weights=expected)
    assert inject_lora(with_lora, r'tv\.layer4\..*conv\d', rank=2)
    with_lora.init_weights()
    assert torch.equal(with_lora.tv.layer4[0].conv1.weight,
                       source.layer4[0].conv1.weight)
    # ... but a file lacking a base weight is still an error.
    torch.save({k: v for k, v in torchvision.models.resnet18().state_dict()
                .items() if k != 'layer4.0.conv1.weight'}, expected)
    with pytest.raises(ValueError, match=r'lacks 1 keys .*layer4\.0\.conv1'):
        with_lora.init_weights()
    # A deeper model's file (resnet34: same shapes, more blocks) used to
    # load its first blocks and drop the rest without a word.
    torch.save(torchvision.models.resnet34().state_dict(), expected)
    with pytest.raises(ValueError, match=r'keys that resnet18 lacks, e\.g\. '
                       r"\['layer1\.2\."):
        TorchvisionBackbone('resnet18', weights=expected).init_weights()


@pytest.mark.parametrize('kwargs,match', [
    (dict(name='resnet5'), 'not a torchvision classification model'),
    (dict(name='resnet18', out_indices=(4, )), 'out_indices'),
    (dict(name='resnet18', frozen_stages=7), 'frozen_stages'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TorchvisionBackbone(**kwargs)


def test_unknown_weights_name():
    with pytest.raises(ValueError, match='IMAGENET1K_V1'):
        TorchvisionBackbone('resnet18', weights='COCO').init_weights()


@pytest.mark.slow
def test_in_a_faster_rcnn_with_fpn():
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from conftest import REPO, shrink_model
    register_all_modules()
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'demo',
        'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')).model
    cfg = shrink_model(cfg)
    cfg.backbone = dict(type='TorchvisionBackbone', name='mobilenet_v3_small',
                        frozen_stages=1, norm_eval=True)
    cfg.neck.in_channels = [16, 24, 48, 576]
    model = MODELS.build(cfg)
    model.init_weights()
    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 64, 96)],
                            num_items=[2], num_classes=3)
    model.train()
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    sum(v.sum() for k, v in losses.items() if 'loss' in k and
        isinstance(v, torch.Tensor)).backward()
    stem = model.backbone.tv.get_submodule(model.backbone.stages[0][0])
    assert all(p.grad is None for p in stem.parameters())
    model.eval()
    with torch.no_grad():
        (result, ) = model(**model.data_preprocessor(packed, False),
                           mode='predict')
    assert result.pred_instances.bboxes.shape[1] == 4


def test_out_layers_and_norm_eps():
    backbone = TorchvisionBackbone(
        'mobilenet_v3_large', out_layers=['features.16', 'features.13'],
        norm_eps=1e-5).eval()
    assert backbone.out_layers == ['features.13', 'features.16']
    assert backbone.out_channels == [160, 960]
    assert all(m.eps == 1e-5 for m in backbone.modules()
               if isinstance(m, _BatchNorm))
    with torch.no_grad():
        c13, c16 = backbone(torch.zeros(1, 3, 64, 64))
    assert c13.shape == (1, 160, 2, 2) and c16.shape == (1, 960, 2, 2)
    with pytest.raises(ValueError, match=r"out_layers \['features.99'\]"):
        TorchvisionBackbone('mobilenet_v3_large', out_layers=['features.99'])
