"""torch.compile of backbone + neck only, and the graph-break report."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from torch import nn

from rcnn_plugin.engine import CompileBackboneNeckHook
from rcnn_plugin.utils.benchmark_runner import compile_hook_args
from rcnn_plugin.utils.graph_breaks import count_graph_breaks
from rcnn_plugin.utils.torch_compile import compile_backbone_neck, is_compiled


class ToyDetector(nn.Module):
    """Backbone, neck and a head with a data-dependent branch."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3, padding=1)
        self.neck = nn.Conv2d(4, 4, 1)
        self.head = nn.Linear(4, 2)

    def data_preprocessor(self, batch, training=False):
        return dict(inputs=torch.stack(batch['inputs']).float(),
                    data_samples=batch['data_samples'])

    def forward(self, inputs, data_samples=None, mode='predict'):
        feats = self.neck(self.backbone(inputs)).mean((2, 3))
        if feats.sum() > 0:  # data-dependent: a graph break
            feats = feats * 2
        return self.head(feats)


def test_hook_compiles_only_backbone_and_neck():
    torch.manual_seed(0)
    model = ToyDetector()
    keys = list(model.state_dict())
    x = torch.rand(1, 3, 8, 8)
    expected = model(x)
    hook = CompileBackboneNeckHook(backend='eager', dynamic=False)
    hook.before_run(SimpleNamespace(model=model))
    assert hook.compiled == ['backbone', 'neck']
    assert is_compiled(model.backbone) and is_compiled(model.neck)
    assert not is_compiled(model.head) and not is_compiled(model)
    assert list(model.state_dict()) == keys  # checkpoints unchanged
    torch.testing.assert_close(model(x), expected)


def test_compile_refuses_a_model_without_backbone_or_neck():
    with pytest.raises(ValueError, match='no backbone or neck'):
        compile_backbone_neck(nn.Linear(2, 2), backend='eager')
    with pytest.raises(TypeError, match='backend'):
        CompileBackboneNeckHook(backend='')


def test_benchmark_reads_the_hook_from_the_config():
    cfg = Config(dict(custom_hooks=[
        dict(type='TrainingHealthHook'),
        dict(type='CompileBackboneNeckHook', dynamic=True)]))
    assert compile_hook_args(cfg) == dict(backend='inductor', dynamic=True)
    assert compile_hook_args(Config(dict(custom_hooks=[]))) is None


def test_graph_break_count_is_a_number():
    model = ToyDetector()
    batch = dict(inputs=[torch.rand(3, 8, 8)], data_samples=[None])
    report = count_graph_breaks(model, batch)
    assert isinstance(report['graph_breaks'], int)
    assert report['graph_breaks'] >= 1 and report['graphs'] >= 2
    assert report['reasons']
    neck = count_graph_breaks(model, batch, part='neck')
    assert neck['graph_breaks'] == 0
    with pytest.raises(ValueError, match='mode'):
        count_graph_breaks(model, batch, mode='tensor')
