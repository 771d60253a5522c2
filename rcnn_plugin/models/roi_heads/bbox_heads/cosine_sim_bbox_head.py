"""Box head with TFA's scaled cosine-similarity classifier.

Shapes: ``R`` RoIs, ``C`` classes. ``cls_score`` is ``(R, C + 1)`` with
mmdet's background column last; ``bbox_pred`` is unchanged.
"""
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.registry import MODELS


@MODELS.register_module()
class CosineSimBBoxHead(Shared2FCBBoxHead):
    """``Shared2FCBBoxHead`` whose ``fc_cls`` is a :class:`CosineSimLinear`.

    Only the classifier changes: scores are ``scale * cos(x, w_c)`` over all
    ``C + 1`` rows, background included, as TFA's ``CosineSimOutputLayers``
    (scale 20 fixed by default). Box regression, losses, targets and
    post-processing are mmdet's. ``fc_cls`` has no bias, which the class
    surgery in :mod:`rcnn_plugin.models.utils.class_surgery` accepts.

    Args:
        fc_out_channels (int): Width of the two shared fcs. Defaults to 1024.
        scale (float): Cosine scale (initial value if learned). Defaults to
            20.0.
        learn_scale (bool): Learn the scale. Defaults to False.
        **kwargs: Passed to ``Shared2FCBBoxHead`` (``num_classes``,
            ``in_channels``, losses, ...). ``cls_predictor_cfg`` is not
            accepted: this head defines it.
    """

    def __init__(self,
                 fc_out_channels: int = 1024,
                 scale: float = 20.0,
                 learn_scale: bool = False,
                 **kwargs) -> None:
        if 'cls_predictor_cfg' in kwargs:
            raise TypeError(
                'CosineSimBBoxHead sets cls_predictor_cfg itself; use '
                'scale / learn_scale, or Shared2FCBBoxHead for another '
                'predictor')
        super().__init__(
            fc_out_channels=fc_out_channels,
            cls_predictor_cfg=dict(
                type='CosineSimLinear', scale=scale, learn_scale=learn_scale),
            **kwargs)
