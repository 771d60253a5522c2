"""EvalFiguresHook: confusion matrix, PR / F1 curves, per-class AP."""
import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from PIL import Image

from rcnn_plugin.engine import EvalFiguresHook
from rcnn_plugin.engine.hooks.eval_figures_hook import plot_f1
from rcnn_plugin.evaluation.functional import f1_curve

CLASSES = ('cell', 'blob')
FILES = ('val_confusion_matrix.png', 'val_confusion_matrix.csv',
         'val_pr_curves.png', 'val_per_class_ap.csv',
         'val_per_class_ap.png', 'val_f1_curve.png')


def _sample(gt_boxes, gt_labels, pred_boxes=(), pred_labels=(),
            scores=()):
    sample = DetDataSample(metainfo=dict(img_id=0))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(gt_labels, dtype=torch.long))
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor(pred_boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(pred_labels, dtype=torch.long),
        scores=torch.tensor(scores, dtype=torch.float32))
    return sample


def _runner(tmp_path, num_images):
    dataset = type('Set', (), dict(metainfo=dict(classes=CLASSES),
                                   __len__=lambda self: num_images))()
    return SimpleNamespace(work_dir=str(tmp_path),
                           val_dataloader=SimpleNamespace(dataset=dataset))


def _evaluate(tmp_path, samples):
    hook = EvalFiguresHook()
    runner = _runner(tmp_path, len(samples))
    hook.before_val_epoch(runner)
    hook.after_val_iter(runner, 0, None, samples)
    hook.after_val_epoch(runner, {})
    return hook


def _decodes(path):
    with Image.open(path) as img:
        img.load()
        return np.asarray(img.convert('RGB'))


def test_perfect_predictions(tmp_path):
    boxes = [[0, 0, 10, 10], [20, 20, 40, 40]]
    samples = [_sample(boxes, [0, 1], boxes, [0, 1], [0.9, 0.6]),
               _sample([], [])]  # an image without boxes
    hook = _evaluate(tmp_path, samples)
    for name in FILES:
        assert (tmp_path / name).is_file(), name
    with open(tmp_path / 'val_confusion_matrix.csv') as f:
        rows = list(csv.reader(f))
    assert rows[1][1:] == ['1', '0', '0'] and rows[2][1:] == ['0', '1', '0']
    with open(tmp_path / 'val_per_class_ap.csv') as f:
        ap = {r[0]: r for r in csv.reader(f)}
    assert float(ap['cell'][2]) == pytest.approx(1.0)
    assert float(ap['mean'][1]) == pytest.approx(1.0)
    for name in FILES:
        if name.endswith('.png'):
            assert _decodes(tmp_path / name).std() > 5
    # The records were used once: the next evaluation starts empty.
    assert hook._pr.results == []


def test_ground_truth_loaded_before_resize_is_brought_back(tmp_path):
    # A val pipeline that loads annotations before Resize keeps the ground
    # truth in the resized frame, the predictions in the original: the
    # figures showed no true positive, without a word.
    LoadAnnotations = type('LoadAnnotations', (), {})
    Resize = type('Resize', (), {})
    pred = [[0, 0, 20, 20], [40, 40, 80, 80]]
    sample = _sample([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1], pred,
                     [0, 1], [0.9, 0.6])
    sample.set_metainfo(dict(scale_factor=(0.5, 0.5)))
    hook = EvalFiguresHook()
    runner = _runner(tmp_path, 1)
    runner.val_dataloader.dataset.pipeline = SimpleNamespace(
        transforms=[LoadAnnotations(), Resize()])
    hook.before_val_epoch(runner)
    hook.after_val_iter(runner, 0, None, [sample])
    hook.after_val_epoch(runner, {})
    with open(tmp_path / 'val_per_class_ap.csv') as f:
        ap = {r[0]: r for r in csv.reader(f)}
    assert float(ap['mean'][1]) == pytest.approx(1.0)
    assert sample.gt_instances.bboxes[1].tolist() == [20, 20, 40, 40]


def test_f1_curve_threshold(tmp_path):
    hook = EvalFiguresHook()
    boxes = [[0, 0, 10, 10]]
    # A hit at 0.8 and a false positive at 0.4: the best F1 is above 0.4.
    hook._pr.process(None, [_sample(boxes, [0], [[0, 0, 10, 10],
                                                 [50, 50, 60, 60]],
                                    [0, 0], [0.8, 0.4])])
    records = hook._pr.results
    hook._pr.dataset_meta = dict(classes=CLASSES)
    scores, status, num_gt = hook._pr.class_matches(records, 0, 0.5)
    assert num_gt == 1 and sorted(status.tolist()) == [0, 1]
    best = plot_f1(['cell', 'blob'], [f1_curve(scores, status, num_gt),
                                      None], str(tmp_path / 'f1.png'))
    assert 0.4 < best <= 0.8
    assert plot_f1(['cell'], [None], str(tmp_path / 'none.png')) is None
    _decodes(tmp_path / 'none.png')


@pytest.mark.parametrize('case', ['no-predictions', 'no-ground-truth'])
def test_empty_inputs_still_draw(tmp_path, case):
    boxes = [[0, 0, 10, 10]]
    samples = [_sample(boxes, [0])] if case == 'no-predictions' else [
        _sample([], [], boxes, [1], [0.7])]
    _evaluate(tmp_path, samples)
    for name in FILES:
        assert (tmp_path / name).is_file(), name
    with open(tmp_path / 'val_per_class_ap.csv') as f:
        ap = {r[0]: r for r in csv.reader(f)}
    expected = '0.0' if case == 'no-predictions' else '-1.0'
    assert ap['cell'][2] == expected


def test_without_ground_truth_loaded_warns_once(tmp_path):
    sample = _sample([], [])
    del sample.gt_instances
    hook = _evaluate(tmp_path, [sample])
    assert hook._warned
    assert not any((tmp_path / name).exists() for name in FILES)


def test_bad_thresholds():
    with pytest.raises(ValueError, match='score_thr'):
        EvalFiguresHook(score_thr=1.5)
    with pytest.raises(ValueError, match='iou_thr'):
        EvalFiguresHook(iou_thr=-0.1)


def test_labels_beyond_the_classes_are_caught_in_the_first_validation(
        tmp_path):
    """A model with one class too many ('+1 for background'): a warning
    and no figures from the first validation on, not an IndexError."""
    hook = _evaluate(tmp_path, [_sample([[0, 0, 10, 10]], [0],
                                        [[0, 0, 10, 10]], [2], [0.9])])
    assert hook._warned and hook._skip
    assert not any((tmp_path / name).exists() for name in FILES)
