from .assigners import IgnoreNegativesAssigner
from .prior_generators import TorchvisionAnchorGenerator
from .samplers import ClassBalancedPosSampler, balanced_quotas

__all__ = [
    'ClassBalancedPosSampler', 'IgnoreNegativesAssigner',
    'TorchvisionAnchorGenerator', 'balanced_quotas'
]
