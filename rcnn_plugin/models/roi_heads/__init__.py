from .bbox_heads import FP32PostShared2FCBBoxHead
from .roi_extractors import TorchvisionRoIExtractor

__all__ = ['TorchvisionRoIExtractor', 'FP32PostShared2FCBBoxHead']
