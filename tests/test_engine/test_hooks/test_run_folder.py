"""configs/_base_/hooks/run-folder.py: a tiny training writes a run folder
a person reads without tools."""
import math
import os
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

import rcnn_plugin  # noqa: F401
from rcnn_plugin.engine.hooks.epoch_results_hook import read_results
from rcnn_plugin.utils import apply_overlays

from conftest import REPO

OVERLAY = osp.join(REPO, 'configs', '_base_', 'hooks', 'run-folder.py')
FIGURES = ('results.png', 'labels.png', 'val_confusion_matrix.png',
           'val_pr_curves.png', 'val_f1_curve.png', 'val_per_class_ap.png',
           'val_predictions.jpg')
TERMS = ('loss', 'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox')


def test_overlay_lists_the_guards_and_the_run_folder_hooks():
    cfg = Config.fromfile(OVERLAY)
    types = [h['type'] for h in cfg.custom_hooks]
    assert types[:2] == ['ConfigDoctorHook', 'TrainingHealthHook']
    assert {'ValLossHook', 'EpochResultsHook', 'LabelStatsHook',
            'EvalFiguresHook', 'ValPredictionsHook',
            'ResumableEarlyStoppingHook', 'CheckpointLinksHook',
            'RunSummaryHook'} <= set(types)
    assert cfg.train_cfg.val_interval == 1
    assert cfg.default_hooks.checkpoint.interval == 1


def _check_results(work):
    rows = read_results(osp.join(work, 'results.csv'))
    assert [r['epoch'] for r in rows] == [1, 2]
    assert [r['iter'] for r in rows] == [2, 4]
    for row in rows:
        assert row['lr'] > 0
        for term in TERMS:
            assert math.isfinite(row[f'train/{term}']), term
            assert math.isfinite(row[f'val/{term}']), term
        assert 0 <= row['coco/bbox_mAP'] <= 1


@pytest.mark.slow
def test_run_folder_files(tiny_config, tmp_path):
    cfg = apply_overlays(Config.fromfile(tiny_config), [OVERLAY])
    cfg.train_cfg.max_epochs = 2
    # Two training and two validation iterations per epoch.
    cfg.train_dataloader.dataset.indices = 8
    cfg.val_dataloader.dataset.indices = 4
    cfg.work_dir = work = str(tmp_path / 'work')
    cfg.visualizer.name = f'visualizer_{tmp_path.name}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    _check_results(work)
    for name in FIGURES:
        with Image.open(osp.join(work, name)) as img:
            img.load()
            assert min(img.size) > 100, name
    for name in ('best.pth', 'last.pth'):
        link = osp.join(work, name)
        assert osp.islink(link) and not osp.isabs(os.readlink(link))
        assert osp.isfile(link)  # resolves
        assert osp.dirname(osp.realpath(link)) == osp.realpath(work)
    assert osp.basename(osp.realpath(osp.join(work, 'last.pth'))) == \
        'epoch_2.pth'
    summary = open(osp.join(work, 'summary.md')).read()
    for text in ('## Training health', 'Status: **healthy**',
                 '## Results per epoch', '[results.csv](results.csv)',
                 '[best.pth](best.pth)', '![results.png](results.png)',
                 '![val_predictions.jpg](val_predictions.jpg)',
                 '| val/loss |'):
        assert text in summary, text
    assert runner.message_hub.get_scalar('val/loss').current() > 0
