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
    (not the cross-entropy) is used, so the loss is 0 when both agree.

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
    return (log_t.exp() * (log_t - merged)).sum(dim=1).mean()


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


def rpn_distill(student_cls: Sequence[Tensor],
                student_reg: Sequence[Tensor],
                teacher_cls: Sequence[Tensor],
                teacher_reg: Sequence[Tensor]) -> Tensor:
    """Faster ILOD's filtered RPN distillation (Peng et al. 2020).

    Only anchors where the teacher's objectness is higher than the
    student's are distilled (the teacher is not allowed to pull down the
    student's objectness on new objects): L2 on the objectness logits and
    on the box deltas there, averaged over all anchors.

    Args:
        student_cls (Sequence[Tensor]): Per level ``(N, A, H, W)``
            objectness logits (sigmoid RPN).
        student_reg (Sequence[Tensor]): Per level ``(N, 4A, H, W)``.
        teacher_cls (Sequence[Tensor]): As ``student_cls``.
        teacher_reg (Sequence[Tensor]): As ``student_reg``.

    Returns:
        Tensor: Scalar.
    """
    total, count = student_cls[0].sum() * 0, 0
    for s_c, s_r, t_c, t_r in zip(student_cls, student_reg, teacher_cls,
                                  teacher_reg):
        mask = (t_c > s_c).float()
        n, a, h, w = s_c.shape
        reg_err = (s_r - t_r).pow(2).reshape(n, a, -1, h, w).sum(dim=2)
        total = total + (mask * ((s_c - t_c).pow(2) + reg_err)).sum()
        count += s_c.numel()
    return total / max(count, 1)


def feature_distill(student: Sequence[Tensor],
                    teacher: Sequence[Tensor]) -> Tensor:
    """L1 between mean-centred feature maps, averaged over levels.

    Faster ILOD distils the backbone features with an L1 loss on
    normalised (mean-subtracted) maps; here every FPN level.

    Args:
        student (Sequence[Tensor]): Per level ``(N, D, H, W)``.
        teacher (Sequence[Tensor]): As ``student``.

    Returns:
        Tensor: Scalar.
    """
    losses = []
    for s, t in zip(student, teacher):
        s = s - s.mean(dim=(2, 3), keepdim=True)
        t = t - t.mean(dim=(2, 3), keepdim=True)
        losses.append(F.l1_loss(s, t))
    return torch.stack(losses).mean()


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
