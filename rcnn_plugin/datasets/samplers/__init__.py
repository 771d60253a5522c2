from .negative_fraction_sampler import (
    NegativeFractionSampler,
    is_negative_image,
    negatives_per_batch,
)

__all__ = [
    'NegativeFractionSampler', 'is_negative_image', 'negatives_per_batch'
]
