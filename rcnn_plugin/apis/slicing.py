"""Sliced inference (SAHI) for large images, on top of :class:`Predictor`.

SAHI (``sahi`` on PyPI, the optional extra ``slice``) does the slicing
(``sahi.slicing.get_slice_bboxes``: overlapping windows, the last ones
pushed back inside the image) and the merging of the detections of all
slices (``sahi.postprocess.combine``: ``NMSPostprocess``,
``GreedyNMMPostprocess`` and ``NMMPostprocess`` on ``ObjectPrediction``).
What this module adds: the slices go through our :class:`Predictor` (or
any object with ``predict(images)`` and ``classes``) in batches, and the
merged result comes back as mmdet's ``InstanceData`` in the full image's
pixels, so drawing, COCO results and mmdet's metrics take it unchanged.

sahi's own ``MmdetDetectionModel`` runs on this stack (sahi 0.12.8,
mmdet 3.3) but is not used: it builds a second ``DetInferencer`` from the
config and weights (COCO class names without a checkpoint), predicts one
slice at a time, and decides whether the model has masks from the
*training* pipeline. Masks follow SAHI's representation: polygons
(``get_coco_segmentation_from_bool_mask``), shifted and merged by SAHI,
drawn back into ``(H, W)`` bool masks. As in SAHI, the box of a merged
detection with a mask is the box of its mask, but in mmdet's convention,
``[x_min, y_min, x_max + 1, y_max + 1]`` of the drawn mask (SAHI's polygon
box ends 1 px short). An image no larger than a slice keeps the model's
own boxes (plain inference).
"""
import argparse
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.structures import InstanceData

# Why a detector without an RPN (Fast R-CNN) is not sliced, for every
# entry point (tools/infer.py, tools/test.py, SlicedTestLoop).
NOT_SLICED_WITHOUT_RPN = ('a Fast R-CNN needs proposals for each image, '
                          'which the slices do not have; run it without '
                          '--slice')

MERGERS = {
    'nms': 'NMSPostprocess',
    'greedynmm': 'GreedyNMMPostprocess',
    'nmm': 'NMMPostprocess',
}


def import_sahi():
    """Import ``sahi`` or raise an error that names the extra to install.

    Returns:
        module: The ``sahi`` package.
    """
    try:
        import sahi
        import sahi.postprocess.combine  # noqa: F401
        import sahi.slicing  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            'sliced inference needs the optional extra "slice" (sahi>=0.11):'
            " pip install -e '.[slice]' (or pip install 'sahi>=0.11')"
        ) from exc
    return sahi


def check_slice_args(slice_size: int, overlap: float) -> None:
    """Validate a slice size and an overlap ratio.

    Args:
        slice_size (int): Side of the square slices in pixels, >= 1.
        overlap (float): Overlap of neighbouring slices as a fraction of
            the slice side, in [0, 1).

    Raises:
        ValueError: When either is out of range.
    """
    if isinstance(slice_size, bool) or not isinstance(
            slice_size, (int, np.integer)) or slice_size < 1:
        raise ValueError(
            f'slice size must be an integer >= 1 pixel, got {slice_size!r}')
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(
            f'slice overlap must be in [0, 1) (a fraction of the slice '
            f'side), got {overlap!r}')


def add_slice_args(parser: argparse.ArgumentParser) -> None:
    """Add the sliced-inference options (``--slice`` ...) to a parser.

    Args:
        parser (argparse.ArgumentParser): The parser.
    """
    group = parser.add_argument_group(
        'sliced inference (SAHI; the optional extra "slice")')
    group.add_argument('--slice', type=int, metavar='PX',
                       help='cut images into PX x PX slices')
    group.add_argument('--overlap', type=float, default=0.2,
                       help='slice overlap ratio in [0, 1)')
    group.add_argument('--slice-merge', default='nms',
                       choices=sorted(MERGERS),
                       help='how SAHI merges the slices\' detections')
    group.add_argument('--slice-match', default='IOU', choices=['IOU', 'IOS'],
                       help='overlap that matches two detections (>= 0.5): '
                       'IoU, or intersection over the smaller box (SAHI\'s '
                       'default, which fuses overlapping neighbours)')
    group.add_argument('--slice-full', action='store_true',
                       help='add a full-image pass to the slices')


def slice_boxes(height: int, width: int, slice_size: int,
                overlap: float) -> List[List[int]]:
    """SAHI's slice windows of an image.

    Args:
        height (int): Image height.
        width (int): Image width.
        slice_size (int): Slice side in pixels.
        overlap (float): Overlap ratio in [0, 1).

    Returns:
        List[List[int]]: ``[x1, y1, x2, y2]`` per slice, in pixels.
    """
    check_slice_args(slice_size, overlap)
    import_sahi()
    from sahi.slicing import get_slice_bboxes
    return get_slice_bboxes(
        image_height=height, image_width=width, slice_height=slice_size,
        slice_width=slice_size, auto_slice_resolution=False,
        overlap_height_ratio=overlap, overlap_width_ratio=overlap)


