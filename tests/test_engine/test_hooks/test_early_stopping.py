"""configs/_base_/hooks/best-ckpt_early-stop.py with mmengine's own hooks:
the best checkpoint is kept and a run whose metric stalls stops early."""
import glob
import os.path as osp

import pytest
from mmdet.registry import METRICS
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.runner import Runner

import rcnn_plugin  # noqa: F401
from rcnn_plugin.utils import apply_overlays

from conftest import REPO

OVERLAY = osp.join(REPO, 'configs', '_base_', 'hooks',
                   'best-ckpt_early-stop.py')


@METRICS.register_module(force=True)
class ScriptedScore(BaseMetric):
    """Returns the next value of ``SCORES`` at each evaluation."""
    default_prefix = 'fake'
    SCORES = []

    def process(self, data_batch, data_samples):
        self.results.extend(range(len(data_samples)))

    def compute_metrics(self, results):
        return dict(score=float(self.SCORES.pop(0)))


@pytest.mark.slow
def test_best_checkpoint_and_early_stop(tiny_config, tmp_path):
    cfg = apply_overlays(Config.fromfile(tiny_config), [OVERLAY])
    early = [h for h in cfg.custom_hooks
             if h.type == 'ResumableEarlyStoppingHook']
    assert len(early) == 1
    assert cfg.train_cfg.val_interval == 1
    early[0].update(monitor='fake/score', patience=1)
    cfg.default_hooks.checkpoint.save_best = 'fake/score'
    cfg.val_evaluator = dict(type='ScriptedScore')
    cfg.train_cfg.max_epochs = 5
    # One training and one validation iteration per epoch.
    cfg.train_dataloader.dataset.indices = 4
    cfg.val_dataloader.dataset.indices = 1
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer.name = f'visualizer_{tmp_path.name}'
    # Best at epoch 2; epoch 3 does not improve (patience 1): stop.
    ScriptedScore.SCORES[:] = [0.5, 0.6, 0.6, 0.9, 0.9]
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 3
    assert ScriptedScore.SCORES == [0.9, 0.9]
    assert osp.isfile(osp.join(cfg.work_dir,
                               'best_fake_score_epoch_2.pth'))
    assert [osp.basename(p) for p in glob.glob(
        osp.join(cfg.work_dir, 'epoch_*.pth'))] == ['epoch_3.pth']
    summary = open(osp.join(runner.log_dir, 'summary.md')).read()
    assert '| fake/score | 0.6000 |' in summary
    assert 'best_fake_score_epoch_2.pth' in summary
