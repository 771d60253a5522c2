from .adversarial_loops import (
    AdversarialEpochBasedTrainLoop,
    AdversarialIterBasedTrainLoop,
)
from .sliced_test_loop import SlicedTestLoop

__all__ = [
    'AdversarialEpochBasedTrainLoop', 'AdversarialIterBasedTrainLoop',
    'SlicedTestLoop'
]
