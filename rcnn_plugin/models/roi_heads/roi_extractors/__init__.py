from .torchvision_roi_extractor import TorchvisionRoIExtractor

__all__ = ['TorchvisionRoIExtractor']
