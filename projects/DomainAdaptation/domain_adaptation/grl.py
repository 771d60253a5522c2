"""Gradient reversal (Ganin and Lempitsky, 2015).

The forward pass is the identity; the backward pass multiplies the
incoming gradient by ``-weight``, so the layers before it learn to
confuse the domain classifier that comes after it.
"""
import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

__all__ = ['GradientReversal', 'grad_reverse']


class _GradReverse(torch.autograd.Function):
    """Identity forward, ``-weight * grad`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: float) -> Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return -ctx.weight * grad, None


def grad_reverse(x: Tensor, weight: float = 1.0) -> Tensor:
    """Reverse (and scale) the gradient flowing back through ``x``.

    Args:
        x (Tensor): Any tensor.
        weight (float): Scale of the reversed gradient. Defaults to 1.0.

    Returns:
        Tensor: ``x`` unchanged in the forward pass.
    """
    return _GradReverse.apply(x, weight)


@MODELS.register_module()
class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`.

    Args:
        weight (float): Scale of the reversed gradient, at least 0
            (DA Faster R-CNN uses 0.1 for its classifiers). Defaults to 1.0.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        if not weight >= 0:
            raise ValueError(f'weight must be >= 0, got {weight!r}')
        self.weight = float(weight)

    def forward(self, x: Tensor) -> Tensor:
        """Identity forward; the gradient is reversed and scaled.

        Args:
            x (Tensor): Any tensor.

        Returns:
            Tensor: ``x``.
        """
        return grad_reverse(x, self.weight)

    def extra_repr(self) -> str:
        return f'weight={self.weight}'
