"""The incremental losses alone: golden cases, equal models, empty input."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import CrossEntropyLoss

from projects.IncrementalDet.incremental_det import (
    UnbiasedCrossEntropyLoss,
    attentive_roi_distill,
    box_delta_distill,
    feature_distill,
    ilod_logit_distill,
    roi_attention,
    rpn_distill,
    unbiased_cross_entropy,
    unbiased_logit_distill,
)


def test_unbiased_ce_is_plain_ce_without_old_classes():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=gen)
    labels = torch.tensor([0, 1, 2, 3, 3, 1])  # 3 is background
    loss = unbiased_cross_entropy(logits, labels, num_old=0)
    assert torch.allclose(loss, F.cross_entropy(logits, labels,
                                                reduction='none'))
    module = UnbiasedCrossEntropyLoss(num_old_classes=0)
    weight = torch.tensor([1., 1., 0., 1., 1., 1.])
    ref = CrossEntropyLoss()(logits, labels, weight, avg_factor=5.0)
    assert torch.allclose(module(logits, labels, weight, avg_factor=5.0),
                          ref)


def test_unbiased_ce_background_absorbs_old_classes():
    logits = torch.tensor([[2.0, 0.5, -1.0]])  # old, new, background
    bg = torch.tensor([2])
    probs = logits.softmax(dim=1)[0]
    loss = unbiased_cross_entropy(logits, bg, num_old=1)
    assert torch.allclose(loss, -(probs[0] + probs[2]).log()[None])
    new = unbiased_cross_entropy(logits, torch.tensor([1]), num_old=1)
    assert torch.allclose(new, -probs[1].log()[None])


def test_distillation_is_zero_when_student_equals_teacher():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 3, generator=gen)
    deltas = torch.randn(5, 8, generator=gen)
    assert ilod_logit_distill(logits, logits) == 0
    assert unbiased_logit_distill(logits, logits).abs() < 1e-6
    assert box_delta_distill(deltas, deltas) == 0
    cls = [torch.randn(2, 3, 4, 4, generator=gen)]
    reg = [torch.randn(2, 12, 4, 4, generator=gen)]
    assert rpn_distill(cls, reg, cls, reg) == 0
    assert feature_distill(reg, reg) == 0


def test_ilod_distills_old_columns_only_and_is_shift_invariant():
    teacher = torch.tensor([[1.0, 3.0]])  # old, background
    student = torch.tensor([[6.0, 9.0, 8.0]])  # old, new, background
    # mean-centred: teacher (-1, 1), student's old columns (-1, 1)
    assert ilod_logit_distill(student, teacher) == 0
    assert box_delta_distill(torch.ones(1, 8), torch.ones(1, 4)) == 0


def test_unbiased_distill_merges_new_into_background():
    teacher = torch.tensor([[0.0, 0.0]])
    # new and background at log(0.5): merged background matches teacher's
    half = torch.tensor(0.5).log()
    student = torch.tensor([[0.0, half, half]])
    assert unbiased_logit_distill(student, teacher).abs() < 1e-6
    assert ilod_logit_distill(student, teacher) > 0


def test_rpn_distill_only_where_teacher_is_more_confident():
    s_cls = [torch.tensor([[[[0.0, 2.0]]]])]  # (1, 1, 1, 2)
    t_cls = [torch.tensor([[[[1.0, 0.0]]]])]
    reg = [torch.zeros(1, 4, 1, 2)]
    # anchor 0: teacher higher, (0-1)^2 = 1; anchor 1: not distilled
    assert rpn_distill(s_cls, reg, t_cls, reg) == 0.5
    assert rpn_distill(s_cls, reg, t_cls, reg, mode='anchors') == 0.5


def test_rpn_distill_levels_and_box_threshold():
    """Faster ILOD's: a mean per level, then over levels; the box term
    only where the teacher's objectness is higher by more than 0.1."""
    # level 0: 1 anchor, teacher higher by 1; level 1: 3 anchors, equal
    s_cls = [torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 3)]
    t_cls = [torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 3)]
    s_reg = [torch.zeros(1, 4, 1, 1), torch.zeros(1, 4, 1, 3)]
    t_reg = [torch.ones(1, 4, 1, 1), torch.ones(1, 4, 1, 3)]
    # level 0: cls 1 + box 4 (sum over the 4 deltas); level 1: nothing
    assert rpn_distill(s_cls, s_reg, t_cls, t_reg) == 2.5
    # one mean over the 4 anchors instead: (1 + 4) / 4
    assert rpn_distill(s_cls, s_reg, t_cls, t_reg, mode='anchors') == 1.25
    # a margin of 0.05 keeps the objectness term but not the box term
    t_small = [torch.full((1, 1, 1, 1), 0.05), t_cls[1]]
    loss = rpn_distill(s_cls, s_reg, t_small, t_reg)
    assert torch.isclose(loss, torch.tensor(0.05**2 / 2))
    with pytest.raises(ValueError, match="mode must be one of"):
        rpn_distill(s_cls, s_reg, t_cls, t_reg, mode='all')


