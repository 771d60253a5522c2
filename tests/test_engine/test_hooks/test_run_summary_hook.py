"""A tiny training with the tracking snippets, the domain metrics in the
val evaluator, save_best and RunSummaryHook: real files are written."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import rcnn_plugin  # noqa: F401
from rcnn_plugin.utils import apply_overlays

from conftest import REPO

TRACKING = osp.join(REPO, 'configs', '_base_', 'tracking')

EVAL = """
_base_ = '{tiny}'
val_evaluator = [
    dict(type='CocoMetric', ann_file='{data_root}annotations/val.json',
         metric='bbox'),
    dict(type='PRCurveMetric'),
    dict(type='FROCMetric'),
    dict(type='DetectionReport', score_thr=0.05),
    dict(type='ConfusionMatrixMetric', score_thr=0.05),
]
default_hooks = dict(checkpoint=dict(save_best='pr/bbox_mAP_50',
                                     rule='greater'))
custom_hooks = [dict(type='RunSummaryHook')]
"""


def _train(tiny_config, tmp_path, snippets):
    path = tmp_path / 'tracked.py'
    data_root = Config.fromfile(tiny_config).data_root
    path.write_text(EVAL.format(tiny=tiny_config, data_root=data_root))
    cfg = apply_overlays(Config.fromfile(str(path)),
                         [osp.join(TRACKING, s) for s in snippets[:1]])
    # More snippets: run their backends side by side in one training.
    for snippet in snippets[1:]:
        extra = Config.fromfile(osp.join(TRACKING, snippet))
        cfg.visualizer.vis_backends += extra.visualizer.vis_backends[1:]
    # A unique name: mmengine reuses a visualizer with an existing name.
    cfg.visualizer.name = f'visualizer_{tmp_path.name}'
    cfg.work_dir = str(tmp_path / 'work')
    # One training and one validation iteration.
    cfg.train_dataloader.dataset.indices = 4
    cfg.val_dataloader.dataset.indices = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _check_tensorboard(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    events = glob.glob(osp.join(log_dir, 'vis_data', 'events.out.*'))
    assert len(events) == 1, glob.glob(osp.join(log_dir, '**'),
                                       recursive=True)
    acc = EventAccumulator(events[0], size_guidance={'images': 0})
    acc.Reload()
    scalars = set(acc.Tags()['scalars'])
    assert {'loss', 'lr', 'coco/bbox_mAP_50', 'pr/bbox_mAP_50', 'froc/CPM',
            'report/micro_f1'} <= scalars, scalars
    assert len(acc.Scalars('loss')) == 1  # one training iteration
    images = set(acc.Tags()['images'])
    assert {'pr_pr_curves', 'froc_froc',
            'confusion_confusion_matrix'} <= images, images


def _check_wandb(log_dir):
    runs = glob.glob(osp.join(log_dir, 'vis_data', 'wandb', 'offline-run-*'))
    assert len(runs) == 1, glob.glob(osp.join(log_dir, '**'),
                                     recursive=True)
    assert glob.glob(osp.join(runs[0], 'run-*.wandb'))
    media = glob.glob(osp.join(runs[0], 'files', 'media', 'images', '*.png'))
    assert media, 'no figure was logged to wandb'


@pytest.mark.slow
def test_tracked_run_writes_trackers_metrics_and_summary(
        tiny_config, tmp_path, monkeypatch):
    """One tiny training, TensorBoard and W&B (offline) side by side."""
    monkeypatch.setenv('WANDB_MODE', 'offline')
    monkeypatch.setenv('WANDB_SILENT', 'true')
    runner = _train(tiny_config, tmp_path,
                    ['tensorboard.py', 'wandb_offline.py'])
    log_dir = runner.log_dir
    _check_tensorboard(log_dir)
    _check_wandb(log_dir)
    # The metrics' files, the best checkpoint and the summary.
    for name in ('pr_pr_curves.png', 'froc_froc.png', 'froc_froc.csv',
                 'report_detection_report.json',
                 'report_detection_report.csv',
                 'confusion_confusion_matrix.csv'):
        assert osp.isfile(osp.join(log_dir, name)), name
    assert glob.glob(osp.join(runner.work_dir,
                              'best_pr_bbox_mAP_50_epoch_1.pth'))
    summary = open(osp.join(log_dir, 'summary.md')).read()
    assert '| pr/bbox_mAP_50 |' in summary
    assert '![froc_froc.png](froc_froc.png)' in summary
    assert '### report_detection_report.csv' in summary
    assert 'best_pr_bbox_mAP_50_epoch_1.pth' in summary


@pytest.mark.slow
def test_mlflow_local_store(tiny_config, tmp_path):
    pytest.importorskip('mlflow', reason='mlflow is an optional extra and '
                        'is not installed here')
    runner = _train(tiny_config, tmp_path, ['mlflow.py'])
    assert glob.glob(osp.join(runner.log_dir, 'vis_data', '**', 'meta.yaml'),
                     recursive=True)


def test_mlflow_overlay_wires_the_backend_and_names_the_package(tmp_path):
    # mlflow is in no extra here, so the training test above skips: check
    # the overlay's wiring, and that without mlflow the error says what to
    # install rather than failing inside a run.
    import importlib.util

    from mmengine.registry import VISBACKENDS
    cfg = Config.fromfile(osp.join(TRACKING, 'mlflow.py'))
    kinds = [b['type'] for b in cfg.visualizer.vis_backends]
    assert kinds == ['LocalVisBackend', 'MLflowVisBackend']
    backend = VISBACKENDS.build(dict(cfg.visualizer.vis_backends[1],
                                     save_dir=str(tmp_path)))
    if importlib.util.find_spec('mlflow') is None:
        with pytest.raises(ImportError, match='pip install mlflow'):
            backend._init_env()


def test_summary_hook_rejects_bad_filename():
    from rcnn_plugin.engine import RunSummaryHook
    with pytest.raises(ValueError, match='.md'):
        RunSummaryHook(filename='summary.html')


def test_summary_without_and_with_metric_files(tmp_path):
    from types import SimpleNamespace

    from rcnn_plugin.engine import RunSummaryHook
    log_dir = tmp_path / 'log'
    log_dir.mkdir()
    runner = SimpleNamespace(log_dir=str(log_dir), work_dir=str(tmp_path),
                             experiment_name='exp', epoch=0, iter=0)
    hook = RunSummaryHook(max_rows=1)
    hook.after_run(runner)  # nothing evaluated yet: a header only
    text = (log_dir / 'summary.md').read_text()
    assert text.startswith('# Run summary: exp') and '## ' not in text
    (log_dir / 'froc_froc.csv').write_text('a,b\n1,2\n3,4\n')
    (log_dir / 'froc_froc.png').write_bytes(b'\x89PNG')
    (tmp_path / 'best_froc_CPM_epoch_2.pth').write_bytes(b'')
    hook.after_test_epoch(runner, {'froc/CPM': 0.25})
    text = (log_dir / 'summary.md').read_text()
    assert '| froc/CPM | 0.2500 |' in text
    assert '| 1 | 2 |' in text and '| 3 | 4 |' not in text
    assert '(1 more rows in [froc_froc.csv](froc_froc.csv))' in text
    assert '![froc_froc.png](froc_froc.png)' in text
    assert '[best_froc_CPM_epoch_2.pth](../best_froc_CPM_epoch_2.pth)' in text


def test_summary_in_work_dir_with_health_and_results(tmp_path):
    import json
    from types import SimpleNamespace

    from rcnn_plugin.engine import RunSummaryHook, TrainingHealthHook
    log_dir = tmp_path / '20240101_000000'
    log_dir.mkdir()
    runner = SimpleNamespace(log_dir=str(log_dir), work_dir=str(tmp_path),
                             experiment_name='exp', epoch=2, iter=8,
                             hooks=[])
    hook = RunSummaryHook(in_work_dir=True, max_rows=1)
    # health.json of an earlier start, no guard in this runner.
    (tmp_path / 'health.json').write_text(json.dumps(dict(
        status='warned', skipped_steps=0, findings=[dict(
            kind='divergence', epoch=2, iteration=7, action='warn',
            message='the training diverges at iteration 7:\nmore')])))
    (tmp_path / 'results.csv').write_text(
        'epoch,iter,lr,train/loss,val/loss,coco/rbc_precision,coco/bbox_mAP'
        '\n1,4,0.01,2.0,2.5,0.1,0.2\n2,8,0.01,1.5,2.1,0.2,0.3\n')
    (tmp_path / 'results.png').write_bytes(b'\x89PNG')
    (tmp_path / 'val_predictions.jpg').write_bytes(b'\xff\xd8')
    (tmp_path / 'epoch_2.pth').write_bytes(b'')
    (tmp_path / 'last.pth').symlink_to('epoch_2.pth')
    (log_dir / 'pr_per_class_ap.csv').write_text('class,AP\ncell,0.5\n')
    path = hook.write(runner)
    assert path == str(tmp_path / 'summary.md')
    text = open(path).read()
    assert 'Status: **warned**' in text
    assert '| divergence | 2 | 7 | warn | the training diverges at ' \
        'iteration 7: |' in text
    # The last epoch only (max_rows=1), the headline metric first.
    assert '| epoch | lr | train/loss | val/loss | coco/bbox_mAP |' in text
    assert '| 2 | 0.01 | 1.5 | 2.1 | 0.3 |' in text
    assert '| 1 | 0.01 |' not in text
    assert '(2 epochs, 7 columns in [results.csv](results.csv))' in text
    assert '- [last.pth](last.pth)' in text and 'best.pth' not in text
    assert '![results.png](results.png)' in text
    assert '![val_predictions.jpg](val_predictions.jpg)' in text
    assert '[pr_per_class_ap.csv]' not in text  # one row: no link needed
    assert '### pr_per_class_ap.csv' in text
    # A test runner's guard never loaded health.json (its before_train
    # did not run): its empty findings said healthy.
    guard = TrainingHealthHook()
    runner.hooks, runner._train_loop = [guard], dict(type='x')
    assert 'Status: **warned**' in open(hook.write(runner)).read()
    # A training runner's guard is read live (health.json may be stale).
    runner._train_loop = SimpleNamespace(max_epochs=3)
    assert 'Status: **healthy**' in open(hook.write(runner)).read()
    guard.findings.append(dict(kind='nonfinite', epoch=3, iteration=9,
                               action='stop', message='NaN'))
    assert 'Status: **stopped**' in open(hook.write(runner)).read()


def test_summary_names_the_tested_checkpoint_and_an_early_stop(tmp_path):
    """A test of a loaded checkpoint is not 'after the last epoch', and a
    run cut by early stopping says so (tools/finetune.py's bcd run stopped
    after 19 of 20 epochs and tested epoch 14's best checkpoint)."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from rcnn_plugin.engine import RunSummaryHook
    hub = MessageHub.get_instance('test_summary_checkpoint')
    loop = SimpleNamespace(stop_training=True, max_epochs=20)
    runner = SimpleNamespace(log_dir=str(tmp_path), work_dir=str(tmp_path),
                             experiment_name='exp', epoch=19, iter=380,
                             hooks=[], _train_loop=loop, message_hub=hub,
                             cfg=dict(load_from=None))
    hook = RunSummaryHook()
    hub.update_info('test_checkpoint', 'best_pascal_voc_mAP_epoch_14.pth')
    hub.update_info('test_note', 'the validation split, optimistic')
    hook.after_test_epoch(runner, {'pascal_voc/mAP': 0.964})
    text = (tmp_path / 'summary.md').read_text()
    assert '- epoch 19, iteration 380 (stopped early: 19 of 20 epochs)' \
        in text
    assert '## test metrics (checkpoint ' \
        '`best_pascal_voc_mAP_epoch_14.pth`)' in text
    assert 'Note: the validation split, optimistic.' in text
    # A plain tools/test.py run: the checkpoint is the config's load_from;
    # a loop that ran to its end (or a test-only runner's dict) says
    # nothing about stopping.
    hub = MessageHub.get_instance('test_summary_load_from')
    runner = SimpleNamespace(log_dir=str(tmp_path), work_dir=str(tmp_path),
                             experiment_name='exp', epoch=0, iter=0,
                             hooks=[], _train_loop=dict(type='x'),
                             message_hub=hub,
                             cfg=dict(load_from='/w/epoch_8.pth'))
    hook = RunSummaryHook()
    hook.after_test_epoch(runner, {'pascal_voc/mAP': 0.9})
    text = (tmp_path / 'summary.md').read_text()
    assert '## test metrics (checkpoint `epoch_8.pth`)' in text
    assert 'stopped early' not in text and 'Note:' not in text
    # its header said "epoch 0, iteration 0" of a run that trained 8
    assert '- no training in this process' in text
    assert '- epoch 0, iteration 0' not in text
    loop.stop_training, runner._train_loop, runner.epoch = True, loop, 20
    assert 'stopped early' not in open(hook.write(runner)).read()
    # An iteration-based loop stays at epoch 0 of 1: it said "0 of 1
    # epochs"; it counts iterations.
    from mmengine.runner import IterBasedTrainLoop
    iter_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    iter_loop._max_iters, iter_loop._max_epochs = 1000, 1
    iter_loop.stop_training = True
    runner._train_loop, runner.epoch, runner.iter = iter_loop, 0, 600
    assert '(stopped early: 600 of 1000 iterations)' in open(
        hook.write(runner)).read()


def test_a_later_start_keeps_the_earlier_validation(tmp_path):
    # tools/test.py with the run-folder overlay (or a resumed run that
    # early stopping keeps stopped) rewrote summary.md without the
    # validation the training had recorded.
    from types import SimpleNamespace

    from rcnn_plugin.engine import RunSummaryHook
    runner = SimpleNamespace(log_dir=str(tmp_path), work_dir=str(tmp_path),
                             experiment_name='exp', epoch=8, iter=64,
                             hooks=[])
    RunSummaryHook(in_work_dir=True).after_val_epoch(
        runner, {'pascal_voc/mAP': 0.91})
    test_start = RunSummaryHook(in_work_dir=True)
    test_start.after_test_epoch(runner, {'pascal_voc/mAP': 0.89})
    text = (tmp_path / 'summary.md').read_text()
    assert '## val metrics (after epoch 8' in text and '0.9100' in text
    assert '## test metrics' in text and '0.8900' in text
