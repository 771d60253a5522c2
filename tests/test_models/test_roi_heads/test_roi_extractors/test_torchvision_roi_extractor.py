"""TorchvisionRoIExtractor: outputs and gradients equal mmdet's extractor.

Every comparison runs for both backends, ``torchvision`` and ``sparse``.
"""
import pytest
import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS

from rcnn_plugin.models import TorchvisionRoIExtractor

STRIDES = [4, 8, 16, 32]
# The sparse backend sums the taps in another order: gradients that add up
# hundreds of taps differ from mmcv's by a few float32 ulps.
TOLERANCE = dict(torchvision=1e-6, sparse=1e-5)


@pytest.fixture(params=['torchvision', 'sparse'])
def backend(request):
    return request.param


def _extractors(output_size=7, sampling_ratio=0, channels=8,
                strides=STRIDES, backend='torchvision'):
    cfg = dict(
        roi_layer=dict(type='RoIAlign', output_size=output_size,
                       sampling_ratio=sampling_ratio),
        out_channels=channels, featmap_strides=strides)
    return (SingleRoIExtractor(**cfg),
            TorchvisionRoIExtractor(**cfg, backend=backend))


def _feats(gen, num_imgs=2, channels=8, size=(64, 96), strides=STRIDES):
    return [
        torch.randn(num_imgs, channels, size[0] // s, size[1] // s,
                    generator=gen) for s in strides
    ]


def _rois(gen, num, num_imgs=2, size=(64, 96), min_wh=1., max_wh=90.):
    wh = min_wh + torch.rand(num, 2, generator=gen) * (max_wh - min_wh)
    xy = torch.rand(num, 2, generator=gen) * torch.tensor(
        [size[1], size[0]]) - 5
    batch = torch.randint(0, num_imgs, (num, 1), generator=gen).float()
    return torch.cat([batch, xy, xy + wh], dim=1)


def _run(extractor, feats, rois, grad_out=None, **kwargs):
    feats = [f.clone().requires_grad_(True) for f in feats]
    out = extractor(tuple(feats), rois, **kwargs)
    if grad_out is None:
        grad_out = torch.randn(out.shape, generator=torch.Generator()
                               .manual_seed(7))
    (out * grad_out).sum().backward()
    return out, [f.grad for f in feats]


def _assert_same(feats, rois, output_size=7, sampling_ratio=0,
                 backend='torchvision', **kwargs):
    ref, fast = _extractors(output_size, sampling_ratio,
                            channels=feats[0].shape[1],
                            strides=STRIDES[:len(feats)], backend=backend)
    out_ref, grads_ref = _run(ref, feats, rois, **kwargs)
    out_fast, grads_fast = _run(fast, feats, rois, **kwargs)
    assert out_fast.shape == out_ref.shape
    tol = TOLERANCE[backend]
    torch.testing.assert_close(out_fast, out_ref, atol=tol, rtol=tol)
    for g_fast, g_ref in zip(grads_fast, grads_ref):
        if g_ref is None:  # mmdet leaves an unused level without grad
            assert g_fast is None or not g_fast.any()
        else:
            torch.testing.assert_close(g_fast, g_ref, atol=tol, rtol=tol)
    return out_fast


@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_random_rois_all_levels(sampling_ratio, backend):
    gen = torch.Generator().manual_seed(0)
    feats = _feats(gen)
    rois = _rois(gen, 300, max_wh=500.)
    fast, _ = _extractors()
    levels = fast.map_roi_levels(rois, 4)
    assert set(levels.tolist()) == {0, 1, 2, 3}  # every level is exercised
    out = _assert_same(feats, rois, sampling_ratio=sampling_ratio,
                       backend=backend)
    assert out.abs().sum() > 0


@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_mask_head_14x14(sampling_ratio, backend):
    gen = torch.Generator().manual_seed(1)
    feats = _feats(gen)
    _assert_same(feats, _rois(gen, 64, max_wh=300.), output_size=14,
                 sampling_ratio=sampling_ratio, backend=backend)


def test_all_rois_on_one_level(backend):
    gen = torch.Generator().manual_seed(2)
    feats = _feats(gen)
    rois = _rois(gen, 40, min_wh=1., max_wh=50.)  # scale < 112: level 0
    fast, _ = _extractors()
    assert not fast.map_roi_levels(rois, 4).any()
    _assert_same(feats, rois, backend=backend)


def test_zero_rois(backend):
    gen = torch.Generator().manual_seed(3)
    feats = _feats(gen)
    out = _assert_same(feats, torch.zeros(0, 5), backend=backend)
    assert out.shape == (0, 8, 7, 7)


def test_single_level_and_roi_scale_factor(backend):
    gen = torch.Generator().manual_seed(4)
    feats = _feats(gen)
    rois = _rois(gen, 50, max_wh=400.)
    _assert_same(feats[:1], rois, backend=backend)
    _assert_same(feats, rois, roi_scale_factor=1.5, backend=backend)


