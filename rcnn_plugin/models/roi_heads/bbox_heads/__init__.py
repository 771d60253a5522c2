from .fp32_post_bbox_head import FP32PostShared2FCBBoxHead

__all__ = ['FP32PostShared2FCBBoxHead']
