from .fp32_post_rpn_head import FP32PostRPNHead
from .torchvision_rpn_head import TorchvisionRPNHead

__all__ = [
    'TorchvisionRPNHead',
    'FP32PostRPNHead',
]
