"""Served ops inside mmdet's R-CNN paths, and against a compiled mmcv."""
import importlib
import importlib.util
import os.path as osp

import pytest
import torch

from rcnn_plugin.ops import ext_finder as finder

from conftest import run_tool

ops = importlib.import_module('mmcv.ops')


def test_mmdet_roi_extractor_and_multiclass_nms():
    from mmdet.models.layers import multiclass_nms
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    extractor = SingleRoIExtractor(
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=8, featmap_strides=[4, 8, 16, 32])
    feats = tuple(
        torch.randn(2, 8, 128 // s, 128 // s, requires_grad=True)
        for s in (4, 8, 16, 32))
    rois = torch.tensor([[0, 0.0, 0, 30, 30], [1, 5, 5, 120, 100],
                         [0, 10, 10, 10, 10], [1, -20, -10, 300, 200]])
    out = extractor(feats, rois)
    assert out.shape == (4, 8, 7, 7) and torch.isfinite(out).all()
    out.sum().backward()
    assert sum(f.grad.abs().sum() for f in feats) > 0
    assert extractor(feats, rois[:0]).shape == (0, 8, 7, 7)
    torch.manual_seed(0)
    xy = torch.rand(30, 2) * 100
    boxes = torch.cat([xy, xy + 20], 1).repeat(1, 3)  # 3 classes
    scores = torch.rand(30, 4).softmax(-1)  # + background
    dets, labels = multiclass_nms(boxes, scores, 0.05,
                                  dict(type='nms', iou_threshold=0.5), 100)
    assert dets.shape[1] == 5 and len(dets) == len(labels) > 0
    for c in range(3):  # no two kept boxes of a class overlap > 0.5
        d = dets[labels == c, :4]
        assert (_iou(d).triu(1) <= 0.5).all()
    # (mmcv's batched_nms itself fails on 0 boxes unless class-agnostic)
    dets, keep = ops.batched_nms(boxes[:0, :4], scores[:0, 0],
                                 labels[:0], dict(iou_threshold=0.5), True)
    assert dets.shape == (0, 5) and keep.shape == (0, )


def _iou(b):
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area[:, None] + area[None] - inter)


