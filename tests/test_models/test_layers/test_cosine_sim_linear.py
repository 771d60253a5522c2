"""CosineSimLinear: shapes, zero inputs and argument checks."""
import pytest
import torch
from mmdet.registry import MODELS

import rcnn_plugin  # noqa: F401
from rcnn_plugin.models import CosineSimLinear


def test_builds_from_registry_and_handles_zero_rois():
    layer = MODELS.build(dict(type='CosineSimLinear', in_features=6,
                              out_features=4))
    assert isinstance(layer, CosineSimLinear)
    assert layer(torch.zeros(0, 6)).shape == (0, 4)


def test_zero_feature_gives_zero_scores_not_nan():
    layer = CosineSimLinear(3, 2, scale=5.0)
    out = layer(torch.zeros(2, 3))
    assert torch.equal(out, torch.zeros(2, 2))


def test_parallel_feature_scores_scale():
    layer = CosineSimLinear(2, 2, scale=7.0)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -1.0]]))
    out = layer(torch.tensor([[2.0, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[7.0, 0.0]]),
                               atol=1e-4, rtol=0)


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_features=0, out_features=2), 'in_features'),
    (dict(in_features=2, out_features=-1), 'out_features'),
    (dict(in_features=2, out_features=2, scale=-1.0), 'scale'),
    (dict(in_features=2, out_features=2, scale=float('inf')), 'scale'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CosineSimLinear(**kwargs)
