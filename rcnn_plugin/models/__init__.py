from .data_preprocessors import ChannelsLastDetDataPreprocessor
from .dense_heads import FP32PostRPNHead
from .roi_heads import FP32PostShared2FCBBoxHead, TorchvisionRoIExtractor
from .utils import (
                    OFFLINE_MODELS,
                    convert_mobilenet_v2,
                    find_offline_weights,
                    register_offline_scheme,
)

__all__ = [
    'OFFLINE_MODELS', 'convert_mobilenet_v2', 'find_offline_weights',
    'register_offline_scheme', 'TorchvisionRoIExtractor',
    'ChannelsLastDetDataPreprocessor', 'FP32PostRPNHead',
    'FP32PostShared2FCBBoxHead'
]
