"""FROCMetric on hand-computed cases."""
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


def _froc(samples, **kwargs):
    return evaluate(METRICS.build(dict(type='FROCMetric', **kwargs)),
                    samples)


def test_perfect_and_files(tmp_path):
    res = _froc(PERFECT, out_dir=str(tmp_path))
    assert res['froc/CPM'] == 1.0
    assert res['froc/sens_at_0.125fp'] == 1.0
    assert sorted(res) == sorted(
        ['froc/CPM'] + [f'froc/sens_at_{f}fp' for f in
                        ('0.125', '0.25', '0.5', '1', '2', '4', '8')])
    assert (tmp_path / 'froc_froc.png').read_bytes()[:4] == b'\x89PNG'
    lines = (tmp_path / 'froc_froc.csv').read_text().splitlines()
    assert lines[0] == 'score_thr,fps_per_image,sensitivity'
    assert len(lines) == 1 + 3  # start point + 2 distinct scores


def test_all_fp_and_no_predictions():
    assert _froc(ALL_FP)['froc/CPM'] == 0.0
    assert _froc(NO_PRED)['froc/CPM'] == 0.0


def test_images_without_gt_count_in_the_fp_rate():
    # Scores 0.9 FP, 0.7 TP, 0.6 FP over 2 images: sensitivity 1 from
    # 0.5 FPs per image on.
    res = _froc(NO_GT)
    assert res['froc/sens_at_0.25fp'] == 0.0
    assert res['froc/sens_at_0.5fp'] == 1.0
    assert res['froc/CPM'] == pytest.approx(5 / 7)


def test_duplicates_fp_or_ignored():
    metric = METRICS.build(dict(type='FROCMetric'))
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, DUPLICATE)
    assert metric.curve(metric.results)['fps_per_image'][-1] == 1.0
    metric.duplicates = 'ignore'
    assert metric.curve(metric.results)['fps_per_image'][-1] == 0.0
    assert _froc(DUPLICATE)['froc/CPM'] == 1.0


def test_center_criterion_and_class_agnostic():
    samples = [sample(0, gt=[([0, 0, 10, 10], 0)],
                      pred=[([2, 2, 14, 14], 1, 0.9)])]
    assert _froc(samples, criterion='center')['froc/CPM'] == 0.0
    assert _froc(samples, criterion='center',
                 class_agnostic=True)['froc/CPM'] == 1.0
    assert _froc(samples, class_agnostic=True)['froc/CPM'] == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match='criterion'):
        METRICS.build(dict(type='FROCMetric', criterion='dice'))
    with pytest.raises(ValueError, match='fp_rates'):
        METRICS.build(dict(type='FROCMetric', fp_rates=(0, 1)))


def test_a_split_without_ground_truth_says_so():
    import logging

    from conftest import logged_messages
    with logged_messages(logging.WARNING) as messages:
        res = _froc([sample(0, pred=[([0, 0, 10, 10], 0, 0.9)])])
    assert res['froc/CPM'] == 0.0
    assert any('no ground-truth box' in m for m in messages)
