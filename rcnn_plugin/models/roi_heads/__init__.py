from .bbox_heads import CosineSimBBoxHead
from .roi_extractors import TorchvisionLevelRoIExtractor

__all__ = ['CosineSimBBoxHead', 'TorchvisionLevelRoIExtractor']
