"""RoI to FPN level assignment as torchvision's ``MultiScaleRoIAlign``."""
import math

import torch
from mmdet.registry import MODELS
from torch import Tensor

from .torchvision_roi_extractor import TorchvisionRoIExtractor


@MODELS.register_module()
class TorchvisionLevelRoIExtractor(TorchvisionRoIExtractor):
    """:class:`TorchvisionRoIExtractor` with torchvision's level mapping.

    torchvision (FPN paper, Eqn. 1) assigns a RoI of scale
    ``s = sqrt(w * h)`` to level ``floor(k0 + log2(s / 224) + eps)``,
    clamped to the levels present; mmdet computes
    ``floor(log2(s / finest_scale + eps))``. With ``finest_scale=56`` the
    two agree except where ``eps`` moves a RoI that lies exactly on a level
    boundary. Pair with ``roi_layer=dict(type='RoIAlign',
    sampling_ratio=2, aligned=False)`` to match torchvision's pooling.
    Pooling is :class:`TorchvisionRoIExtractor`'s (``backend`` selects
    torchvision's ``roi_align`` or the sparse product).

    Args:
        canonical_scale (int): RoI scale of the canonical level.
            Defaults to 224.
        canonical_level (int): Pyramid level ``k0`` (stride ``2 ** k0``) of
            a RoI of ``canonical_scale``. Defaults to 4.
        eps (float): Added before ``floor``. Defaults to 1e-6.
        **kwargs: Arguments of :class:`TorchvisionRoIExtractor`
            (``roi_layer``, ``out_channels``, ``featmap_strides``,
            ``backend``, ...).
    """

    def __init__(self,
                 canonical_scale: int = 224,
                 canonical_level: int = 4,
                 eps: float = 1e-6,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if canonical_scale <= 0:
            raise ValueError(f'canonical_scale must be > 0, got '
                             f'{canonical_scale}')
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level
        self.eps = eps
        self.k_min = int(round(math.log2(self.featmap_strides[0])))
        self.k_max = int(round(math.log2(self.featmap_strides[-1])))

    def map_roi_levels(self, rois: Tensor, num_levels: int) -> Tensor:
        """Map RoIs ``(k, 5)`` ``(batch, x1, y1, x2, y2)`` to level indices.

        Args:
            rois (Tensor): Input RoIs, shape ``(k, 5)``.
            num_levels (int): Number of levels used.

        Returns:
            Tensor: Level index (0-based) of each RoI, shape ``(k, )``.
        """
        scale = torch.sqrt(
            (rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(self.canonical_level +
                             torch.log2(scale / self.canonical_scale) +
                             self.eps)
        # torchvision clamps to the strides' levels: with strides (32, 32)
        # (fasterrcnn_mobilenet_v3_large_fpn) every RoI goes to level 0.
        levels = levels.clamp(min=self.k_min, max=self.k_max) - self.k_min
        return levels.clamp(max=num_levels - 1).long()
