"""RPN head whose proposal decoding and NMS run in float32."""
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS

from ..utils.fp32_postprocess import FP32PostProcessMixin

__all__ = ['FP32PostRPNHead']


@MODELS.register_module()
class FP32PostRPNHead(FP32PostProcessMixin, RPNHead):
    """:class:`RPNHead` with float32 post-processing under mixed precision.

    Needed for bfloat16 training on CPU (mmcv's CPU NMS has no bfloat16
    kernel) and for proposals that are not rounded to bfloat16's 4 px grid.
    Same arguments as :class:`RPNHead`; identical results in float32.
    """
