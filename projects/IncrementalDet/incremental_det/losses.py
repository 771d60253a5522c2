"""Distillation and unbiased losses for incremental R-CNN steps.

Shapes: ``R`` RoIs, ``C_o`` old classes, ``C`` classes of the student
(old first, then new), ``A`` anchors per location, ``N`` images. mmdet's
softmax classifiers keep the background column LAST: the teacher's logits
are ``(R, C_o + 1)`` and the student's ``(R, C + 1)``. Box deltas are
``(R, 4 * C_o)`` and ``(R, 4 * C)`` (or ``(R, 4)`` class-agnostic).

Every loss is a free function (tested alone); the detector weights them.
:class:`UnbiasedCrossEntropyLoss` is the registered ``loss_cls`` of MMA.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor, nn


def _old_columns(student: Tensor, num_old: int) -> Tensor:
    """Student logits of the old classes and background: ``(R, C_o + 1)``."""
    return torch.cat([student[:, :num_old], student[:, -1:]], dim=1)


def ilod_logit_distill(student: Tensor, teacher: Tensor) -> Tensor:
    """ILOD's L2 on mean-centred logits (Shmelkov et al. 2017).

    Args:
        student (Tensor): Student logits ``(R, C + 1)``, background last.
        teacher (Tensor): Teacher logits ``(R, C_o + 1)``, background last.

    Returns:
        Tensor: Scalar; 0 when there are no RoIs.
    """
    if student.numel() == 0 or teacher.numel() == 0:
        return student.sum() * 0
    num_old = teacher.shape[1] - 1
    s = _old_columns(student, num_old)
    s = s - s.mean(dim=1, keepdim=True)
    t = teacher - teacher.mean(dim=1, keepdim=True)
    return F.mse_loss(s, t)


def box_delta_distill(student: Tensor, teacher: Tensor) -> Tensor:
    """L2 between the old classes' box deltas (ILOD).

    Args:
        student (Tensor): Student deltas ``(R, 4 * C)`` or ``(R, 4)``.
        teacher (Tensor): Teacher deltas ``(R, 4 * C_o)`` or ``(R, 4)``.

    Returns:
        Tensor: Scalar; 0 when there are no RoIs.
    """
    if student.numel() == 0 or teacher.numel() == 0:
        return student.sum() * 0
    return F.mse_loss(student[:, :teacher.shape[1]], teacher)


def unbiased_logit_distill(student: Tensor, teacher: Tensor) -> Tensor:
    """MMA's unbiased distillation (Cermelli et al. 2022).

    The teacher does not know the new classes: in the student, they are
    merged into background (log-sum-exp of the new and background
    columns) before the KL divergence to the teacher's softmax. The KL
    (not the cross-entropy) is used, so the loss is 0 when both agree; its
    gradient is MMA's, whose loss is averaged over the ``C_o + 1`` columns.

    Args:
        student (Tensor): Student logits ``(R, C + 1)``, background last.
        teacher (Tensor): Teacher logits ``(R, C_o + 1)``, background last.

    Returns:
        Tensor: Scalar, mean over RoIs; 0 when there are no RoIs.
    """
    if student.numel() == 0 or teacher.numel() == 0:
        return student.sum() * 0
    num_old = teacher.shape[1] - 1
    norm = torch.logsumexp(student, dim=1, keepdim=True)
    merged = torch.cat([
        student[:, :num_old],
        torch.logsumexp(student[:, num_old:], dim=1, keepdim=True)
    ], dim=1) - norm
    log_t = F.log_softmax(teacher, dim=1)
    # MMA's code averages over the teacher's C_o + 1 columns.
    kl = (log_t.exp() * (log_t - merged)).sum(dim=1).mean()
    return kl / (num_old + 1)


def unbiased_cross_entropy(cls_score: Tensor, labels: Tensor,
                           num_old: int) -> Tensor:
    """MMA's unbiased cross-entropy, per RoI.

    On new data an unlabelled old object is background: the background
    probability is the sum of the background and old-class probabilities
    (log-sum-exp of their logits). Other labels are plain cross-entropy.

    Args:
        cls_score (Tensor): Logits ``(R, C + 1)``, background last.
        labels (Tensor): Labels ``(R,)`` in ``[0, C]``; ``C`` background.
        num_old (int): ``C_o``, the old classes (columns ``0..C_o-1``).

    Returns:
        Tensor: Loss per RoI ``(R,)``; plain cross-entropy when
        ``num_old`` is 0.
    """
    bg = cls_score.shape[1] - 1
    norm = torch.logsumexp(cls_score, dim=1)
    picked = cls_score.gather(1, labels.clamp(max=bg)[:, None])[:, 0]
    if num_old > 0:
        cols = list(range(num_old)) + [bg]
        bg_logit = torch.logsumexp(cls_score[:, cols], dim=1)
        picked = torch.where(labels == bg, bg_logit, picked)
    return norm - picked


RPN_MODES = ('levels', 'anchors')
FEAT_MODES = ('filtered', 'channel')


def rpn_distill(student_cls: Sequence[Tensor],
                student_reg: Sequence[Tensor],
                teacher_cls: Sequence[Tensor],
                teacher_reg: Sequence[Tensor],
                mode: str = 'levels',
                box_thr: float = 0.1) -> Tensor:
    """Faster ILOD's filtered RPN distillation (Peng et al. 2020).

    Only anchors where the teacher's objectness is higher than the
    student's are distilled (the teacher is not allowed to pull down the
    student's objectness on new objects): L2 on the objectness logits
    there, and L2 (summed over the 4 deltas) on the box deltas where the
    teacher's objectness is higher by more than ``box_thr``.

    Args:
        student_cls (Sequence[Tensor]): Per level ``(N, A, H, W)``
            objectness logits (sigmoid RPN).
        student_reg (Sequence[Tensor]): Per level ``(N, 4A, H, W)``.
        teacher_cls (Sequence[Tensor]): As ``student_cls``.
        teacher_reg (Sequence[Tensor]): As ``student_reg``.
        mode (str): ``'levels'``, Faster ILOD's: a mean over each level's
            anchors, then over the levels, with ``box_thr``. ``'anchors'``:
            one mean over every anchor of every level (the stride-4 level
            weighs about 3/4), with the box mask of the objectness term
            (``box_thr`` ignored). Defaults to 'levels'.
        box_thr (float): Objectness margin of the box term. Defaults to
            0.1, Faster ILOD's.

    Returns:
        Tensor: Scalar.
    """
    if mode not in RPN_MODES:
        raise ValueError(f'rpn_distill mode must be one of {RPN_MODES}, got '
                         f'{mode!r}')
    per_level, total, count = [], student_cls[0].sum() * 0, 0
    for s_c, s_r, t_c, t_r in zip(student_cls, student_reg, teacher_cls,
                                  teacher_reg):
        n, a, h, w = s_c.shape
        reg_err = (s_r - t_r).pow(2).reshape(n, a, -1, h, w).sum(dim=2)
        if mode == 'anchors':
            mask = (t_c > s_c).float()
            total = total + (mask * ((s_c - t_c).pow(2) + reg_err)).sum()
            count += s_c.numel()
            continue
        gap = (t_c - s_c).detach()
        cls_term = (t_c - s_c).clamp(min=0).pow(2).mean()
        box_term = ((gap > box_thr).float() * reg_err).mean()
        per_level.append(cls_term + box_term)
    if mode == 'anchors':
        return total / max(count, 1)
    return torch.stack(per_level).mean()


def feature_distill(student: Sequence[Tensor],
                    teacher: Sequence[Tensor],
                    mode: str = 'filtered') -> Tensor:
    """L1 between mean-centred feature maps, averaged over levels.

    Args:
        student (Sequence[Tensor]): Per level ``(N, D, H, W)``.
        teacher (Sequence[Tensor]): As ``student``.
        mode (str): ``'filtered'``, Faster ILOD's normalised filtered L1:
            each map minus its mean (one scalar per image and level), and
            only where the teacher's centred value is the higher,
            ``max(t - s, 0)``. ``'channel'``: each channel minus its own
            spatial mean, and ``|t - s|`` everywhere (blind to a
            per-channel offset in the student). Defaults to 'filtered'.

    Returns:
        Tensor: Scalar.
    """
    if mode not in FEAT_MODES:
        raise ValueError(f'feature_distill mode must be one of {FEAT_MODES}, '
                         f'got {mode!r}')
    losses = []
    for s, t in zip(student, teacher):
        dims = (2, 3) if mode == 'channel' else (1, 2, 3)
        s = s - s.mean(dim=dims, keepdim=True)
        t = t - t.mean(dim=dims, keepdim=True)
        if mode == 'channel':
            losses.append(F.l1_loss(s, t))
        else:
            losses.append((t - s).clamp(min=0).mean())
    return torch.stack(losses).mean()


def roi_attention(feats: Tensor) -> Tensor:
    """ABR's spatial attention of RoI features: the channel mean of the
    squared activations, softmax over the ``P = H * W`` positions, times
    ``P`` (so a uniform map is all ones).

    Args:
        feats (Tensor): RoI features ``(R, D, H, W)``.

    Returns:
        Tensor: ``(R, H * W)``.
    """
    energy = feats.abs().pow(2).mean(dim=1).flatten(1)
    return energy.shape[1] * energy.softmax(dim=1)


def attentive_roi_distill(student: Tensor, teacher: Tensor,
                          gamma: float = 1.0) -> Tensor:
    """ABR's Attentive RoI Distillation (ARD, Liu et al. ICCV 2023).

    Mean squared error of the RoI features, each position weighted by the
    square root of the teacher's attention (:func:`roi_attention`), plus
    ``gamma`` times the L1 between the two attention maps. As in ABR's
    ``calculate_attentive_roi_feature_distillation``.

    Args:
        student (Tensor): Student RoI features ``(R, D, H, W)`` on the
            teacher's RoIs.
        teacher (Tensor): Teacher RoI features on the same RoIs.
        gamma (float): Weight of the attention term. Defaults to 1.0.

    Returns:
        Tensor: Scalar; 0 when there are no RoIs.
    """
    if student.numel() == 0:
        return student.sum() * 0
    if student.shape != teacher.shape:
        raise ValueError(f'attentive_roi_distill: student RoI features '
                         f'{tuple(student.shape)} and teacher\'s '
                         f'{tuple(teacher.shape)} differ')
    att_t = roi_attention(teacher)
    att_s = roi_attention(student)
    weight = att_t.sqrt().view(len(teacher), 1, *teacher.shape[2:])
    feat = F.mse_loss(student * weight, teacher * weight)
    return feat + gamma * F.l1_loss(att_s, att_t)


@MODELS.register_module()
class UnbiasedCrossEntropyLoss(nn.Module):
    """MMA's unbiased classification as a box head's ``loss_cls``.

    Args:
        num_old_classes (int): ``C_o``: the first ``C_o`` classes are the
            old ones. 0 gives plain softmax cross-entropy.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, num_old_classes: int, loss_weight: float = 1.0
                 ) -> None:
        super().__init__()
        if num_old_classes < 0:
            raise ValueError('num_old_classes must be >= 0, got '
                             f'{num_old_classes}')
        self.num_old_classes = num_old_classes
        self.loss_weight = loss_weight
        self.use_sigmoid = False

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Weighted unbiased cross-entropy.

        Args:
            cls_score (Tensor): Logits ``(R, C + 1)``, background last.
            label (Tensor): Labels ``(R,)``, background ``C``.
            weight (Tensor, optional): Per-RoI weights ``(R,)``. Defaults
                to None.
            avg_factor (float, optional): Divisor of the sum. Defaults to
                None.
            reduction_override (str, optional): 'none', 'mean' or 'sum'.
                Defaults to None ('mean').
            **kwargs: Ignored (mmdet's loss call convention).

        Returns:
            Tensor: The loss.
        """
        loss = unbiased_cross_entropy(cls_score, label, self.num_old_classes)
        if weight is not None:
            weight = weight.float()
        return self.loss_weight * weight_reduce_loss(
            loss, weight, reduction_override or 'mean', avg_factor)
