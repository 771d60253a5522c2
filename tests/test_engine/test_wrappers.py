import os

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

from rcnn_plugin.engine import DeviceAwareDistributedDataParallel


@pytest.fixture
def single_process_group(tmp_path):
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_cpu_module_drops_device_ids(single_process_group):
    model = nn.Linear(3, 2)
    wrapped = DeviceAwareDistributedDataParallel(model, device_ids=[0])
    assert wrapped.device_ids is None
    assert wrapped.module is model
    out = wrapped(torch.ones(1, 3))
    assert out.shape == (1, 2)


def test_module_without_parameters_is_refused_by_ddp(single_process_group):
    # torch's own error is kept for modules DDP cannot wrap.
    with pytest.raises(RuntimeError):
        DeviceAwareDistributedDataParallel(nn.ReLU())
    assert os.environ.get('RANK') is None


def test_frozen_stages_are_applied_before_ddp(single_process_group):
    """mmdet's MobileNetV2 freezes in train(); DDP must not track those."""
    from mmdet.models.backbones import MobileNetV2
    backbone = MobileNetV2(widen_factor=0.25, frozen_stages=1)
    assert backbone.conv1.conv.weight.requires_grad  # not frozen yet
    wrapped = DeviceAwareDistributedDataParallel(backbone)
    assert not backbone.conv1.conv.weight.requires_grad
    assert backbone.training  # the mode is kept
    # Two steps: the second fails if DDP waits for frozen parameters.
    wrapped.train()
    for _ in range(2):
        outs = wrapped(torch.randn(2, 3, 64, 64))
        sum(o.sum() for o in outs).backward()
