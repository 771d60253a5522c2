"""Old-class pseudo-labels from the teacher on new images.

Boxes are ``(x1, y1, x2, y2)`` in absolute pixels of the network input
(the resized image, the same frame as ``gt_instances``).
"""
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmdet.structures.mask import (
    BaseInstanceMasks,
    BitmapMasks,
    PolygonMasks,
)
from mmengine.structures import InstanceData


def filter_pseudo_labels(teacher_pred: InstanceData,
                         gt_instances: InstanceData,
                         score_thr: float = 0.5,
                         iou_thr: float = 0.5) -> InstanceData:
    """Keep confident teacher detections that do not overlap new GT.

    A teacher box whose IoU with any ground-truth box of the image is
    ``>= iou_thr`` is dropped: that object is labelled already (as a new
    class, or the teacher mistakes a new object for an old class).

    Args:
        teacher_pred (InstanceData): Teacher detections with ``bboxes``
            ``(P, 4)``, ``scores`` ``(P,)`` and ``labels`` ``(P,)`` (old
            class indices, which are the student's too).
        gt_instances (InstanceData): Ground truth with ``bboxes``
            ``(G, 4)``; ``G`` may be 0.
        score_thr (float): Minimum teacher score. Defaults to 0.5.
        iou_thr (float): Drop a pseudo-label overlapping a GT box at this
            IoU or more. Defaults to 0.5.

    Returns:
        InstanceData: The kept pseudo-labels (``bboxes``, ``labels``),
        possibly empty.
    """
    keep = teacher_pred.scores >= score_thr
    bboxes = teacher_pred.bboxes[keep]
    labels = teacher_pred.labels[keep]
    gt_bboxes = gt_instances.bboxes
    if hasattr(gt_bboxes, 'tensor'):  # mmdet's HorizontalBoxes
        gt_bboxes = gt_bboxes.tensor
    if len(bboxes) and len(gt_bboxes):
        ious = bbox_overlaps(bboxes, gt_bboxes.to(bboxes))
        free = ious.max(dim=1).values < iou_thr
        bboxes, labels = bboxes[free], labels[free]
    return InstanceData(bboxes=bboxes.detach(), labels=labels.long())


def add_pseudo_labels(gt_instances: InstanceData,
                      pseudo: InstanceData) -> InstanceData:
    """Append pseudo-labels to the ground truth of one image.

    With instance masks on both (Mask R-CNN), the masks are joined:
    the pseudo-labels' ``masks`` must have the ground truth's height and
    width, and polygon ground truth is turned into bitmaps. Pseudo-labels
    without masks (Faster R-CNN, whose pipeline may still load masks)
    give a result without masks, as the ground-truth masks would no
    longer match the boxes.

    Args:
        gt_instances (InstanceData): Ground truth (``bboxes``, ``labels``,
            optionally ``masks``).
        pseudo (InstanceData): From :func:`filter_pseudo_labels`,
            optionally with ``masks`` (``BitmapMasks``).

    Returns:
        InstanceData: A new ``InstanceData`` with both; ``masks`` only
        when both have them.
    """
    gt_bboxes = gt_instances.bboxes
    boxed = hasattr(gt_bboxes, 'tensor')
    raw = gt_bboxes.tensor if boxed else gt_bboxes
    bboxes = torch.cat([raw, pseudo.bboxes.to(raw)], dim=0)
    if boxed:
        bboxes = type(gt_bboxes)(bboxes)
    labels = torch.cat([gt_instances.labels,
                        pseudo.labels.to(gt_instances.labels)])
    result = InstanceData(bboxes=bboxes, labels=labels)
    if 'masks' in gt_instances and 'masks' in pseudo:
        result.masks = _cat_masks(gt_instances.masks, pseudo)
    return result


def _cat_masks(gt_masks: BaseInstanceMasks,
               pseudo: InstanceData) -> BaseInstanceMasks:
    """Ground-truth masks followed by the pseudo-labels' bitmaps."""
    if isinstance(gt_masks, PolygonMasks):
        gt_masks = BitmapMasks(gt_masks.to_ndarray(), gt_masks.height,
                               gt_masks.width)
    return BitmapMasks.cat([gt_masks, pseudo.masks])
