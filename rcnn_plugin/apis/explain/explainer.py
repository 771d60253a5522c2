"""Per-detection saliency maps of a two-stage mmdet detector.

:func:`explain_image` detects on one image, keeps the detections above a
score (optionally of some classes, at most ``max_dets``), and computes one
map per detection with EigenCAM, Grad-CAM, ODAM or D-RISE. Maps are
computed in the input frame (see :mod:`.adapter`), normalised to [0, 1]
per detection, and resized to the original image.

Shapes: N detections; ``maps`` ``(N, H, W)`` original frame,
``input_maps`` ``(N, h, w)`` input frame; boxes ``x1, y1, x2, y2`` pixels.
"""
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from .adapter import (
    DetectorAdapter,
    _pad_colour,
    _test_pipeline,
    check_two_stage,
    frozen,
)
from .adapter import prepare_image as _prepare
from .cam import CAM_METHODS, DetectionTarget, build_cam, resolve_layer
from .drise import drise

__all__ = ['METHODS', 'Explainer', 'Explanation', 'explain_image',
           'normalise']

METHODS = CAM_METHODS + ('drise', )


def normalise(maps: np.ndarray) -> np.ndarray:
    """Each map min-max scaled to [0, 1]; a constant map becomes 0.

    Args:
        maps (np.ndarray): ``(N, h, w)`` maps.

    Returns:
        np.ndarray: ``(N, h, w)`` float32.
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64))
    low = maps.min(axis=(1, 2), keepdims=True) if maps.size else 0.0
    maps = maps - low
    high = maps.max(axis=(1, 2), keepdims=True) if maps.size else 1.0
    return (maps / np.where(high > 0, high, 1.0)).astype(np.float32)


@dataclass
class Explanation:
    """Detections of one image and their saliency maps.

    Args:
        detections (List[dict]): ``bbox_xyxy`` (original pixels),
            ``score``, ``label``, in descending score order.
        maps (np.ndarray): ``(N, H, W)`` float32 in [0, 1].
        input_maps (np.ndarray): ``(N, h, w)`` the same in the input frame.
        input_boxes (Tensor): ``(N, 4)`` boxes in the input frame.
        method (str): The method.
        seconds (float): Time spent on the maps.
        x (Tensor): ``(1, 3, Hp, Wp)`` input-frame image.
        adapter (DetectorAdapter): The model as a function of ``x``.
    """

    detections: List[dict]
    maps: np.ndarray
    input_maps: np.ndarray
    input_boxes: Tensor
    method: str
    seconds: float
    x: Optional[Tensor] = field(default=None, repr=False)
    adapter: Optional[DetectorAdapter] = field(default=None, repr=False)


class Explainer:
    """Saliency maps of a detector's detections, one image at a time.

    Args:
        model (nn.Module): A two-stage mmdet detector (Faster / Mask R-CNN).
        cfg (Config, optional): Its config (for the test pipeline).
            Defaults to None (``model.cfg``).
        method (str): ``eigencam``, ``gradcam``, ``odam`` or ``drise``.
            Defaults to 'gradcam'.
        layer (str): Module hooked by the CAM methods: ``neck`` (every FPN
            level, resized to stride 8) or one level such as
            ``neck.fpn_convs.1``. Defaults to 'neck'.
        score_thr (float): Lowest score explained. Defaults to 0.3.
        classes (Sequence[int], optional): Labels explained.
            Defaults to None (all).
        max_dets (int): Most detections explained per image (highest
            scores first). Defaults to 10.
        masks (int): D-RISE mask budget. Defaults to 1000.
        seed (int): Seed of D-RISE's masks. Defaults to 0.
        batch_size (int): Images per forward pass for D-RISE.
            Defaults to 8.
    """

    def __init__(self, model: nn.Module, cfg=None, method: str = 'gradcam',
                 layer: str = 'neck', score_thr: float = 0.3,
                 classes: Optional[Sequence[int]] = None, max_dets: int = 10,
                 masks: int = 1000, seed: int = 0,
                 batch_size: int = 8) -> None:
        if method not in METHODS:
            raise ValueError(f'unknown method {method!r}; valid methods: '
                             f'{", ".join(METHODS)}')
        if method == 'drise' and masks <= 0:
            raise ValueError(f'D-RISE needs a mask budget > 0 (--masks), '
                             f'got {masks}')
        if max_dets < 1:
            raise ValueError(f'max_dets must be >= 1, got {max_dets}')
        check_two_stage(model)  # before any image, not at the first one
        self.model, self.cfg = model, cfg if cfg is not None else model.cfg
        self.method, self.layer_name = method, layer
        self.layer = resolve_layer(model, layer) if method != 'drise' \
            else None
        self.score_thr, self.max_dets = score_thr, max_dets
        self.classes = None if classes is None else list(classes)
        self.masks, self.seed, self.batch_size = masks, seed, batch_size
        self.pipeline = _test_pipeline(self.cfg)

    def prepare(self, image: np.ndarray):
        """The adapter and the input-frame tensor of a BGR image.

        Args:
            image (np.ndarray): ``(H, W, 3)`` uint8 BGR.

        Returns:
            tuple: ``(DetectorAdapter, (1, 3, Hp, Wp) Tensor)``.
        """
        x, meta = _prepare(self.model, self.cfg, image, self.pipeline)
        return DetectorAdapter(self.model, meta), x

    def _select(self, dets: dict) -> Tensor:
        keep = dets['scores'] >= self.score_thr
        if self.classes is not None:
            keep &= torch.isin(dets['labels'],
                               dets['labels'].new_tensor(self.classes))
        index = torch.nonzero(keep).flatten()
        order = torch.argsort(dets['scores'][index], descending=True,
                              stable=True)
        return index[order][:self.max_dets]

    def _cam_maps(self, adapter, x, boxes, labels) -> np.ndarray:
        cam = build_cam(self.method, adapter, self.layer)
        try:
            with torch.enable_grad():
                if self.method == 'eigencam':  # no target: one map
                    one = cam(x, [DetectionTarget(boxes[0], 0)])
                    return np.repeat(one, len(boxes), axis=0)
                return np.concatenate([cam(x, [DetectionTarget(
                    box, int(label), use_iou=self.method == 'gradcam')])
                    for box, label in zip(boxes, labels)])
        finally:
            cam.release()

    def input_frame_maps(self, adapter: DetectorAdapter, x: Tensor,
                         boxes: Tensor, labels: Tensor) -> np.ndarray:
        """Maps of given detections in the input frame.

        Args:
            adapter (DetectorAdapter): From :meth:`prepare`.
            x (Tensor): ``(1, 3, Hp, Wp)`` from :meth:`prepare`.
            boxes (Tensor): ``(N, 4)`` input-frame boxes.
            labels (Tensor): ``(N,)`` classes.

        Returns:
            np.ndarray: ``(N, h, w)`` float32 in [0, 1].
        """
        h, w = adapter.meta['img_shape'][:2]
        if len(boxes) == 0:
            return np.zeros((0, h, w), np.float32)
        with frozen(self.model):
            if self.method == 'drise':
                maps = drise(
                    lambda b: adapter.detect(b, self.batch_size), x, (h, w),
                    boxes, labels, _pad_colour(self.model.data_preprocessor),
                    num_masks=self.masks, batch_size=self.batch_size,
                    seed=self.seed).numpy()
            else:
                maps = self._cam_maps(adapter, x, boxes, labels)[:, :h, :w]
                self._warn_if_unreached(maps)
        return normalise(maps)

    def _warn_if_unreached(self, maps: np.ndarray) -> None:
        dead = int((maps.reshape(len(maps), -1).max(axis=1) <= 0).sum())
        if dead and self.method != 'eigencam':
            print_log(
                f'{dead} of {len(maps)} {self.method} maps are zero: no '
                f'gradient reached layer {self.layer_name!r} (mmdet pools '
                f"each RoI from one FPN level, chosen by its size); use "
                f"layer 'neck' for all levels", 'current', level=30)

    def explain(self, image: np.ndarray) -> Explanation:
        """Detect on ``image`` and explain the kept detections.

        Args:
            image (np.ndarray): ``(H, W, 3)`` uint8 BGR.

        Returns:
            Explanation: Detections (possibly none) and their maps.
        """
        adapter, x = self.prepare(image)
        with frozen(self.model):
            dets = adapter.detect(x)[0]
        index = self._select(dets)
        boxes, labels = dets['boxes'][index], dets['labels'][index]
        start = time.perf_counter()
        input_maps = self.input_frame_maps(adapter, x, boxes, labels)
        seconds = time.perf_counter() - start
        height, width = image.shape[:2]
        maps = np.stack([cv2.resize(m, (width, height),
                                    interpolation=cv2.INTER_LINEAR)
                         for m in input_maps]) if len(input_maps) else \
            np.zeros((0, height, width), np.float32)
        original = adapter.to_original(boxes).cpu().numpy()
        detections = [dict(bbox_xyxy=[round(float(v), 2) for v in box],
                           score=round(float(s), 5), label=int(lab))
                      for box, s, lab in zip(original, dets['scores'][index],
                                             labels)]
        return Explanation(detections, np.clip(maps, 0, 1), input_maps,
                           boxes.detach(), self.method, seconds, x, adapter)


def explain_image(model: nn.Module, image: np.ndarray,
                  method: str = 'gradcam', cfg=None,
                  **kwargs) -> Explanation:
    """Detections of one BGR image and a saliency map per detection.

    Args:
        model (nn.Module): A two-stage mmdet detector (``init_detector`` or
            ``Predictor(...).model``).
        image (np.ndarray): ``(H, W, 3)`` uint8 BGR.
        method (str): ``eigencam``, ``gradcam``, ``odam`` or ``drise``.
            Defaults to 'gradcam'.
        cfg (Config, optional): The model's config. Defaults to None
            (``model.cfg``).
        **kwargs: ``layer``, ``score_thr``, ``classes``, ``max_dets``,
            ``masks``, ``seed``, ``batch_size`` of :class:`Explainer`.

    Returns:
        Explanation: Detections and ``(N, H, W)`` maps in [0, 1].
    """
    return Explainer(model, cfg, method=method, **kwargs).explain(image)
