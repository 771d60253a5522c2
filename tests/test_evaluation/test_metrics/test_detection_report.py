"""DetectionReport on hand-computed cases."""
import csv
import json

import pytest
from det_samples import (
    ALL_FP,
    DUPLICATE,
    NO_GT,
    NO_PRED,
    PERFECT,
    evaluate,
    sample,
)
from mmdet.registry import METRICS

import rcnn_plugin  # noqa: F401


def _report(samples, tmp_path=None, **kwargs):
    metric = METRICS.build(dict(type='DetectionReport', **kwargs,
                                out_dir=str(tmp_path) if tmp_path else None))
    return evaluate(metric, samples)


def test_perfect_predictions_write_json_and_csv(tmp_path):
    res = _report(PERFECT, tmp_path)
    for key in ('a', 'b', 'micro', 'macro'):
        for field in ('precision', 'recall', 'f1'):
            assert res[f'report/{key}_{field}'] == 1.0
            assert type(res[f'report/{key}_{field}']) is float
    data = json.load(open(tmp_path / 'report_detection_report.json'))
    assert data['classes']['a'] == dict(precision=1.0, recall=1.0, f1=1.0,
                                        support=1, tp=1, fp=0, fn=0)
    rows = list(csv.reader(open(tmp_path / 'report_detection_report.csv')))
    assert rows[0][:2] == ['class', 'precision']
    assert [r[0] for r in rows[1:]] == ['a', 'b', 'micro avg', 'macro avg']


def test_all_false_positives():
    metric = METRICS.build(dict(type='DetectionReport'))
    metric.dataset_meta = dict(classes=('a', 'b'))
    assert metric.count([]).tolist() == [[0, 0, 0], [0, 0, 0]]
    res = _report(ALL_FP)
    assert res['report/a_precision'] == 0.0
    assert res['report/micro_recall'] == 0.0
    metric = METRICS.build(dict(type='DetectionReport'))
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, ALL_FP)
    # class a: 2 FPs, 1 missed; class b: 1 FP, 1 missed.
    assert metric.count(metric.results).tolist() == [[0, 2, 1], [0, 1, 1]]


def test_no_predictions():
    res = _report(NO_PRED)
    assert res['report/micro_precision'] == 0.0
    assert res['report/micro_recall'] == 0.0
    assert res['report/macro_f1'] == 0.0


def test_images_without_gt_and_score_threshold():
    # Class a: TP 1 (0.7), FP 2 (0.9, 0.6) -> P 1/3, R 1, F1 0.5.
    res = _report(NO_GT)
    assert res['report/a_precision'] == pytest.approx(1 / 3)
    assert res['report/a_recall'] == 1.0
    assert res['report/a_f1'] == pytest.approx(0.5)
    # Class b has no GT and no detections: all 0, and macro leaves it out
    # (sklearn's classification_report averages the classes it sees).
    assert res['report/b_f1'] == 0.0
    assert res['report/macro_precision'] == pytest.approx(1 / 3)
    assert res['report/macro_f1'] == pytest.approx(0.5)
    # At score >= 0.65 the 0.6 FP is gone: P 1/2.
    res = _report(NO_GT, score_thr=0.65)
    assert res['report/a_precision'] == pytest.approx(0.5)


def test_duplicate_detection_is_one_tp_one_fp():
    res = _report(DUPLICATE)
    assert res['report/a_precision'] == 0.5
    assert res['report/a_recall'] == 1.0
    assert res['report/a_f1'] == pytest.approx(2 / 3)


def test_ignore_region_counts_neither_way():
    samples = [sample(0, gt=[([0, 0, 10, 10], 0)],
                      pred=[([0, 0, 10, 10], 0, 0.9),
                            ([60, 60, 90, 90], 0, 0.8)],
                      ignore=[([50, 50, 100, 100], 0)])]
    assert _report(samples)['report/a_precision'] == 1.0


def test_missing_ground_truth_is_a_clear_error():
    metric = METRICS.build(dict(type='DetectionReport'))
    bad = dict(PERFECT[0])
    del bad['gt_instances']
    with pytest.raises(ValueError, match='LoadAnnotations'):
        metric.process({}, [bad])
    # PackDetInputs packs empty gt_instances when no annotation was loaded:
    # every detection was scored as a false positive (precision 0).
    packed = dict(PERFECT[0], gt_instances={}, ignored_instances={})
    with pytest.raises(ValueError, match='LoadAnnotations'):
        metric.process({}, [packed])



@pytest.mark.parametrize('metric,key', [
    ('DetectionReport', 'iou_thr'), ('DetectionReport', 'score_thr'),
    ('ConfusionMatrixMetric', 'iou_thr'),
    ('ConfusionMatrixMetric', 'score_thr'), ('FROCMetric', 'iou_thr')])
def test_thresholds_outside_unit_interval_name_the_key(metric, key):
    with pytest.raises(ValueError, match=f'{key} must be in'):
        METRICS.build({'type': metric, key: 1.5})
    with pytest.raises(ValueError, match=f'{key} must be in'):
        METRICS.build({'type': metric, key: -0.1})


@pytest.mark.parametrize('classes, match', [
    (('micro', 'b'), "class 'micro' and the 'micro' row share"),
    (('a b', 'a/b'), "class 'a/b' and class 'a b' share the metric key "
                     "'a_b'"),
])
def test_classes_whose_keys_clash_are_an_error(classes, match):
    metric = METRICS.build(dict(type='DetectionReport'))
    with pytest.raises(ValueError, match=match):
        evaluate(metric, PERFECT, classes=classes)
    pr = METRICS.build(dict(type='PRCurveMetric'))
    if 'micro' not in classes:  # only the report has a 'micro' row
        with pytest.raises(ValueError, match=match):
            evaluate(pr, PERFECT, classes=classes)
