"""Deformable convolution kernels (v1 and modulated v2) via torchvision.

Shapes: N images, C input and O output channels, H x W input, Ho x Wo
output, kh x kw kernel, G groups, D deformable groups. ``offset`` is
(N, D * 2 * kh * kw, Ho, Wo) with ``(dy, dx)`` interleaved per kernel
point (row-major over the kernel); ``mask`` is (N, D * kh * kw, Ho, Wo).
mmcv and torchvision share this layout, the sampling rule (bilinear, zero
outside the map, nothing sampled at or beyond -1 and H or W) and the
gradients of input, weight, bias and mask, as both come from the same
DCN code.

One difference, corrected here: at a sampling point on or outside that
border, mmcv's offset gradient is 0, while torchvision's is its one-sided
slope where the point lies exactly on the line ``y == -1`` or
``x == -1`` (as happens with zero-initialised offsets and padding 1), so
those entries are zeroed. ``columns``, ``ones`` and ``im2col_step`` are
mmcv's work buffers and batching; they do not change the result and are
ignored. Only 4-D (batched) inputs are accepted, as mmcv's wrappers pass.
"""
import threading
import weakref

import torch

from ._common import compute_dtype

__all__ = [
    'deform_conv_forward', 'deform_conv_backward_input',
    'deform_conv_backward_parameters', 'modulated_deform_conv_forward',
    'modulated_deform_conv_backward'
]

# The (v1) wrapper calls backward_input then backward_parameters with the
# same tensors; torchvision computes every gradient in one call, so the
# weight gradient of the first call is kept for the second (per thread:
# autograd runs the backward of each device in its own thread).
_cache = threading.local()


def _check(input, weight, offset, kh, kw, groups, deform_groups) -> None:
    if input.dim() != 4:
        raise ValueError('deformable convolution expects a 4-D input '
                         f'(N, C, H, W), got {input.dim()}-D')
    if tuple(weight.shape[2:]) != (kh, kw):
        raise ValueError(f'kernel size {kh}x{kw} does not match the weight '
                         f'{tuple(weight.shape)}')
    if input.size(1) != weight.size(1) * groups:
        raise ValueError(f'input has {input.size(1)} channels, expected '
                         f'{weight.size(1) * groups} (weight x groups)')
    if input.size(1) % deform_groups:
        raise ValueError('input channels must divide deformable group size')
    if offset.size(1) != deform_groups * 2 * kh * kw:
        raise ValueError('invalid number of channels of offset: '
                         f'{offset.size(1)} != {deform_groups * 2 * kh * kw}')


def _tv_args(input, weight, offset, mask, bias):
    dtype = compute_dtype(input)
    if mask is None:
        mask = input.new_zeros((input.size(0), 1), dtype=dtype)
    if bias is None:
        bias = input.new_zeros(weight.size(0), dtype=dtype)
    return [t.to(dtype) for t in (input, weight, offset, mask, bias)]


def _outside(offset, height, width, kernel, stride, pad, dil):
    # True where a sampling point lies on or beyond mmcv's border, per
    # offset channel: (N, D * 2 * kh * kw, Ho, Wo).
    num, _, out_h, out_w = offset.shape
    kh, kw = kernel
    off = offset.reshape(num, -1, kh, kw, 2, out_h, out_w)
    dev = offset.device
    base_y = ((torch.arange(out_h, device=dev) * stride[0] - pad[0]) +
              (torch.arange(kh, device=dev) * dil[0])[:, None])
    base_x = ((torch.arange(out_w, device=dev) * stride[1] - pad[1]) +
              (torch.arange(kw, device=dev) * dil[1])[:, None])
    y = base_y[:, None, :, None].to(off.dtype) + off[..., 0, :, :]
    x = base_x[None, :, None, :].to(off.dtype) + off[..., 1, :, :]
    bad = (y <= -1) | (y >= height) | (x <= -1) | (x >= width)
    return bad[..., None, :, :].expand(off.shape).reshape(offset.shape)


def _backward(grad, input, weight, offset, mask, bias, geometry):
    kernel, stride, pad, dil, groups, deform_groups = geometry
    args = _tv_args(input, weight, offset, mask, bias)
    grads = torch.ops.torchvision._deform_conv2d_backward(
        grad.to(args[0].dtype), *args, stride[0], stride[1], pad[0], pad[1],
        dil[0], dil[1], groups, deform_groups, mask is not None)
    g_input, g_weight, g_offset, g_mask, g_bias = grads
    bad = _outside(args[2], input.size(2), input.size(3), kernel, stride, pad,
                   dil)
    return g_input, g_weight, g_offset.masked_fill(bad, 0), g_mask, g_bias


