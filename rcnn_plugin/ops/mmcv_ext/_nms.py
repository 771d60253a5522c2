"""NMS kernels: ``nms``, ``softnms`` and ``nms_match`` of ``mmcv._ext``.

Shapes: N boxes. Boxes are ``(x1, y1, x2, y2)`` in absolute pixels; with
``offset=1`` a box is ``x2 - x1 + 1`` wide (legacy pixel convention).

``nms`` runs torchvision's kernel (CPU and CUDA). ``offset=1`` is served
by shifting ``x2, y2`` by +1, which gives the same widths, heights and
intersections as mmcv's ``+ offset`` terms (up to float rounding of the
shifted coordinate). ``softnms`` and ``nms_match`` are CPU-only in mmcv
(its wrappers move the inputs to the CPU); here they follow mmcv's CPU
loops step by step, vectorised with numpy over the boxes after the
current one, so their outputs (order, decayed scores and groups) are the
same. Score ties are taken in index order (mmcv's ``sort`` is unstable).
"""
from typing import List

import numpy as np
import torch

from ._common import compute_dtype, f32

__all__ = ['nms', 'softnms', 'nms_match']


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
        offset: int) -> torch.Tensor:
    """Greedy NMS: indices of the kept boxes, by decreasing score.

    A box is dropped when its IoU with a kept, higher-scoring box is
    greater than ``iou_threshold`` (float32-rounded, as in mmcv).

    Args:
        boxes (torch.Tensor): Boxes, shape (N, 4).
        scores (torch.Tensor): Scores, shape (N, ).
        iou_threshold (float): IoU above which a box is suppressed.
        offset (int): 0 or 1, added to widths and heights.

    Returns:
        torch.Tensor: Kept indices (int64), shape (K, ).
    """
    if boxes.numel() == 0:
        return boxes.new_empty((0, ), dtype=torch.long)
    dtype = compute_dtype(boxes)
    boxes = boxes.to(dtype)
    if offset:
        boxes = boxes + boxes.new_tensor([0, 0, offset, offset])
    return torch.ops.torchvision.nms(boxes, scores.to(dtype),
                                     f32(iou_threshold))


def _iou_with(state: np.ndarray, row: np.ndarray,
              offset: int) -> np.ndarray:
    # state: (M, 6) [x1, y1, x2, y2, score, area]; row: one such row.
    dtype = state.dtype.type
    w = np.maximum(dtype(0), np.minimum(row[2], state[:, 2]) -
                   np.maximum(row[0], state[:, 0]) + dtype(offset))
    h = np.maximum(dtype(0), np.minimum(row[3], state[:, 3]) -
                   np.maximum(row[1], state[:, 1]) + dtype(offset))
    inter = w * h
    with np.errstate(invalid='ignore', divide='ignore'):
        return inter / (row[5] + state[:, 5] - inter)


def _compaction(keep: np.ndarray) -> np.ndarray:
    # mmcv drops a box by moving the last box into its slot and going on
    # from that slot. The survivors end up as: kept boxes among the first
    # K slots stay, and the holes among them are filled, left to right, by
    # the kept boxes beyond slot K, taken from the end.
    num_kept = int(keep.sum())
    perm = np.arange(num_kept)
    holes = np.flatnonzero(~keep[:num_kept])
    perm[holes] = (num_kept + np.flatnonzero(keep[num_kept:]))[::-1]
    return perm


def _state(boxes: torch.Tensor, scores: torch.Tensor,
           offset: int) -> np.ndarray:
    # (N, 6) [x1, y1, x2, y2, score, area] on the CPU, as mmcv's arrays.
    dtype = compute_dtype(boxes)
    boxes = boxes.detach().to('cpu', dtype)
    area = ((boxes[:, 2] - boxes[:, 0] + offset) *
            (boxes[:, 3] - boxes[:, 1] + offset))
    scores = scores.detach().to('cpu', dtype)
    return torch.cat([boxes, scores[:, None], area[:, None]], 1).numpy()


