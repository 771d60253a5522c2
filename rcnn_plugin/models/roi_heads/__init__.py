from .bbox_heads import CosineSimBBoxHead
from .roi_extractors import TorchvisionRoIExtractor

__all__ = ['CosineSimBBoxHead', 'TorchvisionRoIExtractor']
