"""Served RoI, deformable-conv and focal-loss kernels against references.

The references are slow re-implementations of mmcv's kernels (one sample
point at a time for RoIAlign and RoIPool, bilinear sampling by hand for
deformable convolution, the formula for the focal loss); their autograd
gradients are the expected gradients.
"""
import importlib
import importlib.util
import math

import numpy as np
import pytest
import torch

import rcnn_plugin.ops  # noqa: F401  (installs the finder before mmcv.ops)

ops = importlib.import_module('mmcv.ops')
# The served kernels, also beside a compiled mmcv (compared with it in
# test_served_integration.py).
pytestmark = pytest.mark.usefixtures('served_ops')

# Random RoIs plus out-of-image, zero-size and inverted ones; image 40x48.
ROIS = torch.tensor([[0, 3.2, 4.1, 30.5, 20.7], [1, 10.0, 2.0, 18.0, 35.0],
                     [0, -12.0, -8.0, 6.0, 9.5], [1, 40.0, 30.0, 70.0, 55.0],
                     [0, 7.0, 7.0, 7.0, 7.0], [1, 20.0, 5.0, 19.0, 4.0],
                     [0, 0.0, 0.0, 47.9, 39.9], [1, 44.0, 36.0, 46.5, 38.0]])


def _bilinear(img, y, x):
    """mmcv's roi_align bilinear_interpolate for one point, all channels."""
    height, width = img.shape[-2:]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return img.new_zeros(img.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_lo, x_lo = int(y), int(x)
    if y_lo >= height - 1:
        y_lo = y_hi = height - 1
        y = float(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= width - 1:
        x_lo = x_hi = width - 1
        x = float(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = y - y_lo, x - x_lo
    hy, hx = 1 - ly, 1 - lx
    return (hy * hx * img[:, y_lo, x_lo] + hy * lx * img[:, y_lo, x_hi] +
            ly * hx * img[:, y_hi, x_lo] + ly * lx * img[:, y_hi, x_hi])


def ref_roi_align(feat, rois, out_size, scale, ratio, aligned):
    out = []
    for roi in rois.tolist():
        img = feat[int(roi[0])]
        off = 0.5 if aligned else 0.0
        x1, y1, x2, y2 = (v * scale - off for v in roi[1:])
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_size, roi_w / out_size
        grid_h = ratio if ratio > 0 else math.ceil(roi_h / out_size)
        grid_w = ratio if ratio > 0 else math.ceil(roi_w / out_size)
        count = max(grid_h * grid_w, 1)
        bins = []
        for ph in range(out_size):
            for pw in range(out_size):
                acc = img.new_zeros(img.shape[0])
                for iy in range(grid_h):
                    y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        acc = acc + _bilinear(img, y, x)
                bins.append(acc / count)
        out.append(torch.stack(bins, -1).view(-1, out_size, out_size))
    return torch.stack(out) if out else feat.new_zeros(
        (0, feat.size(1), out_size, out_size))


def ref_roi_pool(feat, rois, out_size, scale):
    """mmcv's roi_pool CUDA kernel, one bin at a time (values, argmax)."""
    num_chan, height, width = feat.shape[1:]
    out = feat.new_zeros((len(rois), num_chan, out_size, out_size))
    arg = torch.zeros(out.shape, dtype=torch.long)
    f = np.float32  # the kernel's float arithmetic, one rounding per op
    for n, roi in enumerate(rois.tolist()):
        x1, y1 = f(roi[1]) * f(scale), f(roi[2]) * f(scale)
        roi_w = (f(roi[3]) + f(1)) * f(scale) - x1
        roi_h = (f(roi[4]) + f(1)) * f(scale) - y1
        if roi_w <= 0 or roi_h <= 0:
            continue
        bin_w, bin_h = roi_w / f(out_size), roi_h / f(out_size)
        for ph in range(out_size):
            for pw in range(out_size):
                ys = [math.floor(f(ph) * bin_h + y1),
                      math.ceil(f(ph + 1) * bin_h + y1)]
                xs = [math.floor(f(pw) * bin_w + x1),
                      math.ceil(f(pw + 1) * bin_w + x1)]
                ys = [min(max(v, 0), height) for v in ys]
                xs = [min(max(v, 0), width) for v in xs]
                for c in range(num_chan):
                    best, best_i = -3.4028234663852886e38, -1
                    if ys[1] <= ys[0] or xs[1] <= xs[0]:
                        best = 0.0
                    for h in range(*ys):
                        for w in range(*xs):
                            v = float(feat[int(roi[0]), c, h, w])
                            if v > best:
                                best, best_i = v, h * width + w
                    out[n, c, ph, pw], arg[n, c, ph, pw] = best, best_i
    return out, arg


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('ratio', [0, 2])
def test_roi_align_matches_reference(aligned, ratio):
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 20, 24, dtype=torch.float64,
                       requires_grad=True)
    rois = ROIS.double()
    if aligned:  # mmcv's CPU kernel rejects inverted RoIs when aligned
        rois = rois[[0, 1, 2, 3, 4, 6, 7]]
    layer = ops.RoIAlign(4, 0.5, ratio, aligned=aligned)
    out = layer(feat, rois)
    want = ref_roi_align(feat, rois, 4, 0.5, ratio, aligned)
    torch.testing.assert_close(out, want)
    grad_out = torch.randn_like(out)
    got, = torch.autograd.grad(out, feat, grad_out)
    expected, = torch.autograd.grad(want, feat, grad_out)
    torch.testing.assert_close(got, expected)
    # float32 forward and the adjoint test of gradcheck on a small case
    out32 = layer(feat.detach().float(), rois.float())
    torch.testing.assert_close(out32, want.float(), rtol=1e-5, atol=1e-5)
    small = feat[:, :1, :8, :8].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda f: ops.roi_align(f, rois[:3] / 3, 2, 0.5, ratio, 'avg',
                                aligned), (small, ))


def test_roi_align_bfloat16_empty_and_max_mode():
    torch.manual_seed(1)
    feat = torch.randn(2, 3, 20, 24)
    layer = ops.RoIAlign(3, 0.5, 0, aligned=True)
    rois = ROIS[[0, 1, 2, 3, 6]]
    out = layer(feat.bfloat16(), rois.bfloat16())
    assert out.dtype == torch.bfloat16
    want = ref_roi_align(feat.bfloat16().float(), rois.bfloat16().float(), 3,
                         0.5, 0, True)
    torch.testing.assert_close(out.float(), want, rtol=2e-2, atol=2e-2)
    empty = feat.clone().requires_grad_()
    out = layer(empty, ROIS[:0])
    assert out.shape == (0, 3, 3, 3)
    out.sum().backward()
    assert (empty.grad == 0).all()
    with pytest.raises(NotImplementedError, match="pool_mode='max'"):
        ops.RoIAlign(3, 0.5, 0, pool_mode='max')(feat, rois)


def test_roi_pool_matches_mmcv_kernel():
    torch.manual_seed(2)
    feat = torch.randn(2, 2, 20, 24, requires_grad=True)
    feat.data[0, 0, 3:6, 2:9] = 1.5  # ties: the first maximum wins
    layer = ops.RoIPool(3, 0.5)
    out = layer(feat, ROIS)
    want, want_arg = ref_roi_pool(feat.detach(), ROIS, 3, 0.5)
    torch.testing.assert_close(out, want)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    # backward: scatter-add at the argmax; the skipped inverted RoI keeps
    # mmcv's zero-initialised argmax, so its gradient lands on pixel 0.
    expected = torch.zeros(2 * 2 * 20 * 24)
    for n, c, ph, pw in torch.nonzero(torch.ones_like(out)).tolist():
        a = int(want_arg[n, c, ph, pw])
        roi_w = (ROIS[n, 3] + 1 - ROIS[n, 1]) * 0.5
        roi_h = (ROIS[n, 4] + 1 - ROIS[n, 2]) * 0.5
        if roi_w <= 0 or roi_h <= 0:
            a = 0
        if a != -1:
            plane = (int(ROIS[n, 0]) * 2 + c) * 20 * 24
            expected[plane + a] += grad_out[n, c, ph, pw]
    torch.testing.assert_close(feat.grad.flatten(), expected)
    out16 = layer(feat.detach().bfloat16(), ROIS.bfloat16())
    want16, _ = ref_roi_pool(feat.detach().bfloat16().float(),
                             ROIS.bfloat16().float(), 3, 0.5)
    torch.testing.assert_close(out16.float(), want16)
    assert layer(feat, ROIS[:0]).shape == (0, 2, 3, 3)


def _sample(img, y, x):
    """Zero-padded bilinear sampling of (N, D, Cd, H, W) at (N, D, P)."""
    height, width = img.shape[-2:]
    inside = (y > -1) & (y < height) & (x > -1) & (x < width)
    y0, x0 = torch.floor(y), torch.floor(x)
    ly, lx = y - y0, x - x0
    val = 0
    for yc, xc, w in [(y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1,
                                                      (1 - ly) * lx),
                      (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)]:
        ok = (yc >= 0) & (yc < height) & (xc >= 0) & (xc < width)
        idx = (yc.clamp(0, height - 1) * width + xc.clamp(0, width - 1))
        idx = idx.long()[:, :, None].expand(-1, -1, img.size(2), -1)
        v = img.flatten(-2).gather(-1, idx)
        val = val + (w * ok)[:, :, None] * v
    return val * inside[:, :, None]


def ref_deform_conv(x, offset, mask, weight, bias, stride, pad, dil, groups,
                    dgroups):
    n, c, height, width = x.shape
    o, _, kh, kw = weight.shape
    out_h = (height + 2 * pad - (dil * (kh - 1) + 1)) // stride + 1
    out_w = (width + 2 * pad - (dil * (kw - 1) + 1)) // stride + 1
    off = offset.view(n, dgroups, kh * kw, 2, out_h, out_w)
    i = torch.arange(kh).repeat_interleave(kw)
    j = torch.arange(kw).repeat(kh)
    base_y = (torch.arange(out_h) * stride - pad)[None, :, None] + (
        i * dil)[:, None, None]
    base_x = (torch.arange(out_w) * stride - pad)[None, None, :] + (
        j * dil)[:, None, None]
    y = (base_y + off[:, :, :, 0]).flatten(2)
    xx = (base_x + off[:, :, :, 1]).flatten(2)
    img = x.view(n, dgroups, c // dgroups, height, width)
    cols = _sample(img, y, xx).view(n, c, kh * kw, out_h, out_w)
    if mask is not None:
        m = mask.view(n, dgroups, 1, kh * kw, out_h, out_w)
        cols = (cols.view(n, dgroups, -1, kh * kw, out_h, out_w) * m).view(
            cols.shape)
    cols = cols.view(n, groups, c // groups, kh * kw, out_h, out_w)
    w = weight.view(groups, o // groups, c // groups, kh * kw)
    out = torch.einsum('ngckhw,gock->ngohw', cols, w).reshape(
        n, o, out_h, out_w)
    return out if bias is None else out + bias[:, None, None]


@pytest.mark.parametrize('modulated', [False, True])
@pytest.mark.parametrize('zero_offset', [False, True])
def test_deform_conv_matches_reference(modulated, zero_offset):
    torch.manual_seed(3)
    groups, dgroups, stride, pad = 2, 2, 2, 1
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64, requires_grad=True)
    shape = (2, dgroups * 18, 4, 3)
    offset = torch.zeros(shape, dtype=torch.float64) if zero_offset else (
        torch.randn(shape, dtype=torch.float64) * 2)
    offset.requires_grad_()
    mask = torch.rand(2, dgroups * 9, 4, 3, dtype=torch.float64,
                      requires_grad=True) if modulated else None
    if modulated:
        layer = ops.ModulatedDeformConv2d(4, 4, 3, stride, pad, 1, groups,
                                          dgroups).double()
        out = layer(x, offset, mask)
    else:
        layer = ops.DeformConv2d(4, 4, 3, stride, pad, 1, groups, dgroups,
                                 bias=False).double()
        out = layer(x, offset)
    weight, bias = layer.weight, getattr(layer, 'bias', None)
    want = ref_deform_conv(x, offset, mask, weight, bias, stride, pad, 1,
                           groups, dgroups)
    torch.testing.assert_close(out, want)
    inputs = [x, offset, weight] + ([mask, bias] if modulated else [])
    grad_out = torch.randn_like(out)
    got = torch.autograd.grad(out, inputs, grad_out)
    expected = torch.autograd.grad(want, inputs, grad_out)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    # float32 and bfloat16 against the float64 reference
    out32 = layer.float()(*(t.detach().float() for t in [x, offset] +
                            ([mask] if modulated else [])))
    torch.testing.assert_close(out32, want.float(), rtol=1e-5, atol=1e-5)
    args16 = [t.detach().bfloat16() for t in [x, offset] +
              ([mask] if modulated else [])]
    out16 = layer(*args16)
    assert out16.dtype == torch.bfloat16
    want16 = ref_deform_conv(*(t.double() for t in args16[:2]),
                             args16[2].double() if modulated else None,
                             weight.detach().bfloat16().double(),
                             None if bias is None else bias.detach().double(),
                             stride, pad, 1, groups, dgroups)
    torch.testing.assert_close(out16.double(), want16, rtol=2e-2, atol=5e-2)


def test_deform_conv_gradcheck():
    torch.manual_seed(4)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    offset = (torch.randn(1, 8, 3, 3, dtype=torch.float64) *
              0.7).requires_grad_()
    mask = torch.rand(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *a: ops.modulated_deform_conv2d(*a, 1, 0, 1, 1, 1),
        (x, offset, mask, weight, bias))
    assert torch.autograd.gradcheck(
        lambda a, b, c: ops.deform_conv2d(a, b, c, 1, 0, 1, 1, 1),
        (x, offset, weight))


def ref_focal(logits, target, gamma, alpha, weight):
    p = torch.sigmoid(logits)
    onehot = torch.zeros_like(logits)
    valid = (target >= 0) & (target < logits.size(1))
    onehot[valid, target[valid]] = 1
    tiny = torch.tensor(1.1754943508222875e-38, dtype=logits.dtype)
    loss = (-alpha * onehot * (1 - p)**gamma * torch.log(p.clamp_min(tiny)) -
            (1 - alpha) * (1 - onehot) * p**gamma *
            torch.log((1 - p).clamp_min(tiny)))
    return loss if weight is None else loss * weight[target][:, None]


@pytest.mark.parametrize('with_weight', [False, True])
def test_sigmoid_focal_loss_matches_formula(with_weight):
    torch.manual_seed(5)
    logits = (torch.randn(12, 4, dtype=torch.float64) * 3).requires_grad_()
    target = torch.randint(0, 4 if with_weight else 5, (12, ))
    weight = torch.rand(4, dtype=torch.float64) if with_weight else None
    for reduction in ('none', 'sum', 'mean'):
        got = ops.sigmoid_focal_loss(logits, target, 1.5, 0.3, weight,
                                     reduction)
        want = ref_focal(logits, target, 1.5, 0.3, weight)
        want = {'none': want, 'sum': want.sum(), 'mean': want.sum() / 12}[
            reduction]
        torch.testing.assert_close(got, want)
        grad_out = torch.rand_like(got)
        g, = torch.autograd.grad(got, logits, grad_out)
        e, = torch.autograd.grad(want, logits, grad_out)
        torch.testing.assert_close(g, e)
    got16 = ops.sigmoid_focal_loss(logits.detach().bfloat16(), target, 2.0,
                                   0.25, None, 'none')
    want16 = ref_focal(logits.detach().bfloat16().double(), target, 2.0,
                       0.25, None)
    torch.testing.assert_close(got16.double(), want16, rtol=2e-2, atol=1e-2)
    assert ops.sigmoid_focal_loss(logits[:0], target[:0], 2.0, 0.25, None,
                                  'sum') == 0


def test_sigmoid_focal_loss_weight_rejects_background_target():
    with pytest.raises(ValueError, match='target'):
        ops.sigmoid_focal_loss(torch.randn(2, 3), torch.tensor([0, 3]), 2.0,
                               0.25, torch.ones(3), 'sum')
