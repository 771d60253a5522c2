from .roi_extractors import TorchvisionRoIExtractor

__all__ = ['TorchvisionRoIExtractor']
