"""TorchvisionRPNHead drops low-scoring proposals before NMS."""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import rcnn_plugin  # noqa: F401


def _head():
    return MODELS.build(dict(
        type='TorchvisionRPNHead', in_channels=4, feat_channels=4,
        anchor_generator=dict(type='TorchvisionAnchorGenerator', scales=[8],
                              ratios=[1.0], strides=[16])))


def _results(scores):
    n = len(scores)
    boxes = torch.tensor([[10. * i, 0, 10. * i + 8, 8] for i in range(n)])
    return InstanceData(bboxes=boxes.reshape(n, 4),
                        scores=torch.tensor(scores, dtype=torch.float),
                        level_ids=torch.zeros(n, dtype=torch.long))


def test_score_threshold():
    cfg = ConfigDict(nms=dict(type='nms', iou_threshold=0.7),
                     max_per_img=10, min_bbox_size=0, score_thr=0.05)
    out = _head()._bbox_post_process(_results([0.9, 0.04, 0.05, 0.5]), cfg)
    assert sorted(out.scores.tolist()) == pytest.approx([0.05, 0.5, 0.9])
    # Without score_thr it is mmdet's RPNHead.
    del cfg['score_thr']
    out = _head()._bbox_post_process(_results([0.9, 0.04]), cfg)
    assert len(out) == 2


def test_all_below_threshold_gives_no_proposals():
    cfg = ConfigDict(nms=dict(type='nms', iou_threshold=0.7),
                     max_per_img=10, min_bbox_size=0, score_thr=0.5)
    out = _head()._bbox_post_process(_results([0.1, 0.2]), cfg)
    assert len(out) == 0 and out.bboxes.shape == (0, 4)
    empty = _head()._bbox_post_process(_results([]), cfg)
    assert len(empty) == 0
