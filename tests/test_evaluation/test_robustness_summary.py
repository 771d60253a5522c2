"""P / mPC / rPC, per-class keys and the written tables of a sweep."""
import csv
import json
import os.path as osp

import pytest
import torch

from rcnn_plugin.evaluation.robustness import (
    CLEAN,
    PerClassAP50,
    condition_name,
    fill_empty,
    main_metric,
    numeric_metrics,
    per_class_summary,
    robustness_table,
    split_class_key,
    summarize,
    write_outputs,
)

CLASSES = ('rbc', 'red cell', 'cell')


def test_condition_name():
    assert condition_name(None, 0) == CLEAN
    assert condition_name('fog', 0) == CLEAN
    assert condition_name('fog', 3) == 'fog_s3'


def test_numeric_metrics_drops_strings_and_bools():
    out = numeric_metrics({'a/x': 1, 'a/y': 0.5, 'a/copypaste': '0.1 0.2',
                           'a/flag': True, 'a/t': torch.tensor(0.25)})
    assert out == {'a/x': 1.0, 'a/y': 0.5, 'a/t': 0.25}


@pytest.mark.parametrize('key,expected', [
    ('pr/bbox_AP50_rbc', ('pr/bbox_AP50', 'rbc')),
    ('coco/rbc_precision', ('coco/precision', 'rbc')),
    ('report/red_cell_f1', ('report/f1', 'red cell')),
    ('per_class/bbox_AP50_red_cell', ('per_class/bbox_AP50', 'red cell')),
    ('per_class/bbox_AP50_cell', ('per_class/bbox_AP50', 'cell')),
    ('coco/bbox_mAP_50', None),
    ('report/micro_f1', None),
    ('rbc', None),
])
def test_split_class_key(key, expected):
    assert split_class_key(key, CLASSES) == expected


def _conditions():
    return {
        CLEAN: {'m/mAP': 0.8, 'm/mAP_l': -1.0, 'm/AP50_rbc': 0.5},
        'fog_s1': {'m/mAP': 0.6, 'm/mAP_l': -1.0, 'm/AP50_rbc': 0.4},
        'fog_s2': {'m/mAP': 0.4, 'm/mAP_l': -1.0, 'm/AP50_rbc': 0.1},
        'snow_s1': {'m/mAP': 0.2, 'm/mAP_l': -1.0},  # rbc key missing
    }


def test_summarize_p_mpc_rpc():
    s = summarize(_conditions())
    assert s['m/mAP']['P'] == pytest.approx(0.8)
    assert s['m/mAP']['mPC'] == pytest.approx(0.4)  # clean excluded
    assert s['m/mAP']['rPC'] == pytest.approx(0.5)
    assert (s['m/mAP']['n'], s['m/mAP']['of']) == (3, 3)
    # -1 (no ground truth) is undefined, not a number to average
    assert s['m/mAP_l'] == dict(P=None, mPC=None, rPC=None, n=0, of=3)
    # a missing value is left out and counted
    assert s['m/AP50_rbc']['mPC'] == pytest.approx(0.25)
    assert (s['m/AP50_rbc']['n'], s['m/AP50_rbc']['of']) == (2, 3)


def test_a_condition_with_no_metric_at_all_scores_zero():
    """mmdet's CocoMetric returns nothing when nothing is detected: that
    condition is 0.0 (not left out, which would raise mPC), except where
    the clean value is undefined (-1, no ground truth)."""
    conditions = {
        CLEAN: {'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_l': -1.0,
                'pr/bbox_mAP': 0.5},
        'fog_s1': {'coco/bbox_mAP': 0.4, 'coco/bbox_mAP_l': -1.0,
                   'pr/bbox_mAP': 0.4},
        'fog_s5': {'pr/bbox_mAP': 0.0},  # CocoMetric: "results is empty"
    }
    s = summarize(conditions)
    assert s['coco/bbox_mAP']['mPC'] == pytest.approx(0.2)
    assert s['coco/bbox_mAP']['rPC'] == pytest.approx(0.4)
    assert (s['coco/bbox_mAP']['n'], s['coco/bbox_mAP']['of']) == (2, 2)
    assert s['coco/bbox_mAP']['mPC'] == s['pr/bbox_mAP']['mPC']
    assert s['coco/bbox_mAP_l']['n'] == 0
    # the written table shows the 0.0 the means used
    table = robustness_table(fill_empty(conditions), ['fog'], [1, 5])
    assert table['coco/bbox_mAP']['fog'] == {'1': 0.4, '5': 0.0}
    assert table['coco/bbox_mAP_l']['fog']['5'] is None
    assert 'coco/bbox_mAP' not in conditions['fog_s5']  # input unchanged


