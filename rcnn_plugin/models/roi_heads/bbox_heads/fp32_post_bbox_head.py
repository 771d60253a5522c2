"""Box head whose box decoding and NMS run in float32."""
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.registry import MODELS

from ...utils.fp32_postprocess import FP32PostProcessMixin

__all__ = ['FP32PostShared2FCBBoxHead']


@MODELS.register_module()
class FP32PostShared2FCBBoxHead(FP32PostProcessMixin, Shared2FCBBoxHead):
    """:class:`Shared2FCBBoxHead` with float32 post-processing.

    Inference under bfloat16 autocast then decodes boxes and runs mmcv's
    NMS in float32. Same arguments as :class:`Shared2FCBBoxHead`;
    identical results in float32.
    """
