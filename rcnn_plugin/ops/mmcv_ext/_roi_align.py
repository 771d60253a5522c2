"""RoIAlign kernels ``roi_align_forward`` / ``roi_align_backward``.

Shapes: N images, C channels, H x W feature map, R RoIs, PH x PW output.
RoIs are ``(batch_index, x1, y1, x2, y2)`` in input-image pixels; the
kernels scale them by ``spatial_scale``.

Average pooling is served by torchvision's ``roi_align`` and
``_roi_align_backward`` (CPU and CUDA). Their sampling is mmcv's, line for
line (both come from Detectron's Caffe2 kernel): the same ``- 0.5`` shift
when ``aligned``, the same ``max(size, 1)`` clamp of malformed RoIs when
not, the same adaptive grid ``ceil(size / pooled)`` for
``sampling_ratio <= 0``, the same bilinear weights and out-of-map rule.
One difference: mmcv's CPU kernel raises for an RoI of negative size when
``aligned``; mmcv's CUDA kernel and torchvision output zeros for it, which
is what is served. Max pooling (``pool_mode=0``) has no torchvision
kernel and raises ``NotImplementedError``.
"""
import torch

from ._common import INSTALL_HINT, compute_dtype, f32

__all__ = ['roi_align_forward', 'roi_align_backward']


def _check_pool_mode(pool_mode: int) -> None:
    if pool_mode == 0:
        raise NotImplementedError(
            "RoIAlign with pool_mode='max' is not served by rcnn_plugin's "
            "torchvision-backed ops (torchvision has average pooling "
            f"only): use pool_mode='avg'. {INSTALL_HINT}")
    if pool_mode != 1:
        raise ValueError(f'pool_mode must be 0 (max) or 1 (avg), got '
                         f'{pool_mode}')


def roi_align_forward(input: torch.Tensor, rois: torch.Tensor,
                      output: torch.Tensor, argmax_y: torch.Tensor,
                      argmax_x: torch.Tensor, aligned_height: int,
                      aligned_width: int, spatial_scale: float,
                      sampling_ratio: int, pool_mode: int,
                      aligned: bool) -> None:
    """RoIAlign forward; writes the pooled features into ``output``.

    Args:
        input (torch.Tensor): Features, shape (N, C, H, W).
        rois (torch.Tensor): RoIs, shape (R, 5).
        output (torch.Tensor): Output, shape (R, C, PH, PW), overwritten.
        argmax_y (torch.Tensor): Unused (max pooling only).
        argmax_x (torch.Tensor): Unused (max pooling only).
        aligned_height (int): PH.
        aligned_width (int): PW.
        spatial_scale (float): Feature-map size over image size.
        sampling_ratio (int): Samples per bin side; <= 0 for adaptive.
        pool_mode (int): 1 (average). 0 (max) raises NotImplementedError.
        aligned (bool): Shift the RoIs by -0.5 pixel (pixel centres).
    """
    _check_pool_mode(pool_mode)
    dtype = compute_dtype(input)
    out = torch.ops.torchvision.roi_align(input.to(dtype), rois.to(dtype),
                                          f32(spatial_scale), aligned_height,
                                          aligned_width, sampling_ratio,
                                          bool(aligned))
    output.copy_(out)


def roi_align_backward(grad_output: torch.Tensor, rois: torch.Tensor,
                       argmax_y: torch.Tensor, argmax_x: torch.Tensor,
                       grad_input: torch.Tensor, aligned_height: int,
                       aligned_width: int, spatial_scale: float,
                       sampling_ratio: int, pool_mode: int,
                       aligned: bool) -> None:
    """RoIAlign backward; adds the input gradient into ``grad_input``.

    Args:
        grad_output (torch.Tensor): Output gradient, shape (R, C, PH, PW).
        rois (torch.Tensor): RoIs, shape (R, 5).
        argmax_y (torch.Tensor): Unused (max pooling only).
        argmax_x (torch.Tensor): Unused (max pooling only).
        grad_input (torch.Tensor): Input gradient, shape (N, C, H, W),
            accumulated into.
        aligned_height (int): PH.
        aligned_width (int): PW.
        spatial_scale (float): Feature-map size over image size.
        sampling_ratio (int): Samples per bin side; <= 0 for adaptive.
        pool_mode (int): 1 (average). 0 (max) raises NotImplementedError.
        aligned (bool): Shift the RoIs by -0.5 pixel (pixel centres).
    """
    _check_pool_mode(pool_mode)
    dtype = compute_dtype(grad_output)
    batch, channels, height, width = grad_input.shape
    grad = torch.ops.torchvision._roi_align_backward(
        grad_output.to(dtype), rois.to(dtype), f32(spatial_scale),
        aligned_height, aligned_width, batch, channels, height, width,
        sampling_ratio, bool(aligned))
    grad_input.add_(grad.to(grad_input.dtype))
