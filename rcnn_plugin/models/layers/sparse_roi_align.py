"""RoIAlign (average mode) as one sparse-dense matrix product.

Shapes: R RoIs, C channels, L levels, N images, (h, w) the pooled size,
P = sum over levels of N * H_l * W_l pixels.

RoIAlign with average pooling is linear in the features: every output
``out[r, c, ph, pw]`` is a weighted sum of feature pixels of one image and
one level, with the same weights for all channels. With the pixels of all
levels flattened into one channels-last matrix ``X`` of shape (P, C), the
pooled features are ``S @ X`` for a sparse (R * h * w, P) matrix ``S`` of
bilinear weights, and the gradient w.r.t. ``X`` is ``S^T @ grad``. ``S``
depends on the RoIs only and is built here by vectorised index arithmetic
(no loop over RoIs or levels).

The bilinear weights are separable: each sample point of a bin is a pair
(y, x) of one row and one column sample, its weight is the product of a
row weight and a column weight, and the out-of-range rule and the border
clamping act on each coordinate alone. So the weights of one bin are the
outer product of a row weight vector (all row samples of the bin summed
onto the rows they touch) and a column weight vector; this also merges the
taps that neighbouring sample points share.

The numbers are those of mmcv's ``RoIAlign`` (and torchvision's
``roi_align``): sample grid ``sampling_ratio`` or ``ceil(roi_size / out)``
per axis, samples with y < -1 or y > H (x likewise) count as 0, coordinates
are clamped at the border, the sum is divided by
``max(grid_h * grid_w, 1)``, and ``aligned=True`` shifts by -0.5 px with no
minimum RoI size (``aligned=False``: no shift, RoI size at least 1 px).
"""
import contextlib
import warnings
from typing import Iterator, List, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['flatten_levels', 'roi_align_matrix', 'sparse_roi_align']


def flatten_levels(feats: Sequence[Tensor]) -> Tuple[Tensor, List[int]]:
    """Flatten L (N, C, H_l, W_l) maps into one channels-last (P, C) matrix.

    Args:
        feats (Sequence[Tensor]): L feature maps with the same N and C.

    Returns:
        Tuple[Tensor, List[int]]: The (P, C) matrix (rows: level, image,
        y, x) and the row offset of each level.
    """
    offsets, total = [], 0
    for feat in feats:
        offsets.append(total)
        total += feat.shape[0] * feat.shape[2] * feat.shape[3]
    flat = torch.cat([
        feat.permute(0, 2, 3, 1).reshape(-1, feat.shape[1]) for feat in feats
    ])
    return flat, offsets


def _axis_weights(start: Tensor, bin_size: Tensor, grid: Tensor,
                  size: Tensor, out_size: int) -> Tuple[Tensor, Tensor]:
    """Row (or column) weights of every bin along one axis.

    Args:
        start (Tensor): (R,) RoI start on its level, in level pixels.
        bin_size (Tensor): (R,) bin size in level pixels.
        grid (Tensor): (R,) long, samples per bin along this axis (>= 0).
        size (Tensor): (R,) long, the level's size along this axis.
        out_size (int): Bins along this axis (h or w).

    Returns:
        Tuple[Tensor, Tensor]: ``base`` (R, out_size) long, the first pixel
        index each bin touches, and ``weights`` (R, out_size, K), the summed
        bilinear weight of pixel ``base + k`` (not yet divided by the
        sample count).
    """
    dtype, device = start.dtype, start.device
    grid_max = max(int(grid.max()), 1) if grid.numel() else 1
    bins = torch.arange(out_size, device=device, dtype=dtype)
    steps = torch.arange(grid_max, device=device, dtype=dtype) + 0.5
    divisor = grid.clamp(min=1).to(dtype)[:, None, None]
    # Same operation order as mmcv's kernel, for the same rounding.
    pos = ((start[:, None] + bins * bin_size[:, None])[:, :, None] +
           steps * bin_size[:, None, None] / divisor)
    size_f = size.to(dtype)[:, None, None]
    used = torch.arange(grid_max, device=device) < grid[:, None, None]
    valid = used & (pos >= -1) & (pos <= size_f)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    last = (size - 1)[:, None, None]
    at_edge = low >= last
    low = torch.where(at_edge, last, low)
    pos = torch.where(at_edge, low.to(dtype), pos)
    frac = pos - low.to(dtype)
    high = torch.where(at_edge, low, low + 1)
    base = low[:, :, 0]
    zero = torch.zeros_like(low)
    local_low = torch.where(valid, low - base[:, :, None], zero)
    local_high = torch.where(valid, high - base[:, :, None], zero)
    span = int(local_high.max()) + 1 if local_high.numel() else 1
    weights = start.new_zeros(start.shape[0], out_size, span)
    # where, not a product: a non-finite RoI gives exact zeros, no NaN
    # weights on the garbage pixel indices of its NaN positions.
    weights.scatter_add_(2, local_low, torch.where(valid, 1 - frac, 0.))
    weights.scatter_add_(2, local_high, torch.where(valid, frac, 0.))
    return base, weights


