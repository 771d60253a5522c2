from .curves import (
                       CONF_THRS,
                       FROC_FPS,
                       REC_THRS,
                       f1_curve,
                       froc_curve,
                       image_id_order,
                       pr_curve,
)
from .matching import (
                       FP,
                       IGNORED,
                       TP,
                       box_iof,
                       box_iou,
                       centre_inside,
                       class_ignore_mask,
                       match_detections,
)
from .samples import gt_instances
from .tide import (
                       ERROR_TYPES,
                       SPECIAL_TYPES,
                       classify_image,
                       pool_errors,
                       tide_summary,
)

__all__ = [
    'CONF_THRS', 'ERROR_TYPES', 'FP', 'FROC_FPS', 'IGNORED', 'REC_THRS',
    'SPECIAL_TYPES', 'TP', 'box_iof', 'box_iou', 'centre_inside',
    'class_ignore_mask',
    'classify_image', 'f1_curve', 'froc_curve', 'gt_instances',
    'image_id_order',
    'match_detections',
    'pool_errors', 'pr_curve', 'tide_summary'
]
