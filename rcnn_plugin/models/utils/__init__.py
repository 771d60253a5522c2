from .class_prototypes import class_prototypes
from .class_surgery import (
    SUPPORTED_HEADS,
    build_class_mapping,
    find_class_heads,
    remap_rows,
    remap_state_dict,
)
from .fp32_postprocess import FP32PostProcessMixin, to_float32
from .offline_weights import (
    OFFLINE_MODELS,
    convert_mobilenet_v2,
    find_offline_weights,
    find_weights_file,
    register_offline_scheme,
)
from .torchvision_detection import (
    ARCHS,
    convert_torchvision_detector,
    detect_torchvision_arch,
    torchvision_coco_categories,
)

__all__ = [
    'class_prototypes',
    'SUPPORTED_HEADS',
    'build_class_mapping',
    'find_class_heads',
    'remap_rows',
    'remap_state_dict',
    'ARCHS',
    'convert_torchvision_detector',
    'detect_torchvision_arch',
    'torchvision_coco_categories',
    'OFFLINE_MODELS',
    'convert_mobilenet_v2',
    'find_offline_weights',
    'find_weights_file',
    'register_offline_scheme',
    'FP32PostProcessMixin',
    'to_float32',
]
