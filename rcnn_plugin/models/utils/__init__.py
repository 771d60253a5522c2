from .class_prototypes import class_prototypes
from .class_surgery import (
    SUPPORTED_HEADS,
    build_class_mapping,
    find_class_heads,
    remap_rows,
    remap_state_dict,
)
from .offline_weights import (
                              OFFLINE_MODELS,
                              convert_mobilenet_v2,
                              find_offline_weights,
                              register_offline_scheme,
)

__all__ = [
    'class_prototypes',
    'SUPPORTED_HEADS', 'build_class_mapping', 'find_class_heads',
    'remap_rows', 'remap_state_dict',
    'OFFLINE_MODELS', 'convert_mobilenet_v2', 'find_offline_weights',
    'register_offline_scheme'
]
