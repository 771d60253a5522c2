"""Unsupervised domain adaptation for two-stage detectors (issue 21)."""
from .da_faster_rcnn import DAFasterRCNN
from .datasets import UnlabelledDataset
from .domain_classifiers import (
    ImageDomainClassifier,
    InstanceDomainClassifier,
    consistency_loss,
    domain_loss,
)
from .grl import GradientReversal, grad_reverse
from .mean_teacher import DomainAdaptiveTeacher

__all__ = [
    'DAFasterRCNN', 'DomainAdaptiveTeacher', 'GradientReversal',
    'ImageDomainClassifier', 'InstanceDomainClassifier', 'UnlabelledDataset',
    'consistency_loss', 'domain_loss', 'grad_reverse'
]
