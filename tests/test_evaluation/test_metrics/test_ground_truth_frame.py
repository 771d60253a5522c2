"""The metrics with annotations loaded before Resize (ground truth in the
resized image, predictions in the original) and GroundTruthFrameHook
(rcnn_plugin/engine/hooks/ground_truth_frame_hook.py), which tells
them."""
import logging
from types import SimpleNamespace

import pytest
from det_samples import PERFECT, A, B, evaluate, sample
from mmdet.registry import HOOKS, METRICS

import rcnn_plugin  # noqa: F401

# The pipeline's steps by class name, as the hook reads them.
BEFORE = ('LoadImageFromFile', 'LoadAnnotations', 'Resize', 'PackDetInputs')
AFTER = ('LoadImageFromFile', 'Resize', 'LoadAnnotations', 'PackDetInputs')
AGGREGATES = [('PRCurveMetric', 'pr/bbox_mAP'),
              ('DetectionReport', 'report/macro_f1'),
              ('FROCMetric', 'froc/CPM'),
              ('TIDEMetric', 'tide/mAP')]


def _dataset(steps):
    transforms = [type(name, (), {})() for name in steps]
    return SimpleNamespace(pipeline=SimpleNamespace(transforms=transforms))


def _runner(metrics, steps):
    loader = SimpleNamespace(dataset=_dataset(steps))
    evaluator = SimpleNamespace(metrics=metrics)
    return SimpleNamespace(val_evaluator=evaluator, val_dataloader=loader,
                           test_evaluator=evaluator, test_dataloader=loader)


def _half(box):
    return [v * 0.5 for v in box]


# PERFECT with the image resized by 0.5 and the annotations loaded
# before Resize: the boxes are halved, the predictions are not.
RESIZED = [dict(sample(0, gt=[(_half(A), 0), (_half(B), 1)],
                       ignore=[(_half([80, 80, 90, 90]), 0)],
                       pred=[(A, 0, 0.9), (B, 1, 0.8)]),
                scale_factor=(0.5, 0.5))]


@pytest.mark.parametrize('kind, key', AGGREGATES)
def test_ground_truth_loaded_before_resize_is_scaled_back(kind, key):
    metric = METRICS.build(dict(type=kind))
    HOOKS.build(dict(type='GroundTruthFrameHook')).before_val(
        _runner([metric], BEFORE))
    assert metric.gt_in_input_frame
    assert evaluate(metric, RESIZED)[key] == pytest.approx(1.0)


def test_records_hold_the_original_frame():
    metric = METRICS.build(dict(type='PRCurveMetric'))
    metric.gt_in_input_frame = True
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, RESIZED)
    rec = metric.results[0]
    assert rec['gt_bboxes'].tolist() == [A, B]
    assert rec['ignore_bboxes'].tolist() == [[80, 80, 90, 90]]


def test_mmdet_pipeline_order_changes_nothing():
    metric = METRICS.build(dict(type='PRCurveMetric'))
    metric.gt_in_input_frame = True  # from an earlier split: reset
    other = SimpleNamespace()  # e.g. CocoMetric: left alone
    HOOKS.build(dict(type='GroundTruthFrameHook')).before_test(
        _runner([metric, other], AFTER))
    assert not metric.gt_in_input_frame
    assert not hasattr(other, 'gt_in_input_frame')
    perfect = [dict(s, scale_factor=(0.5, 0.5)) for s in PERFECT]
    assert evaluate(metric, perfect)['pr/bbox_mAP'] == pytest.approx(1.0)


def test_the_hook_says_it_rescales():
    from conftest import logged_messages
    metric = METRICS.build(dict(type='FROCMetric'))
    with logged_messages(logging.WARNING) as messages:
        HOOKS.build(dict(type='GroundTruthFrameHook')).before_val(
            _runner([metric], BEFORE))
    assert any('before Resize' in m and 'FROCMetric' in m
               for m in messages)


def test_the_config_doctor_hook_marks_them_too():
    """Every config carries ConfigDoctorHook, so tools/test.py scores a
    before-Resize pipeline right without another hook."""
    metric = METRICS.build(dict(type='PRCurveMetric'))
    hook = HOOKS.build(dict(type='ConfigDoctorHook'))
    hook.before_test(_runner([metric], BEFORE))
    assert metric.gt_in_input_frame
    assert evaluate(metric, RESIZED)['pr/bbox_mAP_50'] == pytest.approx(1.0)
    hook.before_val(_runner([metric], AFTER))
    assert not metric.gt_in_input_frame
