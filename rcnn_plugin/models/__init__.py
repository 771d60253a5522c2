from .backbones import TorchvisionBackbone
from .dense_heads import TorchvisionRPNHead
from .layers import CosineSimLinear
from .peft import *  # noqa: F401,F403
from .peft import __all__ as _peft_all
from .roi_heads import CosineSimBBoxHead, TorchvisionLevelRoIExtractor
from .task_modules import (
                    ClassBalancedPosSampler,
                    TorchvisionAnchorGenerator,
                    balanced_quotas,
)
from .utils import (
                    OFFLINE_MODELS,
                    class_prototypes,
                    convert_mobilenet_v2,
                    find_offline_weights,
                    register_offline_scheme,
)

__all__ = [
    'balanced_quotas',
    'class_prototypes',
    'ClassBalancedPosSampler',
    'convert_mobilenet_v2',
    'CosineSimBBoxHead',
    'CosineSimLinear',
    'find_offline_weights',
    'OFFLINE_MODELS',
    'register_offline_scheme',
    'TorchvisionAnchorGenerator',
    'TorchvisionBackbone',
    'TorchvisionLevelRoIExtractor',
    'TorchvisionRPNHead',
] + _peft_all
