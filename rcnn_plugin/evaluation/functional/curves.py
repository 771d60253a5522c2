"""PR curves with COCO's 101-point AP, F1-confidence and FROC curves.

All take, per detection, its score and its matching status (``TP``,
``FP`` or ``IGNORED`` from :func:`match_detections`), pooled over images.
"""
from typing import Dict, List, Sequence

import numpy as np

from .matching import FP, TP

REC_THRS = np.linspace(0.0, 1.0, 101)
FROC_FPS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CONF_THRS = np.linspace(0.0, 1.0, 101)


def image_id_order(results: Sequence[dict]) -> List[int]:
    """Indices of per-image records in ``img_id`` order, stably (dataset
    order where an id is missing or the ids do not compare).

    ``COCOeval.accumulate`` pools the detections of the images in sorted id
    order, then sorts them by score stably: tied scores of different images
    rank by image id, not by the order the images were evaluated in. Pool
    in this order before :func:`pr_curve` to rank them the same.

    Args:
        results (Sequence[dict]): Per-image records with ``img_id``.

    Returns:
        list[int]: The order.
    """
    order = list(range(len(results)))
    try:
        return sorted(order, key=lambda i: results[i].get('img_id'))
    except TypeError:  # None or ids of mixed types
        return order


def _cumulative(scores, status):
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    status = np.asarray(status).reshape(-1)
    order = np.argsort(-scores, kind='mergesort')
    scores, status = scores[order], status[order]
    tp = np.cumsum(status == TP).astype(np.float64)
    fp = np.cumsum(status == FP).astype(np.float64)
    return scores, tp, fp


def pr_curve(scores: Sequence[float], status: Sequence[int],
             num_gt: int) -> Dict[str, np.ndarray]:
    """Precision-recall curve and AP interpolated at 101 recall points.

    Precision is made monotonically non-increasing from the right, then
    read at recall 0, 0.01, ..., 1 (0 beyond the highest recall), and AP is
    the mean of those 101 values: COCO's definition.

    Args:
        scores (Sequence[float]): Detection scores, pooled over images.
        status (Sequence[int]): Their ``TP`` / ``FP`` / ``IGNORED`` status.
        num_gt (int): Number of ground-truth boxes (ignore regions
            excluded).

    Returns:
        dict: ``recall`` and ``precision`` (raw curve, one point per counted
        detection), ``interp`` (101 interpolated precisions) and ``ap``
        (-1.0 when ``num_gt`` is 0, as COCO reports it).
    """
    _, tp, fp = _cumulative(scores, status)
    # Ignored detections add no point to the curve.
    keep = np.diff(np.r_[0.0, tp + fp]) > 0
    tp, fp = tp[keep], fp[keep]
    if num_gt <= 0:
        return dict(recall=np.zeros(0), precision=np.zeros(0),
                    interp=np.zeros(len(REC_THRS)), ap=-1.0)
    recall = tp / num_gt
    precision = tp / (tp + fp + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, REC_THRS, side='left')
    interp = np.zeros(len(REC_THRS))
    valid = idx < len(envelope)
    interp[valid] = envelope[idx[valid]]
    return dict(recall=recall, precision=precision, interp=interp,
                ap=float(np.mean(interp)))


def froc_curve(scores: Sequence[float],
               status: Sequence[int],
               num_gt: int,
               num_images: int,
               fps: Sequence[float] = FROC_FPS) -> Dict[str, np.ndarray]:
    """FROC curve: sensitivity against mean false positives per image.

    One operating point per distinct score (thresholding at ``score >= s``).
    The sensitivity at a FP rate ``f`` is the highest sensitivity of an
    operating point with at most ``f`` FPs per image (0 if none).

    Args:
        scores (Sequence[float]): Detection scores, pooled over images.
        status (Sequence[int]): Their ``TP`` / ``FP`` / ``IGNORED`` status.
        num_gt (int): Number of ground-truth boxes.
        num_images (int): Number of images (with or without boxes).
        fps (Sequence[float]): FP-per-image rates to read.
            Defaults to ``FROC_FPS``.

    Returns:
        dict: ``fps_per_image`` and ``sensitivity`` (the curve, starting at
        (0, 0)), ``thresholds``, ``at_fps`` (sensitivity at each ``fps``)
        and ``cpm`` (their mean; 0.0 when ``num_gt`` is 0).
    """
    if num_images <= 0:
        raise ValueError('FROC needs at least one image')
    sorted_scores, tp, fp = _cumulative(scores, status)
    # One operating point per distinct score: the last of each tie group.
    last = np.r_[np.diff(sorted_scores) != 0, True] if len(tp) else tp > 0
    sens = tp[last] / num_gt if num_gt > 0 else np.zeros(int(last.sum()))
    fppi = fp[last] / num_images
    sens, fppi = np.r_[0.0, sens], np.r_[0.0, fppi]
    at_fps = np.array([sens[fppi <= f].max() for f in fps])
    return dict(fps_per_image=fppi, sensitivity=sens,
                thresholds=np.r_[np.inf, sorted_scores[last]],
                at_fps=at_fps, cpm=float(at_fps.mean()))


def f1_curve(scores: Sequence[float],
             status: Sequence[int],
             num_gt: int,
             thresholds: Sequence[float] = CONF_THRS) -> Dict[str, np.ndarray]:
    """Precision, recall and F1 against the score threshold.

    At threshold ``t`` the detections with ``score >= t`` are kept;
    precision is ``TP / (TP + FP)`` over them (1.0 when none is kept, as
    Ultralytics' curves read), recall ``TP / num_gt`` and F1 their harmonic
    mean (0.0 when both are 0). Ignored detections count neither way.

    Args:
        scores (Sequence[float]): Detection scores, pooled over images.
        status (Sequence[int]): Their ``TP`` / ``FP`` / ``IGNORED`` status.
        num_gt (int): Number of ground-truth boxes.
        thresholds (Sequence[float]): Score thresholds, in [0, 1].
            Defaults to ``CONF_THRS`` (0.0, 0.01, ..., 1.0).

    Returns:
        dict: ``thresholds``, ``precision``, ``recall`` and ``f1``, one
        value per threshold; recall and F1 are 0.0 when ``num_gt`` is 0.
    """
    sorted_scores, tp, fp = _cumulative(scores, status)
    thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    # Detections with score >= t: sorted_scores is in descending order.
    kept = np.searchsorted(-sorted_scores, -thr, side='right')
    tp_t, fp_t = np.r_[0.0, tp][kept], np.r_[0.0, fp][kept]
    counted = tp_t + fp_t
    precision = np.where(counted > 0, tp_t / np.maximum(counted, 1), 1.0)
    recall = tp_t / num_gt if num_gt > 0 else np.zeros(len(thr))
    denom = precision + recall
    f1 = np.where(denom > 0, 2 * precision * recall / np.where(
        denom > 0, denom, 1.0), 0.0)
    return dict(thresholds=thr, precision=precision, recall=recall, f1=f1)
