"""``val_predictions.jpg``: ground truth beside predictions on val images.

Shapes: an image tensor is ``(C, H, W)`` as the pipeline packs it (BGR,
resized); boxes are ``(N, 4)`` ``x1, y1, x2, y2`` in pixels; masks
``(N, H, W)``.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from rcnn_plugin.apis.drawing import class_colour, draw_detections

from .val_samples import box_scale, gt_in_original_frame

__all__ = ['ValPredictionsHook', 'to_bgr']

TITLE = 22  # pixels of the title bar


def to_bgr(image: torch.Tensor) -> np.ndarray:
    """A packed image tensor as a ``(H, W, 3)`` uint8 BGR array.

    Args:
        image (Tensor): ``(C, H, W)``; uint8, or any other dtype (stretched
            from its min to its max). One channel is repeated, more than
            three are cut to the first three.

    Returns:
        np.ndarray: The image.
    """
    arr = image.detach().cpu().numpy().transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        low, high = arr.min(initial=0.0), arr.max(initial=0.0)
        arr = ((arr - low) / max(high - low, 1e-12) * 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


def _masks(masks, size: tuple) -> List[np.ndarray]:
    if masks is None or len(masks) == 0:
        return []
    if hasattr(masks, 'to_ndarray'):  # BitmapMasks / PolygonMasks
        masks = masks.to_ndarray()
    elif isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    return [cv2.resize(m.astype(np.uint8), size,
                       interpolation=cv2.INTER_NEAREST).astype(bool)
            for m in masks]


def _panel(image: np.ndarray, inst, scale: np.ndarray, classes, title: str,
           scores: bool) -> np.ndarray:
    out = image.copy()
    dets = []
    if inst is not None and len(inst) > 0:
        boxes = inst.bboxes
        boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
        boxes = boxes.detach().cpu().numpy().reshape(-1, 4) * scale
        labels = inst.labels.detach().cpu().numpy()
        size = (image.shape[1], image.shape[0])
        for mask, label in zip(_masks(inst.get('masks'), size), labels):
            out[mask] = (0.5 * out[mask] + 0.5 * np.array(
                class_colour(int(label)))).astype(np.uint8)
        for i, (box, label) in enumerate(zip(boxes, labels)):
            dets.append(dict(bbox_xyxy=box, label=int(label), score=float(
                inst.scores[i]) if scores else None))
    out = draw_detections(out, dets, classes)
    bar = np.full((TITLE, out.shape[1], 3), 40, np.uint8)
    cv2.putText(bar, title, (4, TITLE - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, out])


@HOOKS.register_module()
class ValPredictionsHook(Hook):
    """Draw the first validation images, ground truth beside predictions.

    At each evaluation the first ``num_images`` images of the val loader
    (the same ones each time: it does not shuffle) are drawn as the model
    saw them (resized, from the batch), each as a pair: ground truth on the
    left (boxes, masks, class names), predictions with ``score >=
    score_thr`` on the right (with scores); a title bar counts the boxes.
    Pairs of height ``panel_height`` are laid out ``pairs_per_row`` to a
    row and written to ``<work_dir>/<filename>``, overwritten each time.

    Args:
        num_images (int): Images drawn. Defaults to 6.
        score_thr (float): Lowest score drawn. Defaults to 0.3.
        panel_height (int): Height of one image in pixels.
            Defaults to 320.
        pairs_per_row (int): Pairs side by side. Defaults to 2.
        filename (str): JPEG or PNG name in the work dir.
            Defaults to 'val_predictions.jpg'.
    """

    priority = 'LOW'

    def __init__(self, num_images: int = 6, score_thr: float = 0.3,
                 panel_height: int = 320, pairs_per_row: int = 2,
                 filename: str = 'val_predictions.jpg') -> None:
        if num_images < 1 or panel_height < 32 or pairs_per_row < 1:
            raise ValueError(
                'num_images and pairs_per_row must be >= 1 and panel_height '
                f'>= 32, got {num_images}, {pairs_per_row}, {panel_height}')
        if not 0.0 <= score_thr <= 1.0:
            raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
        if osp.splitext(filename)[1].lower() not in ('.jpg', '.png'):
            raise ValueError(f'filename must end with .jpg or .png, got '
                             f'{filename}')
        self.num_images = num_images
        self.score_thr = score_thr
        self.panel_height = panel_height
        self.pairs_per_row = pairs_per_row
        self.filename = filename
        self.pairs: List[np.ndarray] = []

    def before_val_epoch(self, runner) -> None:
        """Start a new set of images.

        Args:
            runner (Runner): The runner.
        """
        dataset = runner.val_dataloader.dataset
        self.pairs = []
        self._original = gt_in_original_frame(dataset)
        self._classes = dataset.metainfo['classes']

    def after_val_iter(self, runner, batch_idx: int,
                       data_batch: Optional[dict] = None,
                       outputs: Optional[Sequence] = None) -> None:
        """Draw the batch's images until ``num_images`` are drawn.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch (dict, optional): The batch. Defaults to None.
            outputs (Sequence, optional): Data samples with predictions.
                Defaults to None.
        """
        if len(self.pairs) >= self.num_images or not data_batch:
            return
        for image, sample in zip(data_batch['inputs'], outputs or []):
            if len(self.pairs) < self.num_images:
                self.pairs.append(self.draw_pair(image, sample))

    def draw_pair(self, image: torch.Tensor, sample) -> np.ndarray:
        """One image: ground truth left, predictions right.

        Args:
            image (Tensor): ``(C, H, W)`` packed image (input frame).
            sample (DetDataSample): Its sample with ``pred_instances`` and
                (original-frame) ``gt_instances``, either may be absent.

        Returns:
            np.ndarray: ``(TITLE + panel_height, W, 3)`` uint8 BGR.
        """
        img = to_bgr(image)
        s = self.panel_height / img.shape[0]
        size = (max(1, round(img.shape[1] * s)), self.panel_height)
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        to_input = box_scale(sample)
        gt = sample.get('gt_instances')
        gt_scale = (to_input if self._original else 1.0) * s
        gt_title = 'no ground truth loaded' if gt is None else \
            f'ground truth: {len(gt)}'
        pred = sample.get('pred_instances')
        if pred is not None and 'scores' in pred:
            pred = pred[pred.scores >= self.score_thr]
        pred_title = f'predictions >= {self.score_thr:g}: ' + (
            'none made' if pred is None else str(len(pred)))
        left = _panel(img, gt, gt_scale, self._classes, gt_title, False)
        right = _panel(img, pred, to_input * s, self._classes, pred_title,
                       pred is not None and 'scores' in pred)
        gap = np.full((left.shape[0], 6, 3), 255, np.uint8)
        return np.hstack([left, gap, right])

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Lay the pairs out and write the image (main process).

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): This evaluation's metrics (unused).
                Defaults to None.
        """
        if self.pairs and is_main_process():
            self.write(osp.join(runner.work_dir, self.filename))

    def write(self, path: str) -> str:
        """Write the drawn pairs as one image.

        Args:
            path (str): The ``.jpg`` / ``.png`` file.

        Returns:
            str: ``path``.
        """
        width = max(p.shape[1] for p in self.pairs)
        cells = [np.pad(p, ((0, 6), (0, width - p.shape[1] + 6), (0, 0)),
                        constant_values=255) for p in self.pairs]
        blank = np.full_like(cells[0], 255)
        rows = []
        for i in range(0, len(cells), self.pairs_per_row):
            row = cells[i:i + self.pairs_per_row]
            row += [blank] * (min(self.pairs_per_row, len(cells)) - len(row))
            rows.append(np.hstack(row))
        ext = osp.splitext(path)[1]
        tmp = osp.join(osp.dirname(path), f'.{osp.basename(path)}.tmp{ext}')
        if not cv2.imwrite(tmp, np.vstack(rows),
                           [cv2.IMWRITE_JPEG_QUALITY, 85]):
            raise OSError(f'could not write {tmp}')
        os.replace(tmp, path)
        return path
