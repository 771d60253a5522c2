from .adversarial_loops import (
    AdversarialEpochBasedTrainLoop,
    AdversarialIterBasedTrainLoop,
)

__all__ = ['AdversarialEpochBasedTrainLoop', 'AdversarialIterBasedTrainLoop']
