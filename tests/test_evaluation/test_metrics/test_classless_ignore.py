"""Class-less ignore regions (label -1: KITTI's DontCare, LabelMe's
``__ignore__``, ``unknown_classes='ignore'``) apply to every class in the
per-class metrics, as in the class-agnostic ones."""
import pytest
from det_samples import evaluate, sample
from mmdet.registry import METRICS

import rcnn_plugin  # noqa: F401

# One class-a box found; a class-a detection scored above it, inside a
# class-less ignore region, counts neither way.
SAMPLES = [sample(0, gt=[([0, 0, 10, 10], 0)],
                  pred=[([0, 0, 10, 10], 0, 0.8),
                        ([60, 60, 90, 90], 0, 0.9)],
                  ignore=[([50, 50, 100, 100], -1)])]


def _metric(cfg):
    return evaluate(METRICS.build(cfg), SAMPLES, classes=('a',))


def test_detection_report_and_pr_curve():
    assert _metric(dict(type='DetectionReport'))['report/a_precision'] == 1.0
    res = _metric(dict(type='PRCurveMetric'))
    assert res['pr/bbox_AP50_a'] == pytest.approx(1.0)


def test_froc_agrees_with_its_class_agnostic_mode():
    per_class = _metric(dict(type='FROCMetric'))
    agnostic = _metric(dict(type='FROCMetric', class_agnostic=True))
    assert per_class == agnostic
    assert per_class['froc/sens_at_0.125fp'] == 1.0


def test_tide_finds_no_background_error():
    metric = METRICS.build(dict(type='TIDEMetric'))
    metric.dataset_meta = dict(classes=('a', ))
    metric.process({}, SAMPLES)
    _, report = metric.analyse(metric.results)
    assert report['overall']['counts']['Bkg'] == 0
