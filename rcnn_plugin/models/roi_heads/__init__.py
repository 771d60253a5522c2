from .bbox_heads import CosineSimBBoxHead, FP32PostShared2FCBBoxHead
from .mask_heads import SmallInitFCNMaskHead
from .roi_extractors import (
    TorchvisionLevelRoIExtractor,
    TorchvisionRoIExtractor,
)

__all__ = [
    'CosineSimBBoxHead',
    'TorchvisionLevelRoIExtractor',
    'TorchvisionRoIExtractor',
    'FP32PostShared2FCBBoxHead',
    'SmallInitFCNMaskHead',
]
