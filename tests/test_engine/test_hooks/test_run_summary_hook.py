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
