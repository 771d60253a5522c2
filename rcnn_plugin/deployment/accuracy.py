"""Accuracy of one backend's predictions on a dataset split, for
``tools/analysis/benchmark_deploy.py``: VOC mAP@0.5 and COCO box / mask AP.

Both numbers come from mmdet's own metrics. ``VOCMetric`` (area mode)
scores the boxes. ``CocoMetric`` without ``ann_file`` builds the COCO ground
truth itself from each image's ``instances`` (``bbox``, ``bbox_label``,
``ignore_flag`` as ``iscrowd``, ``mask`` polygons or RLE), as mmdet does in
``tools/test.py`` for a dataset without a COCO JSON (balloon's VIA files),
and scores ``bbox`` and, when the model predicts masks and every
ground-truth instance has one, ``segm`` (pycocotools).
"""
import contextlib
import io
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from rcnn_plugin.evaluation.functional.samples import gt_instances

__all__ = ['BackendAccuracy', 'coco_sample', 'voc_sample']

# Output key: CocoMetric key (AP over IoU 0.50:0.95, and AP at IoU 0.5).
COCO_KEYS = {'box_ap': 'bbox_mAP', 'box_ap50': 'bbox_mAP_50',
             'mask_ap': 'segm_mAP', 'mask_ap50': 'segm_mAP_50'}


def _array(value) -> np.ndarray:
    if hasattr(value, 'to_ndarray'):  # BitmapMasks / PolygonMasks
        value = value.to_ndarray()
    if hasattr(value, 'tensor'):  # BaseBoxes
        value = value.tensor
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def voc_sample(info: dict, pred) -> dict:
    """A ``VOCMetric.process`` sample of one image.

    Args:
        info (dict): The dataset's ``get_data_info`` of the image
            (``instances`` with ``bbox``, ``bbox_label``, ``ignore_flag``).
        pred (InstanceData): Predicted ``bboxes``, ``scores``, ``labels``.

    Returns:
        dict: ``gt_instances``, ``ignored_instances`` (the instances with
        ``ignore_flag``) and ``pred_instances``.
    """
    return dict(gt_instances=gt_instances(info, False),
                ignored_instances=gt_instances(info, True),
                pred_instances=dict(bboxes=pred.bboxes, scores=pred.scores,
                                    labels=pred.labels))


def coco_sample(index: int, info: dict, pred, shape: Sequence[int],
                masks: Optional[List[dict]] = None) -> dict:
    """A ``CocoMetric.process`` sample of one image (no ``ann_file``).

    Args:
        index (int): The image id (its index in the split; the dataset's
            own ``img_id`` may be a file name).
        info (dict): The dataset's ``get_data_info`` of the image; its
            ``instances`` become the COCO ground truth.
        pred (InstanceData): Predicted ``bboxes`` (original image pixels),
            ``scores`` and ``labels``.
        shape (Sequence[int]): The decoded image's ``(H, W, ...)``, its
            ``ori_shape`` in mmdet's pipeline.
        masks (List[dict], optional): The predicted masks as COCO RLE, one
            per box; None scores boxes only. Defaults to None.

    Returns:
        dict: ``img_id``, ``ori_shape``, ``instances`` and
        ``pred_instances``.
    """
    out = dict(
        bboxes=torch.as_tensor(_array(pred.bboxes),
                               dtype=torch.float32).reshape(-1, 4),
        scores=torch.as_tensor(_array(pred.scores),
                               dtype=torch.float32).reshape(-1),
        labels=torch.as_tensor(_array(pred.labels),
                               dtype=torch.long).reshape(-1))
    if masks is not None:
        out['masks'] = masks
    return dict(img_id=index, ori_shape=tuple(shape[:2]),
                instances=info.get('instances', []), pred_instances=out)


class BackendAccuracy:
    """VOC mAP@0.5 and COCO box (and mask) AP of predictions on a split.

    Feed one image at a time with :meth:`add`, then :meth:`compute`. Masks
    are scored when every image's prediction has ``masks`` and every
    ground-truth instance a ``mask``; predicted masks are kept as RLE only.

    Args:
        classes (Sequence[str]): Class names, label ``i`` is ``classes[i]``.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        from mmdet.evaluation import VOCMetric
        self.meta = dict(classes=tuple(classes))
        self.voc = VOCMetric(metric='mAP', eval_mode='area')
        self.voc.dataset_meta = self.meta
        self.samples: List[tuple] = []  # (info, boxes, shape, RLE masks)
        self.pred_masks = True
        self.gt_masks = True

    def add(self, info: dict, pred, shape: Sequence[int]) -> None:
        """Add the prediction of one image.

        Args:
            info (dict): The dataset's ``get_data_info`` of the image.
            pred (InstanceData): ``bboxes`` ``(N, 4)`` in the image's
                pixels, ``scores``, ``labels`` and optionally ``masks``
                ``(N, H, W)``.
            shape (Sequence[int]): The decoded image's shape.
        """
        from mmdet.structures.mask import encode_mask_results
        from mmengine.structures import InstanceData
        self.voc.process({}, [voc_sample(info, pred)])
        boxes = InstanceData(  # not the (N, H, W) masks: RLE only
            bboxes=_array(pred.bboxes), scores=_array(pred.scores),
            labels=_array(pred.labels))
        masks = None
        if 'masks' in pred:
            masks = encode_mask_results(_array(pred.masks).astype(bool))
        self.pred_masks &= masks is not None
        self.gt_masks &= all(bool(i.get('mask'))
                             for i in info.get('instances', []))
        self.samples.append((info, boxes, tuple(shape), masks))

    @property
    def with_mask(self) -> bool:
        """Whether :meth:`compute` scores masks."""
        return bool(self.samples) and self.pred_masks and self.gt_masks

    def compute(self) -> Dict[str, Optional[float]]:
        """The metrics over the images added.

        Returns:
            dict: ``map50`` (VOC, area mode), ``box_ap`` / ``box_ap50``
            (COCO AP over IoU 0.50:0.95 and at 0.5, as mmdet's
            ``CocoMetric`` rounds them, to 3 decimals), ``mask_ap`` /
            ``mask_ap50`` (None without masks, or when no image has
            ground truth). With no detection at all the COCO APs are 0.0.
        """
        from mmdet.evaluation import CocoMetric
        out = dict(map50=float(
            self.voc.compute_metrics(self.voc.results)['mAP']))
        metric = CocoMetric(
            ann_file=None,
            metric=['bbox', 'segm'] if self.with_mask else ['bbox'])
        metric.dataset_meta = self.meta
        metric.process({}, [
            coco_sample(i, info, pred, shape,
                        masks if self.with_mask else None)
            for i, (info, pred, shape, masks) in enumerate(self.samples)])
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints
            coco = metric.compute_metrics(metric.results)
        for key, name in COCO_KEYS.items():
            value = (float(coco.get(name, 0.0))
                     if self.with_mask or key.startswith('box') else None)
            # pycocotools gives -1 when no image has ground truth.
            out[key] = None if value is not None and value < 0 else value
        return out
