"""Conv adapters: zero start, gradients, merge, bad input."""
import pytest
import torch
from mmcv.cnn import ConvModule
from peft_tiny_net import TinyNet
from torch import nn

from rcnn_plugin.models.peft import (
    ConvAdapter,
    apply_freeze,
    inject_conv_adapters,
    merge_conv_adapters,
)


def _perturb(model, what='conv_adapters'):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if what in name:
                p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize('placement', ['parallel', 'sequential'])
@pytest.mark.parametrize('act', ['ReLU', None])
def test_zero_init_leaves_outputs_unchanged(placement, act):
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.rand(2, 3, 16, 16)
    before = model(x)
    names = inject_conv_adapters(model, r'backbone\.[01]', bottleneck=4,
                                 act=act, placement=placement)
    assert names == ['backbone.0', 'backbone.1']
    assert model.conv_adapters['backbone__1'].stride == (
        2 if placement == 'parallel' else 1)
    assert torch.equal(model(x), before)
    _perturb(model)
    assert not torch.allclose(model(x), before)


def test_gradients_reach_only_adapters_and_trainable_modules():
    torch.manual_seed(0)
    model = TinyNet()
    inject_conv_adapters(model, r'backbone\.[01]', bottleneck=4)
    apply_freeze(model, frozen='.*', trainable='bbox_head.fc_cls')
    _perturb(model)  # a non-zero up: gradients reach dw / down too
    model(torch.rand(2, 3, 16, 16)).sum().backward()
    for name, p in model.named_parameters():
        trains = 'conv_adapters' in name or name.startswith('bbox_head.fc_cls')
        assert p.requires_grad == trains, name
        assert (p.grad is not None) == trains, name


def test_lora_injected_after_an_adapter_keeps_it_applying():
    # inject_lora replaced the layer and dropped its forward hooks: the
    # adapter stayed trainable and saved but was never called.
    from rcnn_plugin.models.peft import inject_lora
    torch.manual_seed(0)
    model = TinyNet().eval()
    inject_conv_adapters(model, r'backbone\.1', bottleneck=4)
    _perturb(model)
    x = torch.rand(2, 3, 16, 16)
    with_adapter = model(x)
    assert inject_lora(model, r'backbone\.1', rank=2) == ['backbone.1']
    torch.testing.assert_close(model(x), with_adapter)  # LoRA starts at 0


class _MergeNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1),
            ConvModule(8, 8, 3, padding=1, act_cfg=None))

    def forward(self, x):
        return self.backbone(x)


def test_linear_adapters_merge_exactly():
    torch.manual_seed(0)
    model = _MergeNet().eval()
    inject_conv_adapters(model, r'backbone\.0', act=None, bottleneck=4)
    inject_conv_adapters(model, r'backbone\.2', act=None, kernel_size=1,
                         placement='sequential')
    _perturb(model)
    x = torch.rand(2, 3, 12, 12)
    before = model(x)
    keys = set(_MergeNet().state_dict())
    assert merge_conv_adapters(model) == ['backbone.0', 'backbone.2']
    assert set(model.state_dict()) == keys
    torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('target,kwargs,reason', [
    (r'backbone\.0', dict(act='ReLU'), 'nonlinear'),
    (r'backbone\.3', dict(act=None), 'not a plain Conv2d'),
    (r'backbone\.2', dict(act=None, placement='sequential'),
     'kernel_size 3'),
    (r'backbone\.2', dict(act=None), 'geometry'),
])
def test_merge_refuses_what_does_not_fold(target, kwargs, reason):
    model = _MergeNet()
    inject_conv_adapters(model, target, **kwargs)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=reason):
        merge_conv_adapters(model)
    for key, value in model.state_dict().items():  # unchanged
        assert torch.equal(value, state[key])


def test_sequential_adapter_on_a_grouped_conv_does_not_merge():
    # (I + M) W mixes the groups of a depthwise conv (as MobileNetV2's):
    # the merge would change the outputs, so it is refused.
    torch.manual_seed(0)
    model = _MergeNet().eval()
    model.backbone = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4))
    inject_conv_adapters(model, r'backbone\.0', act=None, kernel_size=1,
                         placement='sequential')
    _perturb(model)
    x = torch.rand(1, 4, 6, 6)
    before = model(x)
    with pytest.raises(ValueError, match='groups=4'):
        merge_conv_adapters(model)
    torch.testing.assert_close(model(x), before)  # unchanged


