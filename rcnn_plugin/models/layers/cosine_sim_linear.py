"""Scaled cosine-similarity classifier (TFA's ``CosineSimOutputLayers``).

Shapes: ``R`` RoIs, ``D`` feature width, ``K`` output rows (for a softmax
head ``K = C + 1``: the background row is a cosine row like the others, as
in TFA).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class CosineSimLinear(nn.Module):
    """Scores ``scale * cos(x_r, w_k)`` for every RoI ``r`` and row ``k``.

    As TFA ("Frustratingly Simple Few-Shot Object Detection", Wang et al.
    2020, ``CosineSimOutputLayers``): no bias, features and weight rows are
    L2-normalised (``v / (||v|| + eps)``), the scale is fixed (20) or
    learned. Unlike TFA, which renormalises ``weight.data`` in place at
    every forward, the weight is normalised functionally, so the gradient
    sees the normalisation (as mmdet's ``NormedLinear``) and the stored
    rows keep their norm; the scores are the same.

    Args:
        in_features (int): ``D``. Must be positive.
        out_features (int): ``K``. Must be positive.
        scale (float): Initial (or fixed) scale. Must be positive.
            Defaults to 20.0 (TFA).
        learn_scale (bool): Make the scale a trainable parameter (TFA's
            ``COSINE_SCALE=-1``). Defaults to False.
        eps (float): Added to the norms. Defaults to 1e-5 (TFA).
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 scale: float = 20.0,
                 learn_scale: bool = False,
                 eps: float = 1e-5) -> None:
        super().__init__()
        for name, value in (('in_features', in_features),
                            ('out_features', out_features)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f'{name} must be a positive int, got '
                                 f'{value!r}')
        if not (isinstance(scale, (int, float)) and math.isfinite(scale)
                and scale > 0):
            raise ValueError(f'scale must be a finite positive number, got '
                             f'{scale!r}')
        self.in_features = in_features
        self.out_features = out_features
        self.eps = eps
        self.learn_scale = learn_scale
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.normal_(self.weight, std=0.01)
        self.bias = None  # TFA's classifier has none; init_cfg skips it
        init = torch.tensor(float(scale))
        if learn_scale:
            self.scale = nn.Parameter(init)
        else:
            self.register_buffer('scale', init)

    def forward(self, x: Tensor) -> Tensor:
        """Scaled cosine scores.

        Args:
            x (Tensor): Features, shape ``(R, D)``.

        Returns:
            Tensor: Scores, shape ``(R, K)``, in ``[-scale, scale]``.
        """
        x_n = x / (x.norm(p=2, dim=1, keepdim=True) + self.eps)
        w_n = self.weight / (
            self.weight.norm(p=2, dim=1, keepdim=True) + self.eps)
        return self.scale * F.linear(x_n, w_n)

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, '
                f'out_features={self.out_features}, '
                f'scale={float(self.scale):g}, learn_scale={self.learn_scale}')
