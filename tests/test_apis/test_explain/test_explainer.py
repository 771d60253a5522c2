"""Saliency of a shrunk Faster R-CNN: the adapter, maps, bad inputs."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch

import rcnn_plugin  # noqa: F401
from rcnn_plugin.apis import read_image
from rcnn_plugin.apis.explain import (
    METHODS,
    DetectorAdapter,
    Explainer,
    explain_image,
    prepare_image,
)


@pytest.fixture
def detector(tiny_config, synthetic_cells):
    """A randomly initialised shrunk detector (scores near 1 / classes)."""
    from mmdet.apis import init_detector
    torch.manual_seed(0)
    model = init_detector(tiny_config, None, device='cpu')
    path = sorted(glob.glob(osp.join(synthetic_cells, 'val', '*')))[0]
    return model, read_image(path)


def test_adapter_matches_model_predict(detector):
    from mmdet.apis import inference_detector
    model, image = detector
    ref = inference_detector(model, image).pred_instances
    x, meta = prepare_image(model, model.cfg, image)
    adapter = DetectorAdapter(model, meta)
    dets = adapter.detect(x)[0]
    assert len(ref) == len(dets['scores']) > 0
    torch.testing.assert_close(dets['scores'], ref.scores)
    torch.testing.assert_close(adapter.to_original(dets['boxes']),
                               ref.bboxes, atol=1e-3, rtol=0)
    assert torch.equal(dets['labels'], ref.labels)


def test_adapter_scores_carry_gradients(detector):
    model, image = detector
    x, meta = prepare_image(model, model.cfg, image)
    x.requires_grad_(True)
    with torch.enable_grad():
        dets = DetectorAdapter(model, meta)(x)[0]
    dets['scores'][0].backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize('method', METHODS)
def test_maps_have_the_image_size_and_finite_values(detector, method):
    model, image = detector
    grads = [p.requires_grad for p in model.parameters()]
    out = explain_image(model, image, method, score_thr=0.0, max_dets=2,
                        masks=8)
    assert len(out.detections) == 2 == len(out.maps)
    assert out.maps.shape[1:] == image.shape[:2]
    assert np.isfinite(out.maps).all()
    assert out.maps.min() >= 0 and out.maps.max() <= 1
    assert out.maps.max() > 0
    assert out.detections[0]['score'] >= out.detections[1]['score']
    # Parameters are restored and hold no gradient.
    assert [p.requires_grad for p in model.parameters()] == grads
    assert all(p.grad is None for p in model.parameters())


def test_single_fpn_level_and_class_filter(detector):
    model, image = detector
    out = explain_image(model, image, 'eigencam', layer='neck.fpn_convs.1',
                        score_thr=0.0, classes=[1], max_dets=3)
    assert out.detections and all(d['label'] == 1 for d in out.detections)
    assert np.isfinite(out.maps).all()


def test_no_detection_above_the_threshold_is_not_an_error(detector):
    model, image = detector
    out = explain_image(model, image, 'gradcam', score_thr=1.01)
    assert out.detections == [] and out.maps.shape == (0, *image.shape[:2])


def test_bad_inputs_say_what_is_valid(detector):
    model, _ = detector
    with pytest.raises(ValueError, match='eigencam, gradcam, odam, drise'):
        Explainer(model, method='lime')
    with pytest.raises(ValueError, match=r'neck\.fpn_convs\.1.*backbone'):
        Explainer(model, method='gradcam', layer='neck.fpn_convs.9')
    with pytest.raises(ValueError, match='mask budget > 0'):
        Explainer(model, method='drise', masks=0)
    with pytest.raises(TypeError, match='two-stage'):
        DetectorAdapter(torch.nn.Linear(2, 2), {})
    with pytest.raises(TypeError, match='two-stage.*got Linear'):
        Explainer(torch.nn.Linear(2, 2), cfg={})  # at once, not per image


def test_fast_rcnn_is_refused_before_any_image():
    """Fast R-CNN (no RPN, proposals from a file) is a TwoStageDetector:
    refused at construction, not by a KeyError at the first image."""
    from mmdet.models import FastRCNN

    class NoRPN(torch.nn.Module):
        with_rpn = False
        roi_head = torch.nn.Identity()
        extract_feat = FastRCNN.extract_feat

    with pytest.raises(TypeError, match='an RPN.*NoRPN takes precomputed'):
        Explainer(NoRPN(), cfg={})
