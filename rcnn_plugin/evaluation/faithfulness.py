"""Faithfulness of saliency maps: deletion, insertion, pointing games.

- **Deletion / insertion** (Petsiuk et al., RISE, 2018): pixels are
  removed from the image (deletion) or added to an empty one (insertion)
  in descending saliency, in ``steps`` equal steps, and the detector's
  score of the explained detection is tracked: at each step, the score of
  the best-IoU detection of the same class (IoU >= ``min_iou``, else 0).
  The AUC is the trapezoid area under score vs fraction of pixels, in
  [0, 1]: low is good for deletion, high for insertion. A removed pixel
  takes the value of a strongly blurred copy of the image (``canvas``,
  Gaussian, sigma = 1/10 of the longer side), the "empty" image of both
  curves; :func:`mean_canvas` gives the mean-colour alternative. Equal
  saliency values are ordered at random with the seed, so a constant map
  scores, in expectation, what a random map does.
- **Pointing game** (Zhang et al., 2016): whether the map's maximum falls
  inside the ground-truth box matched to the detection. With ties, the
  fraction of maximal pixels inside the box (the expected hit of a random
  tie-break), so a constant map scores the box's area share.
- **Energy-based pointing game** (Wang et al., Score-CAM, 2020): the share
  of the map's sum inside the box (a zero map counts as uniform).
- Baselines: a uniform random map and a centre Gaussian.

Shapes: image ``(1, 3, Hp, Wp)`` float pixels; map ``(h, w)`` over the
valid region; boxes ``x1, y1, x2, y2`` pixels; a pixel ``(i, j)`` is in a
box when its centre ``(j + .5, i + .5)`` is.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    'blur_canvas', 'box_mask', 'centre_gaussian_map', 'deletion_insertion',
    'energy_pointing_game', 'match_gt', 'mean_canvas', 'pointing_game',
    'random_map', 'saliency_order'
]

_trapezoid = getattr(np, 'trapezoid', None) or np.trapz
Detect = Callable[[Tensor], List[Dict[str, Tensor]]]


def box_mask(shape: Tuple[int, int], box: Sequence[float]) -> np.ndarray:
    """Pixels whose centre lies in ``box``.

    Args:
        shape (tuple): ``(h, w)``.
        box (Sequence[float]): ``x1, y1, x2, y2``.

    Returns:
        np.ndarray: ``(h, w)`` bool.
    """
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5
    return ((ys >= y1) & (ys <= y2))[:, None] & ((xs >= x1) & (xs <= x2))


def pointing_game(saliency: np.ndarray, box: Sequence[float],
                  rtol: float = 1e-6) -> float:
    """Share of the map's maximal pixels inside ``box`` (1 or 0 if unique).

    Args:
        saliency (np.ndarray): ``(h, w)`` map.
        box (Sequence[float]): Ground-truth box.
        rtol (float): Values within ``rtol * |max|`` of the max tie.
            Defaults to 1e-6.

    Returns:
        float: In [0, 1].
    """
    top = saliency.max()
    peak = saliency >= top - rtol * max(abs(top), 1e-12)
    return float((peak & box_mask(saliency.shape, box)).sum() / peak.sum())


def energy_pointing_game(saliency: np.ndarray, box: Sequence[float]) -> float:
    """Share of the (non-negative) map's energy inside ``box``.

    Args:
        saliency (np.ndarray): ``(h, w)`` map; negatives count as 0.
        box (Sequence[float]): Ground-truth box.

    Returns:
        float: In [0, 1].
    """
    sal = np.clip(np.nan_to_num(saliency.astype(np.float64)), 0, None)
    inside = box_mask(sal.shape, box)
    total = sal.sum()
    if total <= 0:
        return float(inside.mean())
    return float(sal[inside].sum() / total)


def random_map(shape: Tuple[int, int], seed: int = 0) -> np.ndarray:
    """Uniform noise: the chance baseline.

    Args:
        shape (tuple): ``(h, w)``.
        seed (int): Seed. Defaults to 0.

    Returns:
        np.ndarray: ``(h, w)`` float32 in [0, 1).
    """
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def centre_gaussian_map(shape: Tuple[int, int],
                        sigma: float = 0.25) -> np.ndarray:
    """A Gaussian at the image centre: the centre-bias baseline.

    Args:
        shape (tuple): ``(h, w)``.
        sigma (float): Standard deviation as a fraction of each side.
            Defaults to 0.25.

    Returns:
        np.ndarray: ``(h, w)`` float32, 1 at the centre.
    """
    h, w = shape
    ys = ((np.arange(h) + 0.5) / h - 0.5) / sigma
    xs = ((np.arange(w) + 0.5) / w - 0.5) / sigma
    return np.exp(-0.5 * (ys[:, None] ** 2 + xs[None] ** 2)).astype(
        np.float32)


def saliency_order(saliency: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat pixel indices by descending saliency, ties in random order.

    Args:
        saliency (np.ndarray): ``(h, w)`` map.
        seed (int): Seed of the tie-break. Defaults to 0.

    Returns:
        np.ndarray: ``(h * w,)`` int64 indices.
    """
    flat = np.nan_to_num(saliency.astype(np.float64)).ravel()
    perm = np.random.default_rng(seed).permutation(flat.size)
    return perm[np.argsort(-flat[perm], kind='stable')]


