"""IgnoreNegativesAssigner: ignore regions take away negatives only."""
import pytest
import torch
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmengine.structures import InstanceData

from rcnn_plugin.models import IgnoreNegativesAssigner

KW = dict(pos_iou_thr=0.5, neg_iou_thr=0.3, min_pos_iou=0.3,
          ignore_iof_thr=0.5)


def _inputs(ignore):
    # a small object (platelet) on a large ignored one (unpicked RBC)
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 20., 20.]]),
                      labels=torch.tensor([2]))
    priors = torch.tensor([
        [10., 10., 20., 20.],  # the object itself: inside the ignored box
        [0., 0., 30., 8.],  # mostly inside the ignored box, a negative
        [60., 60., 90., 90.],  # far away, a negative
    ])
    ign = InstanceData(bboxes=torch.tensor(ignore).reshape(-1, 4),
                       labels=torch.zeros(len(ignore), dtype=torch.long))
    return InstanceData(priors=priors), gt, ign


def test_the_positive_on_an_ignored_box_stays_positive():
    pred, gt, ign = _inputs([[0., 0., 40., 40.]])
    ours = IgnoreNegativesAssigner(**KW).assign(pred, gt, ign)
    assert ours.gt_inds.tolist() == [1, -1, 0]
    assert ours.labels[0] == 2
    # mmdet's assigner loses the object's own box
    stock = MaxIoUAssigner(**KW).assign(pred, gt, ign)
    assert stock.gt_inds[0] != 1


@pytest.mark.parametrize('ignore', [[], [[100., 100., 120., 120.]]])
def test_no_or_far_ignore_regions_change_nothing(ignore):
    pred, gt, ign = _inputs(ignore)
    ours = IgnoreNegativesAssigner(**KW).assign(pred, gt, ign)
    stock = MaxIoUAssigner(**KW).assign(pred, gt, None)
    assert torch.equal(ours.gt_inds, stock.gt_inds)
    assert torch.equal(
        IgnoreNegativesAssigner(**KW).assign(pred, gt, None).gt_inds,
        stock.gt_inds)


def test_empty_inputs_and_bad_threshold():
    pred, gt, ign = _inputs([[0., 0., 40., 40.]])
    no_gt = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    res = IgnoreNegativesAssigner(**KW).assign(pred, no_gt, ign)
    assert res.gt_inds.tolist() == [-1, -1, 0]  # all negatives, 2 ignored
    res = IgnoreNegativesAssigner(**KW).assign(
        InstanceData(priors=torch.zeros(0, 4)), gt, ign)
    assert res.gt_inds.numel() == 0
    with pytest.raises(ValueError, match='ignore_iof_thr > 0'):
        IgnoreNegativesAssigner(**dict(KW, ignore_iof_thr=-1))
