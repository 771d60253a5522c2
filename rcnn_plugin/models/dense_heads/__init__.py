from .fp32_post_rpn_head import FP32PostRPNHead

__all__ = ['FP32PostRPNHead']