def softnms(boxes: torch.Tensor, scores: torch.Tensor, dets: torch.Tensor,
            iou_threshold: float, sigma: float, min_score: float, method: int,
            offset: int) -> torch.Tensor:
    """Soft-NMS as mmcv's CPU kernel: decay the scores of overlapping boxes.

    At step i the highest-scoring remaining box (the first one on ties) is
    moved to slot i and written to ``dets[i]``; the scores of the boxes
    after it are multiplied by a weight of their IoU ``o``: 0 if
    ``o >= iou_threshold`` (method 0, naive), ``1 - o`` if
    ``o >= iou_threshold`` (method 1, linear), ``exp(-o**2 / sigma)``
    (method 2, gaussian). A box whose score falls below ``min_score`` is
    dropped.

    Args:
        boxes (torch.Tensor): Boxes, shape (N, 4).
        scores (torch.Tensor): Scores, shape (N, ).
        dets (torch.Tensor): Output, shape (N, 5): its first K rows are set
            to the kept boxes and their decayed scores, in selection order.
        iou_threshold (float): IoU threshold of methods 0 and 1.
        sigma (float): Width of the gaussian of method 2.
        min_score (float): Boxes scoring below it are dropped.
        method (int): 0 naive, 1 linear, 2 gaussian.
        offset (int): 0 or 1, added to widths and heights.

    Returns:
        torch.Tensor: Indices of the kept boxes (int64), shape (K, ), in the
        order of the rows of ``dets``.
    """
    if boxes.numel() == 0:
        return boxes.new_empty((0, ), dtype=torch.long)
    if method not in (0, 1, 2):
        raise ValueError(f'softnms method must be 0, 1 or 2, got {method}')
    state = _state(boxes, scores, offset)
    inds = np.arange(len(state))
    dtype = state.dtype.type
    thr, sigma, min_score = (dtype(f32(v))
                             for v in (iou_threshold, sigma, min_score))
    num, i = len(state), 0
    while i < num:
        best = i + int(np.argmax(state[i:num, 4]))
        state[[i, best]] = state[[best, i]]
        inds[[i, best]] = inds[[best, i]]
        if i + 1 < num:
            rest = state[i + 1:num]
            ovr = _iou_with(rest, state[i], offset)
            if method == 2:
                weight = np.exp(-(ovr * ovr) / sigma)
            else:
                decay = np.zeros_like(ovr) if method == 0 else 1 - ovr
                weight = np.where(ovr >= thr, decay, dtype(1))
            rest[:, 4] *= weight
            with np.errstate(invalid='ignore'):
                perm = _compaction(~(rest[:, 4] < min_score))
            state[i + 1:i + 1 + len(perm)] = rest[perm]
            inds[i + 1:i + 1 + len(perm)] = inds[i + 1:num][perm]
            num = i + 1 + len(perm)
        i += 1
    dets[:num] = torch.from_numpy(state[:num, :5]).to(dets.device,
                                                      dets.dtype)
    return torch.from_numpy(inds[:num]).to(boxes.device)


def nms_match(dets: torch.Tensor, iou_threshold: float) -> List[List[int]]:
    """Group boxes by NMS: each kept box with the boxes it suppresses.

    Boxes are visited by decreasing score; a box not yet suppressed is
    kept and suppresses every later box whose IoU with it is at least
    ``iou_threshold`` (no ``offset``).

    Args:
        dets (torch.Tensor): Boxes with their scores, shape (N, 5).
        iou_threshold (float): IoU from which a box joins a group.

    Returns:
        list[list[int]]: One group per kept box, in score order: the kept
        box's index first, then the indices it suppressed in score order.
    """
    state = _state(dets[:, :4], dets[:, 4], 0)
    order = np.argsort(-state[:, 4], kind='stable')
    suppressed = np.zeros(len(state), dtype=bool)
    thr = state.dtype.type(f32(iou_threshold))
    matched = []
    for pos, idx in enumerate(order.tolist()):
        if suppressed[idx]:
            continue
        later = order[pos + 1:]
        later = later[~suppressed[later]]
        hits = later[_iou_with(state[later], state[idx], 0) >= thr]
        suppressed[hits] = True
        matched.append([idx] + hits.tolist())
    return matched
