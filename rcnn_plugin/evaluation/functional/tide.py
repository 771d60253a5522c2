"""TIDE: why a detector misses (Bolya et al., ECCV 2020).

Shapes: N detections and M ground-truth boxes of one image, C classes.
Boxes are ``(x1, y1, x2, y2)`` in absolute pixels.

Each false positive at the foreground IoU ``pos_thr`` (t_f, 0.5) is given
one error type, tested in this order (tidecv 1.0.1's order); IoU_max is
the highest IoU with any ground-truth box of the image, used or not:

- ``Loc``: IoU_max with a box of its own class is in [``bg_thr``,
  ``pos_thr``): right class, box off.
- ``Cls``: IoU_max with a box of another class is >= ``pos_thr``: right
  box, wrong class.
- ``Dupl``: IoU_max with a box of its own class is >= ``pos_thr``, but a
  higher-scoring detection already took the box.
- ``Bkg``: IoU_max with every box is <= ``bg_thr`` (t_b, 0.1), or the
  image has no box: a detection on background.
- ``Both``: the rest (wrong class and IoU in (t_b, t_f) with a box of
  another class).

A box no detection matched is ``Miss`` unless a ``Cls`` or ``Loc`` error
aims at it. Each error type is fixed in turn by an oracle and the mAP
recomputed; dAP is the gain. Fixes, as in the paper and tidecv: the
highest-scoring ``Cls`` / ``Loc`` error aimed at an unmatched box becomes a
true positive (of the box's class for ``Cls``); other ``Cls`` / ``Loc``
errors (aimed at a matched box, or not the best) and every ``Both``,
``Dupl`` and ``Bkg`` error are removed; ``Miss`` boxes leave the ground
truth. ``FP`` (all false positives removed) and ``FN`` (all unmatched boxes
removed) are tidecv's two "special" errors.
"""
from typing import Dict, List, Sequence

import numpy as np

from .curves import image_id_order, pr_curve
from .matching import (
    FP,
    IGNORED,
    TP,
    as_boxes,
    box_iou,
    class_ignore_mask,
    match_detections,
)

ERROR_TYPES = ('Cls', 'Loc', 'Both', 'Dupl', 'Bkg', 'Miss')
SPECIAL_TYPES = ('FP', 'FN')
CLS, LOC, BOTH, DUPL, BKG, MISS = range(6)
NO_ERROR = -1