def test_feature_distill_filtered_sees_channel_offsets():
    gen = torch.Generator().manual_seed(2)
    teacher = [torch.randn(2, 4, 5, 5, generator=gen)]
    # a per-channel offset: invisible to 'channel', not to 'filtered'
    shifted = [teacher[0] + torch.tensor([1., -1., 2., -2.])[:, None, None]]
    assert feature_distill(shifted, teacher, mode='channel') < 1e-6
    assert feature_distill(shifted, teacher) > 0.1
    # a shift of the whole map is invisible to both
    whole = [teacher[0] + 3.0]
    assert feature_distill(whole, teacher) < 1e-6
    # one-sided: only where the teacher's centred value is higher
    t = [torch.zeros(1, 1, 1, 2)]
    s = [torch.tensor([[[[1.0, -1.0]]]])]  # centred: (1, -1)
    assert feature_distill(s, t) == 0.5  # max(0 - 1, 0), max(0 + 1, 0)
    assert feature_distill(s, t, mode='channel') == 1.0
    with pytest.raises(ValueError, match="mode must be one of"):
        feature_distill(s, t, mode='l2')


def test_unbiased_distill_has_mma_scale():
    """MMA's loss: cross-entropy to the teacher's softmax, averaged over the
    teacher's C_o + 1 columns; ours is its KL (same gradient)."""
    gen = torch.Generator().manual_seed(3)
    teacher = torch.randn(6, 3, generator=gen)  # 2 old + background
    student = torch.randn(6, 5, generator=gen)  # 2 old, 2 new, background
    p = teacher.softmax(dim=1)
    merged = torch.cat([student[:, :2],
                        student[:, 2:].logsumexp(dim=1, keepdim=True)],
                       dim=1).log_softmax(dim=1)
    mma = -(p * merged).sum(dim=1).mean() / 3
    entropy = -(p * p.log()).sum(dim=1).mean() / 3
    assert torch.isclose(unbiased_logit_distill(student, teacher),
                         mma - entropy, atol=1e-6)


def test_empty_rois():
    empty = torch.zeros(0, 3, requires_grad=True)
    for fn in (ilod_logit_distill, unbiased_logit_distill):
        loss = fn(empty, torch.zeros(0, 2))
        assert loss == 0
        loss.backward()
    assert box_delta_distill(torch.zeros(0, 8), torch.zeros(0, 4)) == 0
    module = UnbiasedCrossEntropyLoss(num_old_classes=1)
    out = module(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
                 avg_factor=1.0)
    assert out == 0


def test_single_class_unbiased_ce():
    """One old class, no new class but background: all mass is bg."""
    logits = torch.tensor([[1.0, 1.0]])
    loss = unbiased_cross_entropy(logits, torch.tensor([1]), num_old=1)
    assert loss.abs() < 1e-6


def test_roi_attention_golden_case():
    assert torch.equal(roi_attention(torch.ones(2, 3, 4, 4)),
                       torch.ones(2, 16))
    # Channel means of squares 0 and ln 2: softmax 1/3, 2/3, times P = 2.
    feats = torch.tensor([[[[0.0, 1.0]], [[0.0, -1.0]]]]) * \
        torch.tensor(2.0).log().sqrt()
    assert torch.allclose(roi_attention(feats),
                          torch.tensor([[2 / 3, 4 / 3]]))


def _abr_reference(f_teacher, f_student, gamma):
    """ABR's calculate_attentive_roi_feature_distillation, as released
    (its 'source' is the old model, 'target' the new one)."""
    def activation_at(f_map):
        n, _, h, w = f_map.shape
        fea = f_map.abs().pow(2).mean(axis=1, keepdim=True)
        return (h * w * F.softmax(fea.view(n, -1), dim=1)).view(n, h, w)
    s_t, s_s = activation_at(f_teacher), activation_at(f_student)
    weight = s_t.unsqueeze(1).sqrt()
    afd = torch.nn.MSELoss()(f_teacher * weight, f_student * weight)
    return afd + gamma * torch.nn.L1Loss()(s_s, s_t)


def test_attentive_roi_distill_matches_abr_and_trains_the_student():
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(5, 8, 7, 7, generator=gen)
    student = torch.randn(5, 8, 7, 7, generator=gen).requires_grad_()
    loss = attentive_roi_distill(student, teacher, gamma=5.0)
    assert torch.allclose(loss, _abr_reference(teacher, student, 5.0))
    assert loss > 0
    loss.backward()
    assert student.grad.abs().sum() > 0
    assert attentive_roi_distill(teacher, teacher.clone()) == 0
    # The feature term alone (gamma 0): a rescaled copy is not the teacher.
    assert attentive_roi_distill(teacher * 2, teacher, gamma=0) > 0


def test_attentive_roi_distill_empty_and_bad_shapes():
    empty = torch.zeros(0, 8, 7, 7, requires_grad=True)
    loss = attentive_roi_distill(empty, torch.zeros(0, 8, 7, 7))
    assert loss == 0 and loss.requires_grad
    with pytest.raises(ValueError, match=r'\(3, 8, 7, 7\).*\(3, 4, 7, 7\)'):
        attentive_roi_distill(torch.ones(3, 8, 7, 7), torch.ones(3, 4, 7, 7))