def deform_conv_forward(input: torch.Tensor, weight: torch.Tensor,
                        offset: torch.Tensor, output: torch.Tensor,
                        columns: torch.Tensor, ones: torch.Tensor, kW: int,
                        kH: int, dW: int, dH: int, padW: int, padH: int,
                        dilationW: int, dilationH: int, group: int,
                        deformable_group: int, im2col_step: int) -> None:
    """Deformable convolution (v1) forward; overwrites ``output``.

    Args:
        input (torch.Tensor): Input, shape (N, C, H, W).
        weight (torch.Tensor): Weight, shape (O, C / G, kh, kw).
        offset (torch.Tensor): Offsets, shape (N, D * 2 * kh * kw, Ho, Wo).
        output (torch.Tensor): Output, shape (N, O, Ho, Wo).
        columns (torch.Tensor): mmcv's work buffer; ignored.
        ones (torch.Tensor): mmcv's work buffer; ignored.
        kW (int): Kernel width kw.
        kH (int): Kernel height kh.
        dW (int): Stride along x.
        dH (int): Stride along y.
        padW (int): Zero padding along x.
        padH (int): Zero padding along y.
        dilationW (int): Dilation along x.
        dilationH (int): Dilation along y.
        group (int): Convolution groups G.
        deformable_group (int): Deformable groups D.
        im2col_step (int): mmcv's batching; ignored.
    """
    _check(input, weight, offset, kH, kW, group, deformable_group)
    out = torch.ops.torchvision.deform_conv2d(
        *_tv_args(input, weight, offset, None, None), dH, dW, padH, padW,
        dilationH, dilationW, group, deformable_group, False)
    output.copy_(out)


def _key(*tensors):
    return tuple((weakref.ref(t), t._version) for t in tensors)


def _same(key, tensors):
    return all(
        ref() is t and version == t._version
        for (ref, version), t in zip(key, tensors))


def deform_conv_backward_input(input: torch.Tensor, offset: torch.Tensor,
                               gradOutput: torch.Tensor,
                               gradInput: torch.Tensor,
                               gradOffset: torch.Tensor, weight: torch.Tensor,
                               columns: torch.Tensor, kW: int, kH: int,
                               dW: int, dH: int, padW: int, padH: int,
                               dilationW: int, dilationH: int, group: int,
                               deformable_group: int,
                               im2col_step: int) -> None:
    """Deformable convolution (v1): gradients of input and offset.

    Args:
        input (torch.Tensor): Input, shape (N, C, H, W).
        offset (torch.Tensor): Offsets, shape (N, D * 2 * kh * kw, Ho, Wo).
        gradOutput (torch.Tensor): Output gradient, shape (N, O, Ho, Wo).
        gradInput (torch.Tensor): Input gradient, accumulated into.
        gradOffset (torch.Tensor): Offset gradient, overwritten.
        weight (torch.Tensor): Weight, shape (O, C / G, kh, kw).
        columns (torch.Tensor): mmcv's work buffer; ignored.
        kW (int): Kernel width kw.
        kH (int): Kernel height kh.
        dW (int): Stride along x.
        dH (int): Stride along y.
        padW (int): Zero padding along x.
        padH (int): Zero padding along y.
        dilationW (int): Dilation along x.
        dilationH (int): Dilation along y.
        group (int): Convolution groups G.
        deformable_group (int): Deformable groups D.
        im2col_step (int): mmcv's batching; ignored.
    """
    _check(input, weight, offset, kH, kW, group, deformable_group)
    geometry = ((kH, kW), (dH, dW), (padH, padW), (dilationH, dilationW),
                group, deformable_group)
    g_input, g_weight, g_offset, _, _ = _backward(gradOutput, input, weight,
                                                  offset, None, None,
                                                  geometry)
    gradInput.add_(g_input.to(gradInput.dtype))
    gradOffset.copy_(g_offset)
    _cache.entry = (_key(input, offset, gradOutput), geometry, g_weight)


def deform_conv_backward_parameters(
        input: torch.Tensor, offset: torch.Tensor, gradOutput: torch.Tensor,
        gradWeight: torch.Tensor, columns: torch.Tensor, ones: torch.Tensor,
        kW: int, kH: int, dW: int, dH: int, padW: int, padH: int,
        dilationW: int, dilationH: int, group: int, deformable_group: int,
        scale: float, im2col_step: int) -> None:
    """Deformable convolution (v1): gradient of the weight.

    Args:
        input (torch.Tensor): Input, shape (N, C, H, W).
        offset (torch.Tensor): Offsets, shape (N, D * 2 * kh * kw, Ho, Wo).
        gradOutput (torch.Tensor): Output gradient, shape (N, O, Ho, Wo).
        gradWeight (torch.Tensor): Weight gradient, shape
            (O, C / G, kh, kw); ``scale`` times the gradient is added.
        columns (torch.Tensor): mmcv's work buffer; ignored.
        ones (torch.Tensor): mmcv's work buffer; ignored.
        kW (int): Kernel width kw.
        kH (int): Kernel height kh.
        dW (int): Stride along x.
        dH (int): Stride along y.
        padW (int): Zero padding along x.
        padH (int): Zero padding along y.
        dilationW (int): Dilation along x.
        dilationH (int): Dilation along y.
        group (int): Convolution groups G.
        deformable_group (int): Deformable groups D.
        scale (float): Factor of the added gradient.
        im2col_step (int): mmcv's batching; ignored.
    """
    _check(input, gradWeight, offset, kH, kW, group, deformable_group)
    geometry = ((kH, kW), (dH, dW), (padH, padW), (dilationH, dilationW),
                group, deformable_group)
    # The weight itself is not passed; its gradient does not depend on it.
    weight = gradWeight.new_zeros(gradWeight.shape)
    entry = getattr(_cache, 'entry', None)
    _cache.entry = None
    if (entry is not None and entry[1] == geometry
            and _same(entry[0], (input, offset, gradOutput))):
        g_weight = entry[2]
    else:
        g_weight = _backward(gradOutput, input, weight, offset, None, None,
                             geometry)[1]
    gradWeight.add_(g_weight.to(gradWeight.dtype), alpha=scale)