def top_per_class(scores: np.ndarray, labels: np.ndarray,
                  max_dets: int) -> np.ndarray:
    """Mask of the ``max_dets`` best-scored detections of each class.

    Args:
        scores (np.ndarray): ``(N,)`` scores.
        labels (np.ndarray): ``(N,)`` class indices.
        max_dets (int): Detections kept per class.

    Returns:
        np.ndarray: ``(N,)`` bool.
    """
    keep = np.zeros(len(scores), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        order = np.argsort(-scores[idx], kind='mergesort')
        keep[idx[order[:max_dets]]] = True
    return keep


def _match_per_class(res: dict, keep: np.ndarray, thr: float):
    labels, gt_labels = res['pred_labels'], res['gt_labels']
    status = np.full(len(labels), IGNORED, dtype=np.int64)
    matched = np.full(len(labels), -1, dtype=np.int64)
    for c in np.unique(labels[keep]):
        d = np.flatnonzero(keep & (labels == c))
        g = np.flatnonzero(gt_labels == c)
        st, mg = match_detections(
            res['pred_bboxes'][d], res['pred_scores'][d],
            res['gt_bboxes'][g],
            res['ignore_bboxes'][class_ignore_mask(res['ignore_labels'], c)],
            thr)
        status[d] = st
        hit = mg >= 0
        matched[d[hit]] = g[mg[hit]]
    return status, matched


def _error_type(iou: np.ndarray, same: np.ndarray, pos_thr: float,
                bg_thr: float):
    """Error type and aimed-at box of one false positive (``iou``: (M,))."""
    if not len(iou):
        return BKG, -1
    iou_same = np.where(same, iou, 0.0)
    j = int(np.argmax(iou_same))
    if bg_thr <= iou_same[j] < pos_thr:
        return LOC, j
    iou_other = np.where(same, 0.0, iou)
    k = int(np.argmax(iou_other))
    if iou_other[k] >= pos_thr:
        return CLS, k
    if iou_same[j] >= pos_thr:
        return DUPL, j
    if iou.max() <= bg_thr:
        return BKG, -1
    return BOTH, int(np.argmax(iou))


def classify_image(res: dict, pos_thr: float = 0.5, bg_thr: float = 0.1,
                   max_dets: int = 100) -> Dict[str, np.ndarray]:
    """TIDE errors of one image (see the module doc).

    Args:
        res (dict): ``pred_bboxes`` (N, 4), ``pred_scores`` (N,),
            ``pred_labels`` (N,), ``gt_bboxes`` (M, 4), ``gt_labels``
            (M,), ``ignore_bboxes`` (K, 4), ``ignore_labels`` (K,), as
            :class:`BaseDetMetric` collects them.
        pos_thr (float): Foreground IoU t_f. Defaults to 0.5.
        bg_thr (float): Background IoU t_b. Defaults to 0.1.
        max_dets (int): Detections kept per class (the rest are
            ``IGNORED``). Defaults to 100.

    Returns:
        dict: Per detection ``(N,)``: ``status`` (``TP`` / ``FP`` /
        ``IGNORED``), ``error`` (index in ``ERROR_TYPES`` or -1),
        ``target`` (the box a ``Loc`` / ``Cls`` / ``Dupl`` / ``Both`` error
        is nearest to, else -1) and ``rescues`` (a ``Cls`` / ``Loc`` error
        that its fix turns into a TP). Per box ``(M,)``: ``matched`` and
        ``missed`` (``Miss`` errors).
    """
    scores, labels = res['pred_scores'], res['pred_labels']
    gt_labels = res['gt_labels']
    keep = top_per_class(scores, labels, max_dets)
    status, matched = _match_per_class(res, keep, pos_thr)
    gt_matched = np.zeros(len(gt_labels), dtype=bool)
    gt_matched[matched[matched >= 0]] = True
    iou = box_iou(as_boxes(res['pred_bboxes']), as_boxes(res['gt_bboxes']))
    same = labels[:, None] == gt_labels[None, :]
    error = np.full(len(labels), NO_ERROR, dtype=np.int64)
    target = np.full(len(labels), -1, dtype=np.int64)
    for i in np.flatnonzero(status == FP):
        error[i], target[i] = _error_type(iou[i], same[i], pos_thr, bg_thr)
    # The best-scored Cls / Loc error aimed at each unmatched box rescues
    # it (tidecv's BestGTMatch: the first of equal scores wins).
    rescues = np.zeros(len(labels), dtype=bool)
    aimed = np.zeros(len(gt_labels), dtype=bool)
    for i in np.argsort(-scores, kind='mergesort'):
        j = target[i]
        if error[i] in (CLS, LOC) and not gt_matched[j]:
            rescues[i] = not aimed[j]
            aimed[j] = True
    return dict(status=status, error=error, target=target, rescues=rescues,
                matched=gt_matched, missed=~gt_matched & ~aimed)


def _class_aps(scores, status, labels, num_gt, eval_classes) -> np.ndarray:
    """AP@t_f per class (101-point); 1.0 for a class left with no box and
    no detection, 0.0 with detections but no box."""
    aps = np.full(len(num_gt), np.nan)
    for c in eval_classes:
        sel = labels == c
        if num_gt[c] > 0:
            aps[c] = pr_curve(scores[sel], status[sel], int(num_gt[c]))['ap']
        else:
            aps[c] = 0.0 if np.any(status[sel] != IGNORED) else 1.0
    return aps


def _fixed(pooled: dict, kind: str):
    """Labels, statuses and box counts with one error type fixed."""
    labels, status = pooled['labels'].copy(), pooled['status'].copy()
    num_gt = pooled['num_gt'].copy()
    error, rescues = pooled['error'], pooled['rescues']
    if kind == 'FP':
        status[status == FP] = IGNORED
    elif kind in ('FN', 'Miss'):
        lost = pooled['gt_unmatched' if kind == 'FN' else 'gt_missed']
        num_gt -= np.bincount(pooled['gt_labels'][lost],
                              minlength=len(num_gt))
    else:
        t = ERROR_TYPES.index(kind)
        sel = error == t
        status[sel & ~rescues] = IGNORED
        status[sel & rescues] = TP
        if t == CLS:
            labels[sel & rescues] = pooled['target_labels'][sel & rescues]
    return labels, status, num_gt


def pool_errors(results: Sequence[dict], num_classes: int,
                pos_thr: float = 0.5, bg_thr: float = 0.1,
                max_dets: int = 100) -> dict:
    """Classify every image and pool detections and boxes over images.

    Images are pooled in :func:`image_id_order` (tied scores rank by image
    id, as in ``COCOeval`` and ``PRCurveMetric``); ``image`` and
    ``gt_image`` index ``results`` as given.

    Args:
        results (Sequence[dict]): Per-image records (see
            :func:`classify_image`).
        num_classes (int): Number of classes C.
        pos_thr (float): Foreground IoU t_f. Defaults to 0.5.
        bg_thr (float): Background IoU t_b. Defaults to 0.1.
        max_dets (int): Detections kept per image and class.
            Defaults to 100.

    Returns:
        dict: Flat arrays over all detections (``image``, ``index`` in its
        image, ``labels``, ``scores``, ``status``, ``error``, ``target``,
        ``target_labels``, ``rescues``) and all boxes (``gt_image``,
        ``gt_index``, ``gt_labels``, ``gt_unmatched``, ``gt_missed``), and
        ``num_gt`` ``(C,)``.
    """
    if not 0.0 <= bg_thr <= pos_thr <= 1.0:
        raise ValueError('need 0 <= bg_thr <= pos_thr <= 1, got bg_thr='
                         f'{bg_thr}, pos_thr={pos_thr}')
    det: Dict[str, List[np.ndarray]] = {k: [] for k in (
        'image', 'index', 'labels', 'scores', 'status', 'error', 'target',
        'target_labels', 'rescues', 'gt_image', 'gt_index', 'gt_labels',
        'gt_unmatched', 'gt_missed')}
    for i in image_id_order(results):  # ties rank as in PRCurveMetric
        res = results[i]
        out = classify_image(res, pos_thr, bg_thr, max_dets)
        n, m = len(res['pred_labels']), len(res['gt_labels'])
        gt_labels = np.r_[res['gt_labels'], -1].astype(np.int64)
        for key, value in (
                ('image', np.full(n, i)), ('index', np.arange(n)),
                ('labels', res['pred_labels']),
                ('scores', res['pred_scores']), ('status', out['status']),
                ('error', out['error']), ('target', out['target']),
                ('target_labels', gt_labels[out['target']]),
                ('rescues', out['rescues']), ('gt_image', np.full(m, i)),
                ('gt_index', np.arange(m)), ('gt_labels', res['gt_labels']),
                ('gt_unmatched', ~out['matched']),
                ('gt_missed', out['missed'])):
            det[key].append(np.asarray(value))
    pooled = {k: np.concatenate(v) if v else np.zeros(0)
              for k, v in det.items()}
    for key in ('image', 'index', 'labels', 'status', 'error', 'target',
                'target_labels', 'gt_image', 'gt_index', 'gt_labels'):
        pooled[key] = pooled[key].astype(np.int64)
    for key in ('rescues', 'gt_unmatched', 'gt_missed'):
        pooled[key] = pooled[key].astype(bool)
    pooled['num_gt'] = np.bincount(pooled['gt_labels'],
                                   minlength=num_classes)
    return pooled


def tide_summary(pooled: dict, num_classes: int) -> dict:
    """mAP, dAP per error type and error counts, overall and per class.

    mAP is the mean over the classes with ground truth of AP at t_f with
    COCO's 101-point interpolation (``PRCurveMetric``'s ``bbox_mAP_50``).
    dAP of a type is the mAP with that type fixed minus the mAP (clipped
    at 0, as tidecv does), in the same units (0..1).

    Args:
        pooled (dict): The output of :func:`pool_errors`.
        num_classes (int): Number of classes C.

    Returns:
        dict: ``mAP`` (float; -1 when no class has ground truth), ``AP``
        ``(C,)`` (NaN for a class without ground truth), ``dAP``
        {type: float}, ``class_dAP`` {type: (C,)},
        ``counts`` {type: int} and ``class_counts`` {type: (C,)} (by the
        detection's class; ``Miss`` by the box's class).
    """
    eval_classes = np.flatnonzero(pooled['num_gt'] > 0)
    base = _class_aps(pooled['scores'], pooled['status'], pooled['labels'],
                      pooled['num_gt'], eval_classes)
    # -1 without ground truth, as PRCurveMetric and COCOeval report it
    m_ap = float(np.mean(base[eval_classes])) if len(eval_classes) else -1.0
    d_ap, class_d_ap = {}, {}
    for kind in ERROR_TYPES + SPECIAL_TYPES:
        labels, status, num_gt = _fixed(pooled, kind)
        aps = _class_aps(pooled['scores'], status, labels, num_gt,
                         eval_classes)
        class_d_ap[kind] = np.maximum(aps - base, 0.0)
        d_ap[kind] = (max(float(np.mean(aps[eval_classes])) - m_ap, 0.0)
                      if len(eval_classes) else 0.0)
    class_counts = {}
    for t, kind in enumerate(ERROR_TYPES):
        labels = pooled['labels'][pooled['error'] == t]
        if t == MISS:
            labels = pooled['gt_labels'][pooled['gt_missed']]
        class_counts[kind] = np.bincount(labels, minlength=num_classes)
    return dict(mAP=m_ap, AP=base, dAP=d_ap, class_dAP=class_d_ap,
                counts={k: int(v.sum()) for k, v in class_counts.items()},
                class_counts=class_counts)
