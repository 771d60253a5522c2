"""ABR box replay: old-class crops in (or instead of) a new-class image.

Liu et al., ICCV 2023 ("Augmented Box Replay") replay stored old-class
boxes instead of old images, in two ways (``modes``), plus an in-image
paste:

- ``'mixup'``: a crop is blended onto the image at a random place,
  ``img = lam * img + (1 - lam) * crop`` with ``lam ~ Beta(2, 5)`` (ABR's
  ratio: the crop dominates, the image shows through);
- ``'mosaic'``: ABR's box mosaic. The image is replaced by a square
  canvas (side the mean of its height and width, grey 114) holding four
  crops around a centre drawn in the middle fifth, one per quadrant, each
  touching the centre and cut at the canvas edge; the labels are the four
  crops' (the new image and its boxes are not used for this sample). A
  crop whose mean side is outside 0.2 to 0.7 of the image's is rescaled
  to 0.4 to 0.6 of it, as ABR does; boxes left 2 pixels wide or less are
  dropped (if all four are, the sample stays the new image);
- ``'paste'``: a crop is pasted into the image as it is (opaque), keeping
  the new image and its labels.

In ``'mixup'`` and ``'paste'``, a place is accepted only if, for every
ground-truth box (and already replayed one), neither the box's area nor
the crop's lies inside the other by more than ``max_overlap`` (ABR's
two-sided test); after ``max_tries`` refused places the crop is skipped.
Unlike ABR, a crop keeps its stored size there (shrunk only when larger
than the image): the memory comes from the same kind of images, at the
scale the pipeline loads.

Boxes are ``(x1, y1, x2, y2)`` in absolute pixels of the loaded image.
"""
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes
from mmengine.logging import print_log

from .replay_memory import load_replay_memory

MODES = ('mixup', 'mosaic', 'paste')
MOSAIC_FILL = 114  # ABR's canvas grey


