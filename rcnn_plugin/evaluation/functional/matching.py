"""Greedy one-to-one matching of detections to ground truth.

Shapes: N detections, M ground-truth boxes, K ignore regions. Boxes are
``(x1, y1, x2, y2)`` in absolute pixels; a box's area is
``(x2 - x1) * (y2 - y1)`` (COCO's convention, no ``+ 1``).

The rule every metric of this package uses (the COCO rule):

1. Detections are visited in descending score order (a stable sort: equal
   scores keep their input order).
2. A detection is a hit on a ground-truth box when the criterion holds:
   ``'iou'``: IoU >= ``thr``; ``'center'``: the detection's centre lies
   inside the box (borders included). Among the still unmatched boxes it
   hits, it takes the one with the highest IoU (the last on ties, as
   pycocotools' ``COCOeval.evaluateImg`` does) and
   becomes a true positive (TP). Each box is matched at most once.
3. Otherwise, a detection that hits an ignore region (``iscrowd`` or
   ``ignore_flag`` boxes; for ``'iou'`` the intersection over the
   *detection's* area must be >= ``thr``, as COCO does for crowds) is
   ignored: neither TP nor FP.
4. Otherwise, with ``duplicates='ignore'``, a detection that hits an
   already matched box is ignored (LUNA16's rule); with the default
   ``'fp'`` it is a false positive (FP), as in COCO.
5. Every other detection is a FP; unmatched boxes are false negatives.
"""
from typing import Tuple

import numpy as np

TP, FP, IGNORED = 1, 0, -1
CRITERIA = ('iou', 'center')
DUPLICATES = ('fp', 'ignore')


def as_boxes(boxes) -> np.ndarray:
    """Return ``boxes`` as a float64 ``(N, 4)`` array.

    Args:
        boxes (array-like): Boxes, any shape that reshapes to ``(N, 4)``.

    Returns:
        np.ndarray: ``(N, 4)`` float64 array.
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size % 4:
        raise ValueError(f'boxes must have 4 coordinates, got shape '
                         f'{arr.shape}')
    return arr.reshape(-1, 4)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU between two sets of ``(x1, y1, x2, y2)`` boxes.

    Args:
        boxes1 (np.ndarray): ``(N, 4)`` boxes.
        boxes2 (np.ndarray): ``(M, 4)`` boxes.

    Returns:
        np.ndarray: ``(N, M)`` IoU; 0 where the union is empty.
    """
    inter, area1, area2 = _intersections(boxes1, boxes2)
    union = area1[:, None] + area2[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_iof(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Intersection over the area of ``boxes1`` (COCO's crowd overlap).

    Args:
        boxes1 (np.ndarray): ``(N, 4)`` boxes (detections).
        boxes2 (np.ndarray): ``(M, 4)`` boxes (ignore regions).

    Returns:
        np.ndarray: ``(N, M)`` intersection / area of ``boxes1``.
    """
    inter, area1, _ = _intersections(boxes1, boxes2)
    area1 = area1[:, None]
    return np.where(area1 > 0, inter / np.maximum(area1, 1e-12), 0.0)


def centre_inside(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Whether the centre of each ``boxes1`` lies inside each ``boxes2``.

    Args:
        boxes1 (np.ndarray): ``(N, 4)`` boxes (detections).
        boxes2 (np.ndarray): ``(M, 4)`` boxes (ground truth).

    Returns:
        np.ndarray: ``(N, M)`` bool, borders included.
    """
    cx = (boxes1[:, 0] + boxes1[:, 2])[:, None] / 2
    cy = (boxes1[:, 1] + boxes1[:, 3])[:, None] / 2
    return ((cx >= boxes2[None, :, 0]) & (cx <= boxes2[None, :, 2])
            & (cy >= boxes2[None, :, 1]) & (cy <= boxes2[None, :, 3]))


def _intersections(boxes1, boxes2):
    b1, b2 = as_boxes(boxes1), as_boxes(boxes2)
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return wh[..., 0] * wh[..., 1], area1, area2


def class_ignore_mask(ignore_labels: np.ndarray, label: int) -> np.ndarray:
    """The ignore regions that apply to one class: its own and the
    class-less ones (label -1: KITTI's DontCare, LabelMe's ``__ignore__``,
    ``unknown_classes='ignore'``), which apply to every class.

    Args:
        ignore_labels (np.ndarray): (K,) labels of the ignore regions.
        label (int): The class.

    Returns:
        np.ndarray: (K,) bool.
    """
    ignore_labels = np.asarray(ignore_labels)
    return (ignore_labels == label) | (ignore_labels < 0)


def _hits(dets, boxes, thr, criterion, crowd=False):
    if criterion == 'center':
        return centre_inside(dets, boxes)
    overlap = box_iof(dets, boxes) if crowd else box_iou(dets, boxes)
    return overlap >= thr


def match_detections(det_boxes,
                     det_scores,
                     gt_boxes,
                     ignore_boxes=None,
                     thr: float = 0.5,
                     criterion: str = 'iou',
                     duplicates: str = 'fp') -> Tuple[np.ndarray, np.ndarray]:
    """Greedily match detections to ground truth (see the module doc).

    Args:
        det_boxes (array-like): ``(N, 4)`` detections.
        det_scores (array-like): ``(N,)`` detection scores.
        gt_boxes (array-like): ``(M, 4)`` ground-truth boxes.
        ignore_boxes (array-like, optional): ``(K, 4)`` ignore regions.
            Defaults to None.
        thr (float): IoU threshold of the ``'iou'`` criterion.
            Defaults to 0.5.
        criterion (str): ``'iou'`` or ``'center'``. Defaults to 'iou'.
        duplicates (str): ``'fp'`` or ``'ignore'``: what a second hit on
            an already matched box is. Defaults to 'fp'.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``status`` ``(N,)`` with
        ``TP`` (1), ``FP`` (0) or ``IGNORED`` (-1) in the input order, and
        ``matched_gt`` ``(N,)``, the matched box index or -1.
    """
    if criterion not in CRITERIA:
        raise ValueError(f'criterion must be one of {CRITERIA}, got '
                         f'{criterion!r}')
    if duplicates not in DUPLICATES:
        raise ValueError(f'duplicates must be one of {DUPLICATES}, got '
                         f'{duplicates!r}')
    dets, gts = as_boxes(det_boxes), as_boxes(gt_boxes)
    ign = as_boxes(ignore_boxes if ignore_boxes is not None else [])
    scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(dets):
        raise ValueError(f'{len(dets)} boxes but {len(scores)} scores')
    status = np.full(len(dets), FP, dtype=np.int64)
    matched_gt = np.full(len(dets), -1, dtype=np.int64)
    if not len(dets):
        return status, matched_gt
    ious = box_iou(dets, gts)
    hits = _hits(dets, gts, thr, criterion)
    ign_hits = _hits(dets, ign, thr, criterion, crowd=True).any(axis=1)
    taken = np.zeros(len(gts), dtype=bool)
    for d in np.argsort(-scores, kind='mergesort'):
        free = hits[d] & ~taken
        if free.any():
            cand = np.where(free, ious[d], -1.0)[::-1]
            g = len(cand) - 1 - int(np.argmax(cand))  # the last on ties
            taken[g] = True
            status[d], matched_gt[d] = TP, g
        elif ign_hits[d] or (duplicates == 'ignore' and hits[d].any()):
            status[d] = IGNORED
    return status, matched_gt
