"""Sigmoid focal loss kernels (plain torch), as mmcv's CUDA kernel.

Shapes: N samples, C classes; ``target`` holds class indices, and a
target outside ``[0, C)`` (mmdet's background label C) is negative for
every class. With ``p = 1 / (1 + exp(-x))`` and ``t`` the target:

* loss = ``-alpha (1 - p)^gamma log(max(p, FLT_MIN))`` where ``c == t``,
  ``-(1 - alpha) p^gamma log(max(1 - p, FLT_MIN))`` elsewhere;
* its derivative in ``x`` is ``-alpha (1 - p)^gamma (1 - p - gamma p
  log(max(p, FLT_MIN)))`` and ``-(1 - alpha) p^gamma (gamma (1 - p)
  log(max(1 - p, FLT_MIN)) - p)``;
* both are multiplied by ``weight[t]`` when a ``weight`` is given.

mmcv reads ``weight[t]`` out of bounds for a background target; here that
case raises ``ValueError`` instead. ``alpha`` and ``gamma`` are rounded to
float32 as in mmcv's bindings.
"""
import torch

from ._common import compute_dtype, f32

__all__ = ['sigmoid_focal_loss_forward', 'sigmoid_focal_loss_backward']

_FLT_MIN = 1.1754943508222875e-38


def _setup(input, target, weight, gamma, alpha):
    dtype = compute_dtype(input)
    x = input.to(dtype)
    classes = torch.arange(x.size(1), device=x.device)
    flag_p = (target.long()[:, None] == classes).to(dtype)
    p = 1 / (1 + torch.exp(-x))
    alpha = f32(alpha)
    coef_p = -flag_p * alpha
    coef_n = -(1 - flag_p) * f32(1 - alpha)
    scale = None
    if weight is not None and weight.numel() > 0:
        t = target.long()
        if bool(((t < 0) | (t >= weight.numel())).any()):
            raise ValueError(
                'sigmoid_focal_loss with a class weight needs every target '
                f'in [0, {weight.numel()}); mmcv reads weight[target] out of '
                'bounds for the others (e.g. the background label)')
        scale = weight.to(dtype)[t][:, None]
    return p, coef_p, coef_n, f32(gamma), scale


def sigmoid_focal_loss_forward(input: torch.Tensor, target: torch.Tensor,
                               weight: torch.Tensor, output: torch.Tensor,
                               gamma: float, alpha: float) -> None:
    """Element-wise sigmoid focal loss; overwrites ``output``.

    Args:
        input (torch.Tensor): Logits, shape (N, C).
        target (torch.Tensor): Class indices (int64), shape (N, ).
        weight (torch.Tensor): Per-class weight, shape (C, ), or empty.
        output (torch.Tensor): Loss, shape (N, C).
        gamma (float): Focusing exponent.
        alpha (float): Weight of the positive term.
    """
    if input.numel() == 0:
        return
    p, coef_p, coef_n, gamma, scale = _setup(input, target, weight, gamma,
                                             alpha)
    tiny = torch.tensor(_FLT_MIN, dtype=p.dtype, device=p.device)
    term_p = torch.pow(1 - p, gamma) * torch.log(torch.maximum(p, tiny))
    term_n = torch.pow(p, gamma) * torch.log(torch.maximum(1 - p, tiny))
    loss = coef_p * term_p + coef_n * term_n
    output.copy_(loss if scale is None else loss * scale)


def sigmoid_focal_loss_backward(input: torch.Tensor, target: torch.Tensor,
                                weight: torch.Tensor,
                                grad_input: torch.Tensor, gamma: float,
                                alpha: float) -> None:
    """Derivative of the element-wise loss; overwrites ``grad_input``.

    Args:
        input (torch.Tensor): Logits, shape (N, C).
        target (torch.Tensor): Class indices (int64), shape (N, ).
        weight (torch.Tensor): Per-class weight, shape (C, ), or empty.
        grad_input (torch.Tensor): d loss / d input, shape (N, C).
        gamma (float): Focusing exponent.
        alpha (float): Weight of the positive term.
    """
    if input.numel() == 0:
        return
    p, coef_p, coef_n, gamma, scale = _setup(input, target, weight, gamma,
                                             alpha)
    tiny = torch.tensor(_FLT_MIN, dtype=p.dtype, device=p.device)
    term_p = torch.pow(1 - p, gamma) * (
        1 - p - gamma * p * torch.log(torch.maximum(p, tiny)))
    term_n = torch.pow(p, gamma) * (
        gamma * (1 - p) * torch.log(torch.maximum(1 - p, tiny)) - p)
    grad = coef_p * term_p + coef_n * term_n
    grad_input.copy_(grad if scale is None else grad * scale)