@TRANSFORMS.register_module()
class BoxReplay(BaseTransform):
    """Replay old-class boxes of a memory in a new-class image (ABR).

    Put it after ``LoadAnnotations`` and before ``Resize``. Added boxes get
    the crop's old-class label, its index in ``old_classes``, which is
    also its index in a step's ``old_classes + new_classes`` (the order of
    :class:`NewClassDataset`). An image without ground truth is a normal
    input; an empty memory leaves every image unchanged (logged once).

    Randomness: with ``seed=None`` the draws use numpy's global generator,
    which mmengine seeds per dataloader worker from ``randomness.seed``
    (use this in configs). An int seed gives the transform its own
    generator (reproducible alone; every worker copy would repeat the same
    draws).

    Required keys: ``img`` (HxWx3 uint8), ``gt_bboxes``,
    ``gt_bboxes_labels``, ``gt_ignore_flags``. Modified keys: ``img``,
    ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``.

    Args:
        memory (str): The replay memory folder (or its ``index.json``).
        old_classes (Sequence[str]): The step's old classes; the memory
            must have exactly these, in this order.
        modes (Sequence[str]): Among ``'mixup'``, ``'mosaic'`` and
            ``'paste'``; one is drawn per image (ABR: mixup and mosaic).
            Defaults to ('mixup', 'paste').
        prob (float): Chance an image gets replayed boxes. Defaults to 0.5.
        max_crops (int): Most crops per image (1 to ``max_crops`` are
            drawn). Defaults to 2 (ABR's).
        mixup_beta (tuple[float, float]): Beta parameters of the image's
            weight ``lam`` in mixup. Defaults to (2.0, 5.0).
        max_overlap (float): Most of a box's area that a crop may cover,
            and most of the crop's area that may lie on one box.
            Defaults to 0.3.
        max_tries (int): Places tried per crop. Defaults to 10.
        seed (int, optional): Own generator's seed. Defaults to None.
    """

    def __init__(self,
                 memory: str,
                 old_classes: Sequence[str],
                 modes: Sequence[str] = ('mixup', 'paste'),
                 prob: float = 0.5,
                 max_crops: int = 2,
                 mixup_beta: Tuple[float, float] = (2.0, 5.0),
                 max_overlap: float = 0.3,
                 max_tries: int = 10,
                 seed: Optional[int] = None) -> None:
        bad = [m for m in modes if m not in MODES]
        if not modes or bad:
            raise ValueError(f'BoxReplay modes must be among {MODES}, got '
                             f'{list(modes)}')
        if not 0 <= prob <= 1:
            raise ValueError(f'BoxReplay prob must be in [0, 1], got {prob}')
        if max_crops < 1 or max_tries < 1:
            raise ValueError('BoxReplay max_crops and max_tries must be >= 1, '
                             f'got {max_crops} and {max_tries}')
        if not 0 <= max_overlap <= 1 or min(mixup_beta) <= 0:
            raise ValueError('BoxReplay needs max_overlap in [0, 1] and '
                             f'positive mixup_beta, got {max_overlap} and '
                             f'{mixup_beta}')
        self.memory = load_replay_memory(memory, old_classes)
        self.modes, self.prob, self.max_crops = tuple(modes), prob, max_crops
        self.mixup_beta, self.max_overlap = tuple(mixup_beta), max_overlap
        self.max_tries, self.seed = max_tries, seed
        self._rng = None if seed is None else np.random.RandomState(seed)
        if not len(self.memory):
            print_log(f'BoxReplay: the replay memory '
                      f'{self.memory.index_file} has no crop; images pass '
                      'unchanged', logger='current', level=30)
        else:
            print_log(f'BoxReplay: {self.memory.counts()} crops from '
                      f'{self.memory.index_file}', logger='current')

    def transform(self, results: dict) -> dict:
        if 'gt_bboxes' not in results:
            raise KeyError('BoxReplay needs gt_bboxes: put it after '
                           'LoadAnnotations (and before Resize)')
        if 'gt_masks' in results:
            raise ValueError('BoxReplay replays boxes only; the pipeline '
                             'loads masks (with_mask=True)')
        rng = self._rng if self._rng is not None else np.random
        if not len(self.memory) or rng.rand() >= self.prob:
            return results
        mode = self.modes[rng.randint(len(self.modes))]
        if mode == 'mosaic':
            return self._mosaic(results, rng)
        img = results['img'].copy()
        gt = results['gt_bboxes']
        raw = gt.numpy() if isinstance(gt, BaseBoxes) else np.asarray(gt)
        taken = raw.reshape(-1, 4).astype(np.float32)
        added, labels = [], []
        for _ in range(rng.randint(1, self.max_crops + 1)):
            k = rng.randint(len(self.memory))
            box = self._place(img, k, taken, mode, rng)
            if box is not None:
                taken = np.concatenate([taken, box[None]])
                added.append(box)
                labels.append(self.memory.crops[k]['label'])
        if not added:
            return results
        results['img'] = img
        boxes = np.concatenate([raw.reshape(-1, 4), np.stack(added)])
        boxes = boxes.astype(np.float32)
        results['gt_bboxes'] = (type(gt)(boxes)
                                if isinstance(gt, BaseBoxes) else boxes)
        results['gt_bboxes_labels'] = np.concatenate(
            [results['gt_bboxes_labels'], labels]).astype(np.int64)
        results['gt_ignore_flags'] = np.concatenate(
            [results['gt_ignore_flags'], np.zeros(len(added), bool)])
        return results

    def _mosaic(self, results: dict, rng) -> dict:
        """Replace the image by ABR's mosaic of four crops."""
        h, w = results['img'].shape[:2]
        side = int((h + w) / 2)
        canvas = np.full((side, side, 3), MOSAIC_FILL, results['img'].dtype)
        xc = int(rng.uniform(0.4 * side, 0.6 * side))
        yc = int(rng.uniform(0.4 * side, 0.6 * side))
        boxes, labels = [], []
        # top-right, bottom-left, bottom-right, top-left (ABR's order)
        for right, down in ((1, 0), (0, 1), (1, 1), (0, 0)):
            k = rng.randint(len(self.memory))
            crop = self.memory.read(k)
            inner = np.array(self.memory.crops[k]['box_in_crop'], np.float32)
            mean_side = (crop.shape[0] + crop.shape[1]) / 2
            if not 0.2 * side <= mean_side <= 0.7 * side:
                scale = rng.uniform(0.4 * side, 0.6 * side) / mean_side
                crop, inner = _rescaled(crop, inner, scale)
            ch, cw = crop.shape[:2]
            x1, x2 = (xc, min(xc + cw, side)) if right else (max(xc - cw, 0),
                                                             xc)
            y1, y2 = (yc, min(yc + ch, side)) if down else (max(yc - ch, 0),
                                                            yc)
            bx = 0 if right else cw - (x2 - x1)  # the crop's kept part
            by = 0 if down else ch - (y2 - y1)
            canvas[y1:y2, x1:x2] = crop[by:by + y2 - y1, bx:bx + x2 - x1]
            box = inner + np.array([x1 - bx, y1 - by] * 2, np.float32)
            box = np.clip(box, [x1, y1, x1, y1], [x2, y2, x2, y2])
            if min(box[2] - box[0], box[3] - box[1]) > 2:
                boxes.append(box)
                labels.append(self.memory.crops[k]['label'])
        if not boxes:
            return results
        gt = results['gt_bboxes']
        boxes = np.stack(boxes).astype(np.float32)
        results['img'] = canvas
        results['img_shape'] = canvas.shape[:2]
        results['gt_bboxes'] = (type(gt)(boxes)
                                if isinstance(gt, BaseBoxes) else boxes)
        results['gt_bboxes_labels'] = np.asarray(labels, np.int64)
        results['gt_ignore_flags'] = np.zeros(len(boxes), bool)
        return results

    def _place(self, img: np.ndarray, k: int, taken: np.ndarray, mode: str,
               rng) -> Optional[np.ndarray]:
        """Put crop ``k`` into ``img`` in place; its box, or None."""
        crop = self.memory.read(k)
        inner = np.array(self.memory.crops[k]['box_in_crop'], np.float32)
        h, w = img.shape[:2]
        scale = min(1.0, w / crop.shape[1], h / crop.shape[0])
        if scale < 1:  # larger than the image: shrink to fit
            crop, inner = _rescaled(crop, inner, scale)
        ch, cw = crop.shape[:2]
        if min(ch, cw, w - cw + 1, h - ch + 1) < 1:
            return None
        for _ in range(self.max_tries):
            x, y = rng.randint(w - cw + 1), rng.randint(h - ch + 1)
            if _covered(taken, (x, y, x + cw, y + ch)) > self.max_overlap:
                continue
            region = img[y:y + ch, x:x + cw]
            if mode == 'mixup':
                lam = rng.beta(*self.mixup_beta)
                region[...] = np.clip(
                    lam * region + (1 - lam) * crop, 0, 255).astype(img.dtype)
            else:
                region[...] = crop
            box = inner + np.array([x, y, x, y], np.float32)
            return np.clip(box, 0, [w, h, w, h]).astype(np.float32)
        return None

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(memory='
                f'{self.memory.index_file!r}, modes={self.modes}, '
                f'prob={self.prob}, max_crops={self.max_crops}, '
                f'max_overlap={self.max_overlap}, seed={self.seed})')


