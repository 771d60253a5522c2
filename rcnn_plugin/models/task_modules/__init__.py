from .prior_generators import TorchvisionAnchorGenerator
from .samplers import ClassBalancedPosSampler, balanced_quotas

__all__ = [
    'ClassBalancedPosSampler', 'TorchvisionAnchorGenerator', 'balanced_quotas'
]
