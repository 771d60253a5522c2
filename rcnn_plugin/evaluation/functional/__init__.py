from .curves import FROC_FPS, REC_THRS, froc_curve, pr_curve
from .matching import (
                       FP,
                       IGNORED,
                       TP,
                       box_iof,
                       box_iou,
                       centre_inside,
                       match_detections,
)

__all__ = [
    'FP', 'FROC_FPS', 'IGNORED', 'REC_THRS', 'TP', 'box_iof', 'box_iou',
    'centre_inside', 'froc_curve', 'match_detections', 'pr_curve'
]
