from .cosine_sim_bbox_head import CosineSimBBoxHead
from .fp32_post_bbox_head import FP32PostShared2FCBBoxHead

__all__ = [
    'CosineSimBBoxHead',
    'FP32PostShared2FCBBoxHead',
]
