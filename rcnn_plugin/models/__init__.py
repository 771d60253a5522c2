from .adversarial import (
    fgsm_attack,
    frozen_norm_stats,
    pgd_attack,
    select_loss,
)
from .backbones import TorchvisionBackbone
from .data_preprocessors import ChannelsLastDetDataPreprocessor
from .dense_heads import FP32PostRPNHead, TorchvisionRPNHead
from .layers import CosineSimLinear
from .peft import *  # noqa: F401,F403
from .peft import __all__ as _peft_all
from .roi_heads import (
    CosineSimBBoxHead,
    FP32PostShared2FCBBoxHead,
    SmallInitFCNMaskHead,
    TorchvisionLevelRoIExtractor,
    TorchvisionRoIExtractor,
)
from .task_modules import (
    ClassBalancedPosSampler,
    IgnoreNegativesAssigner,
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
    'fgsm_attack',
    'frozen_norm_stats',
    'pgd_attack',
    'select_loss',
    'balanced_quotas',
    'class_prototypes',
    'ClassBalancedPosSampler',
    'IgnoreNegativesAssigner',
    'convert_mobilenet_v2',
    'CosineSimBBoxHead',
    'CosineSimLinear',
    'find_offline_weights',
    'OFFLINE_MODELS',
    'register_offline_scheme',
    'SmallInitFCNMaskHead',
    'TorchvisionAnchorGenerator',
    'TorchvisionBackbone',
    'TorchvisionLevelRoIExtractor',
    'TorchvisionRPNHead',
    'TorchvisionRoIExtractor',
    'ChannelsLastDetDataPreprocessor',
    'FP32PostRPNHead',
    'FP32PostShared2FCBBoxHead',
] + _peft_all
