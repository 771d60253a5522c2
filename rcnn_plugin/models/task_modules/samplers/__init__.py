from .class_balanced_pos_sampler import (
                                         ClassBalancedPosSampler,
                                         balanced_quotas,
)

__all__ = ['ClassBalancedPosSampler', 'balanced_quotas']
