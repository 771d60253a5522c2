"""Compare detections of two backends (the export's self-check).

A detection of the reference matches when the other backend has one of the
same label with IoU > ``iou_thr`` and ``|score difference| < score_tol``.
"""
from typing import Dict, List

import numpy as np

__all__ = ['compare_detections', 'match_fraction']


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None),  # noqa
                             axis=-1)
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def match_fraction(ref: List[Dict], other: List[Dict], top_k: int = 100,
                   iou_thr: float = 0.99, score_tol: float = 1e-3) -> Dict:
    """Match the top-k detections of one image (dicts of
    :func:`rcnn_plugin.apis.instances_to_dicts`, score-sorted).

    Args:
        ref (List[dict]): Reference detections (PyTorch).
        other (List[dict]): Detections to check.
        top_k (int): Compare the top-k of each. Defaults to 100.
        iou_thr (float): IoU above which boxes match. Defaults to 0.99.
        score_tol (float): Largest score difference. Defaults to 1e-3.

    Returns:
        dict: ``fraction`` (matched / max(len(ref), len(other)); 1.0 when
        both are empty), ``max_box_diff`` and ``max_score_diff`` (pixels
        and score over matched pairs).
    """
    ref, other = ref[:top_k], other[:top_k]
    used = np.zeros(len(other), bool)
    boxes = np.array([d['bbox_xyxy'] for d in other]).reshape(-1, 4)
    matched, box_diff, score_diff = 0, 0.0, 0.0
    for det in ref:
        if not len(other):
            break
        ok = ~used & (np.array([d['label'] for d in other]) == det['label'])
        ious = np.where(ok, _iou(np.array(det['bbox_xyxy']), boxes), -1)
        j = int(np.argmax(ious))
        diff = abs(other[j]['score'] - det['score'])
        if ious[j] > iou_thr and diff < score_tol:
            used[j], matched = True, matched + 1
            box_diff = max(box_diff, float(np.abs(
                boxes[j] - np.array(det['bbox_xyxy'])).max()))
            score_diff = max(score_diff, diff)
    total = max(len(ref), len(other))
    return dict(fraction=matched / total if total else 1.0,
                max_box_diff=box_diff, max_score_diff=score_diff)


def compare_detections(ref: List[List[Dict]], other: List[List[Dict]],
                       **kwargs) -> Dict:
    """:func:`match_fraction` over images, summarised.

    Args:
        ref (List[List[dict]]): Reference detections per image.
        other (List[List[dict]]): Detections to check, per image.
        **kwargs: Options of :func:`match_fraction`.

    Returns:
        dict: ``match_fraction`` (mean over images), ``images_matched``
        (images with fraction >= 0.95), ``images``,
        ``images_with_detections`` (by either backend: an image where both
        detect nothing matches trivially), ``max_box_diff``,
        ``max_score_diff``, ``per_image`` (the fractions).
    """
    per = [match_fraction(r, o, **kwargs) for r, o in zip(ref, other)]
    detected = sum(bool(r) or bool(o) for r, o in zip(ref, other))
    fractions = [p['fraction'] for p in per]
    return dict(
        match_fraction=float(np.mean(fractions)) if per else 1.0,
        images_matched=int(sum(f >= 0.95 for f in fractions)),
        images=len(per),
        images_with_detections=detected,
        max_box_diff=max([p['max_box_diff'] for p in per], default=0.0),
        max_score_diff=max([p['max_score_diff'] for p in per], default=0.0),
        per_image=fractions)
