"""TorchvisionLevelRoIExtractor pools as torchvision's MultiScaleRoIAlign."""
from collections import OrderedDict

import pytest
import torch
from mmdet.registry import MODELS
from torchvision.ops import MultiScaleRoIAlign

import rcnn_plugin  # noqa: F401


def _extractor(backend='torchvision'):
    return MODELS.build(dict(
        type='TorchvisionLevelRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2,
                       aligned=False),
        out_channels=4, featmap_strides=[4, 8, 16, 32], backend=backend))


@pytest.mark.parametrize('backend', ['torchvision', 'sparse'])
def test_matches_multiscale_roi_align(backend):
    torch.manual_seed(0)
    size = 256
    feats = [torch.randn(1, 4, size // s, size // s) for s in (4, 8, 16, 32)]
    # Boxes of every scale, including exact level boundaries (112, 224).
    wh = torch.tensor([8., 30, 111.9, 112, 150, 224, 300, 250])
    boxes = torch.stack([torch.full_like(wh, 3), torch.full_like(wh, 2),
                         3 + wh, 2 + wh], 1).clamp(max=size)
    theirs = MultiScaleRoIAlign(['0', '1', '2', '3'], 7, 2)(
        OrderedDict((str(i), f) for i, f in enumerate(feats)), [boxes],
        [(size, size)])
    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], 1)
    ours = _extractor(backend)(tuple(feats), rois)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    levels = _extractor().map_roi_levels(rois, 4)
    assert levels.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


@pytest.mark.parametrize('backend', ['torchvision', 'sparse'])
def test_no_rois(backend):
    feats = tuple(torch.zeros(1, 4, 8, 8, requires_grad=True)
                  for _ in range(4))
    out = _extractor(backend)(feats, torch.zeros(0, 5))
    assert out.shape == (0, 4, 7, 7)
    out.sum().backward()  # the graph holds with nothing pooled


def test_bad_canonical_scale():
    with pytest.raises(ValueError, match='canonical_scale'):
        MODELS.build(dict(type='TorchvisionLevelRoIExtractor',
                          canonical_scale=0,
                          roi_layer=dict(type='RoIAlign', output_size=7),
                          out_channels=4, featmap_strides=[4]))


def test_two_maps_at_one_stride_use_the_first():
    """fasterrcnn_mobilenet_v3_large_fpn pools two stride-32 maps."""
    extractor = MODELS.build(dict(
        type='TorchvisionLevelRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2,
                       aligned=False),
        out_channels=4, featmap_strides=[32, 32]))
    rois = torch.tensor([[0, 0, 0, 10, 10], [0, 0, 0, 600, 600.]])
    assert extractor.map_roi_levels(rois, 2).tolist() == [0, 0]
