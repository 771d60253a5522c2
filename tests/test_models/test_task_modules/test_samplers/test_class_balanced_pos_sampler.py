"""ClassBalancedPosSampler: class ratios over many draws, degenerate cases."""
import pytest
import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

import rcnn_plugin  # noqa: F401
from rcnn_plugin.models import ClassBalancedPosSampler, balanced_quotas


def _assign(num_per_class, num_neg):
    """Positives of class k are RoIs with gt index k+1; then negatives."""
    labels, gt_inds = [], []
    for k, n in enumerate(num_per_class):
        labels += [k] * n
        gt_inds += [k + 1] * n
    labels += [-1] * num_neg
    gt_inds += [0] * num_neg
    num = len(gt_inds)
    result = AssignResult(len(num_per_class), torch.tensor(gt_inds),
                          torch.rand(num), torch.tensor(labels))
    priors = torch.rand(num, 4) * 10
    priors[:, 2:] += priors[:, :2] + 1
    gt = InstanceData(bboxes=torch.rand(len(num_per_class), 4) + 20,
                      labels=torch.arange(len(num_per_class)))
    return result, InstanceData(priors=priors), gt


def _sampler(num=40, pos_fraction=0.5):
    return TASK_UTILS.build(dict(type='ClassBalancedPosSampler', num=num,
                                 pos_fraction=pos_fraction,
                                 add_gt_as_proposals=False))


def test_balanced_over_1000_draws_90_10():
    """90 RoIs of class 0, 10 of class 1, 15 positives per draw.

    Quotas are 7/8 or 8/7 (the odd draw goes to a random class), so the
    class-1 share of the positives is 7/15 or 8/15 per draw and 0.5 on
    average. Over 1000 draws its standard error is (0.5/15)/sqrt(1000) ~
    0.001; a tolerance of 0.01 is 10 standard errors. RandomSampler would
    give 0.1.
    """
    torch.manual_seed(0)
    sampler = _sampler(num=30, pos_fraction=0.5)
    assign, preds, gt = _assign([90, 10], 200)
    share, hits = [], torch.zeros(100)
    for _ in range(1000):
        res = sampler.sample(assign, preds, gt)
        labels = assign.labels[res.pos_inds]
        assert len(labels) == 15
        assert len(res.neg_inds) == 15
        assert len(set(res.pos_inds.tolist())) == 15
        share.append((labels == 1).float().mean().item())
        hits[res.pos_inds] += 1
    assert abs(sum(share) / len(share) - 0.5) < 0.01
    # Inclusion probability ~ 1 / class frequency: 7.5/90 vs 7.5/10, and
    # uniform within a class (binomial std of one class-0 RoI's count over
    # 1000 draws: sqrt(1000 * 0.083 * 0.917) ~ 8.7; 5 std = 44).
    assert abs(hits[:90].mean().item() - 1000 * 7.5 / 90) < 3
    assert abs(hits[90:].mean().item() - 1000 * 7.5 / 10) < 10
    assert (hits[:90] - 1000 * 7.5 / 90).abs().max() < 44
    # The stock sampler on the same input keeps the 90/10 ratio.
    stock = TASK_UTILS.build(dict(type='RandomSampler', num=30,
                                  pos_fraction=0.5,
                                  add_gt_as_proposals=False))
    rare = [(assign.labels[stock.sample(assign, preds, gt).pos_inds] == 1)
            .float().mean().item() for _ in range(200)]
    assert abs(sum(rare) / len(rare) - 0.1) < 0.03


def test_rare_class_saturates_and_gives_surplus_to_the_others():
    torch.manual_seed(1)
    assign, preds, gt = _assign([90, 3, 30], 50)
    res = _sampler(num=40, pos_fraction=0.5).sample(assign, preds, gt)
    counts = torch.bincount(assign.labels[res.pos_inds], minlength=3)
    # 20 positives: class 1 gives its 3, the 17 left split 9/8 or 8/9.
    assert counts[1] == 3
    assert sorted(counts[[0, 2]].tolist()) == [8, 9]


def test_fewer_positives_than_requested_keeps_them_all():
    assign, preds, gt = _assign([4, 1], 100)
    res = _sampler(num=40, pos_fraction=0.5).sample(assign, preds, gt)
    assert sorted(res.pos_inds.tolist()) == [0, 1, 2, 3, 4]
    assert len(res.neg_inds) == 35


@pytest.mark.parametrize('num, pos_fraction', [(40, 0.0), (2, 0.25)])
def test_zero_positives_requested_gives_none(num, pos_fraction):
    assign, preds, gt = _assign([4, 1], 100)
    res = _sampler(num, pos_fraction).sample(assign, preds, gt)
    assert res.pos_inds.numel() == 0 and len(res.neg_inds) == num


def test_no_gt_gives_only_negatives():
    result = AssignResult(0, torch.zeros(50, dtype=torch.long),
                          torch.zeros(50), torch.full((50, ), -1))
    priors = torch.rand(50, 4)
    priors[:, 2:] += 1
    gt = InstanceData(bboxes=torch.zeros(0, 4),
                      labels=torch.zeros(0, dtype=torch.long))
    res = _sampler(num=40).sample(result, InstanceData(priors=priors), gt)
    assert res.pos_inds.numel() == 0
    assert len(res.neg_inds) == 40


def test_no_proposals_at_all():
    result = AssignResult(0, torch.zeros(0, dtype=torch.long),
                          torch.zeros(0), torch.zeros(0, dtype=torch.long))
    gt = InstanceData(bboxes=torch.zeros(0, 4),
                      labels=torch.zeros(0, dtype=torch.long))
    res = _sampler().sample(result, InstanceData(priors=torch.zeros(0, 4)),
                            gt)
    assert res.pos_inds.numel() == res.neg_inds.numel() == 0


@pytest.mark.parametrize('counts,total,expected', [
    ([90, 10], 20, [10, 10]),
    ([90, 5], 20, [15, 5]),
    ([2, 2, 50], 30, [2, 2, 26]),
    ([0, 7], 5, [0, 5]),
    ([3, 4], 100, [3, 4]),
    ([], 5, []),
])
def test_balanced_quotas(counts, total, expected):
    assert balanced_quotas(counts, total) == expected


@pytest.mark.parametrize('kwargs', [dict(num=0, pos_fraction=0.5),
                                    dict(num=10, pos_fraction=1.5)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ClassBalancedPosSampler(**kwargs)
