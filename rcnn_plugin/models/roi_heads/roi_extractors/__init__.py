from .torchvision_level_roi_extractor import TorchvisionLevelRoIExtractor

__all__ = ['TorchvisionLevelRoIExtractor']
