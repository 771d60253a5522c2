from .attacks import (
    LOSS_TERMS,
    LossTermError,
    attack_losses,
    fgsm_attack,
    frozen_norm_stats,
    grad_sign,
    gt_to_input_scale,
    pgd_attack,
    project_linf,
    resolve_loss_terms,
    select_loss,
    uniform_start,
)
from .training import METHODS, AdversarialTraining, build_adversarial_training

__all__ = [
    'LOSS_TERMS', 'LossTermError', 'attack_losses', 'fgsm_attack',
    'frozen_norm_stats', 'grad_sign', 'gt_to_input_scale', 'pgd_attack',
    'project_linf', 'resolve_loss_terms', 'select_loss', 'uniform_start',
    'METHODS', 'AdversarialTraining', 'build_adversarial_training'
]