def _rescaled(crop: np.ndarray, inner: np.ndarray,
              scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """``crop`` resized by ``scale`` (each side at least 1 pixel) and its
    box ``inner`` with it."""
    old_h, old_w = crop.shape[:2]
    size = (max(1, round(old_w * scale)), max(1, round(old_h * scale)))
    crop = mmcv.imresize(crop, size)
    sx, sy = size[0] / old_w, size[1] / old_h
    return crop, inner * np.array([sx, sy, sx, sy], np.float32)


def _covered(boxes: np.ndarray, rect: Tuple[int, int, int, int]) -> float:
    """Largest overlap fraction between ``rect`` and a box; 0 if no box.

    For each box, the larger of the fraction of its area inside ``rect``
    and the fraction of ``rect``'s area inside it (ABR's
    ``compute_overlap`` refuses a place when either is too large), so a
    small crop lying on a large box is refused as well as a large crop
    hiding a small box.

    Args:
        boxes (np.ndarray): ``(N, 4)`` boxes, N may be 0.
        rect (tuple[int, int, int, int]): ``(x1, y1, x2, y2)``.

    Returns:
        float: In [0, 1].
    """
    if not len(boxes):
        return 0.0
    iw = (np.minimum(boxes[:, 2], rect[2]) -
          np.maximum(boxes[:, 0], rect[0])).clip(min=0)
    ih = (np.minimum(boxes[:, 3], rect[3]) -
          np.maximum(boxes[:, 1], rect[1])).clip(min=0)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    rect_area = (rect[2] - rect[0]) * (rect[3] - rect[1])
    inter = iw * ih
    return float(
        np.maximum(inter / np.maximum(area, 1e-6),
                   inter / max(rect_area, 1e-6)).max())
