"""PRCurveMetric: hand-computed cases and equality with pycocotools."""
import numpy as np
import pytest
from det_samples import (
    ALL_FP,
    DUPLICATE,
    FAR,
    NO_GT,
    NO_PRED,
    PERFECT,
    A,
    B,
    evaluate,
    sample,
)
from mmdet.registry import METRICS
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import rcnn_plugin  # noqa: F401


def _pr(samples, classes=('a', 'b'), **kwargs):
    return evaluate(METRICS.build(dict(type='PRCurveMetric', **kwargs)),
                    samples, classes)


def test_perfect_and_files(tmp_path):
    res = _pr(PERFECT, out_dir=str(tmp_path))
    assert res['pr/bbox_mAP'] == pytest.approx(1.0)
    assert res['pr/bbox_AP50_b'] == pytest.approx(1.0)
    assert all(type(v) is float for v in res.values())
    assert (tmp_path / 'pr_pr_curves.png').read_bytes()[:4] == b'\x89PNG'
    assert (tmp_path / 'pr_per_class_ap.csv').read_text().startswith(
        'class,AP,AP50,AP75')


def test_hand_computed_cases():
    assert _pr(ALL_FP)['pr/bbox_mAP_50'] == 0.0
    assert _pr(NO_PRED)['pr/bbox_mAP_50'] == 0.0
    # FP 0.9, TP 0.7, FP 0.6 (class a): envelope 0.5 at every recall.
    res = _pr(NO_GT)
    assert res['pr/bbox_AP50_a'] == pytest.approx(0.5)
    assert res['pr/bbox_AP50_b'] == -1.0  # no GT: left out of the mean
    assert res['pr/bbox_mAP_50'] == pytest.approx(0.5)
    # The duplicate comes after the TP: AP stays 1.
    assert _pr(DUPLICATE)['pr/bbox_AP50_a'] == pytest.approx(1.0)


def _random_case(rng, num_images=25, num_classes=3):
    samples, images, anns, dets = [], [], [], []
    for img_id in range(num_images):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(8, 60, (n, 2))
        gt = np.c_[xy, xy + wh]
        labels = rng.integers(0, num_classes, n)
        crowd = rng.random(n) < 0.1
        # Jittered copies of the boxes, some relabelled, plus clutter.
        jit = gt + rng.normal(0, 4, gt.shape)
        jit_labels = np.where(rng.random(n) < 0.2,
                              rng.integers(0, num_classes, n), labels)
        m = int(rng.integers(0, 5))
        cxy = rng.uniform(0, 220, (m, 2))
        clutter = np.c_[cxy, cxy + rng.uniform(5, 50, (m, 2))]
        pred = np.r_[jit, clutter]
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        pred_labels = np.r_[jit_labels, rng.integers(0, num_classes, m)]
        scores = rng.random(len(pred))
        samples.append(sample(
            img_id,
            gt=[(b, int(c)) for b, c, k in zip(gt, labels, crowd) if not k],
            ignore=[(b, int(c)) for b, c, k in zip(gt, labels, crowd) if k],
            pred=[(b, int(c), float(s))
                  for b, c, s in zip(pred, pred_labels, scores)]))
        images.append(dict(id=img_id, width=300, height=300))
        for b, c, k in zip(gt, labels, crowd):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(dict(id=len(anns) + 1, image_id=img_id,
                             category_id=int(c), bbox=[*b[:2], w, h],
                             area=w * h, iscrowd=int(k)))
        for b, c, s in zip(pred, pred_labels, scores):
            dets.append(dict(image_id=img_id, category_id=int(c),
                             bbox=[*b[:2], b[2] - b[0], b[3] - b[1]],
                             score=float(s)))
    cats = [dict(id=c, name=f'c{c}') for c in range(num_classes)]
    return samples, dict(images=images, annotations=anns, categories=cats), \
        dets


@pytest.mark.parametrize('seed', [0, 1])
def test_equals_pycocotools(seed):
    samples, gt_json, dets = _random_case(np.random.default_rng(seed))
    coco = COCO()
    coco.dataset = gt_json
    coco.createIndex()
    coco_eval = COCOeval(coco, coco.loadRes(dets), 'bbox')
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    classes = tuple(c['name'] for c in gt_json['categories'])
    res = _pr(samples, classes)
    assert res['pr/bbox_mAP_50'] == pytest.approx(coco_eval.stats[1],
                                                  abs=1e-6)
    assert res['pr/bbox_mAP'] == pytest.approx(coco_eval.stats[0], abs=1e-6)
    assert res['pr/bbox_mAP_75'] == pytest.approx(coco_eval.stats[2],
                                                  abs=1e-6)
    precision = coco_eval.eval['precision']  # [T, R, K, area, maxDets]
    for k, name in enumerate(classes):
        ap50 = precision[0, :, k, 0, 2]
        expected = ap50.mean() if (ap50 > -1).all() else -1.0
        assert res[f'pr/bbox_AP50_{name}'] == pytest.approx(expected,
                                                            abs=1e-6)


def _cocoeval_ap50(samples, num_classes=2):
    """COCOeval's AP50 per class on det_samples-style samples."""
    images, anns, dets = [], [], []
    for s in samples:
        images.append(dict(id=s['img_id'], width=100, height=100))
        gt, pred = s['gt_instances'], s['pred_instances']
        for box, label in zip(gt['bboxes'].tolist(), gt['labels'].tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append(dict(id=len(anns) + 1, image_id=s['img_id'],
                             category_id=label, bbox=[*box[:2], w, h],
                             area=w * h, iscrowd=0))
        for box, label, score in zip(pred['bboxes'].tolist(),
                                     pred['labels'].tolist(),
                                     pred['scores'].tolist()):
            dets.append(dict(image_id=s['img_id'], category_id=label,
                             bbox=[*box[:2], box[2] - box[0],
                                   box[3] - box[1]], score=score))
    coco = COCO()
    coco.dataset = dict(images=images, annotations=anns, categories=[
        dict(id=c, name=f'c{c}') for c in range(num_classes)])
    coco.createIndex()
    coco_eval = COCOeval(coco, coco.loadRes(dets), 'bbox')
    coco_eval.evaluate()
    coco_eval.accumulate()
    return coco_eval.eval['precision'][0, :, :, 0, 2].mean(0)


def test_tied_scores_rank_by_image_id_as_in_cocoeval():
    # A TP at score 1.0 on image 2, listed first, and a FP at 1.0 on
    # image 1 (whose box is missed): COCOeval ranks the FP first.
    samples = [sample(2, gt=[(A, 0)], pred=[(A, 0, 1.0)]),
               sample(1, gt=[(B, 0)], pred=[(FAR, 0, 1.0)])]
    expected = _cocoeval_ap50(samples)[0]
    assert expected == pytest.approx(0.5 * 51 / 101)  # precision 0.5
    res = _pr(samples)
    assert res['pr/bbox_AP50_a'] == pytest.approx(expected, abs=1e-6)
    # TIDE's mAP is the same AP50.
    tide = evaluate(METRICS.build(dict(type='TIDEMetric')), samples)
    assert tide['tide/mAP'] == pytest.approx(expected, abs=1e-6)