def test_the_csv_shows_the_zero_the_means_used(tmp_path):
    conditions = {CLEAN: {'coco/bbox_mAP': 0.5, 'pr/bbox_mAP': 0.5},
                  'fog_s5': {'pr/bbox_mAP': 0.0}}  # CocoMetric gave nothing
    info = dict(config='c.py', seed=0, corruptions=['fog'], severities=[5],
                classes=list(CLASSES))
    write_outputs(str(tmp_path), info, conditions)
    rows = list(csv.DictReader(open(tmp_path / 'robustness.csv')))
    assert rows[1]['coco/bbox_mAP'] == rows[1]['pr/bbox_mAP'] != ''
    assert float(rows[1]['coco/bbox_mAP']) == 0.0


def test_summarize_p_zero_and_no_clean():
    s = summarize({CLEAN: {'k': 0.0}, 'fog_s1': {'k': 0.0}})
    assert s['k'] == dict(P=0.0, mPC=0.0, rPC=None, n=1, of=1)
    with pytest.raises(ValueError, match='clean'):
        summarize({'fog_s1': {'k': 0.0}})


def test_per_class_summary_and_main_metric():
    s = summarize(_conditions())
    overall, per_class = per_class_summary(s, CLASSES)
    assert list(overall) == ['m/mAP', 'm/mAP_l']
    assert list(per_class['rbc']) == ['m/AP50']
    assert per_class['cell'] == {} and per_class['red cell'] == {}
    keys = ['coco/rbc_precision', 'coco/bbox_mAP', 'coco/bbox_mAP_50']
    assert main_metric(keys, CLASSES) == 'coco/bbox_mAP'
    with pytest.raises(ValueError, match='no numeric metric'):
        main_metric([], CLASSES)


def test_robustness_table_severity_zero_is_clean():
    table = robustness_table(_conditions(), ['fog', 'snow'], [0, 1, 2])
    assert table['m/mAP'] == {'fog': {'0': 0.8, '1': 0.6, '2': 0.4},
                              'snow': {'0': 0.8, '1': 0.2, '2': None}}


def test_write_outputs(tmp_path):
    info = dict(config='c.py', seed=0, corruptions=['fog', 'snow'],
                severities=[1, 2], classes=list(CLASSES))
    out = write_outputs(str(tmp_path), info, _conditions())
    assert out['main_metric'] == 'm/mAP'
    assert osp.isfile(out['heatmap'])
    saved = json.load(open(tmp_path / 'robustness.json'))
    assert saved['summary']['m/mAP']['rPC'] == pytest.approx(0.5)
    assert saved['per_class']['rbc']['m/AP50']['P'] == 0.5
    assert saved['classes_without_numbers'] == ['red cell', 'cell']
    assert saved['table']['m/mAP']['snow'] == {'1': 0.2, '2': None}
    rows = list(csv.reader(open(tmp_path / 'robustness.csv')))
    assert rows[0] == ['corruption', 'severity', 'm/mAP', 'm/mAP_l',
                       'm/AP50_rbc']
    assert [r[:2] for r in rows[1:]] == [
        ['clean', '0'], ['fog', '1'], ['fog', '2'], ['snow', '1'],
        ['snow', '2']]
    assert rows[-1][2:] == ['', '', '']  # snow_s2 was not run
    summary = list(csv.DictReader(open(tmp_path / 'summary.csv')))
    assert [(r['metric'], r['class']) for r in summary] == [
        ('m/mAP', ''), ('m/mAP_l', ''), ('m/AP50', 'rbc')]
    with pytest.raises(ValueError, match='not among'):
        write_outputs(str(tmp_path), dict(info, metric='m/nope'),
                      _conditions())


def _sample(gt, pred):
    def inst(rows, scores=None):
        out = dict(bboxes=torch.tensor([r[0] for r in rows],
                                       dtype=torch.float32).reshape(-1, 4),
                   labels=torch.tensor([r[1] for r in rows],
                                       dtype=torch.long))
        if scores is not None:
            out['scores'] = torch.tensor(scores, dtype=torch.float32)
        return out
    return dict(img_id=0, gt_instances=inst(gt), ignored_instances=inst([]),
                pred_instances=inst(pred, [p[2] for p in pred]))


def test_per_class_ap50():
    a, b = [0, 0, 10, 10], [20, 20, 30, 30]
    metric = PerClassAP50()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    # class a: found; class b: only a box at IoU 0.45 (AP50 0);
    # class c: no ground truth (-1)
    metric.process({}, [_sample(gt=[(a, 0), (b, 1)],
                                pred=[(a, 0, 0.9), ([20, 20, 30, 42], 1,
                                                    0.8)])])
    out = metric.evaluate(1)
    assert out == {'per_class/bbox_AP50_a': pytest.approx(1.0),
                   'per_class/bbox_AP50_b': 0.0,
                   'per_class/bbox_AP50_c': -1.0}
    # 'a b' and 'a_b' would share one key: the later overwrote the earlier
    metric = PerClassAP50()
    metric.dataset_meta = dict(classes=('a b', 'a_b'))
    metric.process({}, [_sample(gt=[(a, 0)], pred=[(a, 0, 0.9)])])
    with pytest.raises(ValueError, match="share the metric key 'a_b'"):
        metric.evaluate(1)