def test_bad_input():
    model = TinyNet()
    with pytest.raises(ValueError, match=r'target_modules=.*backbon.*'
                       r'Close names: backbone\.0'):
        inject_conv_adapters(model, r'backbon\.0')
    for bad in (0, -2):
        with pytest.raises(ValueError, match='bottleneck'):
            inject_conv_adapters(model, r'backbone\.0', bottleneck=bad)
        with pytest.raises(ValueError, match='bottleneck'):
            ConvAdapter(8, 8, bottleneck=bad)
    with pytest.raises(ValueError, match='placement'):
        ConvAdapter(8, 8, placement='serial')
    with pytest.raises(ValueError, match='no Conv2d'):
        inject_conv_adapters(model, r'bbox_head\.fc_cls')


class _ResNetFPN(nn.Module):

    def __init__(self):
        super().__init__()
        from mmdet.models.backbones import ResNet
        from mmdet.models.necks import FPN
        self.backbone = ResNet(18, base_channels=8, stem_channels=8,
                               frozen_stages=-1)
        self.neck = FPN([8, 16, 32, 64], 8, num_outs=4)

    def forward(self, x):
        return torch.cat([f.flatten(1) for f in self.neck(
            self.backbone(x))], dim=1)


@pytest.mark.parametrize('placement', ['parallel', 'sequential'])
def test_resnet_blocks_and_fpn_convs(placement):
    torch.manual_seed(0)
    model = _ResNetFPN().eval()
    x = torch.rand(1, 3, 32, 32)
    before = model(x)
    names = inject_conv_adapters(
        model, r'backbone\.layer[1-4]\.\d|neck\.fpn_convs\.\d',
        bottleneck=2, placement=placement)
    assert len(names) == 12
    strides = [model.conv_adapters[n.replace('.', '__')].stride
               for n in names[:8]]
    assert strides == ([1, 1, 2, 1, 2, 1, 2, 1] if placement == 'parallel'
                       else [1] * 8)
    assert torch.equal(model(x), before)
    _perturb(model)
    assert not torch.allclose(model(x), before)


def test_merging_lora_keeps_an_adapter_on_the_same_layer():
    from rcnn_plugin.models.peft import inject_lora, merge_lora
    torch.manual_seed(0)
    model = _MergeNet().eval()
    inject_lora(model, r'backbone\.0', rank=2)
    inject_conv_adapters(model, r'backbone\.0', act='ReLU', bottleneck=4)
    _perturb(model, 'lora_B')
    _perturb(model)
    x = torch.rand(2, 3, 12, 12)
    before = model(x)
    assert merge_lora(model) == ['backbone.0']
    assert type(model.backbone[0]) is nn.Conv2d
    torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('placement', ['sequential', 'parallel'])
def test_merge_with_peft_lora_on_the_same_conv_is_exact(placement):
    # The adapter hooks the conv before peft wraps it (PEFTDetector's
    # order), so it trained on the base layer's output: (I + M) W x + dW x.
    # Folding peft's dW first and the adapter after gave (I + M)(W + dW).
    pytest.importorskip('peft')
    from rcnn_plugin.models.peft import merge_to_plain
    from rcnn_plugin.models.peft.hf_peft import hf_tuner_layers, inject_hf_peft
    torch.manual_seed(0)
    model = _MergeNet().eval()
    inject_conv_adapters(model, r'backbone\.2', act=None, kernel_size=1,
                         placement=placement)
    inject_hf_peft(model, dict(type='LoRA', r=2,
                               target_modules=r'backbone\.2'))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'lora_B' in name or 'conv_adapters' in name:
                p.add_(0.1 * torch.randn_like(p))
    x = torch.rand(2, 3, 12, 12)
    before = model(x)
    merge_to_plain(model)
    assert not hf_tuner_layers(model) and not hasattr(model, 'conv_adapters')
    assert type(model.backbone[2]) is nn.Conv2d
    assert not model.backbone[2]._forward_hooks  # the hook went with it
    torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)