def roi_align_matrix(rois: Tensor, levels: Tensor,
                     level_shapes: Sequence[Tuple[int, int, int]],
                     spatial_scales: Sequence[float],
                     output_size: Tuple[int, int], sampling_ratio: int = 0,
                     aligned: bool = True) -> Tensor:
    """The sparse (R * h * w, P) RoIAlign matrix ``S`` in CSR layout.

    Row ``(r * h + ph) * w + pw`` holds the weights of bin (ph, pw) of RoI
    r over the rows of :func:`flatten_levels`' matrix; the weights of one
    row sum to at most 1.

    Args:
        rois (Tensor): (R, 5) ``(batch_index, x1, y1, x2, y2)`` in input
            image pixels, floating point.
        levels (Tensor): (R,) long, the level each RoI pools from.
        level_shapes (Sequence[Tuple[int, int, int]]): (N, H_l, W_l) of
            each level.
        spatial_scales (Sequence[float]): 1 / stride of each level.
        output_size (Tuple[int, int]): (h, w).
        sampling_ratio (int): Samples per bin and axis; 0: adaptive,
            ``ceil(roi_size / out_size)``. Defaults to 0.
        aligned (bool): Shift by -0.5 px (mmcv's ``aligned``). Defaults to
            True.

    Returns:
        Tensor: Sparse CSR tensor of shape (R * h * w, P), rois' dtype.
    """
    device, dtype = rois.device, rois.dtype
    out_h, out_w = output_size
    shapes = torch.tensor(level_shapes, device=device, dtype=torch.long)
    sizes = shapes[:, 0] * shapes[:, 1] * shapes[:, 2]
    level_offsets = torch.cumsum(sizes, 0) - sizes
    height, width = shapes[levels, 1], shapes[levels, 2]
    scale = torch.tensor(spatial_scales, device=device, dtype=dtype)[levels]
    shift = 0.5 if aligned else 0.0
    box = rois[:, 1:] * scale[:, None] - shift
    roi_w, roi_h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.), roi_h.clamp(min=1.)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    if sampling_ratio > 0:
        grid_h = torch.full_like(levels, sampling_ratio)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / out_h).long().clamp(min=0)
        grid_w = torch.ceil(roi_w / out_w).long().clamp(min=0)
    count = (grid_h * grid_w).clamp(min=1).to(dtype)
    image_offset = (level_offsets[levels] +
                    rois[:, 0].long() * height * width)
    # Row axis: fold the division by the sample count and the flat offset
    # of (image, row) into the row entries.
    base_y, wy = _axis_weights(box[:, 1], bin_h, grid_h, height, out_h)
    wy = wy / count[:, None, None]
    ys, num_y = _compress(base_y, wy)
    ys = image_offset[:, None, None] + ys * width[:, None, None]
    base_x, wx = _axis_weights(box[:, 0], bin_w, grid_w, width, out_w)
    xs, num_x = _compress(base_x, wx)
    keep_y, keep_x = wy != 0, wx != 0
    crow, cols, values = _outer_csr(
        ys.masked_select(keep_y), wy.masked_select(keep_y), num_y,
        xs.masked_select(keep_x), wx.masked_select(keep_x), num_x)
    num_rows = rois.shape[0] * out_h * out_w
    num_pixels = sum(n * h * w for n, h, w in level_shapes)
    with _quiet_csr():
        return torch.sparse_csr_tensor(
            crow, cols, values, size=(num_rows, num_pixels), dtype=dtype,
            device=device, check_invariants=False)


