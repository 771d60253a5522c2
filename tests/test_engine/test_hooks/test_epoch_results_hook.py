"""EpochResultsHook: results.csv and results.png, one row per epoch."""
import csv
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from PIL import Image

from rcnn_plugin.engine import EpochResultsHook
from rcnn_plugin.engine.hooks.epoch_results_hook import (
    headline_first,
    read_results,
)


def _runner(tmp_path, name, loop=EpochBasedTrainLoop):
    hub = MessageHub.get_instance(name)
    return SimpleNamespace(work_dir=str(tmp_path), epoch=0, iter=0,
                           message_hub=hub, train_loop=loop.__new__(loop))


def _epoch(hook, runner, losses, metrics, lr=0.01):
    for i, loss in enumerate(losses):
        runner.message_hub.update_scalar('train/lr', lr)
        hook.after_train_iter(runner, i, None, dict(
            loss=torch.tensor(loss), loss_cls=torch.tensor(loss / 2),
            acc=torch.tensor(90.0), not_a_number='text'))
        runner.iter += 1
    hook.after_train_epoch(runner)
    runner.epoch += 1
    if metrics is not None:
        hook.after_val_epoch(runner, metrics)


def _rows(tmp_path):
    with open(tmp_path / 'results.csv', newline='') as f:
        return list(csv.reader(f))


def test_rows_columns_and_figure(tmp_path):
    runner = _runner(tmp_path, 'results_rows')
    hook = EpochResultsHook()
    hook.before_train(runner)
    _epoch(hook, runner, [1.0, 3.0], {'coco/bbox_mAP': 0.1,
                                      'val/loss': 2.5, 'coco/copy': 'a b'})
    rows = _rows(tmp_path)
    assert rows[0] == ['epoch', 'iter', 'lr', 'train/loss', 'train/loss_cls',
                       'train/acc', 'val/loss', 'coco/bbox_mAP']
    assert rows[1] == ['1', '2', '0.01', '2', '1', '90', '2.5', '0.1']
    # A new metric adds a column; the earlier row has it empty.
    _epoch(hook, runner, [0.5], {'coco/bbox_mAP': 0.2, 'val/loss': 2.0,
                                 'pr/bbox_mAP_50': 0.4}, lr=0.001)
    rows = _rows(tmp_path)
    assert rows[0][-1] == 'pr/bbox_mAP_50'
    assert rows[1][-1] == '' and rows[2][-1] == '0.4'
    assert rows[2][:4] == ['2', '3', '0.001', '0.5']
    with Image.open(tmp_path / 'results.png') as img:
        img.load()
        assert img.size[0] > 500
    parsed = read_results(str(tmp_path / 'results.csv'))
    assert parsed[0]['epoch'] == 1 and parsed[0]['pr/bbox_mAP_50'] is None
    assert parsed[1]['val/loss'] == 2.0


def test_epoch_without_validation_and_empty_outputs(tmp_path):
    runner = _runner(tmp_path, 'results_empty')
    hook = EpochResultsHook()
    hook.before_train(runner)
    hook.after_train_epoch(runner)  # no iteration logged anything
    runner.epoch += 1
    assert not (tmp_path / 'results.png').exists()  # drawn after val
    hook.after_val_epoch(runner, {})  # an evaluation without metrics
    rows = _rows(tmp_path)
    assert rows[0] == ['epoch', 'iter', 'lr']
    assert rows[1] == ['1', '0', '']
    with Image.open(tmp_path / 'results.png') as img:
        img.load()
    # An epoch without validation: the figure is drawn at the end.
    (tmp_path / 'results.png').unlink()
    hook.after_train_epoch(runner)
    hook.after_train(runner)
    assert len(_rows(tmp_path)) == 3
    with Image.open(tmp_path / 'results.png') as img:
        img.load()


def test_non_finite_values_are_kept(tmp_path):
    runner = _runner(tmp_path, 'results_nan')
    hook = EpochResultsHook()
    hook.before_train(runner)
    _epoch(hook, runner, [math.nan], {'val/loss': math.inf})
    row = read_results(str(tmp_path / 'results.csv'))[0]
    assert math.isnan(row['train/loss']) and math.isinf(row['val/loss'])


def test_resume_keeps_rows_up_to_the_resumed_epoch(tmp_path, caplog):
    runner = _runner(tmp_path, 'results_resume')
    hook = EpochResultsHook()
    hook.before_train(runner)
    for epoch in range(3):
        _epoch(hook, runner, [1.0 + epoch], {'coco/bbox_mAP': 0.1 * epoch})
    hook.after_train(runner)
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 9.0})  # a test after
    assert len(_rows(tmp_path)) == 4
    # Resume from the checkpoint of epoch 2: epoch 3 is run again.
    runner.epoch, runner.iter = 2, 2
    resumed = EpochResultsHook()
    resumed.before_train(runner)
    assert [r['epoch'] for r in resumed.rows] == [1, 2]
    _epoch(resumed, runner, [7.0], {'coco/bbox_mAP': 0.7})
    rows = read_results(str(tmp_path / 'results.csv'))
    assert [r['epoch'] for r in rows] == [1, 2, 3]
    assert rows[1]['train/loss'] == 2.0 and rows[2]['train/loss'] == 7.0
    assert rows[2]['coco/bbox_mAP'] == 0.7
    # A fresh run in the same work dir starts a new file.
    runner.epoch = runner.iter = 0
    fresh = EpochResultsHook()
    fresh.before_train(runner)
    assert fresh.rows == []


def test_iteration_based_training_is_refused(tmp_path):
    runner = _runner(tmp_path, 'results_iter', loop=IterBasedTrainLoop)
    with pytest.raises(ValueError, match='epoch-based training loop'):
        EpochResultsHook().before_train(runner)


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(ValueError, match='.csv'):
        EpochResultsHook(filename='results.txt')
    with pytest.raises(ValueError, match='max_metric_panels'):
        EpochResultsHook(max_metric_panels=-1)
    (tmp_path / 'results.csv').write_text('epoch,lr\none,0.1\n')
    with pytest.raises(ValueError, match='move it away'):
        EpochResultsHook().before_train(_runner(tmp_path, 'results_bad'))


def test_headline_metrics_first():
    keys = ['coco/rbc_precision', 'coco/bbox_mAP', 'coco/bbox_mAP_75',
            'pascal_voc/mAP', 'coco/bbox_mAP_50', 'pr/bbox_AP50_WBC']
    assert headline_first(keys) == [
        'coco/bbox_mAP', 'pascal_voc/mAP', 'coco/bbox_mAP_50',
        'coco/rbc_precision', 'coco/bbox_mAP_75', 'pr/bbox_AP50_WBC']
