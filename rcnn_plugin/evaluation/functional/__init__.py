from .curves import (
                       CONF_THRS,
                       FROC_FPS,
                       REC_THRS,
                       f1_curve,
                       froc_curve,
                       pr_curve,
)
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
    'CONF_THRS', 'FP', 'FROC_FPS', 'IGNORED', 'REC_THRS', 'TP', 'box_iof',
    'box_iou', 'centre_inside', 'f1_curve', 'froc_curve', 'match_detections',
    'pr_curve'
]
