from .backbones import TorchvisionBackbone
from .dense_heads import TorchvisionRPNHead
from .roi_heads import TorchvisionRoIExtractor
from .task_modules import TorchvisionAnchorGenerator
from .utils import (
                    OFFLINE_MODELS,
                    convert_mobilenet_v2,
                    find_offline_weights,
                    register_offline_scheme,
)

__all__ = [
    'OFFLINE_MODELS', 'convert_mobilenet_v2', 'find_offline_weights',
    'register_offline_scheme', 'TorchvisionRoIExtractor',
    'TorchvisionAnchorGenerator', 'TorchvisionBackbone',
    'TorchvisionRPNHead'
]