def _compare(compiled, served, name, args, kwargs, outputs):
    """Call ``name`` of both modules on copies; compare returns, outputs."""
    results = []
    for module in (compiled, served):
        copies = [a.clone() if isinstance(a, torch.Tensor) else a
                  for a in args]
        ret = getattr(module, name)(*copies, **kwargs)
        results.append((ret, [copies[i] for i in outputs]))
    (ret_c, out_c), (ret_s, out_s) = results
    if isinstance(ret_c, torch.Tensor):
        assert torch.equal(ret_c, ret_s), name
    else:
        assert ret_c == ret_s, name
    for c, s in zip(out_c, out_s):
        torch.testing.assert_close(s, c, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.skipif(
    not finder.compiled_ext_available(),
    reason='no compiled mmcv._ext to compare with (mmcv-lite)')
def test_served_kernels_match_compiled_mmcv():
    compiled = importlib.import_module('mmcv._ext')
    served = finder.load_served()
    g = torch.Generator().manual_seed(0)
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for dev in devices:
        xy = torch.rand(80, 2, generator=g) * 60
        boxes = torch.cat([xy, xy + torch.rand(80, 2, generator=g) * 30], 1)
        scores = torch.rand(80, generator=g)
        boxes, scores = boxes.to(dev), scores.to(dev)
        for offset in (0, 1):
            _compare(compiled, served, 'nms', [boxes, scores],
                     dict(iou_threshold=0.3, offset=offset), [])
        feat = torch.randn(2, 3, 20, 24, generator=g).to(dev)
        rois = torch.tensor([[0, 3.2, 4.1, 30.5, 20.7],
                             [1, -12.0, -8.0, 6.0, 9.5],
                             [1, 40.0, 30.0, 70.0, 55.0]], device=dev)
        empty = feat.new_zeros(0)
        for aligned in (True, False):
            kw = dict(aligned_height=4, aligned_width=4, spatial_scale=0.5,
                      sampling_ratio=0, pool_mode=1, aligned=aligned)
            _compare(compiled, served, 'roi_align_forward',
                     [feat, rois, feat.new_zeros(3, 3, 4, 4), empty, empty],
                     kw, [2])
            _compare(compiled, served, 'roi_align_backward',
                     [torch.randn(3, 3, 4, 4, generator=g).to(dev), rois,
                      empty, empty, torch.zeros_like(feat)], kw, [4])
        _compare_deform(compiled, served, feat, g)
        if dev == 'cuda':  # mmcv has these on CUDA only
            _compare(compiled, served, 'roi_pool_forward',
                     [feat, rois, feat.new_zeros(3, 3, 4, 4),
                      feat.new_zeros(3, 3, 4, 4, dtype=torch.int)],
                     dict(pooled_height=4, pooled_width=4,
                          spatial_scale=0.5), [2, 3])
            logits = torch.randn(10, 4, generator=g).to(dev)
            target = torch.randint(0, 5, (10, ), generator=g).to(dev)
            for fn in ('sigmoid_focal_loss_forward',
                       'sigmoid_focal_loss_backward'):
                _compare(compiled, served, fn,
                         [logits, target, empty, torch.zeros_like(logits)],
                         dict(gamma=2.0, alpha=0.25), [3])
    dets = torch.cat([boxes.cpu(), scores.cpu()[:, None]], 1)
    _compare(compiled, served, 'nms_match', [dets],
             dict(iou_threshold=0.4), [])
    for method in (0, 1, 2):
        _compare(compiled, served, 'softnms',
                 [boxes.cpu(), scores.cpu(), dets.new_zeros(80, 5)],
                 dict(iou_threshold=0.3, sigma=0.5, min_score=1e-3,
                      method=method, offset=0), [2])


def _compare_deform(compiled, served, feat, g):
    dev, empty = feat.device, feat.new_zeros(0)
    offset = torch.randn(2, 18, 20, 24, generator=g).to(dev)
    mask = torch.rand(2, 9, 20, 24, generator=g).to(dev)
    weight = torch.randn(4, 3, 3, 3, generator=g).to(dev)
    bias = torch.randn(4, generator=g).to(dev)
    grad = torch.randn(2, 4, 20, 24, generator=g).to(dev)
    geo = dict(kW=3, kH=3, dW=1, dH=1, padW=1, padH=1, dilationW=1,
               dilationH=1, group=1, deformable_group=1, im2col_step=2)
    _compare(compiled, served, 'deform_conv_forward',
             [feat, weight, offset, grad.new_zeros(grad.shape), empty,
              empty], geo, [3])
    _compare(compiled, served, 'deform_conv_backward_input',
             [feat, offset, grad, torch.zeros_like(feat),
              torch.zeros_like(offset), weight, empty], geo, [3, 4])
    _compare(compiled, served, 'deform_conv_backward_parameters',
             [feat, offset, grad, torch.zeros_like(weight), empty, empty],
             dict(geo, scale=1.0), [3])
    mgeo = dict(kernel_h=3, kernel_w=3, stride_h=1, stride_w=1, pad_h=1,
                pad_w=1, dilation_h=1, dilation_w=1, group=1,
                deformable_group=1, with_bias=True)
    _compare(compiled, served, 'modulated_deform_conv_forward',
             [feat, weight, bias, empty, offset, mask,
              grad.new_zeros(grad.shape), empty], mgeo, [6])
    _compare(compiled, served, 'modulated_deform_conv_backward', [
        feat, weight, bias, empty, offset, mask, empty,
        torch.zeros_like(feat), torch.zeros_like(weight),
        torch.zeros_like(bias), torch.zeros_like(offset),
        torch.zeros_like(mask), grad
    ], mgeo, [7, 8, 9, 10, 11])


@pytest.mark.slow
def test_mmdet_own_train_script_runs_our_config(tiny_config, tmp_path):
    """mmdet's tools/train.py (shipped in its package as .mim/tools) trains
    our config: the served ops are found without our tools."""
    import mmdet
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                      'train.py')
    if not osp.isfile(script):
        pytest.skip(f'mmdet ships no {script}')
    out = run_tool([script, tiny_config, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', 'train_cfg.max_epochs=1',
                    'train_cfg.val_interval=1'])
    assert 'Epoch(train) [1][2/2]' in out
    assert 'Epoch(val) [1]' in out
