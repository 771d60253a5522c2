"""RoIPool kernels ``roi_pool_forward`` / ``roi_pool_backward`` (plain torch).

Shapes: N images, C channels, H x W feature map, R RoIs, PH x PW output.
RoIs are ``(batch_index, x1, y1, x2, y2)`` in input-image pixels.

mmcv's quantisation differs from torchvision's ``roi_pool``: torchvision
rounds the scaled RoI corners to integers first, while mmcv keeps them
real, ``x1 * s`` to ``(x2 + 1) * s``, and takes each bin as
``floor(start)`` to ``ceil(end)``, so neighbouring bins may overlap. The
kernels below follow mmcv's CUDA kernel (mmcv has no CPU one) exactly:

* an RoI of zero or negative size is skipped: its ``output`` and
  ``argmax`` entries keep what the caller put there (zeros from mmcv's
  wrapper, so its gradient goes to pixel (0, 0), as in mmcv);
* an empty bin (clipped away) outputs 0 with argmax -1;
* otherwise the first maximum in row-major order is taken, values not
  above ``-FLT_MAX`` (and NaN) are never taken.
"""
import torch

from ._common import compute_dtype, f32

__all__ = ['roi_pool_forward', 'roi_pool_backward']

_FLT_MAX = 3.4028234663852886e38
_MAX_GATHER = 1 << 24  # elements gathered at once


def _bins(start: torch.Tensor, bin_size: torch.Tensor, pooled: int,
          limit: int):
    # start, bin_size: (R, ); returns clipped integer bounds, (R, pooled).
    idx = torch.arange(pooled, device=start.device, dtype=start.dtype)
    lo = torch.floor(idx * bin_size[:, None] + start[:, None])
    hi = torch.ceil((idx + 1) * bin_size[:, None] + start[:, None])
    return (lo.clamp(0, limit).long(), hi.clamp(0, limit).long())


def _pool_chunk(flat_input, planes, y1, y2, x1, x2, width, neg_max):
    # planes: (r, C) plane offsets; y1, y2: (r, PH); x1, x2: (r, PW).
    # Returns the maxima and their flat in-plane indices, (r, C, PH, PW).
    kh = int((y2 - y1).max())
    kw = int((x2 - x1).max())
    shape = planes.shape + y1.shape[1:] + x1.shape[1:]
    if kh <= 0 or kw <= 0:  # every bin of the chunk is empty
        out = flat_input.new_zeros(shape)
        return out, torch.full(shape, -1, device=out.device)
    ys = y1[..., None] + torch.arange(kh, device=y1.device)  # (r, PH, kh)
    xs = x1[..., None] + torch.arange(kw, device=x1.device)  # (r, PW, kw)
    ok = ((ys < y2[..., None])[:, :, None, :, None] &
          (xs < x2[..., None])[:, None, :, None, :])  # (r, PH, PW, kh, kw)
    pix = ys[:, :, None, :, None] * width + xs[:, None, :, None, :]
    pix = torch.where(ok, pix, 0).flatten(-2)[:, None]  # (r, 1, PH, PW, K)
    vals = flat_input[planes[:, :, None, None, None] + pix]
    ok = ok.flatten(-2)[:, None]
    vals = vals.masked_fill(~ok | vals.isnan(), float('-inf'))
    best, arg = vals.max(-1)  # the first maximum in row-major order
    arg_pix = pix.expand(vals.shape).gather(-1, arg[..., None])[..., 0]
    found = best > neg_max
    empty = ~ok.any(-1).expand(best.shape)
    fill = torch.where(empty, 0.0, neg_max).to(best.dtype)
    return (torch.where(found, best, fill),
            torch.where(found, arg_pix, -1))


def roi_pool_forward(input: torch.Tensor, rois: torch.Tensor,
                     output: torch.Tensor, argmax: torch.Tensor,
                     pooled_height: int, pooled_width: int,
                     spatial_scale: float) -> None:
    """RoIPool forward; writes the maxima into ``output`` and ``argmax``.

    Args:
        input (torch.Tensor): Features, shape (N, C, H, W).
        rois (torch.Tensor): RoIs, shape (R, 5).
        output (torch.Tensor): Output, shape (R, C, PH, PW).
        argmax (torch.Tensor): Flat ``h * W + w`` index of each maximum
            (int32), shape (R, C, PH, PW); -1 for an empty bin.
        pooled_height (int): PH.
        pooled_width (int): PW.
        spatial_scale (float): Feature-map size over image size.
    """
    num_rois = rois.size(0)
    if num_rois == 0:
        return
    _, channels, height, width = input.shape
    dtype = compute_dtype(input)
    scale = f32(spatial_scale)
    r = rois.to(dtype)
    x1, y1 = r[:, 1] * scale, r[:, 2] * scale
    roi_w = (r[:, 3] + 1) * scale - x1
    roi_h = (r[:, 4] + 1) * scale - y1
    valid = torch.nonzero(~((roi_w <= 0) | (roi_h <= 0)))[:, 0]
    if valid.numel() == 0:
        return
    by1, by2 = _bins(y1[valid], roi_h[valid] / pooled_height, pooled_height,
                     height)
    bx1, bx2 = _bins(x1[valid], roi_w[valid] / pooled_width, pooled_width,
                     width)
    planes = (r[valid, 0].long()[:, None] * channels +
              torch.arange(channels, device=r.device)) * (height * width)
    flat_input = input.to(dtype).contiguous().view(-1)
    neg_max = torch.tensor(-_FLT_MAX, dtype=input.dtype).to(dtype).item()
    per_roi = channels * pooled_height * pooled_width * max(
        int((by2 - by1).max()) * int((bx2 - bx1).max()), 1)
    step = max(_MAX_GATHER // per_roi, 1)
    for s in range(0, valid.numel(), step):
        e = min(s + step, valid.numel())
        out, arg = _pool_chunk(flat_input, planes[s:e], by1[s:e], by2[s:e],
                               bx1[s:e], bx2[s:e], width, neg_max)
        output[valid[s:e]] = out.to(output.dtype)
        argmax[valid[s:e]] = arg.to(argmax.dtype)


def roi_pool_backward(grad_output: torch.Tensor, rois: torch.Tensor,
                      argmax: torch.Tensor, grad_input: torch.Tensor,
                      pooled_height: int, pooled_width: int,
                      spatial_scale: float) -> None:
    """RoIPool backward; adds each output gradient at its argmax pixel.

    Args:
        grad_output (torch.Tensor): Output gradient, shape (R, C, PH, PW).
        rois (torch.Tensor): RoIs, shape (R, 5).
        argmax (torch.Tensor): The forward's argmax, shape (R, C, PH, PW).
        grad_input (torch.Tensor): Input gradient, shape (N, C, H, W),
            accumulated into.
        pooled_height (int): PH.
        pooled_width (int): PW.
        spatial_scale (float): Unused; the argmax holds the positions.
    """
    if rois.size(0) == 0:
        return
    _, channels, height, width = grad_input.shape
    planes = (rois[:, 0].long()[:, None] * channels +
              torch.arange(channels, device=rois.device)) * (height * width)
    arg = argmax.long()
    hit = arg != -1
    index = (planes[:, :, None, None] + arg)[hit]
    flat = torch.zeros(grad_input.numel(), dtype=grad_input.dtype,
                       device=grad_input.device)
    flat.index_put_((index, ), grad_output[hit].to(flat.dtype),
                    accumulate=True)
    grad_input.add_(flat.view(grad_input.shape))
