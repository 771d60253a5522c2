"""inject_lora / merge_lora on a small model with detector-like names."""
import pytest
import torch
from peft_tiny_net import TinyNet
from torch import nn

from rcnn_plugin.models.peft import (
    LoRAConv2d,
    LoRALinear,
    find_lora_targets,
    inject_lora,
    lora_layers,
    merge_lora,
)


def test_targets_include_convmodule_inner_conv_and_descendants():
    model = TinyNet()
    # 'backbone' selects the whole subtree; the ConvModule's BN is skipped.
    assert find_lora_targets(model, 'backbone') == [
        'backbone.0.conv', 'backbone.1']
    assert find_lora_targets(model, r'bbox_head\.shared_fcs\.\d+') == [
        'bbox_head.shared_fcs.0']


def test_inject_keeps_outputs_and_base_keys_then_merge_round_trip():
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.randn(2, 3, 9, 9)
    expected = model(x)
    base_keys = list(model.state_dict())
    names = inject_lora(model, 'backbone.*|bbox_head.shared_fcs.0', rank=2)
    assert names == ['backbone.0.conv', 'backbone.1', 'bbox_head.shared_fcs.0']
    assert isinstance(model.backbone[0].conv, LoRAConv2d)
    assert isinstance(model.bbox_head.shared_fcs[0], LoRALinear)
    assert torch.equal(model(x), expected)
    keys = list(model.state_dict())
    assert [k for k in keys if 'lora_' not in k] == base_keys
    assert len(keys) == len(base_keys) + 6

    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.normal_()
    unmerged = model(x)
    assert (unmerged - expected).abs().max() > 1e-3
    assert merge_lora(model) == names
    assert not lora_layers(model)
    assert list(model.state_dict()) == base_keys
    torch.testing.assert_close(model(x), unmerged, atol=1e-5, rtol=1e-5)


def test_regex_matching_nothing_lists_close_names():
    with pytest.raises(ValueError) as err:
        inject_lora(TinyNet(), 'bbox_head.shared_fc.0')
    msg = str(err.value)
    assert "lora.target_modules='bbox_head.shared_fc.0' matches no" in msg
    assert 'bbox_head.shared_fcs.0' in msg


def test_regex_matching_only_non_layers_is_an_error():
    with pytest.raises(ValueError, match='backbone.0.conv'):
        inject_lora(TinyNet(), r'backbone\.0\.bn')


def test_invalid_regex_is_a_clear_error():
    with pytest.raises(ValueError, match='not a valid regex'):
        inject_lora(TinyNet(), 'backbone.(')


def test_conv_subclass_with_own_forward_is_refused():

    class WeightStdConv(nn.Conv2d):

        def forward(self, x):
            w = self.weight - self.weight.mean()
            return self._conv_forward(x, w, self.bias)

    model = TinyNet()
    model.backbone[1] = WeightStdConv(8, 8, 3)
    with pytest.raises(TypeError, match='backbone.1 is a WeightStdConv'):
        inject_lora(model, 'backbone.1')


def test_injecting_twice_is_refused():
    model = TinyNet()
    inject_lora(model, 'backbone.1')
    with pytest.raises(ValueError, match='already has LoRA'):
        inject_lora(model, 'backbone.1')