def _numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def to_object_predictions(pred: InstanceData, shift: Sequence[int],
                          full_shape: Sequence[int], classes: Sequence[str],
                          score_thr: float = 0.0) -> list:
    """Detections of one slice as SAHI ``ObjectPrediction``s, shifted.

    Args:
        pred (InstanceData): ``bboxes`` ``(N, 4)`` x1, y1, x2, y2 in the
            slice's pixels, ``scores``, ``labels``, optionally ``masks``
            ``(N, h, w)`` of the slice.
        shift (Sequence[int]): ``(x, y)`` of the slice in the full image.
        full_shape (Sequence[int]): ``(H, W)`` of the full image.
        classes (Sequence[str]): Class names.
        score_thr (float): Keep ``score >= score_thr``. Defaults to 0.0.

    Returns:
        list[ObjectPrediction]: In the full image's pixels.
    """
    from sahi.prediction import ObjectPrediction
    from sahi.utils.cv import get_coco_segmentation_from_bool_mask
    boxes = _numpy(pred.bboxes).reshape(-1, 4).clip(min=0)
    scores = _numpy(pred.scores).reshape(-1)
    labels = _numpy(pred.labels).reshape(-1)
    masks = _numpy(pred.masks) if 'masks' in pred else None
    out = []
    for i in np.flatnonzero(scores >= score_thr):
        segmentation = None
        if masks is not None:  # empty masks keep the box only
            segmentation = get_coco_segmentation_from_bool_mask(
                masks[i]) or None
        label = int(labels[i])
        obj = ObjectPrediction(
            bbox=boxes[i].tolist(), category_id=label,
            category_name=classes[label], segmentation=segmentation,
            score=float(scores[i]), shift_amount=[int(shift[0]),
                                                  int(shift[1])],
            full_shape=[int(full_shape[0]), int(full_shape[1])])
        out.append(obj.get_shifted_object_prediction())
    return out


def from_object_predictions(objects: list, full_shape: Sequence[int],
                            with_masks: bool) -> InstanceData:
    """SAHI ``ObjectPrediction``s as mmdet's ``InstanceData``.

    Args:
        objects (list[ObjectPrediction]): Full-image predictions.
        full_shape (Sequence[int]): ``(H, W)`` of the image.
        with_masks (bool): Add ``masks`` ``(N, H, W)`` bool (all False
            for a detection that has none).

    Returns:
        InstanceData: ``bboxes`` ``(N, 4)`` float32 x1, y1, x2, y2 pixels
        (:func:`mask_box` of a non-empty mask), ``scores`` ``(N,)``,
        ``labels`` ``(N,)`` int64 and ``masks``.
    """
    out = InstanceData()
    out.bboxes = torch.tensor([o.bbox.to_xyxy() for o in objects],
                              dtype=torch.float32).reshape(-1, 4)
    out.scores = torch.tensor([o.score.value for o in objects],
                              dtype=torch.float32)
    out.labels = torch.tensor([o.category.id for o in objects],
                              dtype=torch.int64)
    if with_masks:
        h, w = int(full_shape[0]), int(full_shape[1])
        masks = np.zeros((len(objects), h, w), dtype=bool)
        for i, obj in enumerate(objects):
            if obj.mask is not None:
                masks[i] = obj.mask.bool_mask[:h, :w]
                box = mask_box(masks[i])
                if box is not None:
                    out.bboxes[i] = torch.tensor(box)
        out.masks = torch.from_numpy(masks)
    return out


def mask_box(mask: np.ndarray) -> Optional[List[float]]:
    """mmdet's box of a mask (``HorizontalBoxes.from_instance_masks``).

    SAHI's box of a polygon ends on its last vertex, the last pixel's
    index: 1 px short of mmdet's on the right and bottom.

    Args:
        mask (np.ndarray): ``(H, W)`` bool mask.

    Returns:
        list[float], optional: ``[x_min, y_min, x_max + 1, y_max + 1]``
        in pixels, or None for an empty mask.
    """
    xs, ys = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    if not len(xs):
        return None
    return [float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)]


