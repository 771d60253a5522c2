"""Incremental (continual) object detection for Faster and Mask R-CNN."""
from .datasets import NewClassDataset
from .incremental_mask_rcnn import (
    IncrementalMaskRCNN,
    mask_logit_distill,
    paste_masks,
)
from .incremental_rcnn import IncrementalFasterRCNN
from .losses import (
    UnbiasedCrossEntropyLoss,
    attentive_roi_distill,
    box_delta_distill,
    feature_distill,
    ilod_logit_distill,
    roi_attention,
    rpn_distill,
    unbiased_cross_entropy,
    unbiased_logit_distill,
)
from .metrics import IncrementalVOCMetric
from .pseudo_labels import add_pseudo_labels, filter_pseudo_labels
from .replay_hook import ReplayMemoryHook
from .replay_memory import build_replay_memory, load_replay_memory
from .replay_transform import BoxReplay
from .teacher import build_teacher, check_class_split, load_teacher

__all__ = [
    'BoxReplay',
    'IncrementalFasterRCNN',
    'IncrementalMaskRCNN',
    'IncrementalVOCMetric',
    'NewClassDataset',
    'ReplayMemoryHook',
    'UnbiasedCrossEntropyLoss',
    'add_pseudo_labels',
    'attentive_roi_distill',
    'box_delta_distill',
    'build_replay_memory',
    'build_teacher',
    'check_class_split',
    'feature_distill',
    'filter_pseudo_labels',
    'ilod_logit_distill',
    'load_replay_memory',
    'load_teacher',
    'mask_logit_distill',
    'paste_masks',
    'roi_attention',
    'rpn_distill',
    'unbiased_cross_entropy',
    'unbiased_logit_distill',
]
