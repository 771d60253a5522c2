"""An incremental Mask R-CNN step: mask logits distilled too.

Shapes: ``N`` images, ``R`` RoIs, ``P`` pseudo-labels, ``C_o`` old and
``C_n`` new classes, ``C = C_o + C_n`` (old first), ``M`` the mask head's
output size (28). mmdet's mask logits have no background channel: the
teacher's are ``(R, C_o, M, M)``, the student's ``(R, C, M, M)`` (or
``(R, 1, M, M)`` both, class-agnostic). Boxes are ``(x1, y1, x2, y2)`` in
pixels of the network input.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.detectors import TwoStageDetector
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import (
    BYTES_PER_FLOAT,
    GPU_MEM_LIMIT,
    _do_paste_mask,
)
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData
from torch import Tensor

from .incremental_rcnn import DISTILL_DEFAULTS, IncrementalFasterRCNN


def mask_logit_distill(student: Tensor, teacher: Tensor) -> Tensor:
    """Distillation of the old classes' mask logits (MMA's, as a KL).

    MMA's Mask R-CNN extension (Cermelli et al. 2022, its public code)
    distils the mask head with a binary cross-entropy whose targets are
    the teacher's mask probabilities, on the old classes' channels. This
    is that loss minus the teacher's own entropy: the KL divergence
    between the per-pixel Bernoulli distributions of teacher and student.
    The gradient is the same as MMA's BCE; the value is 0 when they
    agree. A BCE (not ILOD's L2 on logits) because mask logits are
    per-pixel sigmoid scores: the L2 would pull hard on saturated pixels
    (logits -15 and -10 are both "not the object"), the BCE weighs the
    errors where the probability differs.

    Args:
        student (Tensor): Student mask logits ``(R, C, M, M)``.
        teacher (Tensor): Teacher mask logits ``(R, C_o, M, M)``; only
            the student's first ``C_o`` channels are distilled.

    Returns:
        Tensor: Scalar, mean over RoIs, old channels and pixels; 0 (in
        the student's graph) when there are no RoIs.
    """
    if student.numel() == 0 or teacher.numel() == 0:
        return student.sum() * 0
    s = student[:, :teacher.shape[1]]
    t = teacher.to(s.dtype)
    p = torch.sigmoid(t)
    kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + \
        (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean()


def paste_masks(mask_logits: Tensor,
                bboxes: Tensor,
                height: int,
                width: int,
                thr: float = 0.5,
                mem_limit: int = GPU_MEM_LIMIT) -> BitmapMasks:
    """Binary image masks from one mask-logit channel per box.

    Pasted in chunks of boxes, as mmdet's ``FCNMaskHead`` does on a GPU:
    a chunk's ``(p, height, width)`` float masks take about ``mem_limit``
    bytes at most (but one box at least), so many boxes on a large image
    do not exhaust the memory. A box's mask depends on that box only, so
    the result does not depend on the chunks.

    Args:
        mask_logits (Tensor): ``(P, M, M)`` logits, one per box.
        bboxes (Tensor): ``(P, 4)`` boxes, pixels of the image.
        height (int): Height of the masks.
        width (int): Width of the masks.
        thr (float): Probability threshold (mmdet's ``mask_thr_binary``).
            Defaults to 0.5.
        mem_limit (int): Bytes of float masks pasted at once (mmdet's
            ``GPU_MEM_LIMIT``, 1 GiB). Defaults to ``GPU_MEM_LIMIT``.

    Returns:
        BitmapMasks: ``(P, height, width)``, ``uint8``.
    """
    if mem_limit <= 0:
        raise ValueError(f'mem_limit must be > 0 bytes, got {mem_limit}')
    masks = np.zeros((len(bboxes), height, width), np.uint8)
    per_box = int(height) * int(width) * BYTES_PER_FLOAT
    step = max(1, mem_limit // max(per_box, 1))
    probs = mask_logits.sigmoid()[:, None]
    for start in range(0, len(bboxes), step):
        end = start + step
        pasted, _ = _do_paste_mask(probs[start:end], bboxes[start:end],
                                   height, width, skip_empty=False)
        masks[start:end] = (pasted >= thr).to(torch.uint8).cpu().numpy()
    return BitmapMasks(masks, height, width)


@MODELS.register_module()
class IncrementalMaskRCNN(IncrementalFasterRCNN):
    """Mask R-CNN trained on new classes with a frozen previous model.

    :class:`IncrementalFasterRCNN` with a mask head (``roi_head.mask_head``
    with ``num_classes`` = ``len(old_classes) + len(new_classes)``): class
    surgery grows its ``conv_logits`` from ``C_o`` to ``C`` channels too
    (old channels copied), so the student starts with the teacher's old
    box and mask logits. One loss more, weight ``distill.mask`` (0 = off):

    - ``loss_distill_mask``: :func:`mask_logit_distill` of the old
      classes' mask logits on the RoIs of the box distillation (ILOD's
      confident teacher RoIs).

    Pseudo-labels get the teacher's masks: its mask logits of the
    predicted class on each kept box, pasted at the ground truth's size
    and thresholded at ``test_cfg.rcnn.mask_thr_binary``; they are
    instances like the labelled ones, and Mask R-CNN's mask loss trains
    on them (no mask-less instance reaches the mask head).

    Args:
        backbone (ConfigType): Backbone config.
        rpn_head (ConfigType): RPN head config.
        roi_head (ConfigType): RoI head config with a ``mask_head``.
        train_cfg (ConfigType): Training config.
        test_cfg (ConfigType): Test config (also the teacher's).
        old_classes (Sequence[str]): The teacher's classes, in its order.
        new_classes (Sequence[str]): Classes added.
        teacher_ckpt (str, optional): Checkpoint of the previous Mask
            R-CNN. Defaults to None.
        allow_random_teacher (bool): Allow ``teacher_ckpt=None``.
            Defaults to False.
        distill (dict, optional): As :class:`IncrementalFasterRCNN`'s, and
            ``mask``. Defaults to None (all off).
        pseudo_label (dict, optional): ``score_thr`` and ``iou_thr``.
            Defaults to None.
        neck (OptConfigType): Neck config. Defaults to None.
        data_preprocessor (OptConfigType): Data preprocessor config.
            Defaults to None.
        init_cfg (OptMultiConfig): Init config. Defaults to None.
    """

    distill_defaults = dict(DISTILL_DEFAULTS, mask=0.0)
    loss_weights = IncrementalFasterRCNN.loss_weights + ('mask', )
    roi_loss_weights = IncrementalFasterRCNN.roi_loss_weights + ('mask', )

    @classmethod
    def _check_roi_head(cls, roi_head: dict, old_classes: Sequence[str],
                        new_classes: Sequence[str]) -> None:
        """The box and mask heads have the student's class count."""
        mask_head = roi_head.get('mask_head')
        if mask_head is None:
            raise ValueError('IncrementalMaskRCNN needs roi_head.mask_head; '
                             "without one, use type='IncrementalFasterRCNN'")
        super()._check_roi_head(dict(roi_head, mask_head=None), old_classes,
                                new_classes)
        num = mask_head['num_classes']
        if num != len(old_classes) + len(new_classes):
            raise ValueError(
                f'roi_head.mask_head.num_classes is {num}, but old_classes '
                f'{list(old_classes)} + new_classes {list(new_classes)} '
                f'are {len(old_classes) + len(new_classes)}')

    def _roi_distill_losses(self, feats: Tuple[Tensor], out: dict,
                            idx: Optional[Tensor]) -> dict:
        """The box losses, and the mask logits' on the same RoIs."""
        losses = super()._roi_distill_losses(feats, out, idx)
        weight = self.distill['mask']
        if weight <= 0:
            return losses
        if idx is None:
            losses['loss_distill_mask'] = feats[0].sum() * 0
            return losses
        rois = out['rois'][idx]
        with torch.no_grad():
            teacher = self.teacher.roi_head._mask_forward(out['feats'], rois)
        student = self.roi_head._mask_forward(feats, rois)
        losses['loss_distill_mask'] = weight * mask_logit_distill(
            student['mask_preds'], teacher['mask_preds'])
        return losses

    def _pseudo_labels(self, teacher: TwoStageDetector, out: dict,
                       samples: SampleList) -> List[InstanceData]:
        """The kept detections, with the teacher's binary masks."""
        kept = super()._pseudo_labels(teacher, out, samples)
        rois = bbox2roi([k.bboxes for k in kept])
        if len(rois):
            with torch.no_grad():
                logits = teacher.roi_head._mask_forward(out['feats'], rois)
            logits = logits['mask_preds']
        else:
            logits = out['feats'][0].new_zeros((0, 1, 1, 1))
        thr = teacher.test_cfg.rcnn.get('mask_thr_binary', 0.5)
        start = 0
        for pseudo, sample in zip(kept, samples):
            own = logits[start:start + len(pseudo)]
            start += len(pseudo)
            channel = pseudo.labels if own.shape[1] > 1 else \
                torch.zeros_like(pseudo.labels)
            own = own[torch.arange(len(own), device=own.device), channel]
            height, width = _mask_size(sample)
            pseudo.masks = paste_masks(own, pseudo.bboxes, height, width, thr)
        return kept


def _mask_size(sample) -> Tuple[int, int]:
    """Height and width of the sample's ground-truth masks (the padded
    size when the data preprocessor pads masks), else of its image."""
    masks = sample.gt_instances.get('masks')
    if masks is not None:
        return masks.height, masks.width
    return tuple(sample.metainfo['img_shape'][:2])
