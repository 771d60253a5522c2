"""ConfusionMatrixMetric on hand-computed cases."""
import csv

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


def _matrix(samples):
    metric = METRICS.build(dict(type='ConfusionMatrixMetric'))
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, samples)
    return metric.matrix(metric.results).tolist()


def test_perfect_writes_csv_and_png(tmp_path):
    metric = METRICS.build(dict(type='ConfusionMatrixMetric',
                                out_dir=str(tmp_path)))
    res = evaluate(metric, PERFECT)
    assert res == {'confusion/class_confusions': 0.0,
                   'confusion/background_fp': 0.0, 'confusion/missed': 0.0}
    rows = list(csv.reader(open(tmp_path / 'confusion_confusion_matrix.csv')))
    assert rows[0] == ['truth \\ pred', 'a', 'b', 'background']
    assert rows[1:] == [['a', '1', '0', '0'], ['b', '0', '1', '0'],
                        ['background', '0', '0', '0']]
    png = (tmp_path / 'confusion_confusion_matrix.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n'


def test_all_fp_no_pred_no_gt_duplicates():
    assert _matrix(ALL_FP) == [[0, 0, 1], [0, 0, 1], [2, 1, 0]]
    assert _matrix(NO_PRED) == [[0, 0, 1], [0, 0, 2], [0, 0, 0]]
    # Default score_thr 0.3 keeps all three; image 1 has no GT.
    assert _matrix(NO_GT) == [[1, 0, 0], [0, 0, 0], [2, 0, 0]]
    assert _matrix(DUPLICATE) == [[1, 0, 0], [0, 0, 0], [1, 0, 0]]


def test_class_confusion_is_off_diagonal():
    # A class-b detection on a class-a box: one confusion, nothing missed.
    samples = [sample(0, gt=[([0, 0, 10, 10], 0)],
                      pred=[([0, 0, 10, 10], 1, 0.9)])]
    assert _matrix(samples) == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]
    metric = METRICS.build(dict(type='ConfusionMatrixMetric'))
    assert evaluate(metric, samples)['confusion/class_confusions'] == 1.0