def blur_canvas(x: Tensor, hw: Tuple[int, int]) -> Tensor:
    """The image blurred strongly (sigma = longer side / 10).

    Args:
        x (Tensor): ``(1, 3, Hp, Wp)`` image.
        hw (tuple): ``(h, w)`` valid region.

    Returns:
        Tensor: ``(3, h, w)`` blurred valid region.
    """
    import cv2
    h, w = hw
    img = x[0, :, :h, :w].detach().cpu().permute(1, 2, 0).numpy()
    sigma = max(h, w) / 10
    blurred = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma,
                               borderType=cv2.BORDER_REFLECT)
    return torch.from_numpy(blurred.reshape(h, w, -1)).permute(2, 0, 1).to(x)


def mean_canvas(x: Tensor, hw: Tuple[int, int]) -> Tensor:
    """The image's mean colour everywhere.

    Args:
        x (Tensor): ``(1, 3, Hp, Wp)`` image.
        hw (tuple): ``(h, w)`` valid region.

    Returns:
        Tensor: ``(3, h, w)``.
    """
    h, w = hw
    region = x[0, :, :h, :w]
    return region.mean(dim=(1, 2), keepdim=True).expand(-1, h, w).clone()


def _score(dets: Dict[str, Tensor], box: Tensor, label: int,
           min_iou: float) -> float:
    from torchvision.ops import box_iou
    if len(dets['boxes']) == 0:
        return 0.0
    iou = box_iou(box.reshape(1, 4).to(dets['boxes']), dets['boxes'])[0]
    iou = torch.where(dets['labels'] == label, iou, torch.zeros_like(iou))
    best = int(iou.argmax())
    ok = iou[best] > 0 and iou[best] >= min_iou
    return float(dets['scores'][best]) if ok else 0.0


@torch.no_grad()
def deletion_insertion(detect: Detect, x: Tensor, saliency: np.ndarray,
                       box: Tensor, label: int, mode: str = 'deletion',
                       steps: int = 16, canvas: Optional[Tensor] = None,
                       min_iou: float = 0.5, seed: int = 0,
                       batch_size: int = 8) -> Tuple[float, np.ndarray]:
    """Deletion or insertion curve of one detection and its AUC.

    Args:
        detect (Callable): ``(B, 3, Hp, Wp)`` -> detections per image
            (``boxes``, ``scores``, ``labels``), e.g.
            ``DetectorAdapter.detect``.
        x (Tensor): ``(1, 3, Hp, Wp)`` image.
        saliency (np.ndarray): ``(h, w)`` map over the valid region.
        box (Tensor): ``(4,)`` the detection's box (input frame).
        label (int): Its class.
        mode (str): ``deletion`` or ``insertion``. Defaults to 'deletion'.
        steps (int): Steps K; the curve has K + 1 points.
            Defaults to 16.
        canvas (Tensor, optional): ``(3, h, w)`` values of removed pixels.
            Defaults to None (:func:`blur_canvas`).
        min_iou (float): Lowest IoU of a tracked detection. Defaults to 0.5.
        seed (int): Seed of the tie-break. Defaults to 0.
        batch_size (int): Images per forward pass. Defaults to 8.

    Returns:
        tuple: AUC (float) and the ``(K + 1,)`` score curve.
    """
    if mode not in ('deletion', 'insertion'):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got "
                         f'{mode!r}')
    if steps < 1:
        raise ValueError(f'steps must be >= 1, got {steps}')
    h, w = saliency.shape
    canvas = blur_canvas(x, (h, w)) if canvas is None else canvas.to(x)
    rank = np.empty(h * w, np.int64)
    rank[saliency_order(saliency, seed)] = np.arange(h * w)
    rank = torch.from_numpy(rank.reshape(h, w)).to(x.device)
    counts = [round(k * h * w / steps) for k in range(steps + 1)]
    first, second = (canvas, x[0, :, :h, :w]) if mode == 'deletion' else \
        (x[0, :, :h, :w], canvas)
    curve = []
    for start in range(0, steps + 1, batch_size):
        chunk = counts[start:start + batch_size]
        batch = x.repeat(len(chunk), 1, 1, 1)
        for i, count in enumerate(chunk):
            batch[i, :, :h, :w] = torch.where(rank < count, first, second)
        curve += [_score({k: v.cpu() for k, v in d.items()}, box.cpu(),
                         int(label), min_iou) for d in detect(batch)]
    curve = np.asarray(curve)
    return float(_trapezoid(curve, dx=1.0 / steps)), curve


def match_gt(box: Sequence[float], label: int, gt_boxes: np.ndarray,
             gt_labels: np.ndarray, min_iou: float = 0.5) -> Optional[int]:
    """The same-class ground-truth box overlapping a detection most.

    Args:
        box (Sequence[float]): Detection ``x1, y1, x2, y2``.
        label (int): Its class.
        gt_boxes (np.ndarray): ``(G, 4)`` ground-truth boxes, same frame.
        gt_labels (np.ndarray): ``(G,)`` their classes.
        min_iou (float): Lowest IoU of a match. Defaults to 0.5.

    Returns:
        int, optional: Index into ``gt_boxes``, or None.
    """
    from torchvision.ops import box_iou
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    if len(gt_boxes) == 0:
        return None
    iou = box_iou(torch.tensor([list(box)], dtype=torch.float32),
                  torch.from_numpy(gt_boxes))[0].numpy()
    iou[np.asarray(gt_labels) != label] = 0
    best = int(iou.argmax())
    return best if iou[best] >= min_iou and iou[best] > 0 else None
