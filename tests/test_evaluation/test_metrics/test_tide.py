"""TIDEMetric and rcnn_plugin.evaluation.functional.tide on hand-made cases."""
import json

import numpy as np
import pytest
from det_samples import sample
from mmdet.registry import METRICS

import rcnn_plugin  # noqa: F401
from rcnn_plugin.evaluation.functional import curves
from rcnn_plugin.evaluation.functional.tide import (
    ERROR_TYPES,
    pool_errors,
    tide_summary,
)

A, B, C = [0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 10]
D, E = [60, 0, 70, 10], [0, 50, 10, 60]
FAR = [100, 100, 110, 110]


def run(samples, out_dir=None, **kwargs):
    metric = METRICS.build(dict(type='TIDEMetric', out_dir=out_dir,
                                **kwargs))
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, samples)
    pooled, report = metric.analyse(metric.results)
    return metric, pooled, report


# Classes a (0), b (1). One TP per class (A: a, D: b) and one error of each
# type: a duplicate of A, a class-a detection on the b box B (Cls), a
# class-a box on C at IoU 0.4 (Loc), a class-a box on the b box D at IoU
# 0.4 (Both), one on background (Bkg); the b box E is never detected.
ONE_OF_EACH = [sample(
    0, gt=[(A, 0), (B, 1), (C, 0), (D, 1), (E, 1)],
    pred=[(A, 0, .9), ([1, 1, 10, 10], 0, .8), (B, 0, .7),
          ([40, 0, 50, 4], 0, .6), ([60, 0, 70, 4], 0, .5), (FAR, 0, .4),
          (D, 1, .95)])]


def test_one_error_of_each_type(tmp_path):
    metric, pooled, report = run(ONE_OF_EACH, str(tmp_path))
    overall = report['overall']
    assert overall['counts'] == {k: 1 for k in ERROR_TYPES}
    # By hand, 101-point AP: a (2 boxes) reaches recall 1/2 at precision
    # 1: 51/101; b (3 boxes) recall 1/3: 34/101.
    assert overall['mAP'] == pytest.approx(85 / 202)
    # Loc: the 0.6 detection becomes a TP of a (recall 1 at precision
    # 1/2): 76/101. Cls: the 0.7 one becomes a TP of b: 67/101. Miss: b
    # has 2 boxes left: 51/101. FN: one box each left: AP 1. The Dupl,
    # Both and Bkg errors score below every TP of their class: no gain.
    expected = dict(Cls=33, Loc=25, Both=0, Dupl=0, Bkg=0, Miss=17, FP=0,
                    FN=117)
    assert {k: v * 202 for k, v in overall['dAP'].items()} == pytest.approx(
        expected)
    per_class = report['per_class']
    assert per_class['a']['counts'] == dict(Cls=1, Loc=1, Both=1, Dupl=1,
                                            Bkg=1, Miss=0)
    assert per_class['b']['counts']['Miss'] == 1
    assert per_class['b']['dAP']['Cls'] == pytest.approx(33 / 101)
    res = metric.evaluate(1)
    assert res['tide/n_Loc'] == 1.0
    assert res['tide/dAP_Loc'] == pytest.approx(25 / 202)
    saved = json.load(open(tmp_path / 'tide_tide.json'))
    assert saved['overall']['counts'] == overall['counts']
    header = open(tmp_path / 'tide_per_class.csv').readline().strip()
    assert header.startswith('class,AP,dAP_Cls,dAP_Loc')
    assert (tmp_path / 'tide_tide.png').read_bytes()[:4] == b'\x89PNG'


def test_perfect_detector_has_no_error():
    samples = [sample(0, gt=[(A, 0), (B, 1)],
                      pred=[(A, 0, .9), (B, 1, .8)]),
               sample(1, gt=[(C, 1)], pred=[(C, 1, .7)])]
    _, _, report = run(samples)
    assert report['overall']['mAP'] == 1.0
    assert all(v == 0.0 for v in report['overall']['dAP'].values())
    assert all(v == 0 for v in report['overall']['counts'].values())


