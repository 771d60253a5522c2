"""TorchvisionAnchorGenerator reproduces torchvision's anchors exactly."""
import torch
from mmdet.registry import TASK_UTILS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

import rcnn_plugin  # noqa: F401

STRIDES = [4, 8, 16, 32, 64]


def test_matches_torchvision_anchor_generator():
    ours = TASK_UTILS.build(dict(
        type='TorchvisionAnchorGenerator', scales=[8],
        ratios=[0.5, 1.0, 2.0], strides=STRIDES))
    theirs = AnchorGenerator(sizes=((32, ), (64, ), (128, ), (256, ),
                                    (512, )),
                             aspect_ratios=((0.5, 1.0, 2.0), ) * 5)
    sizes = [(256 // s, 192 // s) for s in STRIDES]  # 256x192 image
    feats = [torch.zeros(1, 1, h, w) for h, w in sizes]
    expected = theirs(ImageList(torch.zeros(1, 3, 256, 192), [(256, 192)]),
                      feats)[0]
    got = torch.cat(ours.grid_priors(sizes, device='cpu'))
    assert torch.equal(got, expected)
    # mmdet's own generator keeps fractional corners: they differ.
    stock = TASK_UTILS.build(dict(type='AnchorGenerator', scales=[8],
                                  ratios=[0.5, 1.0, 2.0], strides=STRIDES))
    stock_anchors = torch.cat(stock.grid_priors(sizes, device='cpu'))
    assert not torch.equal(stock_anchors, expected)


def test_empty_feature_map_gives_no_anchors():
    ours = TASK_UTILS.build(dict(type='TorchvisionAnchorGenerator',
                                 scales=[8], ratios=[1.0], strides=[16]))
    assert ours.grid_priors([(0, 0)], device='cpu')[0].shape == (0, 4)
