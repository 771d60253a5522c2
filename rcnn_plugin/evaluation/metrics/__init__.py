from .base_det_metric import BaseDetMetric
from .confusion_matrix import ConfusionMatrixMetric
from .detection_report import DetectionReport
from .froc_metric import FROCMetric
from .pr_curve_metric import PRCurveMetric
from .tide_metric import TIDEMetric

__all__ = [
    'BaseDetMetric', 'ConfusionMatrixMetric', 'DetectionReport',
    'FROCMetric', 'PRCurveMetric', 'TIDEMetric'
]