def test_a_split_without_ground_truth_has_map_minus_one_as_pr_curve():
    samples = [sample(0, pred=[(A, 0, .9)]), sample(1)]
    _, _, report = run(samples)
    pr = METRICS.build(dict(type='PRCurveMetric'))
    pr.dataset_meta = dict(classes=('a', 'b'))
    pr.process({}, samples)
    assert report['overall']['mAP'] == -1.0 == pr.compute_metrics(
        pr.results)['bbox_mAP_50']
    assert report['overall']['counts']['Bkg'] == 1


def test_empty_predictions_are_all_missed():
    samples = [sample(0, gt=[(A, 0), (B, 1)]), sample(1, gt=[(A, 1)])]
    _, _, report = run(samples)
    overall = report['overall']
    assert overall['counts'] == dict(Cls=0, Loc=0, Both=0, Dupl=0, Bkg=0,
                                     Miss=3)
    assert overall['mAP'] == 0.0
    # Without its missed boxes a class has nothing left to get wrong.
    assert overall['dAP']['Miss'] == 1.0
    assert report['per_class']['b']['counts']['Miss'] == 2


def test_image_without_boxes_gives_background_errors():
    samples = [sample(0, gt=[(A, 0)], pred=[(A, 0, .7)]),
               sample(1, pred=[(A, 0, .9), (B, 0, .6)])]
    metric, pooled, report = run(samples)
    overall = report['overall']
    assert overall['counts']['Bkg'] == 2
    assert sum(overall['counts'].values()) == 2
    # a: FP 0.9, TP 0.7, FP 0.6 -> AP 0.5; without the Bkg errors 1.0.
    assert overall['mAP'] == pytest.approx(0.5)
    assert overall['dAP']['Bkg'] == pytest.approx(0.5)
    assert overall['dAP']['FP'] == pytest.approx(0.5)
    assert report['per_class']['b']['AP'] is None  # no ground truth


def test_class_error_rescues_the_best_and_removes_the_rest():
    # Two class-a detections on the b box: the better one is rescued.
    samples = [sample(0, gt=[(A, 1)], pred=[(A, 0, .9), (A, 0, .8)])]
    _, pooled, report = run(samples)
    assert report['overall']['counts']['Cls'] == 2
    assert pooled['rescues'].tolist() == [True, False]
    assert report['overall']['dAP']['Cls'] == pytest.approx(1.0)


def test_ignore_regions_and_max_dets():
    samples = [sample(0, gt=[(A, 0)], ignore=[(B, 0)],
                      pred=[(A, 0, .9), (B, 0, .8), (FAR, 0, .7)])]
    _, pooled, report = run(samples)
    assert report['overall']['counts']['Bkg'] == 1  # B is ignored
    _, _, report = run(samples, max_dets=1)
    assert report['overall']['counts']['Bkg'] == 0


def test_map_equals_pr_curve_metric_map50():
    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):
        gt = [(list(rng.uniform(0, 50, 2)) * 2, int(rng.integers(2)))
              for _ in range(3)]
        gt = [([x, y, x + 20, y + 15], lab) for (x, y, *_), lab in gt]
        pred = [(list(np.add(g[0], rng.normal(0, 4, 4))),
                 int(rng.integers(2)), float(rng.uniform())) for g in gt]
        samples.append(sample(i, gt=gt, pred=pred))
    _, _, report = run(samples)
    pr = METRICS.build(dict(type='PRCurveMetric'))
    pr.dataset_meta = dict(classes=('a', 'b'))
    pr.process({}, samples)
    ap50 = [pr.class_curves(pr.results, c, 0.5)['ap'] for c in (0, 1)]
    assert report['overall']['mAP'] == pytest.approx(np.mean(ap50))


def test_bad_thresholds_raise():
    with pytest.raises(ValueError, match='bg_thr'):
        METRICS.build(dict(type='TIDEMetric', pos_thr=0.3, bg_thr=0.5))
    with pytest.raises(ValueError, match='max_dets'):
        METRICS.build(dict(type='TIDEMetric', max_dets=0))


