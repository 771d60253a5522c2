from .layers import CosineSimLinear
from .roi_heads import CosineSimBBoxHead
from .task_modules import ClassBalancedPosSampler, balanced_quotas
from .utils import (
                    OFFLINE_MODELS,
                    class_prototypes,
                    convert_mobilenet_v2,
                    find_offline_weights,
                    register_offline_scheme,
)

__all__ = [
    'class_prototypes',
    'CosineSimLinear', 'CosineSimBBoxHead', 'ClassBalancedPosSampler',
    'balanced_quotas',
    'OFFLINE_MODELS', 'convert_mobilenet_v2', 'find_offline_weights',
    'register_offline_scheme'
]
