from .fp32_postprocess import FP32PostProcessMixin, to_float32
from .offline_weights import (
                              OFFLINE_MODELS,
                              convert_mobilenet_v2,
                              find_offline_weights,
                              register_offline_scheme,
)

__all__ = [
    'OFFLINE_MODELS', 'convert_mobilenet_v2', 'find_offline_weights',
    'register_offline_scheme', 'FP32PostProcessMixin', 'to_float32'
]
