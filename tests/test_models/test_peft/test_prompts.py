"""Input and feature-map prompts: zero start, gradients, fold, bad input."""
import pytest
import torch
from mmcv.cnn import ConvModule
from peft_tiny_net import TinyNet
from torch import nn

from rcnn_plugin.models.peft import (
    InputPrompt,
    apply_freeze,
    inject_prompts,
    merge_prompts,
)

PADDING = dict(mode='padding', size=(16, 16), width=3)


def _perturb(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'prompt' in name:
                p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize('input_cfg', [PADDING, dict(
    mode='additive', size=(8, 8), resize=False)])
@pytest.mark.parametrize('kind', ['bias', 'block'])
def test_zero_init_leaves_outputs_unchanged(input_cfg, kind):
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.rand(2, 3, 16, 20)
    before = model(x)
    done = inject_prompts(model, input=input_cfg, features=dict(
        target_modules=r'backbone\.[01]', kind=kind))
    assert done == ['backbone', 'backbone.0', 'backbone.1']
    assert torch.equal(model(x), before)
    _perturb(model)
    assert not torch.allclose(model(x), before)


def test_padding_prompt_touches_only_the_frame():
    prompt = InputPrompt(**PADDING)
    with torch.no_grad():
        for p in prompt.parameters():
            p.fill_(1.0)
    image = prompt.image()[0, 0]
    assert image[3:13, 3:13].abs().sum() == 0
    assert bool((image[:3] == 1).all()) and bool((image[:, -3:] == 1).all())
    x = torch.zeros(1, 3, 16, 16)
    assert torch.equal(prompt(x), prompt.image())


def test_gradients_reach_only_prompts_and_trainable_modules():
    torch.manual_seed(0)
    model = TinyNet()
    inject_prompts(model, input=PADDING, features=dict(
        target_modules=r'backbone\.1', kind='block'))
    apply_freeze(model, frozen='.*', trainable='bbox_head.fc_cls')
    _perturb(model)
    model(torch.rand(2, 3, 16, 16)).sum().backward()
    for name, p in model.named_parameters():
        trains = 'prompt' in name or name.startswith('bbox_head.fc_cls')
        assert p.requires_grad == trains, name
        assert (p.grad is not None) == trains, name


class _FoldNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            ConvModule(8, 8, 3, padding=1, act_cfg=None),
            ConvModule(8, 8, 3, padding=1, norm_cfg=dict(type='BN')))

    def forward(self, x):
        return self.backbone(x)


def test_bias_prompts_fold_into_the_conv_bias():
    torch.manual_seed(0)
    model = _FoldNet().eval()
    inject_prompts(model, features=dict(target_modules=r'backbone\.[02]'))
    _perturb(model)
    x = torch.rand(1, 3, 10, 10)
    before = model(x)
    assert merge_prompts(model) == ['backbone.0', 'backbone.2']
    assert set(model.state_dict()) == set(_FoldNet().state_dict())
    torch.testing.assert_close(model(x), before, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize('prompts,reason', [
    (dict(input=PADDING), 'varies over the image'),
    (dict(features=dict(target_modules=r'backbone\.0', kind='block')),
     'is a conv'),
    (dict(features=dict(target_modules=r'backbone\.3')),
     'does not end in a biased conv'),
])
def test_fold_refuses_what_does_not_fold(prompts, reason):
    model = _FoldNet()
    inject_prompts(model, **prompts)
    with pytest.raises(ValueError, match=reason):
        merge_prompts(model)


def test_bad_input():
    model = TinyNet()
    with pytest.raises(ValueError, match=r'prompt\.features\.target_modules'
                       r'.*Close names: .*backbone'):
        inject_prompts(model, features=dict(target_modules='neck'))
    with pytest.raises(ValueError, match='larger than the input'):
        InputPrompt((32, 32), 'additive', resize=False)(torch.zeros(
            1, 3, 16, 40))
    with pytest.raises(ValueError, match='larger than the input'):
        InputPrompt((64, 64), width=20, resize=False)(
            torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match='width'):
        InputPrompt((16, 16), width=8)
    with pytest.raises(ValueError, match='size'):
        InputPrompt((0, 16))
    with pytest.raises(ValueError, match=r'\(H, W\) > 0, got 640'):
        InputPrompt(640)  # a sentence, not len() of an int


@pytest.mark.parametrize('kind', ['bias', 'block'])
def test_feature_prompt_on_its_own_and_from_the_registry(kind):
    from mmdet.registry import MODELS

    from rcnn_plugin.models.peft import FeaturePrompt
    prompt = MODELS.build(dict(type='FeaturePrompt', channels=4, kind=kind))
    assert isinstance(prompt, FeaturePrompt) and kind in repr(prompt)
    x = torch.rand(2, 4, 5, 6)
    assert torch.equal(prompt(x), torch.zeros_like(x))  # zero start
    with torch.no_grad():
        prompt.bias.fill_(1.0)
    out = prompt.hook(None, (x, ), x)
    assert out.shape == x.shape
    if kind == 'bias':
        assert torch.equal(out, x + 1)
    # an empty batch (no image) keeps its shape
    assert prompt(torch.zeros(0, 4, 5, 6)).shape == (0, 4, 5, 6)
    with pytest.raises(ValueError, match="'bias' or 'block', got 'x'"):
        FeaturePrompt(4, kind='x')
