"""BF16AmpOptimWrapper: bfloat16 autocast on CPU, float32 master weights."""
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from torch import nn

from rcnn_plugin.engine import BF16AmpOptimWrapper
from rcnn_plugin.utils.benchmark import synthetic_batch

from conftest import REPO, shrink_model

BF16_CFG = (f'{REPO}/configs/speed/'
            'faster-rcnn_mobilenetv2_fpn-128-tvroi_bf16-8e_bccd.py')


def _wrapper(model, **kwargs):
    register_all_modules()  # default scope mmdet, as the Runner sets it
    return build_optim_wrapper(model, dict(
        type='BF16AmpOptimWrapper',
        optimizer=dict(type='SGD', lr=0.1), **kwargs))


def test_autocast_on_the_model_device_and_fp32_update():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    wrapper = _wrapper(model)
    assert isinstance(wrapper, BF16AmpOptimWrapper)
    before = model.weight.detach().clone()
    x = torch.randn(8, 4)
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
        out = model(x)
    assert not torch.is_autocast_enabled('cpu')
    assert out.dtype == torch.bfloat16  # the matmul ran in bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert model.weight.dtype == torch.float32
    assert not torch.equal(model.weight, before)


def test_rejects_fp16_options():
    with pytest.raises(ValueError, match='loss scaling'):
        _wrapper(nn.Linear(2, 2), loss_scale='dynamic')


@pytest.mark.slow
def test_detector_train_step_in_bf16_on_cpu():
    register_all_modules()
    cfg = Config.fromfile(BF16_CFG)
    torch.manual_seed(0)
    model = MODELS.build(shrink_model(cfg.model))
    model.init_weights()
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(wrapper, BF16AmpOptimWrapper)
    batch = synthetic_batch(2, (96, 128), 3, num_classes=3)
    batch['data_samples'][1].gt_instances = \
        batch['data_samples'][1].gt_instances[:0]  # an image with no boxes
    log_vars = model.train_step(batch, wrapper)
    assert math.isfinite(float(log_vars['loss']))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    model.eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        results = model.test_step(batch)
    assert len(results) == 2
    assert results[0].pred_instances.bboxes.dtype == torch.float32