def _random_records(seed, n_img=20, n_cls=3):
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(n_img):
        m = int(rng.integers(0, 6))
        xy = rng.uniform(0, 200, (m, 2))
        gt = np.c_[xy, xy + rng.uniform(10, 60, (m, 2))]
        labels = rng.integers(0, n_cls, m)
        dets, det_labels = [], []
        for box, label in zip(gt, labels):
            for _ in range(int(rng.integers(0, 3))):
                dets.append(box + rng.normal(0, rng.choice([1, 5, 12]), 4))
                det_labels.append(label if rng.uniform() < 0.75
                                  else rng.integers(0, n_cls))
        dets = np.reshape(dets, (-1, 4))
        dets[:, 2:] = np.maximum(dets[:, 2:], dets[:, :2] + 1)
        records.append(dict(
            pred_bboxes=dets, pred_scores=rng.uniform(size=len(dets)),
            pred_labels=np.asarray(det_labels, np.int64),
            gt_bboxes=gt, gt_labels=labels, ignore_bboxes=np.zeros((0, 4)),
            ignore_labels=np.zeros(0, np.int64)))
    return records


# tidecv 1.0.1's output on _random_records(seed), recorded with its
# plotting imports (pandas, seaborn, appdirs) stubbed, so that the
# cross-check runs where tidecv is not installed: AP x100, the counts
# and dAP x100 of Cls, Loc, Both, Dupe, Bkg and Miss.
TIDECV_1_0_1 = {
    0: (23.02495604, (5, 11, 4, 5, 6, 21),
        (9.01631974, 19.93112130, 0.66386557,
         1.95435912, 1.88770717, 11.32438882)),
    1: (31.19497454, (3, 12, 1, 6, 2, 22),
        (3.33350982, 16.11150611, 0.12601260,
         1.49550605, 0.20384391, 24.26705276)),
    2: (35.90816658, (6, 11, 5, 12, 4, 22),
        (4.66638333, 14.00420117, 3.24891295,
         2.24794735, 0.71740980, 18.59892814)),
}


def _tidecv_rec_thrs(monkeypatch):
    # tidecv's recall bins are k / 100, not np.linspace
    monkeypatch.setattr(curves, 'REC_THRS',
                        np.array([k / 100 for k in range(101)]))


@pytest.mark.parametrize('seed', sorted(TIDECV_1_0_1))
def test_agrees_with_recorded_tidecv(monkeypatch, seed):
    _tidecv_rec_thrs(monkeypatch)
    ap, counts, d_ap = TIDECV_1_0_1[seed]
    summary = tide_summary(pool_errors(_random_records(seed), 3), 3)
    assert summary['mAP'] == pytest.approx(ap / 100, abs=1e-9)
    assert [summary['counts'][k] for k in ERROR_TYPES] == list(counts)
    assert [summary['dAP'][k] for k in ERROR_TYPES] == pytest.approx(
        [v / 100 for v in d_ap], abs=1e-9)


def test_agrees_with_tidecv(monkeypatch):
    """Same counts and dAP as tidecv 1.0.1 (when installed) once its recall
    bins (k / 100, not np.linspace) are used."""
    tidecv = pytest.importorskip('tidecv')
    _tidecv_rec_thrs(monkeypatch)
    names = dict(zip(ERROR_TYPES, ('Cls', 'Loc', 'Both', 'Dupe', 'Bkg',
                                   'Miss')))
    for seed in range(3):
        records = _random_records(seed)
        gt, pred = tidecv.Data('gt'), tidecv.Data('pred')
        for i, r in enumerate(records):
            gt.add_image(i, str(i))
            for (x1, y1, x2, y2), lab in zip(r['gt_bboxes'], r['gt_labels']):
                gt.add_ground_truth(i, int(lab), [x1, y1, x2 - x1, y2 - y1])
            for (x1, y1, x2, y2), lab, s in zip(
                    r['pred_bboxes'], r['pred_labels'], r['pred_scores']):
                pred.add_detection(i, int(lab), float(s),
                                   [x1, y1, x2 - x1, y2 - y1])
        tide = tidecv.TIDE()
        tide_run = tide.evaluate(gt, pred, mode=tidecv.TIDE.BOX)
        main = tide.get_main_errors()['pred']
        counts = {k.short_name: v for k, v in tide_run.count_errors().items()}
        summary = tide_summary(pool_errors(records, 3), 3)
        assert summary['mAP'] == pytest.approx(tide_run.ap / 100)
        for kind in ERROR_TYPES:
            assert summary['counts'][kind] == counts[names[kind]]
            assert summary['dAP'][kind] == pytest.approx(
                main[names[kind]] / 100, abs=1e-9)