class SlicedPredictor:
    """Sliced (SAHI) inference with a predictor of whole images.

    Each image is cut into ``slice_size`` squares overlapping by
    ``overlap``; all slices (and the full image with ``full_image=True``)
    are predicted in batches and the detections are merged by SAHI. An
    image no larger than one slice gets only the full-image pass (logged),
    which equals plain inference.

    Args:
        predictor: An object with ``predict(images) -> list[InstanceData]``
            and ``classes``, such as :class:`Predictor`.
        slice_size (int): Slice side in pixels. Defaults to 512.
        overlap (float): Overlap ratio in [0, 1). Defaults to 0.2.
        merge (str): ``'nms'``, ``'greedynmm'`` or ``'nmm'`` (SAHI's
            postprocess classes). Defaults to 'nms'.
        full_image (bool): Add a full-image pass to the slices before
            merging (SAHI's ``perform_standard_pred``). Defaults to False.
        match_metric (str): ``'IOU'`` or ``'IOS'`` (intersection over the
            smaller box). Defaults to 'IOU': at the box head's NMS IoU
            (0.5) it matches no two boxes that one forward pass kept,
            while SAHI's ``'IOS'`` fuses overlapping neighbours (dense
            cells); SAHI itself switches to NMS and IoU below a 0.1 score
            threshold.
        match_threshold (float): Overlap that merges. Defaults to 0.5.
        class_agnostic (bool): Merge across classes. Defaults to False.
        score_thr (float): Detections below it are dropped before merging.
            Defaults to 0.0.
        batch_size (int): Slices per forward pass. Defaults to 4.
        max_per_img (int): Detections kept per image after merging, best
            first. Defaults to 100.
    """

    def __init__(self, predictor, slice_size: int = 512,
                 overlap: float = 0.2, merge: str = 'nms',
                 full_image: bool = False, match_metric: str = 'IOU',
                 match_threshold: float = 0.5, class_agnostic: bool = False,
                 score_thr: float = 0.0, batch_size: int = 4,
                 max_per_img: int = 100) -> None:
        check_slice_args(slice_size, overlap)
        if merge not in MERGERS:
            raise ValueError(f'merge must be one of {sorted(MERGERS)}, got '
                             f'{merge!r}')
        if batch_size < 1 or max_per_img < 1:
            raise ValueError('batch_size and max_per_img must be >= 1')
        import_sahi()
        from sahi.postprocess import combine
        self.predictor = predictor
        self.slice_size, self.overlap = int(slice_size), float(overlap)
        self.full_image, self.score_thr = full_image, score_thr
        self.batch_size, self.max_per_img = batch_size, max_per_img
        self.postprocess = getattr(combine, MERGERS[merge])(
            match_threshold=match_threshold, match_metric=match_metric,
            class_agnostic=class_agnostic)

    @property
    def classes(self) -> List[str]:
        """Class names of the model."""
        return list(self.predictor.classes)

    @property
    def needs_proposals(self) -> bool:
        """Whether the wrapped model needs proposals (never for tiles)."""
        return bool(getattr(self.predictor, 'needs_proposals', False))

    def read(self, path: str) -> Optional[np.ndarray]:
        """Read an image as the wrapped predictor does (its config's
        loader), for ``tools/infer.py``."""
        return self.predictor.read(path)

    def predict(self, images: List[np.ndarray]) -> List[InstanceData]:
        """Predict BGR images of any size, slice by slice.

        Args:
            images (List[np.ndarray]): ``(H, W, 3)`` uint8 BGR images.

        Returns:
            List[InstanceData]: Per image, boxes in its pixels.
        """
        return [self.predict_one(image) for image in images]

    def _batched(self, crops: List[np.ndarray]) -> List[InstanceData]:
        preds = []
        for start in range(0, len(crops), self.batch_size):
            preds += self.predictor.predict(
                crops[start:start + self.batch_size])
        return preds

    def _filtered(self, pred: InstanceData) -> InstanceData:
        """``score_thr`` and ``max_per_img`` on a full-image result, as the
        sliced path applies them; on the CPU, as that path returns."""
        keep = (pred.scores >= self.score_thr).nonzero().flatten()
        keep = keep[pred.scores[keep].argsort(descending=True, stable=True)]
        return pred[keep[:self.max_per_img]].cpu()

    def predict_one(self, image: np.ndarray) -> InstanceData:
        """Predict one BGR image, slice by slice.

        Args:
            image (np.ndarray): ``(H, W, 3)`` uint8 BGR image.

        Returns:
            InstanceData: Merged detections in the image's pixels.
        """
        h, w = image.shape[:2]
        if self.slice_size >= h and self.slice_size >= w:
            print_log(f'slice {self.slice_size} px >= image {w}x{h}: full-'
                      'image pass only', 'current')
            return self._filtered(self.predictor.predict([image])[0])
        windows = slice_boxes(h, w, self.slice_size, self.overlap)
        crops = [np.ascontiguousarray(image[y1:y2, x1:x2])
                 for x1, y1, x2, y2 in windows]
        shifts = [(x1, y1) for x1, y1, _, _ in windows]
        if self.full_image:
            crops.append(image)
            shifts.append((0, 0))
        preds = self._batched(crops)
        objects = []
        for pred, shift in zip(preds, shifts):
            objects += to_object_predictions(pred, shift, (h, w),
                                             self.classes, self.score_thr)
        with_masks = any('masks' in p for p in preds)
        if objects:
            objects = self.postprocess(objects)
        objects = sorted(objects, key=lambda o: -o.score.value)
        return from_object_predictions(objects[:self.max_per_img], (h, w),
                                       with_masks)