@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_outside_tiny_and_huge_rois(sampling_ratio, backend):
    gen = torch.Generator().manual_seed(8)
    feats = _feats(gen)
    rois = torch.tensor([
        [0, -40., -30., -20., -10.],  # fully outside, top left
        [1, 100., 70., 140., 90.],  # fully outside, bottom right
        [0, -20., -10., 30., 20.],  # partly outside
        [1, 80., 50., 130., 100.],  # partly outside, bottom right
        [0, 10., 10., 10.4, 10.7],  # tiny, < 1 px
        [1, 5., 6., 5., 6.],  # zero size
        [0, 95.8, 63.9, 95.9, 64.],  # tiny at the border
        [1, -500., -400., 600., 700.],  # huge
        [0, 3., 2., 2000., 30.],  # huge and thin
    ])
    rois = torch.cat([rois, _rois(gen, 40, max_wh=300.)])
    for output_size in (7, 14):
        out = _assert_same(feats, rois, output_size=output_size,
                           sampling_ratio=sampling_ratio, backend=backend)
        assert not out[:2].any()  # nothing to sample outside the image


def test_order_of_rois_is_kept(backend):
    gen = torch.Generator().manual_seed(5)
    feats = _feats(gen)
    rois = _rois(gen, 30, max_wh=400.)
    _, fast = _extractors(backend=backend)
    out = fast(tuple(feats), rois)
    perm = torch.randperm(30, generator=gen)
    torch.testing.assert_close(fast(tuple(feats), rois[perm]), out[perm])


def test_registered_and_rejects_max_pooling():
    assert MODELS.get('TorchvisionRoIExtractor') is TorchvisionRoIExtractor
    with pytest.raises(ValueError, match='pool_mode'):
        TorchvisionRoIExtractor(
            roi_layer=dict(type='RoIAlign', output_size=7, pool_mode='max'),
            out_channels=8, featmap_strides=STRIDES)
    with pytest.raises(ValueError, match='RoIAlign'):
        TorchvisionRoIExtractor(
            roi_layer=dict(type='RoIPool', output_size=7),
            out_channels=8, featmap_strides=STRIDES)
    with pytest.raises(ValueError, match='backend'):
        TorchvisionRoIExtractor(
            roi_layer=dict(type='RoIAlign', output_size=7),
            out_channels=8, featmap_strides=STRIDES, backend='mmcv')


def test_bfloat16_features_pool_in_float32(backend):
    gen = torch.Generator().manual_seed(9)
    feats = [f.bfloat16() for f in _feats(gen)]
    rois = _rois(gen, 30, max_wh=300.)
    _, fast = _extractors(backend=backend)
    out = fast(tuple(feats), rois)
    assert out.dtype == torch.bfloat16
    ref = fast(tuple(f.float() for f in feats), rois)
    torch.testing.assert_close(out, ref.bfloat16())
    if backend == 'sparse':  # bfloat16 RoIs too (no bfloat16 CSR kernel)
        out = fast(tuple(feats), rois.bfloat16())
        assert out.dtype == torch.bfloat16
        ref = fast(tuple(f.float() for f in feats), rois.bfloat16().float())
        torch.testing.assert_close(out, ref.bfloat16())


def test_float32_features_under_autocast(backend):
    gen = torch.Generator().manual_seed(10)
    feats = _feats(gen)
    rois = _rois(gen, 30, max_wh=300.)
    _, fast = _extractors(backend=backend)
    ref = fast(tuple(feats), rois)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = fast(tuple(feats), rois)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


@pytest.mark.slow
@pytest.mark.parametrize('config,extractors', [
    ('speed/faster-rcnn_mobilenetv2_fpn-128-tvroi_8e_bccd.py',
     ['bbox_roi_extractor']),
    ('balloon/mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py',
     ['bbox_roi_extractor', 'mask_roi_extractor']),
], ids=['faster-rcnn', 'mask-rcnn'])
def test_detector_losses_equal_with_sparse_backend(config, extractors):
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from conftest import REPO, shrink_model
    register_all_modules()
    cfg = Config.fromfile(f'{REPO}/configs/{config}')
    models = {}
    for name in ('torchvision', 'sparse'):
        model_cfg = shrink_model(cfg.model)
        for key in extractors:
            model_cfg['roi_head'][key].update(
                type='TorchvisionRoIExtractor', backend=name)
        models[name] = MODELS.build(model_cfg)
    models['sparse'].load_state_dict(models['torchvision'].state_dict())
    packed = demo_mm_inputs(
        batch_size=2, image_shapes=[(3, 96, 128), (3, 96, 128)],
        num_items=[4, 0], num_classes=2, with_mask=len(extractors) == 2)
    num_classes = cfg.model.roi_head.bbox_head.num_classes
    for sample in packed['data_samples']:  # demo labels are 1..C-1
        sample.gt_instances.labels.clamp_(max=num_classes - 1)
    losses, grads = {}, {}
    for name, model in models.items():
        model.train()
        torch.manual_seed(0)  # the same sampled RoIs for both
        data = model.data_preprocessor(packed, True)
        losses[name] = model(**data, mode='loss')
        total = sum(
            sum(v) if isinstance(v, list) else v
            for k, v in losses[name].items() if 'loss' in k)
        total.backward()
        grads[name] = model.backbone.conv1.conv.weight.grad
    assert set(losses['sparse']) == set(losses['torchvision'])
    for key, value in losses['torchvision'].items():
        other = losses['sparse'][key]
        if isinstance(value, list):
            value, other = torch.stack(value), torch.stack(other)
        torch.testing.assert_close(other, value, atol=1e-5, rtol=1e-5)
    assert losses['sparse']['loss_bbox'] > 0  # the RoI head got positives
    if len(extractors) == 2:
        assert losses['sparse']['loss_mask'] > 0
    torch.testing.assert_close(grads['sparse'], grads['torchvision'],
                               atol=1e-5, rtol=1e-4)
