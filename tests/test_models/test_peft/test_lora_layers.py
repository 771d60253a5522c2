"""LoRAConv2d / LoRALinear: zero init, merge equality, gradients."""
import copy

import pytest
import torch
from mmengine.model import BaseModule
from torch import nn

from rcnn_plugin.models.peft import LoRAConv2d, LoRALinear

CONVS = {
    'plain': dict(in_channels=6, out_channels=8, kernel_size=3, padding=1),
    'strided-dilated': dict(in_channels=6, out_channels=8, kernel_size=3,
                            stride=2, padding=3, dilation=3),
    'grouped': dict(in_channels=6, out_channels=9, kernel_size=(3, 1),
                    groups=3, padding=(1, 0)),
    'depthwise': dict(in_channels=6, out_channels=6, kernel_size=3,
                      groups=6, padding=1, bias=False),
    'reflect': dict(in_channels=6, out_channels=8, kernel_size=3, padding=1,
                    padding_mode='reflect'),
}


def _randomise_lora(layer):
    with torch.no_grad():
        layer.lora_B.normal_()
        layer.lora_A.normal_()


@pytest.mark.parametrize('kwargs', CONVS.values(), ids=list(CONVS))
def test_conv_zero_init_then_merge_equality(kwargs):
    torch.manual_seed(0)
    base = nn.Conv2d(**kwargs)
    x = torch.randn(2, 6, 11, 13)
    expected = base(x)
    lora = LoRAConv2d.from_conv(base, rank=2, alpha=3)
    assert lora.weight is base.weight  # shared, not copied
    assert torch.equal(lora(x), expected)  # the update starts at zero
    _randomise_lora(lora)
    unmerged = lora(x)
    assert (unmerged - expected).abs().max() > 1e-2  # the update is live
    merged = lora.to_plain()
    assert type(merged) is nn.Conv2d
    torch.testing.assert_close(merged(x), unmerged, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('kwargs', CONVS.values(), ids=list(CONVS))
def test_conv_forward_in_one_pass_equals_the_two_pass_formula(kwargs):
    """Without dropout the forward convolves once with the merged weight:
    outputs and gradients equal base conv + up(down(x)) computed apart."""
    torch.manual_seed(1)
    lora = LoRAConv2d.from_conv(nn.Conv2d(**kwargs), rank=2, alpha=3)
    _randomise_lora(lora)
    x = torch.randn(2, 6, 11, 13, requires_grad=True)
    grad_out = torch.randn_like(lora(x))

    def grads(out):
        return torch.autograd.grad(out, (x, lora.lora_A, lora.lora_B),
                                   grad_out)

    two_pass = lora._conv_forward(x, lora.weight, lora.bias) + \
        lora.lora_delta(x)
    one_pass = lora(x)
    torch.testing.assert_close(one_pass, two_pass, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads(one_pass), grads(two_pass)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert lora.weight.grad is None  # the base stays frozen


def test_conv_merge_matches_hand_computed_delta():
    # 1x1 conv, one group: delta = alpha / r * B @ A as matrices.
    base = nn.Conv2d(3, 2, 1, bias=False)
    lora = LoRAConv2d.from_conv(base, rank=1, alpha=2)
    with torch.no_grad():
        lora.lora_A.copy_(torch.tensor([1., 2., 3.]).view(1, 3, 1, 1))
        lora.lora_B.copy_(torch.tensor([1., -1.]).view(2, 1, 1, 1))
    delta = lora.merged_weight() - base.weight
    expected = 2.0 * torch.tensor([[1., 2., 3.], [-1., -2., -3.]])
    torch.testing.assert_close(delta.view(2, 3), expected)


def test_linear_zero_init_then_merge_equality():
    torch.manual_seed(0)
    base = nn.Linear(7, 5)
    x = torch.randn(4, 7)
    expected = base(x)
    lora = LoRALinear.from_linear(base, rank=3, alpha=6)
    assert torch.equal(lora(x), expected)
    _randomise_lora(lora)
    unmerged = lora(x)
    assert (unmerged - expected).abs().max() > 1e-2
    torch.testing.assert_close(lora.to_plain()(x), unmerged, atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(
        lora.merged_weight(), base.weight + 2.0 * lora.lora_B @ lora.lora_A)


@pytest.mark.parametrize('make', [
    lambda: LoRAConv2d.from_conv(nn.Conv2d(4, 4, 3, padding=1), rank=2),
    lambda: LoRALinear.from_linear(nn.Linear(4, 4), rank=2),
], ids=['conv', 'linear'])
def test_gradients_reach_only_lora(make):
    layer = make()
    x = torch.randn(2, 4, 5, 5) if isinstance(layer, nn.Conv2d) else \
        torch.randn(2, 4)
    layer(x).square().sum().backward()
    grads = {n: p.grad for n, p in layer.named_parameters()}
    assert grads['weight'] is None and grads['bias'] is None
    # B is zero, so only B gets a gradient on the first step; A's is zero.
    assert grads['lora_B'].abs().sum() > 0
    assert sorted(n for n, p in layer.named_parameters()
                  if p.requires_grad) == ['lora_A', 'lora_B']


def test_state_dict_keeps_base_keys():
    base = nn.Conv2d(4, 4, 3)
    lora = LoRAConv2d.from_conv(base, rank=2)
    assert list(lora.state_dict()) == ['weight', 'bias', 'lora_A', 'lora_B']
    plain = nn.Conv2d(4, 4, 3)
    plain.load_state_dict(lora.to_plain().state_dict(), strict=True)


def test_mmengine_initialisers_leave_lora_alone():
    """init_cfg layer='Conv2d' / 'Linear' must not re-init lora_B."""

    class Net(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=[
                dict(type='Xavier', layer='Conv2d'),
                dict(type='Normal', layer='Linear', std=1.0)])
            self.conv = LoRAConv2d.from_conv(nn.Conv2d(3, 3, 3), rank=2)
            self.fc = LoRALinear.from_linear(nn.Linear(3, 3), rank=2)

    net = Net()
    before = copy.deepcopy(net.state_dict())
    net.init_weights()
    assert not torch.equal(net.conv.weight, before['conv.weight'])
    assert not torch.equal(net.fc.weight, before['fc.weight'])
    for key in ('conv.lora_A', 'conv.lora_B', 'fc.lora_A', 'fc.lora_B'):
        assert torch.equal(net.state_dict()[key], before[key]), key
    assert net.conv.lora_B.abs().sum() == 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(rank=0), 'rank'), (dict(rank=2, alpha=0), 'alpha'),
    (dict(rank=2, dropout=1.0), 'dropout')])
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoRALinear.from_linear(nn.Linear(2, 2), **kwargs)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    lora = LoRALinear.from_linear(nn.Linear(8, 8), rank=2, dropout=0.5)
    _randomise_lora(lora)
    x = torch.randn(3, 8)
    lora.eval()
    torch.testing.assert_close(lora(x), lora.to_plain()(x), atol=1e-5,
                               rtol=1e-5)
    lora.train()
    assert not torch.allclose(lora(x), lora.to_plain()(x), atol=1e-3)


def test_empty_inputs():
    """No RoIs / no images: zero-size batches pass through."""
    conv = LoRAConv2d.from_conv(nn.Conv2d(4, 6, 3, padding=1), rank=2)
    linear = LoRALinear.from_linear(nn.Linear(4, 6), rank=2)
    assert conv(torch.zeros(0, 4, 5, 5)).shape == (0, 6, 5, 5)
    out = linear(torch.zeros(0, 4))
    assert out.shape == (0, 6)
    out.sum().backward()
    assert linear.lora_B.grad is not None
    assert linear.lora_B.grad.abs().sum() == 0
