"""sparse_roi_align: hand-computed weights and mmcv's RoIAlign numbers."""
import pytest
import torch
from mmcv.ops import RoIAlign

from rcnn_plugin.models.layers.sparse_roi_align import (
    flatten_levels,
    roi_align_matrix,
    sparse_roi_align,
)


def test_matrix_of_one_bin_by_hand():
    # aligned: x1 = 0.5 - 0.5 = 0, x2 = 2; grid ceil(2 / 1) = 2 samples at
    # 0.5 and 1.5 per axis. Per axis: pixel 0 gets 0.5, pixel 1 gets
    # 0.5 + 0.5, pixel 2 gets 0.5; divided by the 2 x 2 samples.
    rois = torch.tensor([[0., 0.5, 0.5, 2.5, 2.5]])
    matrix = roi_align_matrix(rois, torch.zeros(1, dtype=torch.long),
                              [(1, 4, 4)], [1.0], (1, 1))
    axis = torch.tensor([0.5, 1.0, 0.5, 0.0])
    expected = torch.outer(axis, axis).flatten() / 4
    torch.testing.assert_close(matrix.to_dense()[0], expected)


def test_matrix_border_clamp_and_outside_by_hand():
    # Level 1 of two images: image 1 starts at row 2 * 3 * 3 of level 1,
    # after the 1 * 2 * 2 pixels of level 0. One sample per axis.
    shapes = [(1, 2, 2), (2, 3, 3)]
    rois = torch.tensor([
        [1., 2.9, 2.9, 3.1, 3.1],  # sample (3, 3) - 0.5: clamped to (2, 2)
        [0., -3., 0.5, -2., 1.5],  # x = -3.0 < -1: outside, all zero
    ])
    matrix = roi_align_matrix(rois, torch.ones(2, dtype=torch.long), shapes,
                              [1.0, 1.0], (1, 1), sampling_ratio=1)
    dense = matrix.to_dense()
    assert dense.shape == (2, 4 + 18)
    expected = torch.zeros(22)
    expected[4 + 9 + 2 * 3 + 2] = 1.
    torch.testing.assert_close(dense[0], expected)
    assert not dense[1].any()


def test_flatten_levels_is_channels_last_by_level_then_image():
    feats = [torch.arange(2 * 3 * 2 * 2.).view(2, 3, 2, 2),
             torch.arange(2 * 3 * 1 * 1.).view(2, 3, 1, 1) + 100]
    flat, offsets = flatten_levels(feats)
    assert offsets == [0, 8]
    assert flat.shape == (10, 3)
    torch.testing.assert_close(flat[5], feats[0][1, :, 0, 1])
    torch.testing.assert_close(flat[9], feats[1][1, :, 0, 0])


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 3])
def test_equals_mmcv_roi_align_on_one_level(aligned, sampling_ratio):
    gen = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 5, 12, 17, generator=gen)
    xy = torch.rand(60, 2, generator=gen) * 80 - 10
    wh = torch.rand(60, 2, generator=gen) ** 3 * 70  # many tiny RoIs
    batch = torch.randint(0, 2, (60, 1), generator=gen).float()
    rois = torch.cat([batch, xy, xy + wh], dim=1)
    levels = torch.zeros(60, dtype=torch.long)
    args = ((6, 4), 0.25, sampling_ratio)
    grad = torch.randn(60, 5, 6, 4, generator=gen)
    results = []
    for pool in (lambda f: RoIAlign(*args, aligned=aligned)(f, rois),
                 lambda f: sparse_roi_align([f], rois, levels, [0.25],
                                            *args[::2], aligned=aligned)):
        leaf = feat.clone().requires_grad_(True)
        out = pool(leaf)
        (out * grad).sum().backward()
        results.append((out, leaf.grad))
    (out_ref, grad_ref), (out, grad_feat) = results
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_feat, grad_ref, atol=1e-5, rtol=1e-5)


def test_zero_rois_give_empty_output_and_zero_gradient():
    feat = torch.randn(1, 4, 8, 8, requires_grad=True)
    out = sparse_roi_align([feat], torch.zeros(0, 5),
                           torch.zeros(0, dtype=torch.long), [1.0], (7, 7))
    assert out.shape == (0, 4, 7, 7)
    out.sum().backward()
    assert feat.grad is not None and not feat.grad.any()


def test_non_finite_rois_pool_zeros_without_reading_out_of_bounds():
    feat = torch.randn(1, 3, 8, 8)
    nan, inf = float('nan'), float('inf')
    rois = torch.tensor([[0., nan, 1., 4., 5.], [0., 1., 1., inf, 5.],
                         [0., 1., 1., 4., 5.]])
    for ratio in (0, 2):
        out = sparse_roi_align([feat], rois, torch.zeros(3, dtype=torch.long),
                               [1.0], (2, 2), sampling_ratio=ratio)
        assert not out[:2].any()
        ref = RoIAlign((2, 2), 1.0, ratio, aligned=True)(feat, rois[2:])
        torch.testing.assert_close(out[2:], ref)


def test_batch_index_out_of_range_is_an_error():
    feat = torch.randn(2, 3, 8, 8)
    rois = torch.tensor([[2., 1., 1., 4., 5.]])
    with pytest.raises(ValueError, match=r'batch indices must be in \[0, 2\)'):
        sparse_roi_align([feat], rois, torch.zeros(1, dtype=torch.long),
                         [1.0], (2, 2))
