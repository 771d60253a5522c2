from .prior_generators import TorchvisionAnchorGenerator

__all__ = ['TorchvisionAnchorGenerator']
