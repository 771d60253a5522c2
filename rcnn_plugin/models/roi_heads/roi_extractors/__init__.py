from .torchvision_level_roi_extractor import TorchvisionLevelRoIExtractor
from .torchvision_roi_extractor import TorchvisionRoIExtractor

__all__ = [
    'TorchvisionLevelRoIExtractor',
    'TorchvisionRoIExtractor',
]
