"""FCN mask head whose mask logits start near zero."""
import math

import torch.nn as nn
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS

__all__ = ['SmallInitFCNMaskHead']


@MODELS.register_module()
class SmallInitFCNMaskHead(FCNMaskHead):
    """:class:`FCNMaskHead` with the mask predictor drawn from
    ``N(0, logits_std^2)`` and a zero bias.

    mmdet draws ``conv_logits`` (a 1x1 conv to one map per class) with
    Kaiming ``fan_out``, whose std is ``sqrt(2 / num_classes)``: 0.16 for
    COCO's 80 classes, 1.41 for one class. With one or a few classes the
    first mask logits are then large and the mask loss starts at several
    times the ``ln 2`` of an untrained binary classifier (balloon: 2.6-5.3),
    with gradients to match. A small normal draw (detectron2's mask
    predictor uses std 0.001) starts every class at probability 0.5.
    Everything else, including the state dict, is :class:`FCNMaskHead`'s,
    so its checkpoints load unchanged.

    Args:
        logits_std (float): Std of the ``conv_logits`` weights. Defaults to
            0.001.
        **kwargs: :class:`FCNMaskHead`'s arguments.
    """

    def __init__(self, logits_std: float = 0.001, **kwargs) -> None:
        if not (isinstance(logits_std, (int, float))
                and math.isfinite(logits_std) and logits_std > 0):
            raise ValueError(f'SmallInitFCNMaskHead: logits_std must be a '
                             f'positive number, got {logits_std!r}')
        super().__init__(**kwargs)
        self.logits_std = float(logits_std)

    def init_weights(self) -> None:
        """mmdet's initialisation, then the small draw for
        ``conv_logits``."""
        super().init_weights()
        nn.init.normal_(self.conv_logits.weight, std=self.logits_std)
        nn.init.zeros_(self.conv_logits.bias)
