from .samplers import ClassBalancedPosSampler, balanced_quotas

__all__ = ['ClassBalancedPosSampler', 'balanced_quotas']
