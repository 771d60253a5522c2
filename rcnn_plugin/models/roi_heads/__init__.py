from .bbox_heads import CosineSimBBoxHead, FP32PostShared2FCBBoxHead
from .roi_extractors import (
    TorchvisionLevelRoIExtractor,
    TorchvisionRoIExtractor,
)

__all__ = [
    'CosineSimBBoxHead',
    'TorchvisionLevelRoIExtractor',
    'TorchvisionRoIExtractor',
    'FP32PostShared2FCBBoxHead',
]