@contextlib.contextmanager
def _quiet_csr() -> Iterator[None]:
    """Silence torch's one-time "CSR support is in beta" warning here only.

    The CSR ops used (building S, its transpose, CSR @ dense) are tested
    against mmcv's kernel; a user's own CSR code still gets the warning.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            'ignore', message='Sparse CSR tensor support is in beta state')
        yield


def _compress(base: Tensor, weights: Tensor) -> Tuple[Tensor, Tensor]:
    """Pixel indices (R, n, K) and non-zero counts (R, n) of axis weights."""
    span = torch.arange(weights.shape[2], device=base.device)
    return base[:, :, None] + span, (weights != 0).sum(2)


def _outer_csr(y_index: Tensor, y_weight: Tensor, num_y: Tensor,
               x_index: Tensor, x_weight: Tensor,
               num_x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """CSR arrays of the per-bin outer products of row and column entries.

    Args:
        y_index (Tensor): Flat column offset of each row entry, grouped by
            (RoI, ph) in order.
        y_weight (Tensor): Weight of each row entry.
        num_y (Tensor): (R, h) row entries per (RoI, ph).
        x_index (Tensor): Pixel column of each column entry, grouped by
            (RoI, pw) in order.
        x_weight (Tensor): Weight of each column entry.
        num_x (Tensor): (R, w) column entries per (RoI, pw).

    Returns:
        Tuple[Tensor, Tensor, Tensor]: ``crow`` (R * h * w + 1,), ``cols``
        and ``values`` (nnz,), bins in (RoI, ph, pw) order and each bin's
        entries in (row, column) order, so that columns ascend.
    """
    num_rois, out_h = num_y.shape
    out_w = num_x.shape[1]
    start_y = (torch.cumsum(num_y.flatten(), 0) - num_y.flatten()).view(
        num_rois, out_h, 1).expand(num_rois, out_h, out_w).flatten()
    start_x = (torch.cumsum(num_x.flatten(), 0) - num_x.flatten()).view(
        num_rois, 1, out_w).expand(num_rois, out_h, out_w).flatten()
    bin_nx = num_x[:, None, :].expand(num_rois, out_h, out_w).flatten()
    per_bin = num_y[:, :, None] * num_x[:, None, :]
    crow = per_bin.new_zeros(per_bin.numel() + 1)
    torch.cumsum(per_bin.flatten(), 0, out=crow[1:])
    nnz = int(crow[-1])
    bins = torch.repeat_interleave(
        torch.arange(per_bin.numel(), device=crow.device),
        per_bin.flatten(), output_size=nnz)
    # index_select: several times faster than advanced indexing on CPU.
    local = torch.arange(nnz, device=crow.device) - crow.index_select(0, bins)
    nx = bin_nx.index_select(0, bins)
    iy = torch.div(local, nx, rounding_mode='floor')
    iy_flat = start_y.index_select(0, bins) + iy
    ix_flat = start_x.index_select(0, bins) + local - iy * nx
    cols = (y_index.index_select(0, iy_flat) +
            x_index.index_select(0, ix_flat))
    values = (y_weight.index_select(0, iy_flat) *
              x_weight.index_select(0, ix_flat))
    return crow, cols, values


class _SparseMM(torch.autograd.Function):
    """``S @ X`` with the gradient ``S^T @ grad`` w.r.t. ``X`` only."""

    @staticmethod
    def forward(ctx, matrix: Tensor, flat: Tensor) -> Tensor:
        ctx.save_for_backward(matrix)
        return torch.sparse.mm(matrix, flat)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[None, Tensor]:
        matrix, = ctx.saved_tensors
        # S^T as CSR (a sort of the columns) is faster to multiply than
        # the free CSC view S.t().
        with _quiet_csr():
            transposed = matrix.t().to_sparse_csr()
        return None, torch.sparse.mm(transposed, grad.contiguous())


def sparse_roi_align(feats: Sequence[Tensor], rois: Tensor, levels: Tensor,
                     spatial_scales: Sequence[float],
                     output_size: Tuple[int, int], sampling_ratio: int = 0,
                     aligned: bool = True) -> Tensor:
    """Multi-level RoIAlign (average) as one sparse-dense product.

    Args:
        feats (Sequence[Tensor]): L feature maps, each (N, C, H_l, W_l).
        rois (Tensor): (R, 5) ``(batch_index, x1, y1, x2, y2)`` in input
            image pixels, with the features' dtype.
        levels (Tensor): (R,) long, the level each RoI pools from.
        spatial_scales (Sequence[float]): 1 / stride of each level.
        output_size (Tuple[int, int]): (h, w).
        sampling_ratio (int): Samples per bin and axis; 0: adaptive.
            Defaults to 0.
        aligned (bool): mmcv's ``aligned``. Defaults to True.

    Returns:
        Tensor: (R, C, h, w) pooled features.
    """
    shapes = [(f.shape[0], f.shape[2], f.shape[3]) for f in feats]
    if rois.numel():
        low, high = torch.aminmax(rois[:, 0])
        if low < 0 or high >= shapes[0][0]:
            raise ValueError(
                f'RoI batch indices must be in [0, {shapes[0][0]}) for '
                f'{shapes[0][0]} images, got {float(low)}..{float(high)}')
    matrix = roi_align_matrix(rois, levels, shapes, spatial_scales,
                              output_size, sampling_ratio, aligned)
    flat, _ = flatten_levels(feats)
    pooled = _SparseMM.apply(matrix, flat)
    return pooled.view(rois.shape[0], output_size[0], output_size[1],
                       flat.shape[1]).permute(0, 3, 1, 2)
