"""Validation samples in the network's input frame.

mmdet's test pipelines load the annotations *after* ``Resize``, so that
the metrics compare predictions (rescaled to the original image) with the
ground truth of the original image. A loss, or a drawing on the resized
input, needs the ground truth in the input frame: boxes times
``scale_factor`` (``(w_scale, h_scale)`` in the sample's metainfo), masks
resized to ``img_shape``.
"""
from typing import Any

import numpy as np
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import BaseBoxes
from mmengine.structures import InstanceData

__all__ = ['box_scale', 'gt_in_original_frame', 'to_input_frame']


def _resizes(transform: Any) -> bool:
    if 'Resize' in type(transform).__name__:
        return True
    inner = getattr(transform, 'transforms', None)  # ProposalBroadcaster
    inner = getattr(inner, 'transforms', inner)  # its Compose
    return isinstance(inner, (list, tuple)) and any(map(_resizes, inner))


def gt_in_original_frame(dataset: Any) -> bool:
    """Whether a dataset's pipeline loads annotations after resizing.

    Args:
        dataset (Any): A built dataset (mmengine wrappers are unwrapped)
            whose ``pipeline`` is a ``Compose``.

    Returns:
        bool: True when ``LoadAnnotations`` follows a resizing transform
        (mmdet's test pipelines) or cannot be found, so the ground truth is
        in the original image; False when it precedes every resize.
    """
    while hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    resized = False
    for transform in getattr(getattr(dataset, 'pipeline', None),
                             'transforms', []):
        if 'LoadAnnotations' in type(transform).__name__:
            return resized
        resized = resized or _resizes(transform)
    return True


def box_scale(sample: DetDataSample) -> np.ndarray:
    """``(w, h, w, h)`` factors from the original image to the input.

    Args:
        sample (DetDataSample): A sample whose metainfo may hold
            ``scale_factor`` (absent: no resize).

    Returns:
        np.ndarray: ``(4,)`` float64 factors.
    """
    w, h = sample.metainfo.get('scale_factor', (1.0, 1.0))[:2]
    return np.array([w, h, w, h], dtype=np.float64)


def _copy(inst: InstanceData, sample: DetDataSample,
          original: bool) -> InstanceData:
    out = inst.new()  # the same values in a new container
    if not original:
        return out
    scale = box_scale(sample)
    boxes = inst.get('bboxes')
    if isinstance(boxes, BaseBoxes):
        out.bboxes = boxes.clone()
        out.bboxes.rescale_(tuple(scale[:2]))
    elif boxes is not None:
        out.bboxes = boxes * boxes.new_tensor(scale)
    if hasattr(inst.get('masks'), 'resize'):
        out.masks = inst.masks.resize(tuple(sample.metainfo['img_shape'][:2]))
    return out


def to_input_frame(sample: DetDataSample,
                   original: bool) -> DetDataSample:
    """A light copy of a sample for ``model.loss``, in the input frame.

    Keeps the metainfo, ``gt_instances``, ``ignored_instances`` and
    ``proposals`` (already in the input frame: the pipeline resizes them)
    in new containers, so the loss changes nothing of the sample; leaves
    out the predictions (the RPN loss would deep-copy them).

    Args:
        sample (DetDataSample): A validation sample.
        original (bool): Its ground truth is in the original image
            (see :func:`gt_in_original_frame`): rescale boxes and masks.

    Returns:
        DetDataSample: The copy.
    """
    out = DetDataSample(metainfo=sample.metainfo)
    for key in ('gt_instances', 'ignored_instances'):
        if key in sample:
            setattr(out, key, _copy(sample.get(key), sample, original))
    if 'proposals' in sample:  # the RoI head pops its 'bboxes'
        out.proposals = sample.proposals.new()
    return out