def modulated_deform_conv_forward(
        input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
        ones: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
        output: torch.Tensor, columns: torch.Tensor, kernel_h: int,
        kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
        dilation_h: int, dilation_w: int, group: int, deformable_group: int,
        with_bias: bool) -> None:
    """Modulated deformable convolution (v2) forward; overwrites ``output``.

    Args:
        input (torch.Tensor): Input, shape (N, C, H, W).
        weight (torch.Tensor): Weight, shape (O, C / G, kh, kw).
        bias (torch.Tensor): Bias, shape (O, ), used if ``with_bias``.
        ones (torch.Tensor): mmcv's work buffer; ignored.
        offset (torch.Tensor): Offsets, shape (N, D * 2 * kh * kw, Ho, Wo).
        mask (torch.Tensor): Modulation, shape (N, D * kh * kw, Ho, Wo).
        output (torch.Tensor): Output, shape (N, O, Ho, Wo).
        columns (torch.Tensor): mmcv's work buffer; ignored.
        kernel_h (int): Kernel height kh.
        kernel_w (int): Kernel width kw.
        stride_h (int): Stride along y.
        stride_w (int): Stride along x.
        pad_h (int): Zero padding along y.
        pad_w (int): Zero padding along x.
        dilation_h (int): Dilation along y.
        dilation_w (int): Dilation along x.
        group (int): Convolution groups G.
        deformable_group (int): Deformable groups D.
        with_bias (bool): Whether ``bias`` is added.
    """
    _check(input, weight, offset, kernel_h, kernel_w, group,
           deformable_group)
    out = torch.ops.torchvision.deform_conv2d(
        *_tv_args(input, weight, offset, mask, bias if with_bias else None),
        stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, group,
        deformable_group, True)
    output.copy_(out)


def modulated_deform_conv_backward(
        input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
        ones: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
        columns: torch.Tensor, grad_input: torch.Tensor,
        grad_weight: torch.Tensor, grad_bias: torch.Tensor,
        grad_offset: torch.Tensor, grad_mask: torch.Tensor,
        grad_output: torch.Tensor, kernel_h: int, kernel_w: int,
        stride_h: int, stride_w: int, pad_h: int, pad_w: int, dilation_h: int,
        dilation_w: int, group: int, deformable_group: int,
        with_bias: bool) -> None:
    """Modulated deformable convolution (v2) backward.

    Args:
        input (torch.Tensor): Input, shape (N, C, H, W).
        weight (torch.Tensor): Weight, shape (O, C / G, kh, kw).
        bias (torch.Tensor): Bias, shape (O, ), used if ``with_bias``.
        ones (torch.Tensor): mmcv's work buffer; ignored.
        offset (torch.Tensor): Offsets, shape (N, D * 2 * kh * kw, Ho, Wo).
        mask (torch.Tensor): Modulation, shape (N, D * kh * kw, Ho, Wo).
        columns (torch.Tensor): mmcv's work buffer; ignored.
        grad_input (torch.Tensor): Input gradient, accumulated into.
        grad_weight (torch.Tensor): Weight gradient, accumulated into.
        grad_bias (torch.Tensor): Bias gradient, accumulated into if
            ``with_bias``.
        grad_offset (torch.Tensor): Offset gradient, overwritten.
        grad_mask (torch.Tensor): Mask gradient, overwritten.
        grad_output (torch.Tensor): Output gradient, shape (N, O, Ho, Wo).
        kernel_h (int): Kernel height kh.
        kernel_w (int): Kernel width kw.
        stride_h (int): Stride along y.
        stride_w (int): Stride along x.
        pad_h (int): Zero padding along y.
        pad_w (int): Zero padding along x.
        dilation_h (int): Dilation along y.
        dilation_w (int): Dilation along x.
        group (int): Convolution groups G.
        deformable_group (int): Deformable groups D.
        with_bias (bool): Whether ``bias`` was added.
    """
    _check(input, weight, offset, kernel_h, kernel_w, group,
           deformable_group)
    geometry = ((kernel_h, kernel_w), (stride_h, stride_w), (pad_h, pad_w),
                (dilation_h, dilation_w), group, deformable_group)
    grads = _backward(grad_output, input, weight, offset, mask,
                      bias if with_bias else None, geometry)
    grad_input.add_(grads[0].to(grad_input.dtype))
    grad_weight.add_(grads[1].to(grad_weight.dtype))
    grad_offset.copy_(grads[2])
    grad_mask.copy_(grads[3])
    if with_bias:
        grad_bias.add_(grads[4].to(grad_bias.dtype))
