"""Anchors as torchvision's ``AnchorGenerator`` makes them."""
from typing import Optional, Tuple, Union

from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class TorchvisionAnchorGenerator(AnchorGenerator):
    """mmdet's ``AnchorGenerator`` with torchvision's rounded base anchors.

    torchvision centres base anchors on 0 and rounds their corners to whole
    pixels (``[-23, -11, 23, 11]`` for size 32, ratio 0.5, where mmdet keeps
    ``[-22.63, -11.31, 22.63, 11.31]``). Grid shifts and the order of the
    anchors (location-major, then ratio) already agree, so only the base
    anchors differ. Use with ``center_offset=0`` (the default) to reproduce
    torchvision's detection models.

    Args: as :class:`mmdet.models.task_modules.AnchorGenerator`.
    """

    def gen_single_level_base_anchors(self,
                                      base_size: Union[int, float],
                                      scales: Tensor,
                                      ratios: Tensor,
                                      center: Optional[Tuple[float]] = None
                                      ) -> Tensor:
        """Generate the rounded base anchors of one level.

        Args:
            base_size (int | float): Basic size of an anchor (the stride).
            scales (Tensor): Anchor scales, size ``base_size * scale``.
            ratios (Tensor): Height / width ratios.
            center (tuple[float], optional): Centre of the base anchor.
                Defaults to None (``center_offset * base_size``).

        Returns:
            Tensor: ``(len(ratios) * len(scales), 4)`` anchors
            ``(x1, y1, x2, y2)`` in pixels, rounded to integers.
        """
        return super().gen_single_level_base_anchors(
            base_size, scales, ratios, center).round()
