"""Teacher pseudo-labels: score threshold, overlap with new ground truth."""
import numpy as np
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from projects.IncrementalDet.incremental_det import (
    add_pseudo_labels,
    filter_pseudo_labels,
)


def _pred():
    return InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.],
                             [50., 50., 60., 60.]]),
        scores=torch.tensor([0.9, 0.9, 0.3]),
        labels=torch.tensor([0, 0, 0]))


def test_overlapping_and_unconfident_pseudo_labels_are_dropped():
    gt = InstanceData(bboxes=HorizontalBoxes(torch.tensor([[1., 1., 10.,
                                                           10.]])),
                      labels=torch.tensor([1]))
    kept = filter_pseudo_labels(_pred(), gt, score_thr=0.5, iou_thr=0.5)
    assert kept.bboxes.tolist() == [[20., 20., 30., 30.]]
    merged = add_pseudo_labels(gt, kept)
    assert isinstance(merged.bboxes, HorizontalBoxes)
    assert merged.labels.tolist() == [1, 0]


def test_empty_ground_truth_and_empty_predictions():
    gt = InstanceData(bboxes=torch.zeros(0, 4),
                      labels=torch.zeros(0, dtype=torch.long))
    kept = filter_pseudo_labels(_pred(), gt, score_thr=0.5)
    assert len(kept) == 2
    empty = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                         labels=torch.zeros(0, dtype=torch.long))
    assert len(filter_pseudo_labels(empty, gt)) == 0
    assert len(add_pseudo_labels(gt, filter_pseudo_labels(empty, gt))) == 0


def test_faster_rcnn_pseudo_labels_with_a_pipeline_that_loads_masks():
    """LoadAnnotations(with_mask=True) under Faster R-CNN: the ground
    truth has masks, the pseudo-labels none. The boxes join and the masks
    are dropped (as before mask support); it raised 'use a model without a
    mask head', a wrong cause."""
    gt = InstanceData(bboxes=HorizontalBoxes(torch.tensor([[1., 1., 10.,
                                                           10.]])),
                      labels=torch.tensor([1]),
                      masks=BitmapMasks(np.ones((1, 12, 16), np.uint8), 12,
                                        16))
    kept = filter_pseudo_labels(_pred(), gt, score_thr=0.5, iou_thr=0.5)
    merged = add_pseudo_labels(gt, kept)
    assert merged.labels.tolist() == [1, 0] and len(merged.bboxes) == 2
    assert 'masks' not in merged
